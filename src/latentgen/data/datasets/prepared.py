"""Prepared datasets: validation of what a source gave (structure, pinned content), the atomic write of
the prepared directory, and loading it back with its hashes checked.

A *prepared* dataset is a directory holding

    train_images.npy  uint8, (N, C, H, W)     train_labels.npy  int64, (N,)
    test_images.npy   uint8, (M, C, H, W)     test_labels.npy   int64, (M,)
    meta.json         name, source, classes, num_classes, shape, n_train, n_test, sha256 per file,
                      content_sha256, latentgen_version

``.npy`` files are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentgen import __version__
from latentgen.data.datasets.errors import DatasetIntegrityError, DatasetMismatchError, DatasetSourceUnavailable
from latentgen.data.datasets.formats import RawDataset
from latentgen.data.datasets.hashing import array_sha256, canonical_array, content_sha256, file_sha256
from latentgen.data.datasets.registry import ARRAY_NAMES, SPLITS, CanonicalContent, DatasetInfo, dataset_info
from latentgen.data.datasets.sources import SOURCES, default_download_root, resolve_source, source_is_ready
from latentgen.common.fileio import atomic_directory

META_FILE = "meta.json"


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
            candidate = SOURCES[info.name][source].load(info, download_root)
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


def write_prepared(out_dir: Path, info: DatasetInfo, raw: RawDataset, digest: str) -> dict[str, Any]:
    """Write arrays and meta.json into a temporary sibling of ``out_dir``, then move it into place (what a
    killed prepare left beside it is removed first: one prepare per dataset runs at a time, Snakemake's lock)."""
    with atomic_directory(out_dir) as temp_dir:
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
    return meta


def prepare(name: str, out_dir: Path, source: str = "auto", download_root: Path | None = None) -> dict[str, Any]:
    """Read dataset ``name`` from ``source`` and write its prepared form into ``out_dir``; return meta.json's dict.

    ``download_root`` is where downloading sources keep their files (default: ``<out_dir>/../_downloads``);
    files already there are used without the network.  MNIST and Fashion-MNIST must match their
    pinned content hash whatever the source (DatasetMismatchError otherwise).
    """
    info = dataset_info(name)
    out_dir = Path(out_dir)
    download_root = Path(download_root) if download_root is not None else default_download_root(out_dir)
    resolved = resolve_source(name, source, download_root)
    raw = SOURCES[name][resolved].load(info, download_root)
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

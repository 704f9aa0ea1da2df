"""Atomic writes and safe loads shared by every stage.

Every output is written under a temporary name in the same directory and renamed into place, so an
interrupted job never leaves a half-written file under its final name (a rename within one file
system is atomic): a file through :func:`atomic_path`, a directory of files through
:func:`atomic_directory`.  Loads never execute code: checkpoints go through ``torch.load(weights_only=True)``
and a damaged file raises an error that names it and says what to do.

torch, pandas and pyarrow are imported where they are used: the workflow imports the dataset code (and
so this module) while it parses, and on a cluster every job parses it again.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    import torch


class DamagedFileError(ValueError):
    """A file that exists but cannot be read as what it should be."""

    def __init__(self, path: Path | str, what: str, advice: str, cause: BaseException | None = None):
        detail = f": {type(cause).__name__}: {cause}" if cause else ""
        super().__init__(f"{what} {path} is damaged or not a {what}{detail}. {advice}")
        self.path = Path(path)


def remove_stale_temporaries(path: Path, directories: bool = False) -> None:
    """Remove what a killed atomic write of ``path`` left beside it (``.<name>.*``: its temporary files, or
    with ``directories`` its temporary directories).  Snakemake's lock lets one job at a time write an
    output, so such a leftover belongs to no live writer; a killed write can leave gigabytes there."""
    pattern = f".{glob.escape(path.name)}.*" + ("" if directories else ".tmp")
    for stale in path.parent.glob(pattern):
        if directories and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        elif not directories and stale.is_file():
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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


@contextlib.contextmanager
def atomic_directory(path: Path | str) -> Iterator[Path]:
    """Yield a new empty directory next to ``path``; it replaces ``path`` (whole: old files never stay
    beside new ones) only if the block succeeds, and is removed otherwise.

    What a killed write of ``path`` left beside it is removed first (:func:`remove_stale_temporaries`).
    The directory gets the mode ``mkdir`` would give it (a temporary directory starts private, 0700).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path, directories=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        tmp.chmod(_directory_mode())
        yield tmp
        _replace_directory(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(data: Any, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(
    path: Path | str, what: str = "JSON file", advice: str = "Delete it and rerun the step that wrote it."
) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedFileError(path, what, advice, error) from error


def file_sha256(path: Path | str, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path | str, expected: str, what: str, advice: str) -> None:
    """Raise DamagedFileError unless ``path`` hashes to ``expected`` (catches flipped bytes that a
    torch zip archive does not notice: it stores no checksum over tensor data)."""
    actual = file_sha256(path)
    if actual != expected:
        raise DamagedFileError(path, what, f"Its sha256 {actual} differs from the recorded {expected}. {advice}")


def save_torch(obj: Any, path: Path | str) -> str:
    """Save atomically; return the file's sha256 (callers record it so that loads can verify it)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
        digest = file_sha256(tmp)
    return digest


def tensor_over(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor over the same memory, a read-only memmap included: callers only ever read it.

    (``torch.from_numpy`` warns about read-only arrays; a job log full of that warning hides real ones.)
    """
    import torch

    if array.dtype.byteorder not in "=|" or not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def load_torch(
    path: Path | str,
    what: str = "checkpoint",
    map_location: str | torch.device = "cpu",
    advice: str = "Delete it and rerun the job that wrote it.",
) -> Any:
    """Load tensors/plain containers only: ``weights_only=True`` refuses anything that runs code."""
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for truncation, bad zips, unpickling
        raise DamagedFileError(
            path, what, f"It was not loaded (nothing in it was executed). {advice}", error
        ) from error


def write_parquet(frame: pd.DataFrame, path: Path | str, metadata: dict[str, Any] | None = None) -> None:
    """Parquet with provenance in the schema metadata (key ``latentgen``, JSON)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged[b"latentgen"] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: Path | str, what: str = "Parquet file") -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise
    except Exception as error:  # pyarrow.lib.ArrowInvalid and OSError for truncated files
        raise DamagedFileError(path, what, "Delete it and rerun the step that wrote it.", error) from error


def parquet_metadata(path: Path | str) -> dict[str, Any]:
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(b"latentgen")
    return json.loads(raw) if raw else {}

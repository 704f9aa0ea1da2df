"""Atomic writes and safe loads shared by every stage.

Every output is written under a temporary name in the same directory and renamed into place, so an
interrupted job never leaves a half-written file under its final name (a rename within one file
system is atomic).  Loads never execute code: checkpoints go through ``torch.load(weights_only=True)``
and a damaged file raises an error that names it and says what to do.
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
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
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


def write_json(data: Any, path: Path | str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path | str, what: str = "JSON file", advice: str = "Delete it and rerun the step that wrote it."
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
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
        digest = file_sha256(tmp)
    return digest


def tensor_over(array: np.ndarray) -> torch.Tensor:
    """A CPU tensor over the same memory, a read-only memmap included: callers only ever read it.

    (``torch.from_numpy`` warns about read-only arrays; a job log full of that warning hides real ones.)
    """
    if array.dtype.byteorder not in "=|" or not (array.flags.c_contiguous or array.flags.f_contiguous):
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def load_torch(path: Path | str, what: str = "checkpoint", map_location: str | torch.device = "cpu",
               advice: str = "Delete it and rerun the job that wrote it.") -> Any:
    """Load tensors/plain containers only: ``weights_only=True`` refuses anything that runs code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # torch raises several types for truncation, bad zips, unpickling
        raise DamagedFileError(path, what, f"It was not loaded (nothing in it was executed). {advice}",
                               error) from error


def write_parquet(frame: pd.DataFrame, path: Path | str, metadata: dict[str, Any] | None = None) -> None:
    """Parquet with provenance in the schema metadata (key ``latentgen``, JSON)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    if metadata:
        merged = dict(table.schema.metadata or {})
        merged[b"latentgen"] = json.dumps(metadata, sort_keys=True, default=str).encode()
        table = table.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: Path | str, what: str = "Parquet file") -> pd.DataFrame:
    try:
        return pq.read_table(path).to_pandas()
    except FileNotFoundError:
        raise
    except Exception as error:  # pyarrow.lib.ArrowInvalid and OSError for truncated files
        raise DamagedFileError(path, what, "Delete it and rerun the step that wrote it.", error) from error


def parquet_metadata(path: Path | str) -> dict[str, Any]:
    raw = (pq.read_schema(path).metadata or {}).get(b"latentgen")
    return json.loads(raw) if raw else {}

"""The score job's resume cache: what a checkpoint's scores and activations depend on (their keys), and
whether an earlier job's are still current."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from latentgen.common.fileio import DamagedFileError, parquet_metadata, read_json, read_parquet
from latentgen.scoring.activations import MANIFEST as ACTIVATION_MANIFEST
from latentgen.scoring.activations import read_activations

log = logging.getLogger("latentgen")


def kept_activations(directory: Path, key: dict[str, Any]) -> bool:
    """Whether ``directory`` holds the activations ``key`` describes, every file intact.

    A damaged or outdated directory is not an error: it is re-extracted (the log names it)."""
    if not directory.exists():
        return False
    if not (directory / ACTIVATION_MANIFEST).exists():
        log.warning("re-extracting %s: %s is missing", directory, directory / ACTIVATION_MANIFEST)
        return False
    try:
        if read_json(directory / ACTIVATION_MANIFEST, what="activation manifest").get("key") != key:
            log.info("%s holds activations of another checkpoint or setting: re-extracting", directory)
            return False
        read_activations(directory)  # checks every file against the manifest's CRC-32
    except (DamagedFileError, ValueError) as error:
        log.warning("re-extracting %s: %s", directory, error)
        return False
    return True


def kept_fragment(path: Path, key: str) -> pd.DataFrame | None:
    """The scores an earlier job of this run wrote for a checkpoint, when they are of the same checkpoint,
    settings and code (``key``); a damaged or outdated fragment is scored again (the log names it)."""
    if not path.exists():
        return None
    try:
        if parquet_metadata(path).get("fragment_key") != key:
            return None
        return read_parquet(path, what="score fragment")
    except Exception as error:  # a truncated or overwritten file: score the checkpoint again
        log.warning("%s is damaged (%s): scoring its checkpoint again", path, error)
        return None


def fragment_key(checkpoint_sha256: str | None, settings: dict[str, Any]) -> str:
    """What a checkpoint's scores depend on: its bytes, and every setting and the code that scored it."""
    text = json.dumps({"checkpoint_sha256": checkpoint_sha256, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def remove_unscheduled(directory: Path, pattern: str, kept: set[str]) -> None:
    """Remove what an earlier training of this run left for checkpoints it no longer has (a retrained run
    may stop at another epoch). Only ``epoch_*`` entries: an edited run's directory lies inside its base run's."""
    for path in directory.glob(pattern):
        if path.name not in kept:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


@dataclass(frozen=True)
class ScoreSettings:
    """How every checkpoint of a run is extracted and scored: the score rule's params."""

    variance: float
    layers: list[str]
    batch_size: int
    dtype: str
    device: str
    code: dict[str, Any]  # stage_code("score"): a fragment scored by other code is scored again
    holdout: float = 0.0
    probes: list[str] | None = None
    edit_epoch: int | None = None

    def extraction_key(self, checkpoint_sha256: str | None) -> dict[str, Any]:
        """What a checkpoint's activations depend on: the probes and scoring settings do not count, so a
        changed probe list re-scores kept activations without extracting them again."""
        return {
            "checkpoint_sha256": checkpoint_sha256,
            "dtype": self.dtype,
            "batch_size": self.batch_size,
            "code": extraction_code(),
        }


def extraction_code() -> str:
    """A digest of the extraction's code (latentgen.common.fingerprint): kept activations of other code are stale."""
    from latentgen.common.fingerprint import definition_code

    return definition_code("latentgen.scoring.job", "_extract_checkpoint")


@dataclass(frozen=True)
class ScoreJob:
    """One run's score job: what it reads (the prepared dataset, the label table, run.json and the checkpoints),
    where it writes (per-checkpoint fragments, activations while scored, the run's table) and which run it is."""

    prepared_dir: Path | str
    labels: Path | str
    run_json: Path | str
    checkpoints: list[str]
    fragments_dir: Path | str
    activations_dir: Path | str
    out: Path | str
    pair: str
    corruption: int
    seed: int
    keep_activations: bool = False

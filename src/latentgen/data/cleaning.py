"""The training examples a run's clean variant leaves out: those its label issues flag (``label_issues.retrain``).

The flags are the label-issue stage's (``latentgen.label_issues``): of the method a user would trust, the
truth-free choice (the metrics table's ``is_choice`` row: the probe and layer of the held-out choice) at the run's
final checkpoint, the model a user of a memorized network has.  No test label and no truth of the corruption
decides what is removed.  Pure pandas on the two tables' columns, so training reads it without the label-issue
stage's dependencies (cleanlab).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentgen.common.fileio import read_parquet
from latentgen.data.holdout import HoldoutSplit

FINAL_CHECKPOINTS = ("final", "peak+final")  # the metrics table's roles of a run's last checkpoint


@dataclass(frozen=True)
class FlaggedSet:
    """The examples a run's clean retraining leaves out: dataset indices (the label table's ``index``) and the
    method, layer and checkpoint whose flags they are."""

    index: np.ndarray
    epoch: int
    layer: str
    method: str
    rule: str

    def record(self) -> dict[str, Any]:
        """What run.json says of the examples removed: their number, a digest, and whose flags they are."""
        return {
            "n": int(len(self.index)),
            "indices_sha256": index_digest(self.index),
            "method": self.method,
            "layer": self.layer,
            "epoch": self.epoch,
            "rule": self.rule,
        }


def index_digest(index: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.sort(index), dtype=np.int64).tobytes()).hexdigest()


def flags_to_exclude(issues: Path | str, metrics: Path | str) -> FlaggedSet:
    """The examples flagged by the truth-free choice at the run's final checkpoint (module docstring)."""
    table = read_parquet(metrics, what="label-issue metrics table")
    chosen = table[table["checkpoint"].isin(FINAL_CHECKPOINTS) & table["is_choice"]]
    if chosen.empty:
        raise ValueError(f"{metrics}: no truth-free choice (is_choice) at the final checkpoint: nothing to retrain on")
    row = chosen.iloc[0]
    flags = read_parquet(issues, what="label-issue table")
    same = (flags["epoch"] == row["epoch"]) & (flags["layer"] == row["layer"]) & (flags["probe"] == row["method"])
    method = flags[same]
    if method.empty:
        raise ValueError(f"{issues}: no flags of {row['method']} on {row['layer']} at epoch {row['epoch']}")
    flagged = method.loc[method["is_label_issue"].astype(bool), "index"].to_numpy().astype(np.int64)
    return FlaggedSet(np.sort(flagged), int(row["epoch"]), str(row["layer"]), str(row["method"]), str(row["choice"]))


def cleaned_split(split: HoldoutSplit, train_index: np.ndarray, flagged: FlaggedSet) -> HoldoutSplit:
    """``split`` with the flagged examples also removed from what the network fits (``train_index``: the dataset
    index of each training position); the held-out slice stays the run's, so scoring and repair rank on it."""
    removed = np.flatnonzero(np.isin(train_index, flagged.index))
    return HoldoutSplit(fit=np.setdiff1d(split.fit, removed).astype(np.int64), held_out=split.held_out)

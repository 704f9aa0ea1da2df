"""The payoff of finding the wrong labels: train the network again on the examples not flagged, and compare.

A run's *cleaned* training set (``latentgen.data.cleaning.flags_to_exclude``) is its training set without the
examples flagged by the method a user would trust: the label-issue stage's truth-free choice
(``choices.truth_free_choice``: the probe and layer of the held-out choice) at the run's final checkpoint, the
model a user of a memorized network has.  No test label and no truth of the corruption is read to decide what is
removed.  The run ``{pair}/c{rate}/s{seed}/clean`` trains with the same settings, the same held-out slice
withheld, on the rest (``latentgen.pipeline.train``).

``compare_retrained`` then puts three models side by side on the same test images, each as per-image correctness
(so the claims table's contrasts are paired, ``latentgen.report.claims.evidence``):

* ``memorized``: the run's network at its final checkpoint (the score table's ``model`` test row);
* ``repaired``: what ``latentgen repair`` makes of that checkpoint, the transfer of the layer the held-out slice
  chooses for VeLPIC (``latentgen.scoring.selection.transfer_layer``; the score table's ``transfer`` test row on
  that layer, which predicts exactly what VeLPIC predicts);
* ``retrained_clean``: the clean run's network at its final checkpoint (a forward pass here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from latentgen.common.devices import assign_device
from latentgen.common.fileio import read_json, read_parquet
from latentgen.data.runs import load_run_data
from latentgen.scoring.checkpoint import predict_classes
from latentgen.scoring.selection import pack_correct, transfer_layer
from latentgen.training.checkpoints import model_from_run

MEMORIZED, REPAIRED, RETRAINED = "memorized", "repaired", "retrained_clean"
COMPARISON_COLUMNS = [
    "network",
    "epoch",
    "layer",
    "split",
    "accuracy",
    "n_samples",
    "correct",
    "n_trained",
    "n_excluded",
    "excluded_wrong",
    "trained_wrong",
    "flags_from",
    "wrong_label_fraction",
]


def _final_test_row(scores: pd.DataFrame, probe: str, layer: str | None = None) -> pd.Series:
    rows = scores[(scores["probe"] == probe) & (scores["split"] == "test")]
    if layer is not None:
        rows = rows[rows["layer"] == layer]
    if rows.empty:
        raise ValueError(f"the run's score table has no test row of {probe}{' on ' + layer if layer else ''}")
    return rows[rows["epoch"] == rows["epoch"].max()].iloc[0]


def repaired_layer(scores: pd.DataFrame, layers: list[str]) -> str:
    """The layer ``latentgen repair`` transfers at the run's final checkpoint (chosen on the held-out slice)."""
    final = scores[scores["epoch"] == scores["epoch"].max()]
    return transfer_layer(final, layers)[0]


def _comparison_row(model: str, row: pd.Series, layer: str) -> dict[str, Any]:
    return {
        "network": model,
        "epoch": int(row["epoch"]),
        "layer": layer,
        "split": "test",
        "accuracy": float(row["accuracy"]),
        "n_samples": int(row["n_samples"]),
        "correct": row["correct"],
    }


@torch.no_grad()
def retrained_row(run_json: Path | str, checkpoint: Path | str, images: np.ndarray, labels: np.ndarray,
                  batch_size: int, device: str) -> dict[str, Any]:  # fmt: skip
    """The clean run's final network on the test images, per image."""
    torch_device = assign_device(device)
    model = model_from_run(run_json, checkpoint).to(torch_device).eval()
    right = predict_classes(model, images, batch_size, torch_device) == labels
    epoch = int(read_json(run_json, what="run summary")["final_epoch"])
    return {
        "network": RETRAINED,
        "epoch": epoch,
        "layer": "output",
        "split": "test",
        "accuracy": float(right.mean()),
        "n_samples": int(len(right)),
        "correct": pack_correct(right),
    }


def compare_retrained(
    scores: Path | str,
    clean_run_json: Path | str,
    clean_checkpoint: Path | str,
    prepared_dir: Path | str,
    labels: Path | str,
    corruption: int,
    layers: list[str],
    batch_size: int = 1000,
    device: str = "auto",
) -> pd.DataFrame:
    """The memorized, repaired and retrained-on-clean models of one run on the same test images (module docstring),
    with how many training examples the clean run fitted, how many were removed and how many of each were wrong."""
    score_table = read_parquet(scores, what="run score table")
    standard = score_table[score_table["edit_epoch"].isna()] if "edit_epoch" in score_table else score_table
    layer = repaired_layer(standard, layers)
    run = load_run_data(prepared_dir, labels, int(corruption))
    retrained = retrained_row(
        clean_run_json, clean_checkpoint, run.data.test_images, run.data.test_labels, batch_size, device
    )
    if retrained["n_samples"] != int(_final_test_row(standard, "model")["n_samples"]):
        raise ValueError(f"{scores} was scored on another test set than {clean_run_json}'s data")
    rows = [
        _comparison_row(MEMORIZED, _final_test_row(standard, "model"), "output"),
        _comparison_row(REPAIRED, _final_test_row(standard, "transfer", layer), layer),
        retrained,
    ]
    counts = _training_counts(clean_run_json)
    wrong = float(run.provenance["fraction_labels_changed"])
    return pd.DataFrame(rows).assign(**counts, wrong_label_fraction=wrong)[COMPARISON_COLUMNS]


def _training_counts(clean_run_json: Path | str) -> dict[str, Any]:
    """From the clean run's run.json: what it fitted and removed, and how many of those labels were wrong."""
    summary = read_json(clean_run_json, what="run summary")
    excluded = summary.get("excluded")
    if excluded is None:
        raise ValueError(f"{clean_run_json} is not a retrained-on-clean run (no 'excluded' record)")
    return {
        "n_trained": int(excluded["n_trained"]),
        "n_excluded": int(excluded["n"]),
        "excluded_wrong": int(excluded["n_wrong"]),
        "trained_wrong": int(excluded["n_trained_wrong"]),
        "flags_from": f"{excluded['method']}:{excluded['layer']} at epoch {excluded['epoch']} ({excluded['rule']})",
    }

"""The label-issue stage's tables: one row per example and method (the flags), one row per method (the metrics).

A *method* is a probe cross-fitted on a layer (``kind`` "probe") or a baseline (``kind`` "baseline", the
``BASELINES`` of ``latentgen.label_issues.baselines``).  Every method of a run is scored against the same
truth (``is_wrong``: the given, corrupted label differs from the true one; a label re-drawn to itself is right)
and bootstrapped on the same resamples, so differences between methods are paired (``metrics``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import METRIC_NAMES, bootstrap_auprc, label_issue_metrics

# The baselines' ``probe`` names (latentgen.label_issues.baselines), in the order the figure and claims list them.
BASELINES = ("network_softmax", "network_disagreement", "pixel_logreg", "deep_knn")
METHOD_KEYS = ["epoch", "layer", "probe"]
ISSUE_TABLE_COLUMNS = ["index", "epoch", "layer", "probe", "is_label_issue", "label_score", "given_label",
                       "predicted_label", "is_wrong"]  # fmt: skip
METRICS_COLUMNS = [
    "epoch",
    "checkpoint",
    "layer",
    "method",
    "kind",
    *METRIC_NAMES,
    "is_choice",
    "choice",
    "auprc_bootstrap",
]


def method_kind(method: str) -> str:
    return "baseline" if method in BASELINES else "probe"


def issue_rows(table: pd.DataFrame, epoch: int, is_wrong: np.ndarray) -> pd.DataFrame:
    """A method's flags (``flags.ISSUE_COLUMNS``, examples in the run's order) with the epoch and the truth."""
    if len(table) != len(is_wrong):
        raise ValueError(f"{len(table)} flagged examples but {len(is_wrong)} truth values")
    return table.assign(epoch=np.int64(epoch), is_wrong=np.asarray(is_wrong, dtype=bool))[ISSUE_TABLE_COLUMNS]


def _method_metrics(group: pd.DataFrame, counts: np.ndarray | None) -> dict:
    metrics = label_issue_metrics(group["is_wrong"], group["is_label_issue"], group["label_score"])
    replicates: list[float] = []
    if counts is not None and np.isfinite(metrics["auprc"]):  # no AUPRC to resample at 0 % corruption
        replicates = bootstrap_auprc(group["is_wrong"], group["label_score"], counts).tolist()
    return {**metrics, "auprc_bootstrap": replicates}


def metrics_table(
    issues: pd.DataFrame,
    roles: dict[int, str],
    choices: dict[int, tuple[str, str, str]],
    counts: np.ndarray | None,
    example_index: np.ndarray,
) -> pd.DataFrame:
    """One row per (epoch, layer, method) of ``issues`` (``ISSUE_TABLE_COLUMNS``): the metrics, the checkpoint's
    role, and whether the method is the checkpoint's truth-free choice (``choices``: epoch -> (probe, layer,
    rule)).  ``counts``: the run's bootstrap resamples (``metrics.bootstrap_counts``), None for no bootstrap."""
    rows = []
    for (epoch, layer, method), group in issues.groupby(METHOD_KEYS, sort=False):
        # the bootstrap's counts are per example position: every method must list the examples alike
        if not np.array_equal(group["index"].to_numpy(), example_index):
            raise ValueError(f"the flags of {method} on {layer} at epoch {epoch} are not in the run's example order")
        chosen_probe, chosen_layer, rule = choices[int(epoch)]
        rows.append(
            {
                "epoch": int(epoch),
                "checkpoint": roles[int(epoch)],
                "layer": layer,
                "method": method,
                "kind": method_kind(method),
                **_method_metrics(group, counts),
                "is_choice": (method, layer) == (chosen_probe, chosen_layer),
                "choice": rule,
            }
        )
    return pd.DataFrame(rows, columns=METRICS_COLUMNS)

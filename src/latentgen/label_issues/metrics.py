"""How well flags and a ranking find the labels that are truly wrong (known in the synthetic corruption).

* ``precision``, ``recall``, ``f1``: of the flagged set against the truly wrong set.  Nothing flagged makes
  precision 0/0: it is reported as 0 (scikit-learn's ``zero_division=0``), as is recall with nothing wrong,
  so a method that flags nothing scores 0 rather than a NaN that averages would drop silently.
* ``average_precision`` (AUPRC) and ``auroc``: of the ranking by 1 - ``label_score`` (a low label quality
  means likely wrong), flags ignored.  Compare average precision with ``base_rate``, the fraction truly
  wrong, which is what a random ranking scores.  Both are NaN when every label is wrong or every label is
  right (no ranking can be judged then).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score


def _as_flags(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name} must be boolean (or 0/1)")
    return array.astype(bool)


def _ranking_metrics(is_wrong: np.ndarray, suspicion: np.ndarray) -> tuple[float, float]:
    """(average precision, AUROC) of ranking by ``suspicion``; NaN for both when only one class is present."""
    if is_wrong.all() or not is_wrong.any():
        return math.nan, math.nan
    return float(average_precision_score(is_wrong, suspicion)), float(roc_auc_score(is_wrong, suspicion))


def label_issue_metrics(is_wrong, is_flagged, label_score) -> dict[str, float | int]:
    """Precision, recall, F1 of ``is_flagged`` and AUPRC/AUROC of ranking by 1 - ``label_score``, against
    ``is_wrong`` (the truth); with ``base_rate``, ``n_flagged`` and ``n``.  See the module docstring."""
    is_wrong = _as_flags(is_wrong, "is_wrong")
    is_flagged = _as_flags(is_flagged, "is_flagged")
    label_score = np.asarray(label_score, dtype=np.float64)
    if not (len(is_wrong) == len(is_flagged) == len(label_score)):
        raise ValueError(f"lengths differ: {len(is_wrong)}, {len(is_flagged)}, {len(label_score)}")
    if not np.isfinite(label_score).all():
        raise ValueError("label_score must be finite")
    precision, recall, f1, _ = precision_recall_fscore_support(
        is_wrong, is_flagged, average="binary", pos_label=True, zero_division=0
    )
    average_precision, auroc = _ranking_metrics(is_wrong, 1.0 - label_score)
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "average_precision": average_precision,
        "auroc": auroc,
        "base_rate": float(is_wrong.mean()),
        "n_flagged": int(is_flagged.sum()),
        "n": int(len(is_wrong)),
    }

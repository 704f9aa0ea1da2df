"""How well flags and a ranking find the labels that are truly wrong (known in the synthetic corruption).

* ``precision``, ``recall``, ``f1``: of the flagged set against the truly wrong set.  Nothing flagged makes
  precision 0/0: it is reported as 0 (scikit-learn's ``zero_division=0``), so a method that flags nothing
  scores 0 rather than a NaN that averages would drop silently.
* ``auprc`` (average precision, scikit-learn's step-wise definition) and ``auroc``: of the ranking by
  1 - ``label_score`` (a low label quality means likely wrong), flags ignored.  Compare AUPRC with
  ``base_rate``, the fraction truly wrong, which is what a random ranking scores.
* Nothing truly wrong (a run at 0 % corruption, or one whose re-drawn labels all came out unchanged): every
  one of these is NaN (n/a: there is nothing to find), ``base_rate`` is 0 and ``n_flagged`` still counts the
  flags (all false alarms).  Every label wrong: the ranking metrics are NaN (no ranking can be judged).

The bootstrap.  Intervals of an AUPRC, and of the AUPRC *difference* of two methods on the same examples, come
from a seeded bootstrap over examples: ``bootstrap_counts`` draws B resamples once, as counts (how often each
example is drawn), and every method of a run is evaluated on the *same* resamples (``bootstrap_auprc``), so the
replicate differences are paired: the examples both methods find hard stay correlated and cancel.
``paired_auprc_difference`` turns two methods' replicates into an ``Estimate`` (latentgen.common.stats): the
full-sample difference, the replicates' standard deviation as its standard error and their 2.5 / 97.5 %
percentiles as the interval.  A resample that drew no wrong label has no AUPRC and is dropped.

AUPRC on a resample is computed with the counts as weights (drawing an example twice = weight 2), vectorized
over resamples: the examples sorted once by suspicion, cumulative weighted true positives and weights read at
the end of every group of tied suspicions (one threshold per distinct value, as scikit-learn's
``average_precision_score``), AP = Σ (recall step) · precision.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from latentgen.common.stats import Estimate

METRIC_NAMES = ("precision", "recall", "f1", "auprc", "auroc", "base_rate", "n_flagged", "n")
# Resamples per bootstrap: 200 puts a 95 % percentile interval's ends within about ±0.1 SE of where
# 10,000 resamples would (quick-start cost: ~5 ms per method at 3,000 examples).
DEFAULT_RESAMPLES = 200
# Resamples evaluated at once: (chunk, n) float64 arrays, 48 MB at n = 60,000.
_CHUNK = 100


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


def _checked(is_wrong, is_flagged, label_score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    is_wrong = _as_flags(is_wrong, "is_wrong")
    is_flagged = _as_flags(is_flagged, "is_flagged")
    label_score = np.asarray(label_score, dtype=np.float64)
    if not (len(is_wrong) == len(is_flagged) == len(label_score)):
        raise ValueError(f"lengths differ: {len(is_wrong)}, {len(is_flagged)}, {len(label_score)}")
    if not np.isfinite(label_score).all():
        raise ValueError("label_score must be finite")
    return is_wrong, is_flagged, label_score


def label_issue_metrics(is_wrong, is_flagged, label_score) -> dict[str, float | int]:
    """Precision, recall, F1 of ``is_flagged`` and AUPRC/AUROC of ranking by 1 - ``label_score``, against
    ``is_wrong`` (the truth); with ``base_rate``, ``n_flagged`` and ``n``.  See the module docstring."""
    is_wrong, is_flagged, label_score = _checked(is_wrong, is_flagged, label_score)
    if is_wrong.any():
        precision, recall, f1, _ = precision_recall_fscore_support(
            is_wrong, is_flagged, average="binary", pos_label=True, zero_division=0
        )
    else:  # nothing to find: n/a, not 0 (a 0 would read as "found nothing")
        precision = recall = f1 = math.nan
    auprc, auroc = _ranking_metrics(is_wrong, 1.0 - label_score)
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auprc": auprc,
        "auroc": auroc,
        "base_rate": float(is_wrong.mean()),
        "n_flagged": int(is_flagged.sum()),
        "n": int(len(is_wrong)),
    }


# --------------------------------------------------------------------------------------------------------------
# The bootstrap
# --------------------------------------------------------------------------------------------------------------


def bootstrap_counts(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(resamples, n) int32: how often each of n examples is drawn in each resample of n with replacement."""
    if n < 1 or resamples < 1:
        raise ValueError(f"need n >= 1 examples and resamples >= 1, got {n} and {resamples}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xB0075]))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.int32)


def weighted_average_precision(is_wrong, suspicion, weights: np.ndarray) -> np.ndarray:
    """(B,) average precision of ranking by ``suspicion`` under each row of ``weights`` (B, n) as sample
    weights; NaN for a row that weighs no wrong label.  Equal to scikit-learn's ``average_precision_score``
    with ``sample_weight`` (ties form one threshold)."""
    is_wrong = _as_flags(is_wrong, "is_wrong")
    suspicion = np.asarray(suspicion, dtype=np.float64)
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    if suspicion.shape != is_wrong.shape or weights.shape[1] != len(is_wrong):
        raise ValueError(f"shapes differ: {is_wrong.shape}, {suspicion.shape}, {weights.shape}")
    order = np.argsort(-suspicion, kind="stable")
    sorted_suspicion = suspicion[order]
    group_ends = np.flatnonzero(np.append(np.diff(sorted_suspicion) != 0, True))  # last index of each tie group
    positive = is_wrong[order].astype(np.float64)
    results = []
    for start in range(0, weights.shape[0], _CHUNK):
        w = weights[start : start + _CHUNK, order]
        true_positives = np.cumsum(w * positive, axis=1)[:, group_ends]
        drawn = np.cumsum(w, axis=1)[:, group_ends]
        precision = np.divide(true_positives, drawn, out=np.zeros_like(drawn), where=drawn > 0)
        steps = np.diff(true_positives, axis=1, prepend=0.0)
        total = true_positives[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            results.append(np.where(total > 0, (steps * precision).sum(axis=1) / total, np.nan))
    return np.concatenate(results)


def bootstrap_auprc(is_wrong, label_score, counts: np.ndarray) -> np.ndarray:
    """(B,) AUPRC of ranking by 1 - ``label_score`` on each resample of ``counts`` (``bootstrap_counts``)."""
    return weighted_average_precision(is_wrong, 1.0 - np.asarray(label_score, dtype=np.float64), counts)


def paired_auprc_difference(
    value_a: float, value_b: float, replicates_a, replicates_b, level: float = 0.95
) -> Estimate:
    """AUPRC of method a minus method b, with the paired bootstrap's SE and percentile interval.

    ``replicates_a`` and ``replicates_b`` must come from the same resamples (one ``bootstrap_counts`` per run);
    resamples where either is NaN are dropped.  NaN estimate when no resample is left or a value is NaN.
    """
    a, b = np.asarray(replicates_a, dtype=np.float64), np.asarray(replicates_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired replicates must come from the same resamples: {a.shape} vs {b.shape}")
    differences = (a - b)[np.isfinite(a) & np.isfinite(b)]
    value = float(value_a) - float(value_b)
    if differences.size < 2 or not np.isfinite(value):
        return Estimate(math.nan, math.nan, math.nan, math.nan, int(differences.size))
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(differences, [tail, 100.0 - tail])
    return Estimate(value, float(differences.std(ddof=1)), float(low), float(high), int(differences.size))

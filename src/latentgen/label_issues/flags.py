"""Which given labels are wrong, by cleanlab's confident learning on out-of-sample probabilities.

Nothing of confident learning is rewritten here: ``cleanlab.filter.find_label_issues`` (its default
``filter_by="prune_by_noise_rate"``) decides the flags and ``cleanlab.rank.get_label_quality_scores``
(``method="self_confidence"``: p(given label | x)) ranks the examples.  The table follows the column names
of cleanlab's ``Datalab.get_issues("label")``: ``is_label_issue``, ``label_score`` (low = likely wrong),
``given_label``, ``predicted_label``; plus where the row comes from: ``index`` (the example's index in the
dataset), ``layer`` and ``probe``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from cleanlab import filter as cleanlab_filter
from cleanlab import rank as cleanlab_rank

from .crossfit import label_codes

ISSUE_COLUMNS = ("index", "layer", "probe", "is_label_issue", "label_score", "given_label", "predicted_label")

# cleanlab's find_label_issues forks one process per physical core by default.  Pipeline jobs get their
# cores from the scheduler, and a 60,000 x 10 problem takes well under a second on one core: one process.
CLEANLAB_JOBS = 1


def check_pred_probs(pred_probs, n_examples: int) -> np.ndarray:
    """(n, K) float64 probabilities, finite, non-negative, rows summing to 1; ValueError otherwise."""
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    if pred_probs.ndim != 2 or pred_probs.shape[0] != n_examples or pred_probs.shape[1] < 2:
        raise ValueError(f"pred_probs must be ({n_examples}, K >= 2), got shape {pred_probs.shape}")
    if not np.isfinite(pred_probs).all() or (pred_probs < 0).any():
        raise ValueError("pred_probs must be finite and non-negative")
    if not np.allclose(pred_probs.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("every row of pred_probs must sum to 1")
    return pred_probs


def dataset_indices(dataset_index, n_examples: int) -> np.ndarray:
    """The examples' dataset indices as int64 (None: 0 .. n - 1, the examples are the dataset's first n)."""
    if dataset_index is None:
        return np.arange(n_examples, dtype=np.int64)
    index = np.asarray(dataset_index, dtype=np.int64)
    if index.shape != (n_examples,):
        raise ValueError(f"dataset_index must have shape ({n_examples},), got {index.shape}")
    return index


def issue_frame(
    is_label_issue,
    label_score,
    given_labels,
    predicted_labels,
    dataset_index,
    layer: str,
    probe: str,
) -> pd.DataFrame:
    """One row per example in the columns of ``ISSUE_COLUMNS``, in the input order."""
    given = np.asarray(given_labels, dtype=np.int64)
    return pd.DataFrame(
        {
            "index": dataset_indices(dataset_index, len(given)),
            "layer": pd.Series([layer] * len(given), dtype="string"),
            "probe": pd.Series([probe] * len(given), dtype="string"),
            "is_label_issue": np.asarray(is_label_issue, dtype=bool),
            "label_score": np.asarray(label_score, dtype=np.float64),
            "given_label": given,
            "predicted_label": np.asarray(predicted_labels, dtype=np.int64),
        },
        columns=list(ISSUE_COLUMNS),
    )


def label_issue_table(given_labels, pred_probs, dataset_index, layer: str, probe: str) -> pd.DataFrame:
    """cleanlab's flags and label-quality scores of ``given_labels`` (codes 0 .. K - 1) under out-of-sample
    ``pred_probs`` (n, K; row i for example i), as a table (``ISSUE_COLUMNS``)."""
    pred_probs = np.asarray(pred_probs, dtype=np.float64)
    labels = label_codes(given_labels, n_classes=pred_probs.shape[1] if pred_probs.ndim == 2 else None)
    pred_probs = check_pred_probs(pred_probs, len(labels))
    is_label_issue = cleanlab_filter.find_label_issues(labels, pred_probs, n_jobs=CLEANLAB_JOBS)
    label_score = cleanlab_rank.get_label_quality_scores(labels, pred_probs, method="self_confidence")
    predicted = np.argmax(pred_probs, axis=1)
    return issue_frame(is_label_issue, label_score, labels, predicted, dataset_index, layer, probe)

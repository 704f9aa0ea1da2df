"""Baselines for finding wrong labels, on the same examples as the probes, in the same table format
(``flags.ISSUE_COLUMNS``) so that ``metrics.label_issue_metrics`` applies to all alike.

* ``network_softmax_issues``: cleanlab on the network's own softmax, in sample, as a user would naively do.
  A network that memorized its noisy labels is confident in them, so this is expected to flag little.
* ``network_disagreement_issues``: flagged when the network's prediction differs from the given label;
  ranked by the softmax probability of the given label.
* ``pixel_logreg_issues``: cleanlab on K-fold out-of-sample probabilities of a logistic regression on the
  input pixels (no network at all), cross-fitted and calibrated as the probes are.
* ``deep_knn_issues``: deep k-NN (Bahri, Jiang & Gupta, "Deep k-NN for Noisy Labels", ICML 2020) on a
  layer's representation: flagged when the given label is not the most frequent label among the example's
  k nearest neighbours (itself excluded); ranked by the fraction of neighbours agreeing with the given label.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from latentgen.probes.cpu_blas import blas_threads

from .calibration import calibrated_probabilities, softmax_rows
from .crossfit import cross_fitted_scores, label_codes
from .flags import issue_frame, label_issue_table

# Pixel logistic regression: pixels standardized (on each training part), then an L2 penalty of C = 0.01 in
# scikit-learn's convention (C · summed log-loss + ½‖W‖²), fixed and never tuned on true labels.  A strong
# penalty, deliberately: under label noise a weakly penalized model on 784 pixels fits the noise; and lbfgs
# for 200 iterations, a baseline's budget rather than full convergence.
PIXEL_LOGREG_C = 0.01
PIXEL_LOGREG_MAX_ITER = 200

# Deep k-NN's k: Bahri et al. report k between 5 and 50 working alike; 10 is small enough for the rarest
# class of a quick-start subset and large enough that one wrong neighbour does not decide a vote.
DEEP_KNN_NEIGHBOURS = 10
# Queries per block of the exact neighbour search: a (block, n) float32 distance matrix, 240 MB at n = 60,000.
NEIGHBOUR_BLOCK = 1024


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def _network_logits(logits, n_labels: int) -> np.ndarray:
    logits = _as_numpy(logits).astype(np.float64)
    if logits.ndim != 2 or logits.shape[0] != n_labels or not np.isfinite(logits).all():
        raise ValueError(f"logits must be finite with shape ({n_labels}, K), got {logits.shape}")
    return logits


def network_softmax_issues(logits, given_labels, dataset_index, layer: str = "output") -> pd.DataFrame:
    """cleanlab on softmax(``logits``) of the network's output (n, K), in sample (no cross-fitting)."""
    labels = label_codes(given_labels)
    pred_probs = softmax_rows(_network_logits(logits, len(labels)))
    return label_issue_table(labels, pred_probs, dataset_index, layer=layer, probe="network_softmax")


def network_disagreement_issues(logits, given_labels, dataset_index, layer: str = "output") -> pd.DataFrame:
    """Flags where argmax ``logits`` ≠ the given label; ``label_score`` = softmax probability of the given label."""
    labels = label_codes(given_labels)
    logits = _network_logits(logits, len(labels))
    labels = label_codes(labels, n_classes=logits.shape[1])
    predicted = np.argmax(logits, axis=1)
    given_probability = softmax_rows(logits)[np.arange(len(labels)), labels]
    return issue_frame(
        predicted != labels, given_probability, labels, predicted, dataset_index, layer, "network_disagreement"
    )


def _pixel_logreg() -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=PIXEL_LOGREG_C, max_iter=PIXEL_LOGREG_MAX_ITER))


def pixel_logreg_pred_probs(images, given_labels, folds: int = 5, seed: int = 0) -> np.ndarray:
    """(n, K) out-of-fold probabilities of a pixel logistic regression (``PIXEL_LOGREG_C``), images (n, ...)
    flattened; its log-probabilities go through the same calibration as the probes' scores."""
    pixels = _as_numpy(images)
    pixels = pixels.reshape(pixels.shape[0], -1).astype(np.float32)
    labels = label_codes(given_labels)
    # One BLAS thread: scikit-learn's small products and line searches run in short parallel regions that wait
    # for each other; on 2 cores shared with other jobs one fit of 320 x 784 took 0.7 s on two threads, 0.02 s
    # on one (the probes' policy, latentgen.probes.cpu_threads, for the same reason).
    with blas_threads(1):
        crossfit = cross_fitted_scores(pixels, labels, _pixel_logreg, folds=folds, seed=seed)
    pred_probs, _ = calibrated_probabilities(crossfit.scores, labels)
    return pred_probs


def pixel_logreg_issues(images, given_labels, dataset_index, folds: int = 5, seed: int = 0) -> pd.DataFrame:
    """cleanlab on ``pixel_logreg_pred_probs``."""
    labels = label_codes(given_labels)
    pred_probs = pixel_logreg_pred_probs(images, labels, folds=folds, seed=seed)
    return label_issue_table(labels, pred_probs, dataset_index, layer="input", probe="pixel_logreg")


def _float32_rows(features) -> torch.Tensor:
    """(n, d) float32 tensor of ``features`` (numpy, float16 or a tensor on any device: left there)."""
    rows = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    return rows.reshape(rows.shape[0], -1).float()


def neighbour_label_counts(features, labels: np.ndarray, k: int) -> np.ndarray:
    """(n, K) how many of each example's k nearest neighbours (Euclidean, itself excluded) carry each label.

    Exact, in torch on the features' device, in blocks of ``NEIGHBOUR_BLOCK`` queries against every row (squared
    distances as ‖x‖² - 2⟨x, y⟩ + ‖y‖²): at 60,000 x 2048 that is 1.5e13 operations, the GPU's work where
    there is one.  Each example is left out of its own neighbourhood (duplicates of it stay in).
    """
    points = _float32_rows(features)
    n = points.shape[0]
    if not 1 <= k < n:
        raise ValueError(f"k must be in 1 .. n - 1 = {n - 1}, got {k}")
    squared = (points * points).sum(dim=1)
    neighbours = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, NEIGHBOUR_BLOCK):
        stop = min(start + NEIGHBOUR_BLOCK, n)
        distances = squared[start:stop, None] - 2.0 * (points[start:stop] @ points.T) + squared[None, :]
        own = torch.arange(stop - start, device=points.device)
        distances[own, own + start] = float("inf")
        neighbours[start:stop] = torch.topk(distances, k, dim=1, largest=False).indices.cpu().numpy()
    n_classes = int(labels.max()) + 1
    counts = np.zeros((n, n_classes), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(n), k), labels[neighbours].ravel()), 1)
    return counts


def deep_knn_issues(features, given_labels, dataset_index, layer: str, k: int = DEEP_KNN_NEIGHBOURS) -> pd.DataFrame:
    """Deep k-NN flags on a layer's ``features`` (n, d).  A tie for the most frequent neighbour label that
    includes the given label is not a disagreement: not flagged, and the predicted label is the given one;
    otherwise the predicted label is the most frequent (ties to the lowest code)."""
    labels = label_codes(given_labels)
    counts = neighbour_label_counts(features, labels, k)
    given_votes = counts[np.arange(len(labels)), labels]
    is_flagged = given_votes < counts.max(axis=1)
    predicted = np.where(is_flagged, np.argmax(counts, axis=1), labels)
    return issue_frame(is_flagged, given_votes / k, labels, predicted, dataset_index, layer, "deep_knn")

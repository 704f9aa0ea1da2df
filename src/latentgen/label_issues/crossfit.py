"""Out-of-fold class scores: every example is scored by a probe that never saw it.

Confident learning (cleanlab) needs p(given label | x) estimated *out of sample*: a probe fitted on an
example has, in part, memorized that example's (possibly wrong) label, and would vouch for it.  So the
examples are split into K stratified folds (stratified by the given label, so every training part holds
every class); for each fold a fresh probe is fitted on the other K - 1 folds and scores the held fold.

Labels are integer codes 0 .. n_classes - 1 (the datasets' labels are), so the score columns are the
classes in code order.  A class with fewer examples than folds cannot be in every training part: that is an
error, raised before any probe is fitted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold


@dataclass(frozen=True)
class CrossFit:
    """Out-of-fold scores and the bookkeeping that proves they are out of fold.

    ``scores``: (n, n_classes) float64, row i the scores of example i (input order) by the probe of fold
    ``fold_of[i]``; ``training_indices[f]``: the example indices (sorted) the probe of fold f was fitted on.
    """

    scores: np.ndarray
    fold_of: np.ndarray
    training_indices: tuple[np.ndarray, ...]


def label_codes(given_labels, n_classes: int | None = None) -> np.ndarray:
    """The labels as a 1-D int64 array of codes 0 .. n_classes - 1; ValueError otherwise."""
    if isinstance(given_labels, torch.Tensor):
        given_labels = given_labels.detach().cpu().numpy()
    labels = np.asarray(given_labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"given labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"given labels must be integer class codes, got dtype {labels.dtype}")
    if labels.min() < 0 or (n_classes is not None and labels.max() >= n_classes):
        upper = "" if n_classes is None else f" and below {n_classes}"
        raise ValueError(f"given labels must be class codes >= 0{upper}; got {labels.min()} .. {labels.max()}")
    return labels.astype(np.int64, copy=False)


def check_enough_per_class(labels: np.ndarray, n_classes: int, folds: int) -> None:
    """Every class must have at least one example per fold, else some training part would lack it."""
    if not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"folds must be an integer >= 2, got {folds!r}")
    counts = np.bincount(labels, minlength=n_classes)
    short = np.flatnonzero(counts < folds)
    if short.size:
        detail = ", ".join(f"class {c}: {counts[c]}" for c in short)
        raise ValueError(f"every class needs at least folds={folds} examples to be cross-fitted ({detail})")


def stratified_fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """(n,) fold index of each example: stratified by label, shuffled by ``seed``."""
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    for fold, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        fold_of[held] = fold
    return fold_of


def take_rows(features, indices: np.ndarray):
    """Rows ``indices`` of a numpy array (memory-mapped too) or a torch tensor (left on its device)."""
    if isinstance(features, torch.Tensor):
        return features[torch.as_tensor(indices, device=features.device)]
    return features[indices]


# The floor of a log-probability that underflowed to -inf (log of the smallest normal float64, about -708).
LOG_PROBABILITY_FLOOR = float(np.log(np.finfo(np.float64).tiny))


def class_scores(probe, features) -> np.ndarray:
    """(n, K) finite class scores of a fitted probe: latentgen's ``predict_scores``; else a scikit-learn
    estimator's (n, K) ``decision_function`` (for a multinomial model its logits: their softmax is its
    probabilities, without the underflow of ``predict_log_proba``, which is -inf wherever a probability rounds to
    0, as a confident pixel logistic regression's do on real MNIST); else its log-probabilities, floored at
    ``LOG_PROBABILITY_FLOOR``."""
    if hasattr(probe, "predict_scores"):
        return np.asarray(probe.predict_scores(features), dtype=np.float64)
    if hasattr(probe, "decision_function"):
        scores = np.asarray(probe.decision_function(features), dtype=np.float64)
        if scores.ndim == 2:
            return scores
    return np.maximum(np.asarray(probe.predict_log_proba(features), dtype=np.float64), LOG_PROBABILITY_FLOOR)


def _check_probe_classes(probe, n_classes: int, fold: int) -> None:
    """The probe's columns must be the classes 0 .. n_classes - 1, in order, or rows would be misread."""
    classes = getattr(probe, "classes_", None)
    if classes is not None and not np.array_equal(np.asarray(classes), np.arange(n_classes)):
        raise ValueError(
            f"the probe of fold {fold} was fitted on classes {np.asarray(classes).tolist()}, "
            f"not on all of 0 .. {n_classes - 1}: a class is missing from its training part"
        )


def cross_fitted_scores(
    features,
    given_labels,
    make_probe: Callable[[], object],
    folds: int = 5,
    seed: int = 0,
) -> CrossFit:
    """Out-of-fold class scores of ``make_probe()`` probes on ``features`` (n, d) with ``given_labels``.

    ``make_probe`` returns a fresh unfitted estimator (``fit(X, y)`` and ``predict_scores``,
    ``predict_log_proba`` or ``decision_function``).  Features may be numpy (any float dtype, memory-mapped)
    or a torch tensor.  The classes are 0 .. max(given_labels); each needs at least ``folds`` examples.
    """
    labels = label_codes(given_labels)
    if len(labels) != features.shape[0]:
        raise ValueError(f"{features.shape[0]} feature rows but {len(labels)} labels")
    n_classes = int(labels.max()) + 1
    check_enough_per_class(labels, n_classes, folds)
    fold_of = stratified_fold_assignment(labels, folds, seed)
    scores = np.empty((len(labels), n_classes), dtype=np.float64)
    training_indices = []
    for fold in range(folds):
        held = np.flatnonzero(fold_of == fold)
        training = np.flatnonzero(fold_of != fold)
        probe = make_probe()
        probe.fit(take_rows(features, training), labels[training])
        _check_probe_classes(probe, n_classes, fold)
        scores[held] = class_scores(probe, take_rows(features, held))
        training_indices.append(training)
    return CrossFit(scores=scores, fold_of=fold_of, training_indices=tuple(training_indices))

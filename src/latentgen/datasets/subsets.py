"""Training subsets for quick runs: the first samples of each class, or a seeded uniform draw."""

from __future__ import annotations

import numpy as np


def subset_indices(
    labels: np.ndarray, per_class: int | None = None, size: int | None = None, seed: int = 0
) -> np.ndarray:
    """Sorted int64 indices of a training subset for quick runs; give exactly one of ``per_class``, ``size``.

    ``per_class``: the first ``per_class`` samples of each class in dataset order (deterministic and
    class-balanced; a class with fewer samples is an error rather than a silently unbalanced subset).
    ``size``: ``size`` indices drawn uniformly without replacement with ``seed``.
    """
    labels = np.asarray(labels)
    if (per_class is None) == (size is None):
        raise ValueError("give exactly one of per_class and size")
    if per_class is not None:
        return _first_per_class(labels, per_class)
    assert size is not None
    if not 0 <= size <= labels.shape[0]:
        raise ValueError(f"size must be in 0..{labels.shape[0]}, got {size}")
    chosen = np.random.default_rng(seed).choice(labels.shape[0], size=size, replace=False)
    return np.sort(chosen).astype(np.int64)


def _first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    if per_class < 0:
        raise ValueError(f"per_class must be non-negative, got {per_class}")
    chosen = []
    for label in np.unique(labels):
        indices = np.flatnonzero(labels == label)
        if indices.size < per_class:
            raise ValueError(f"class {label} has only {indices.size} samples, fewer than per_class={per_class}")
        chosen.append(indices[:per_class])
    return np.sort(np.concatenate(chosen)).astype(np.int64) if chosen else np.empty(0, dtype=np.int64)

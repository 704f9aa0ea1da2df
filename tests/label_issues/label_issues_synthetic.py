"""Synthetic data for the label-issue tests: Gaussian blobs with a known fraction of labels flipped."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoisyBlobs:
    features: np.ndarray  # (n, d) float32
    true_labels: np.ndarray  # (n,) int64, in random order (so row order matters)
    given_labels: np.ndarray  # true labels with a fraction flipped to another class
    is_wrong: np.ndarray  # given != true


def noisy_blobs(n=600, classes=4, dims=20, separation=4.0, flip_rate=0.1, seed=0) -> NoisyBlobs:
    """Class c is N(separation · e_c, I) in ``dims`` dimensions; exactly round(flip_rate · n) labels flipped,
    each to a uniformly drawn *other* class."""
    rng = np.random.default_rng(seed)
    true_labels = rng.integers(0, classes, n)
    features = rng.normal(size=(n, dims))
    features[np.arange(n), true_labels] += separation
    flipped = rng.choice(n, size=round(flip_rate * n), replace=False)
    given_labels = true_labels.copy()
    given_labels[flipped] = (true_labels[flipped] + rng.integers(1, classes, len(flipped))) % classes
    return NoisyBlobs(features.astype(np.float32), true_labels, given_labels, given_labels != true_labels)

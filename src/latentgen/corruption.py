"""Label corruption: a pure function of (labels, rate, number of classes, seed).

With probability ``rate`` a label is replaced by a class drawn uniformly from *all* classes, so it
may stay the same (the paper's definition).  One uniform draw per sample decides whether it is
corrupted (``draw < rate``) and a second, independent draw per sample gives its replacement class.
Both draws depend only on the seed, so for a fixed seed the corrupted sets are nested across rates
(20 % ⊂ 40 % ⊂ ...) and a sample that is corrupted at two rates gets the same new label at both.
"""

from __future__ import annotations

import numpy as np


def _draws(n: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The two per-sample random draws, fixed by the seed alone (not by the rate)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1ABE1]))
    corrupt_draw = rng.random(n)
    replacement = rng.integers(0, num_classes, size=n)
    return corrupt_draw, replacement


def corrupt_labels(
    labels: np.ndarray, rate: float, num_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(noisy_labels, flipped_mask)``.

    ``rate`` is a fraction in [0, 1].  ``flipped_mask`` marks the samples whose label was
    *re-drawn*; about ``1/num_classes`` of those keep their original label, so the fraction of labels
    that actually changed is about ``rate * (1 - 1/num_classes)``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"corruption rate must be in [0, 1], got {rate}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    corrupt_draw, replacement = _draws(labels.size, num_classes, seed)
    flipped_mask = corrupt_draw < rate
    noisy = np.where(flipped_mask, replacement, labels).astype(np.int64)
    return noisy, flipped_mask


def expected_correct_fraction(rate: float, num_classes: int) -> float:
    """Expected fraction of labels still correct after corruption at ``rate`` (a fraction): 1 - rate (1 - 1/K).

    A re-drawn label is right with probability 1/K. Figures 13 and 14 draw it as the level a model that fits
    the corrupted labels only where they are correct would reach on them.
    """
    return 1.0 - rate * (1.0 - 1.0 / num_classes)

"""The held-out slice of a run's training set: drawn once, stratified by the corrupted labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HoldoutSplit:
    """Indices into the training set: ``fit`` (probes are fitted here) and ``held_out`` (they are ranked here)."""

    fit: np.ndarray
    held_out: np.ndarray

    @property
    def fraction(self) -> float:
        return len(self.held_out) / (len(self.fit) + len(self.held_out))


def stratified_holdout(noisy_labels: np.ndarray, fraction: float, seed: int) -> HoldoutSplit:
    """Each corrupted-label class gives round(fraction · n_c) random samples of its own to the slice.

    Per-class rounding keeps the slice's class proportions those of the corrupted labels; with fraction < 0.5
    every class keeps at least one sample to fit on.  A pure function of (labels, fraction, seed): scoring and
    ``latentgen repair`` draw the same slice for a run (both pass the run's seed).  ``fraction`` 0 holds nothing
    out (the paper's setting: probes see the whole training set, and nothing is selected).
    """
    labels = np.asarray(noisy_labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0.0 <= fraction < 0.5:
        raise ValueError(f"the held-out fraction must be in [0, 0.5), got {fraction}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x401D0]))
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held_out.append(rng.permutation(members)[: int(np.floor(fraction * len(members) + 0.5))])
    held = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
    fit = np.setdiff1d(np.arange(labels.shape[0]), held, assume_unique=True)
    return HoldoutSplit(fit=fit.astype(np.int64), held_out=held.astype(np.int64))

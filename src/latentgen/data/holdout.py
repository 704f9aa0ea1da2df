"""The held-out slice of a run's training set: withheld from the network's training and from every probe fit.

Drawn once, before training, from the label table's ``holdout_draw`` column (``latentgen.data.labels``): within
each class of the run's *corrupted* labels (the only labels a user of a noisily trained model has), the
round(fraction · n_c) samples with the smallest draws.  Per-class rounding keeps the slice's class proportions those
of the corrupted labels; with fraction < 0.5 every class keeps at least one sample to fit on.  ``fraction`` 0
withholds nothing (the authors' setting: the network and the probes see the whole training set, and nothing is
selected).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HoldoutSplit", "holdout_split", "stratified_holdout"]


@dataclass(frozen=True)
class HoldoutSplit:
    """Indices into the training set: ``fit`` (the network and the probes are fitted here) and ``held_out``
    (candidates are ranked here; nothing is ever fitted on it)."""

    fit: np.ndarray
    held_out: np.ndarray

    @property
    def fraction(self) -> float:
        return len(self.held_out) / (len(self.fit) + len(self.held_out))

    def record(self) -> dict[str, Any]:
        """What run.json says of the slice the network never saw: its size and a digest of its indices."""
        digest = hashlib.sha256(np.ascontiguousarray(self.held_out, dtype=np.int64).tobytes()).hexdigest()
        return {"n": int(len(self.held_out)), "fraction": self.fraction, "indices_sha256": digest}

    def check(self, recorded: dict[str, Any] | None, where: str) -> None:
        """Refuse to rank on a slice other than the one the network was kept from (``recorded``: run.json's)."""
        if recorded is None or recorded["indices_sha256"] != self.record()["indices_sha256"]:
            raise ValueError(
                f"{where}: the held-out slice drawn now ({len(self.held_out)} samples) is not the one training "
                f"withheld ({recorded}); the run was trained with another scoring.holdout or label table: retrain it"
            )


def holdout_split(noisy_labels: np.ndarray, draws: np.ndarray, fraction: float) -> HoldoutSplit:
    """The slice of ``fraction`` of the samples, stratified by ``noisy_labels``: per class, the smallest ``draws``."""
    labels, draws = np.asarray(noisy_labels), np.asarray(draws)
    if labels.ndim != 1 or draws.shape != labels.shape:
        raise ValueError(f"labels {labels.shape} and draws {draws.shape} must be one-dimensional and of one length")
    if not 0.0 <= fraction < 0.5:
        raise ValueError(f"the held-out fraction must be in [0, 0.5), got {fraction}")
    held_out = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        by_draw = members[np.argsort(draws[members], kind="stable")]
        held_out.append(by_draw[: int(np.floor(fraction * len(members) + 0.5))])
    held = np.sort(np.concatenate(held_out)) if held_out else np.zeros(0, dtype=np.int64)
    fit = np.setdiff1d(np.arange(labels.shape[0]), held, assume_unique=True)
    return HoldoutSplit(fit=fit.astype(np.int64), held_out=held.astype(np.int64))


def stratified_holdout(noisy_labels: np.ndarray, fraction: float, seed: int) -> HoldoutSplit:
    """``holdout_split`` with draws made from ``seed``: for data that has no label table (tests, a user's arrays)."""
    draws = np.random.default_rng(np.random.SeedSequence([int(seed), 0x401D0])).random(np.asarray(noisy_labels).size)
    return holdout_split(noisy_labels, draws, fraction)

"""The labels a run trains on, in one place: label corruption, training subsets and the label table.

Corruption is a pure function of (labels, rate, number of classes, seed).  With probability ``rate`` a label
is replaced by a class drawn uniformly from *all* classes, so it may stay the same (the paper's definition).
One uniform draw per sample decides whether it is corrupted (``draw < rate``) and a second, independent draw
per sample gives its replacement class.  Both draws depend only on the seed, so for a fixed seed the
corrupted sets are nested across rates (20 % ⊂ 40 % ⊂ ...) and a sample that is corrupted at two rates gets
the same new label at both.

The authors' draw (``label_draw: authors``, :func:`authors_corrupt_labels`) is the other choice: numpy's legacy
generator re-seeded for every rate, as every loader of theirs does (Dynamics_during_training_DNN
``MASC_during_training/CNN_code/mlp_mnist.py`` and MASC_DNN ``MASC/cnn_create.py``, ``corrupt_labels``):
``np.random.seed(seed)``, ``mask = np.random.rand(N) <= c``, ``labels[mask] = np.random.choice(K, mask.sum())``
(their Tiny ImageNet loader, ``TinyImagenetCorrupted``, compares with ``<`` and draws nothing at c = 0; the two
comparisons differ only where a draw equals c exactly).  The draw runs over the *full* training set in its
prepared order, and a training subset then takes its rows, so a subset's labels are the full set's.  Across
rates its masks nest too (the same ``rand`` draws against a larger c), but the new labels do not: the
``choice`` draw follows the mask, so its k-th value goes to the k-th corrupted sample, and a sample corrupted
at two rates gets a fresh, independent label at each (a rate's labels equal another's only where both keep
the true label).  The nested draw (``label_draw: nested``, the default) gives such a sample one label at every
rate.

Subsets for quick runs: the first samples of each class, or a seeded uniform draw.

The label table of (dataset, seed) holds one row per sample the runs use -- the training subset and the test
subset -- with the true label and one corrupted-label column for *every* integer rate ``c0`` .. ``c100``.
Writing all 101 rates (uint8, a few MB) makes the table independent of which rates a config asks for, so
adding a corruption rate never rewrites it and never reruns existing runs; the nested corruption makes every
column consistent with every other.  Test rows are never corrupted (their ``c*`` columns equal ``true``).
The labels stage (rule ``labels``) writes it: :func:`write_label_table`.

The table also holds ``holdout_draw``, one uniform number per training sample from the table's seed: the held-out
slice of a run at rate c (``latentgen.data.holdout.holdout_split``) is, within each class of the rate's corrupted
labels, the samples with the smallest draws.  So the slice is drawn once, before training, stratified by
corrupted label, nested across fractions, and every stage that needs it (training leaves it out, scoring ranks
on it, the VeLPIC edit and ``latentgen repair`` fit without it) reads the same rows from this table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from latentgen.data import datasets
from latentgen.common.fileio import write_parquet


# --------------------------------------------------------------------------------------------------
# Corruption
# --------------------------------------------------------------------------------------------------


def _draws(n: int, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The two per-sample random draws, fixed by the seed alone (not by the rate)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x1ABE1]))
    corrupt_draw = rng.random(n)
    replacement = rng.integers(0, num_classes, size=n)
    return corrupt_draw, replacement


def corrupt_labels(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(noisy_labels, flipped_mask)``.

    ``rate`` is a fraction in [0, 1].  ``flipped_mask`` marks the samples whose label was
    *re-drawn*; about ``1/num_classes`` of those keep their original label, so the fraction of labels
    that actually changed is about ``rate * (1 - 1/num_classes)``.
    """
    labels = _checked(labels, rate, num_classes)
    corrupt_draw, replacement = _draws(labels.size, num_classes, seed)
    flipped_mask = corrupt_draw < rate
    noisy = np.where(flipped_mask, replacement, labels).astype(np.int64)
    return noisy, flipped_mask


# the config's label_draw: nested = latentgen's own draw, authors = numpy's legacy sequence as the authors drew it
LABEL_DRAWS = ("nested", "authors")
# datasets whose authors' loader marks a sample corrupted with rand < c (and draws nothing at c = 0); the others: <= c
AUTHORS_STRICT_DATASETS = frozenset({"tiny_imagenet"})


def authors_corrupt_labels(
    labels: np.ndarray, rate: float, num_classes: int, seed: int, strict: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The authors' corruption of ``labels`` at ``rate`` (a fraction): ``(noisy_labels, flipped_mask)``.

    numpy's legacy global-state sequence, as their loaders draw it: seed, one ``rand`` per sample compared with the
    rate (``<=``, or ``<`` with ``strict``: their Tiny ImageNet loader, which draws nothing at rate 0), then one
    ``choice(K)`` per marked sample, in sample order.  A private ``RandomState`` gives the same numbers as
    ``np.random.seed`` without touching numpy's global state.
    """
    labels = _checked(labels, rate, num_classes)
    if strict and rate <= 0:
        return labels.astype(np.int64), np.zeros(labels.size, dtype=bool)
    state = np.random.RandomState(seed)
    draw = state.rand(labels.size)
    flipped_mask = draw < rate if strict else draw <= rate
    noisy = labels.astype(np.int64)
    noisy[flipped_mask] = state.choice(num_classes, int(flipped_mask.sum()))
    return noisy, flipped_mask


def draw_labels(
    labels: np.ndarray, rate: float, num_classes: int, seed: int, draw: str = "nested", dataset: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy_labels, flipped_mask)`` by the configured ``label_draw``; ``dataset`` picks the authors' comparison."""
    if draw == "nested":
        return corrupt_labels(labels, rate, num_classes, seed)
    if draw == "authors":
        return authors_corrupt_labels(labels, rate, num_classes, seed, strict=dataset in AUTHORS_STRICT_DATASETS)
    raise ValueError(f"unknown label_draw {draw!r}; choose one of {list(LABEL_DRAWS)}")


def label_table_name(seed: int | str, draw: str = "nested") -> str:
    """The label table's file name under ``labels/<dataset>/``: ``s<seed>.parquet`` for the nested draw (the name
    it always had), ``s<seed>-authors.parquet`` for the authors' draw, so the two never share a file."""
    if draw not in LABEL_DRAWS:
        raise ValueError(f"unknown label_draw {draw!r}; choose one of {list(LABEL_DRAWS)}")
    return f"s{seed}.parquet" if draw == "nested" else f"s{seed}-{draw}.parquet"


def _checked(labels: np.ndarray, rate: float, num_classes: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be one-dimensional, got shape {labels.shape}")
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"corruption rate must be in [0, 1], got {rate}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return labels


def expected_correct_fraction(rate: float, num_classes: int) -> float:
    """Expected fraction of labels still correct after corruption at ``rate`` (a fraction): 1 - rate (1 - 1/K).

    A re-drawn label is right with probability 1/K. Figures 13 and 14 draw it as the level a model that fits
    the corrupted labels only where they are correct would reach on them.
    """
    return 1.0 - rate * (1.0 - 1.0 / num_classes)


# --------------------------------------------------------------------------------------------------
# Subsets
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# The label table
# --------------------------------------------------------------------------------------------------


LABEL_RATES = range(0, 101)  # every rate the label table has a column for
HOLDOUT_DRAW = "holdout_draw"


def rate_column(rate: int) -> str:
    return f"c{int(rate)}"


def select_indices(labels: np.ndarray, subset: dict[str, Any] | None) -> np.ndarray:
    """All indices, or the subset the config asks for (``{per_class: N}`` or ``{size: N, seed: S}``)."""
    if not subset:
        return np.arange(labels.shape[0], dtype=np.int64)
    return subset_indices(
        labels, per_class=subset.get("per_class"), size=subset.get("size"), seed=subset.get("seed", 0)
    )


def holdout_draws(n: int, seed: int) -> np.ndarray:
    """The held-out slice's per-sample draw, fixed by the label seed alone (not by the rate or the fraction)."""
    return np.random.default_rng(np.random.SeedSequence([seed, 0x401D0])).random(n)


def make_label_table(
    prepared: datasets.PreparedDataset,
    seed: int,
    train_subset: dict | None = None,
    test_subset: dict | None = None,
    draw: str = "nested",
) -> pd.DataFrame:
    """The label table; ``draw`` is the config's ``label_draw``.  The authors' draw runs over the full training set
    (their loaders draw over all of it), then the subset takes its rows; the nested draw runs over the subset."""
    if draw not in LABEL_DRAWS:
        raise ValueError(f"unknown label_draw {draw!r}; choose one of {list(LABEL_DRAWS)}")
    train_index = select_indices(prepared.train_labels, train_subset)
    test_index = select_indices(prepared.test_labels, test_subset)
    all_train = np.asarray(prepared.train_labels)
    true_train = all_train[train_index]
    true_test = np.asarray(prepared.test_labels)[test_index]
    columns: dict[str, Any] = {
        "split": ["train"] * len(train_index) + ["test"] * len(test_index),
        "index": np.concatenate([train_index, test_index]),
        "true": np.concatenate([true_train, true_test]).astype(np.int64),
    }
    label_dtype = np.uint8 if prepared.num_classes <= 256 else np.int16
    for rate in LABEL_RATES:
        if draw == "nested":
            noisy, _ = corrupt_labels(true_train, rate / 100.0, prepared.num_classes, seed)
        else:  # rate / 100.0 is the very float of the authors' literals (0.2, 0.8, ...): both are correctly rounded
            full, _ = draw_labels(all_train, rate / 100.0, prepared.num_classes, seed, draw, prepared.meta.get("name"))
            noisy = full[train_index]
        columns[rate_column(rate)] = np.concatenate([noisy, true_test]).astype(label_dtype)
    # test rows are never held out (NaN): the slice is a part of the training set
    columns[HOLDOUT_DRAW] = np.concatenate([holdout_draws(len(train_index), seed), np.full(len(test_index), np.nan)])
    return pd.DataFrame(columns)


def write_label_table(
    prepared_dir: Path | str,
    out: Path | str,
    seed: int,
    train_subset: dict | None,
    test_subset: dict | None,
    draw: str = "nested",
) -> None:
    prepared = datasets.load(Path(prepared_dir), verify=True, mmap=True)
    table = make_label_table(prepared, seed, train_subset, test_subset, draw)
    write_parquet(
        table,
        out,
        metadata={
            "dataset": prepared.meta["name"],
            "dataset_content_sha256": prepared.meta.get("content_sha256"),
            "seed": seed,
            "label_draw": draw,
            "train_subset": train_subset,
            "test_subset": test_subset,
            "num_classes": prepared.num_classes,
            "n_train": int((table.split == "train").sum()),
            "n_test": int((table.split == "test").sum()),
        },
    )

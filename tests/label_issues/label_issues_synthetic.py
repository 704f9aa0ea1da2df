"""Synthetic data for the label-issue tests: Gaussian blobs with a known fraction of labels flipped."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


# --------------------------------------------------------------------------------------------------------------
# A tiny pipeline run: a prepared MNIST-shaped dataset, its label table, a trained MLP and a score table
# --------------------------------------------------------------------------------------------------------------

TINY_TRAIN_PER_CLASS, TINY_TEST = 40, 100
TINY_EPOCHS = [0, 1, 2, 3]


def _class_images(labels: np.ndarray, rng) -> np.ndarray:
    """28x28 uint8 images: a fixed random pattern per class plus noise, so an MLP learns the classes in an epoch."""
    templates = rng.random((10, 1, 28, 28)) > 0.7
    noise = rng.normal(0.0, 40.0, size=(len(labels), 1, 28, 28))
    return np.clip(templates[labels] * 160.0 + 40.0 + noise, 0, 255).astype(np.uint8)


def tiny_prepared_mnist(root: Path) -> Path:
    """A prepared dataset named mnist (400 training, 100 test images) in ``root / "mnist"``."""
    from latentgen.data import datasets

    rng = np.random.default_rng(0)
    train_labels = rng.permutation(np.repeat(np.arange(10), TINY_TRAIN_PER_CLASS))
    test_labels = rng.integers(0, 10, TINY_TEST)
    raw = datasets.RawDataset(
        train_images=_class_images(train_labels, rng),
        train_labels=train_labels,
        test_images=_class_images(test_labels, rng),
        test_labels=test_labels,
        classes=[str(c) for c in range(10)],
    )
    datasets.write_prepared(root / "mnist", datasets.dataset_info("mnist"), raw, digest="not pinned")
    return root / "mnist"


TINY_PAIR_CONFIG = {
    "model": "mlp",
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "batch_size": 32,
    "max_epochs": TINY_EPOCHS[-1],
    "stop_accuracy": 1.0,
    "normalize": "half",
    "checkpoints": {"early_every": 1, "early_until": TINY_EPOCHS[-1], "late_every": 1, "extra_epochs": []},
}


@dataclass(frozen=True)
class TinyRun:
    prepared_dir: Path
    labels: Path
    run_dir: Path
    corruption: int

    @property
    def run_json(self) -> Path:
        return self.run_dir / "run.json"

    @property
    def checkpoints(self) -> list[str]:
        return [str(self.run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt") for epoch in TINY_EPOCHS]


def tiny_run(root: Path, prepared_dir: Path, corruption: int, holdout: float = 0.1) -> TinyRun:
    """The pipeline's label table and train stage on the tiny dataset: results/runs/mlp-mnist/c{rate}/s0."""
    from latentgen import pipeline
    from latentgen.data.labels import write_label_table

    labels = root / "results" / "labels" / "mnist" / "s0.parquet"
    if not labels.exists():
        write_label_table(prepared_dir, labels, 0, None, None)
    run_dir = root / "results" / "runs" / "mlp-mnist" / f"c{corruption}" / "s0"
    pipeline.train(prepared_dir, labels, run_dir, "mlp-mnist", corruption, 0, TINY_PAIR_CONFIG, "cpu", holdout=holdout)
    return TinyRun(prepared_dir, labels, run_dir, corruption)


def score_table(holdout_curve: dict[int, float] | None, test_curve: dict[int, float], selected: str | None):
    """A run's score table as the score stage writes it, reduced to what the label-issue stage reads: the model's
    held-out (if any) and test accuracy per epoch and the held-out choice (``selected``, e.g. "ncm:fc2")."""
    import pandas as pd

    rows = [
        {"epoch": e, "layer": "output", "probe": "model", "split": "test", "accuracy": a} for e, a in test_curve.items()
    ]
    for epoch, accuracy in (holdout_curve or {}).items():
        rows.append(
            {"epoch": epoch, "layer": "output", "probe": "model", "split": "holdout_corrupted", "accuracy": accuracy}
        )
        if selected:
            rows.append(
                {"epoch": epoch, "layer": selected, "probe": "selected", "split": "holdout_corrupted", "accuracy": 0.5}
            )
    return pd.DataFrame(rows)

"""What determines a run's result: its settings, and how its inputs are scaled (the trainer's and the workflow's
shared vocabulary)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import torch

from latentgen.training.schedule import Schedule

__all__ = [
    "IMAGENET_MEAN_STD",
    "NORMALIZATIONS",
    "STOP_RULES",
    "TrainSettings",
    "channel_statistics",
    "input_statistics",
]


NORMALIZATIONS = ("unit", "half", "per_channel", "imagenet")


STOP_RULES = ("running", "full_pass")


IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines a run's result (the device does not, on purpose)."""

    model: str
    optimizer: str  # "sgd" or "adam"
    lr: float
    batch_size: int
    max_epochs: int
    stop_accuracy: float  # fraction of corrupted training labels fitted that ends training
    seed: int
    momentum: float = 0.0
    # input scaling (see input_statistics): "unit" pixels / 255 (the paper's text), "half" [-1, 1] (the
    # authors' Normalize(0.5, 0.5)), "per_channel" training-set mean/std, "imagenet" ImageNet mean/std
    normalize: str = "half"
    shuffle: bool = False  # the authors' corrupted-label loader keeps the dataset order
    stop_on: str = "running"  # "running": the epoch's minibatch accuracy (authors); "full_pass": eval after it
    schedule: Schedule = field(default_factory=Schedule)
    eval_batch_size: int = 1000
    dropout: float = 0.0  # probability on the fully connected layers (latentgen.training.models._dense), training only
    # A run that starts from given weights at epoch start_epoch instead of an initialization at epoch 0 (a VeLPIC
    # edit of another run's checkpoint, latentgen.training.editing); start_weights is their sha256, so new weights
    # restart it.
    start_epoch: int = 0
    start_weights: str | None = None
    # the fraction of the training set withheld from training (latentgen.data.holdout): the trainer is given the
    # rest; recorded here so that another slice retrains the run and run.json says what the network never saw
    holdout: float = 0.0
    # a run trained without some training examples besides the slice (the examples flagged as label issues,
    # latentgen.label_issues.retraining): the sha256 of their sorted dataset indices, so other flags retrain it
    excluded: str | None = None

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.stop_on not in STOP_RULES:
            raise ValueError(f"stop_on must be one of {STOP_RULES}, got {self.stop_on!r}")
        if (self.start_epoch > 0) != (self.start_weights is not None):
            raise ValueError("start_epoch > 0 and start_weights (their sha256) go together")
        if self.start_epoch >= self.max_epochs:
            raise ValueError(f"start_epoch {self.start_epoch} must lie before max_epochs {self.max_epochs}")

    def fingerprint(self) -> str:
        blob = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def channel_statistics(images_uint8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of [0, 1]-scaled images, accumulated in float64 to stay exact."""
    scaled = images_uint8.astype(np.float64) / 255.0
    axes = (0, 2, 3)
    return torch.tensor(scaled.mean(axis=axes)), torch.tensor(scaled.std(axis=axes))


def input_statistics(normalize: str, images_uint8: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (mean, std) applied to [0, 1]-scaled inputs, for each ``normalize`` choice."""
    channels = images_uint8.shape[1]
    if normalize == "per_channel":
        return channel_statistics(images_uint8)
    if normalize == "imagenet":
        if channels != 3:
            raise ValueError(f"normalize 'imagenet' needs RGB images, these have {channels} channel(s)")
        return tuple(torch.tensor(values, dtype=torch.float64) for values in IMAGENET_MEAN_STD)  # type: ignore
    mean, std = {"unit": (0.0, 1.0), "half": (0.5, 0.5)}[normalize]
    return torch.full((channels,), mean, dtype=torch.float64), torch.full((channels,), std, dtype=torch.float64)

"""The arrays a run trains and is scored on, and how its uint8 images become floats."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from latentgen.data.holdout import HoldoutSplit, holdout_split


@dataclass
class TrainData:
    """uint8 images (N, C, H, W) and int64 labels; the training set carries both label versions."""

    train_images: np.ndarray
    train_noisy: np.ndarray
    train_true: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int
    # the label table's per-sample draw of the held-out slice (latentgen.data.holdout); None: no table (a
    # user's arrays), nothing can be withheld from a network that is already trained
    holdout_draw: np.ndarray | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    def holdout(self, fraction: float) -> HoldoutSplit:
        """The run's held-out slice at ``fraction`` (0: nothing held out)."""
        if self.holdout_draw is None:
            if fraction:
                raise ValueError("these arrays carry no held-out draw (no label table): nothing can be held out")
            return holdout_split(self.train_noisy, np.zeros(len(self.train_noisy)), 0.0)
        return holdout_split(self.train_noisy, self.holdout_draw, fraction)

    def training_part(self, split: HoldoutSplit) -> TrainData:
        """The same data without the held-out slice: what the network trains on."""
        return dataclasses.replace(
            self,
            train_images=self.train_images[split.fit],
            train_noisy=self.train_noisy[split.fit],
            train_true=self.train_true[split.fit],
            holdout_draw=None,
        )


def to_unit_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; the model normalizes further itself."""
    return images_uint8.float().div_(255.0)

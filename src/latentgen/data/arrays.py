"""The arrays a run trains and is scored on, and how its uint8 images become floats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class TrainData:
    """uint8 images (N, C, H, W) and int64 labels; the training set carries both label versions."""

    train_images: np.ndarray
    train_noisy: np.ndarray
    train_true: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]


def to_unit_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [0, 1]; the model normalizes further itself."""
    return images_uint8.float().div_(255.0)

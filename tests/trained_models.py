"""Models trained in memory for tests and benchmarks: the trainer's steps without its files (not part of the
package: no workflow stage trains this way)."""

from __future__ import annotations

from typing import Any

import torch

from latentgen.data.arrays import TrainData
from latentgen.training.models import ProbedNetwork
from latentgen.training.settings import TrainSettings
from latentgen.training.trainer import DeviceData, build_model, build_optimizer, train_one_epoch


def paper_sgd_settings(model: str, max_epochs: int, seed: int, **rest: Any) -> TrainSettings:
    """The paper's optimizer (SGD, lr 1e-3, momentum 0.9, batch 32) for ``max_epochs`` epochs, with no early
    stop (stop accuracy 1.0); ``rest``: the other settings (normalize, shuffle, ...)."""
    return TrainSettings(
        model=model,
        optimizer="sgd",
        lr=1e-3,
        momentum=0.9,
        batch_size=32,
        max_epochs=max_epochs,
        stop_accuracy=1.0,
        seed=seed,
        **rest,
    )


def train_in_memory(
    data: TrainData, settings: TrainSettings, epochs: range, device: torch.device | str = "cpu"
) -> ProbedNetwork:
    """The model after ``epochs`` of ``train_one_epoch`` (their numbers seed the batch orders), in eval
    mode: the steps of ``train`` without evaluation, checkpoints or files, for benchmarks and tests."""
    model = build_model(settings, data).to(device)
    optimizer = build_optimizer(settings, model)
    on_device = DeviceData.from_arrays(data, torch.device(device))
    for epoch in epochs:
        train_one_epoch(model, optimizer, on_device, settings, epoch, progress=False)
    return model.eval()

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from latentgen.models import ProbedNetwork
    from latentgen.training import TrainData, TrainSettings

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules next to the tests

from slurm_cluster import slurm  # noqa: E402,F401  (the session fixture of a real test SLURM, for every module)


@pytest.fixture(scope="session")
def prepared_datasets(tmp_path_factory) -> Path:
    """Real MNIST and Fashion-MNIST from the offline sources, prepared once per test session."""
    from latentgen import datasets

    root = tmp_path_factory.mktemp("datasets")
    for name in ("mnist", "fashion_mnist"):
        datasets.prepare(name, root / name, source="auto")
    return root


@dataclass(frozen=True, eq=False)
class TrainedMNISTMLP:
    """The paper's MLP trained on real MNIST with corrupted labels; ``data`` holds every image and label."""

    trained: ProbedNetwork  # use model(): a test may change its copy without touching the other tests'
    data: TrainData  # all 60,000 / 10,000 images, the 40 % corrupted labels it was trained on
    settings: TrainSettings

    def model(self) -> ProbedNetwork:
        """A copy of the trained model of its own, in eval mode."""
        return copy.deepcopy(self.trained).eval()


@pytest.fixture(scope="session")
def mnist_mlp(prepared_datasets) -> TrainedMNISTMLP:
    """The paper's MLP after one epoch at the paper's settings (SGD lr 1e-3, momentum 0.9, batch 32) on all
    60,000 real MNIST training images with 40 % corrupted labels, trained once per test session and shared by
    every test of a trained MNIST MLP (activations, probes, transfer): training it is the costliest fixture.
    Epoch 1's batch order, so the model is the epoch-1 checkpoint ``latentgen.training.train`` writes."""
    from latentgen import datasets
    from latentgen.corruption import corrupt_labels
    from latentgen.probes import torch_threads
    from latentgen.training import TrainData, TrainSettings, train_in_memory

    mnist = datasets.load(prepared_datasets / "mnist")
    true = np.asarray(mnist.train_labels)
    noisy, _ = corrupt_labels(true, 0.4, 10, seed=0)
    data = TrainData(np.asarray(mnist.train_images), noisy, true, np.asarray(mnist.test_images),
                     np.asarray(mnist.test_labels), 10)
    settings = TrainSettings(model="mlp", optimizer="sgd", lr=1e-3, momentum=0.9, batch_size=32, max_epochs=1,
                             stop_accuracy=1.0, seed=0, normalize="unit", shuffle=True)
    with torch_threads(1):  # batch-32 steps are small: on 2 busy cores one thread ran 1.3-3.6x faster than two
        model = train_in_memory(data, settings, epochs=range(1, 2))
    return TrainedMNISTMLP(model, data, settings)

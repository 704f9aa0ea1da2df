from __future__ import annotations

import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from latentgen.training.models import ProbedNetwork
    from latentgen.data.arrays import TrainData
    from latentgen.training.settings import TrainSettings

sys.path.insert(0, str(Path(__file__).parent))  # the helper modules next to the tests

from slurm_cluster import slurm  # noqa: E402,F401  (the session fixture of a real test SLURM, for every module)

# `make test` runs the suite on two pytest-xdist workers (`-n 2`), scheduled by module (the scheduler below):
# * a module's tests stay on one worker, and with them its module-scoped fixtures (several are trainings or
#   whole workflows) instead of being computed on both;
# * the modules using the real test SLURM share one unit of work: one test cluster runs on a machine at a
#   time (tests/slurm_cluster.py), held by the worker that started it until its session ends;
# * units are handed out in collection order (`--no-loadscope-reorder`), and the modules holding slow tests
#   are collected first, so that a long module started last does not leave the other worker idle.
# (xdist's own `--dist loadgroup` cannot do this with pytest 9: it renames node ids through an attribute
# pytest 9 no longer reads.)
SLURM_MODULES = ("tests/test_slurm_harness.py", "tests/test_slurm_workflow.py")
SLURM_UNIT = "slurm"


def _module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = _module_of(nodeid)
            return SLURM_UNIT if module in SLURM_MODULES else module

    return ModuleScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "slurm" in getattr(item, "fixturenames", ()) and _module_of(item.nodeid) not in SLURM_MODULES:
            raise pytest.UsageError(f"{item.nodeid} uses the test SLURM: add its module to conftest's SLURM_MODULES")
    slow_modules = {_module_of(item.nodeid) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: _module_of(item.nodeid) not in slow_modules)  # stable: the order is kept otherwise


@pytest.fixture(scope="session")
def prepared_datasets(tmp_path_factory) -> Path:
    """Real MNIST and Fashion-MNIST from the offline sources, prepared once per test session."""
    from latentgen.data import datasets

    root = tmp_path_factory.mktemp("datasets")
    for name in ("mnist", "fashion_mnist"):
        datasets.prepare(name, root / name, source="auto")
    return root


RANDOM_CIFAR10_TRAIN, RANDOM_CIFAR10_TEST, RANDOM_CIFAR10_CLASSES = 400, 100, 10


@pytest.fixture(scope="session")
def random_cifar10_dir(tmp_path_factory) -> Path:
    """A prepared 10-class dataset of random 3x32x32 images (CIFAR-10's form, whose content is not pinned)."""
    from latentgen.data import datasets

    rng = np.random.default_rng(0)
    raw = datasets.RawDataset(
        train_images=rng.integers(0, 256, size=(RANDOM_CIFAR10_TRAIN, 3, 32, 32), dtype=np.uint8),
        train_labels=np.arange(RANDOM_CIFAR10_TRAIN) % RANDOM_CIFAR10_CLASSES,  # 40 per class, in a known order
        test_images=rng.integers(0, 256, size=(RANDOM_CIFAR10_TEST, 3, 32, 32), dtype=np.uint8),
        test_labels=rng.integers(0, RANDOM_CIFAR10_CLASSES, size=RANDOM_CIFAR10_TEST),
        classes=list(datasets.CIFAR10_CLASSES),
    )
    out = tmp_path_factory.mktemp("prepared") / "cifar10"
    datasets.write_prepared(out, datasets.dataset_info("cifar10"), raw, digest="not pinned")
    return out


@pytest.fixture(scope="session")
def random_cifar10(random_cifar10_dir):
    from latentgen.data import datasets

    return datasets.load(random_cifar10_dir)


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
def mnist_mlp(prepared_datasets, tmp_path_factory) -> TrainedMNISTMLP:
    """The paper's MLP after one epoch at the paper's settings (SGD lr 1e-3, momentum 0.9, batch 32) on all
    60,000 real MNIST training images with 40 % corrupted labels, trained once per test session and shared by
    every test of a trained MNIST MLP (activations, probes, transfer): training it is the costliest fixture.
    Epoch 1's batch order, so the model is the epoch-1 checkpoint ``latentgen.training.trainer.train`` writes."""
    from latentgen.data import datasets
    from latentgen.data.labels import corrupt_labels
    from latentgen.probes.cpu_threads import torch_threads
    from latentgen.data.arrays import TrainData
    from latentgen.training.trainer import build_model
    from trained_models import paper_sgd_settings, train_in_memory

    mnist = datasets.load(prepared_datasets / "mnist")
    true = np.asarray(mnist.train_labels)
    noisy, _ = corrupt_labels(true, 0.4, 10, seed=0)
    data = TrainData(
        np.asarray(mnist.train_images), noisy, true, np.asarray(mnist.test_images), np.asarray(mnist.test_labels), 10
    )
    settings = paper_sgd_settings("mlp", max_epochs=1, seed=0, normalize="unit", shuffle=True)

    def train():
        with torch_threads(1):  # batch-32 steps are small: on 2 busy cores one thread ran 1.3-3.6x faster than two
            return train_in_memory(data, settings, epochs=range(1, 2))

    model = _trained_once_per_run(tmp_path_factory, "mnist_mlp", train, lambda: build_model(settings, data))
    return TrainedMNISTMLP(model, data, settings)


def _trained_once_per_run(tmp_path_factory, name: str, train, untrained):
    """``train()``'s model, trained by the first pytest-xdist worker that asks and loaded by the others
    into ``untrained()`` from the run's shared temporary directory (xdist's documented pattern: a file lock
    in the parent of the workers' base temporary directories).  Without xdist, trained here."""
    import os

    import torch
    from filelock import FileLock

    if "PYTEST_XDIST_WORKER" not in os.environ:
        return train()
    shared = tmp_path_factory.getbasetemp().parent / f"{name}.pt"
    with FileLock(f"{shared}.lock"):
        if not shared.exists():
            model = train()
            torch.save(model.state_dict(), shared)
            return model
    model = untrained()
    model.load_state_dict(torch.load(shared, weights_only=True))
    return model.eval()

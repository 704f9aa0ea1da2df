"""Activation files: float16 on disk gives the same probe predictions as float32 (>= 99.9 % at paper scale)."""

import numpy as np
import pytest
import torch

from latentgen import datasets
from latentgen.activations import extract_activations, read_activations
from latentgen.corruption import corrupt_labels
from latentgen.probes import MASC, VeLPIC
from latentgen.training import Schedule, TrainData, TrainSettings, train
from latentgen.fileio import load_torch
from latentgen.models import build


def _trained_mlp(mnist, index: np.ndarray, test_count: int, epochs: int, lr: float, run_dir):
    """The paper's MLP trained on ``mnist``'s rows ``index`` with 40 % corrupted labels (SGD, batch 32)."""
    true = np.asarray(mnist.train_labels[index])
    noisy, _ = corrupt_labels(true, 0.4, 10, seed=0)
    data = TrainData(np.asarray(mnist.train_images[index]), noisy, true,
                     np.asarray(mnist.test_images[:test_count]), np.asarray(mnist.test_labels[:test_count]), 10)
    settings = TrainSettings(model="mlp", optimizer="sgd", lr=lr, momentum=0.9, batch_size=32, max_epochs=epochs,
                             stop_accuracy=1.0, seed=0, schedule=Schedule(epochs, epochs, epochs),
                             normalize="unit", shuffle=True)  # the runs the float16 bars were measured on
    train(data, settings, run_dir)
    model = build("mlp", (1, 28, 28), 10)
    model.load_state_dict(load_torch(run_dir / "checkpoints" / f"epoch_{epochs:04d}.pt"))
    return model, data


@pytest.fixture(scope="module")
def trained_mlp(prepared_datasets, tmp_path_factory):
    """The paper's MLP trained 2 epochs (lr 1e-2) on 2,000 real MNIST images, 2,000 test images."""
    mnist = datasets.load(prepared_datasets / "mnist", mmap=True)
    index = datasets.subset_indices(mnist.train_labels, per_class=200)
    return _trained_mlp(mnist, index, 2000, epochs=2, lr=0.01, run_dir=tmp_path_factory.mktemp("run"))


def _both_dtypes(model, data, directory) -> dict:
    """The checkpoint's activation files written as float16 and as float32, read back."""
    activations = {}
    for dtype in ("float16", "float32"):
        extract_activations(model, data.train_images, data.test_images, directory / dtype, dtype=dtype)
        activations[dtype] = read_activations(directory / dtype)
    return activations


@pytest.fixture(scope="module")
def paper_scale_activations(prepared_datasets, tmp_path_factory):
    """The paper's MLP after one epoch at the paper's settings (lr 1e-3) on all 60,000 / 10,000 MNIST images."""
    mnist = datasets.load(prepared_datasets / "mnist", mmap=True)
    index = np.arange(len(mnist.train_labels))
    model, data = _trained_mlp(mnist, index, len(mnist.test_labels), epochs=1, lr=1e-3,
                               run_dir=tmp_path_factory.mktemp("paper_scale_run"))
    return _both_dtypes(model, data, tmp_path_factory.mktemp("paper_scale_activations")), data


@pytest.fixture(scope="module")
def small_run_activations(trained_mlp, tmp_path_factory):
    model, data = trained_mlp
    return _both_dtypes(model, data, tmp_path_factory.mktemp("small_run_activations")), data


def _float16_agreement(activations: dict, data, probe) -> dict[str, float]:
    """Per layer: the share of test predictions that are the same from float16 and float32 activation files."""
    predictions = {
        dtype: {layer: probe().fit(acts.train[layer], data.train_noisy).predict(acts.test[layer]) for layer in acts.train}
        for dtype, acts in activations.items()
    }
    return {layer: float(np.mean(predictions["float16"][layer] == expected))
            for layer, expected in predictions["float32"].items()}


# The bar (>= 99.9 %) at the paper's scale. Measured on this fixture: MASC 99.98 / 99.97 / 100 / 99.99 % (fc1..fc4,
# of 10,000 test predictions), VeLPIC 99.99 / 100 / 100 / 100 %; on bench_probes.py's checkpoint (another batch
# order) MASC 99.94 % on fc1 (6 differ), 99.99-100 % elsewhere.
@pytest.mark.parametrize("probe", [MASC, VeLPIC])
def test_float16_activations_give_the_same_predictions_at_paper_scale(paper_scale_activations, probe):
    for layer, agreement in _float16_agreement(*paper_scale_activations, probe).items():
        assert agreement >= 0.999, f"{probe.__name__} on {layer}: {agreement:.4%} identical"


# A stress case: 200 images per class after 2 epochs, MASC's class subspaces hold 54-79 of fc1's 128 dimensions
# and the median margin between the two best cosines is 0.0027, so float16 rounding (relative 2.4e-4) decides
# near-ties. Measured: VeLPIC 100 % identical on every layer; MASC 99.65 % on fc1 (7 of 2,000; one class also keeps
# one component fewer), 100 % on the other layers.
@pytest.mark.parametrize("probe,required", [(MASC, 0.995), (VeLPIC, 0.999)])
def test_float16_activations_give_nearly_the_same_predictions_on_a_small_run(small_run_activations, probe, required):
    for layer, agreement in _float16_agreement(*small_run_activations, probe).items():
        assert agreement >= required, f"{probe.__name__} on {layer}: {agreement:.4%} identical"


def test_extraction_matches_a_direct_forward_pass(trained_mlp, tmp_path):
    model, data = trained_mlp
    extract_activations(model, data.train_images, data.test_images, tmp_path / "acts", dtype="float32")
    acts = read_activations(tmp_path / "acts")
    with torch.no_grad():
        features, logits = model.eval().features_and_logits(torch.from_numpy(data.test_images[:100]).float() / 255)
    assert np.allclose(acts.test["fc4"][:100], features["fc4"].numpy(), atol=1e-5)
    assert np.array_equal(acts.test_model_pred[:100], logits.argmax(1).numpy())

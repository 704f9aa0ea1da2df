import pytest
import torch

from latentgen.training.models import build, probe_layers_of

CASES = [
    ("mlp", (1, 28, 28), 10, {"fc1": 128, "fc2": 512, "fc3": 2048, "fc4": 2048}),
    ("mlp", (3, 32, 32), 10, {"fc1": 128, "fc2": 512, "fc3": 2048, "fc4": 2048}),
    ("cnn", (1, 28, 28), 10, {"flat": 576, "fc1": 250, "fc2": 250, "fc3": 250}),
    ("cnn", (3, 32, 32), 10, {"flat": 1024, "fc1": 250, "fc2": 250, "fc3": 250}),
    ("alexnet", (3, 64, 64), 200, {"flat": 256, "fc1": 4096, "fc2": 4096}),
]


@pytest.mark.parametrize("name,shape,classes,widths", CASES)
def test_probed_layers_and_widths(name, shape, classes, widths):
    torch.manual_seed(0)
    model = build(name, shape, classes).eval()
    x = torch.rand(3, *shape)
    features = model.features(x)
    assert model.probe_layers == list(widths) == probe_layers_of(name)
    assert {k: v.shape for k, v in features.items()} == {k: (3, w) for k, w in widths.items()}
    assert model(x).shape == (3, classes)
    assert isinstance(model.head, torch.nn.Linear)
    assert model.head.in_features == widths[model.probe_layers[-1]]


@pytest.mark.parametrize("name,shape,classes,widths", CASES)
def test_features_come_from_the_same_pass_as_logits(name, shape, classes, widths):
    """The head applied to the last probed activation reproduces forward(): one consistent pass."""
    torch.manual_seed(0)
    model = build(name, shape, classes).eval()
    x = torch.rand(2, *shape)
    activations, logits = model.features_and_logits(x)
    last = activations[model.probe_layers[-1]]
    assert torch.allclose(model.head(last), logits, atol=1e-5)
    assert torch.allclose(model(x), logits, atol=1e-5)
    fc_layers = [n for n in model.probe_layers if n.startswith("fc")]
    assert all((activations[n] >= 0).all() for n in fc_layers), "fc activations are post-ReLU"


def test_cnn_head_has_no_bias_like_the_original():
    assert build("cnn", (1, 28, 28), 10).head.bias is None


def test_normalization_is_part_of_the_state_dict():
    model = build("cnn", (3, 32, 32), 10)
    model.set_input_normalization(torch.tensor([0.5, 0.4, 0.3]), torch.tensor([0.2, 0.2, 0.2]))
    state = model.state_dict()
    assert torch.allclose(state["input_mean"], torch.tensor([0.5, 0.4, 0.3]))
    fresh = build("cnn", (3, 32, 32), 10)
    fresh.load_state_dict(state)
    x = torch.rand(2, 3, 32, 32)
    assert torch.allclose(fresh(x), model(x))


def test_unknown_model_and_too_small_input_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build("resnet", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="too small for the alexnet"):
        build("alexnet", (1, 28, 28), 10)


# ---------------------------------------------------------------------------------------------------------
# Dropout (the authors' TMLR_Dropout models): after every fully connected ReLU, training only
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,shape,classes,widths", CASES[::2])
def test_dropout_is_active_in_training_only(name, shape, classes, widths):
    torch.manual_seed(0)
    model = build(name, shape, classes, dropout=0.5)
    x = torch.rand(4, *shape)
    model.train()
    assert not torch.equal(model(x), model(x)), "dropout draws a new mask each training pass"
    model.eval()
    plain = build(name, shape, classes).eval()
    plain.load_state_dict(model.state_dict())
    assert torch.equal(model(x), model(x))
    assert torch.equal(model(x), plain(x)), "in eval mode dropout is the identity"
    assert all(torch.equal(a, b) for a, b in zip(model.features(x).values(), plain.features(x).values()))


@pytest.mark.parametrize("name,shape,classes,widths", CASES[::2])
def test_no_dropout_leaves_the_model_as_before(name, shape, classes, widths):
    """dropout=0 adds no module: the keys (so old checkpoints load) and the initialization are unchanged."""
    torch.manual_seed(3)
    before = build(name, shape, classes)
    torch.manual_seed(3)
    with_zero = build(name, shape, classes, dropout=0.0)
    torch.manual_seed(3)
    with_dropout = build(name, shape, classes, dropout=0.2)
    assert not any(isinstance(m, torch.nn.Dropout) for m in with_zero.modules())
    assert list(with_zero.state_dict()) == list(before.state_dict()) == list(with_dropout.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(before.state_dict().values(), with_dropout.state_dict().values()))
    dropouts = [m.p for m in with_dropout.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.2] * sum(layer.startswith("fc") for layer in with_dropout.probe_layers)


def test_dropout_out_of_range_is_refused():
    with pytest.raises(ValueError, match="dropout must be in"):
        build("mlp", (1, 28, 28), 10, dropout=1.0)

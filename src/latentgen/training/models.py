"""The paper's networks: MLP, CNN, AlexNet and the published version's ResNet-18, each naming the layers
that are probed.

Every model takes images scaled to [0, 1] of shape (batch, C, H, W) and normalizes them itself with
buffers stored in its state dict (MLP: identity, i.e. pixels / 255 as the paper; CNN and AlexNet:
per-channel mean/std set from the training set).  That keeps a checkpoint self-contained: scoring
needs no knowledge of how training normalized its inputs.

Interface shared by all models:
  * ``forward(x)`` -> logits (batch, num_classes)
  * ``probe_layers`` -> the probed layer names, in order (the last one feeds ``head``)
  * ``features(x)`` -> {name: (batch, width)} activations from the same single forward pass
  * ``head`` -> the pre-softmax ``nn.Linear``
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from latentgen.common.fileio import load_torch
from latentgen.training.model_names import MODEL_NAMES, PROBE_LAYERS, probe_layers_of  # noqa: F401 (re-exported)


def normalize_input(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-channel standardization of (batch, C, H, W) images: every model's first step (and a transfer model's)."""
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


class ProbedNetwork(nn.Module):
    """Base class: a body of named stages, each producing one probed activation, then a linear head."""

    name: str  # the key of latentgen.training.models.build
    probe_layers: list[str]
    head: nn.Linear

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        # What ``build`` needs to make this network again (a saved transfer model records them).
        self.input_shape = tuple(int(s) for s in input_shape)
        self.num_classes = int(num_classes)
        self.dropout = float(dropout)
        self.register_buffer("input_mean", torch.zeros(self.input_shape[0]))
        self.register_buffer("input_std", torch.ones(self.input_shape[0]))

    def set_input_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Per-channel statistics of the [0, 1]-scaled training images."""
        self.input_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.input_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return normalize_input(x, self.input_mean, self.input_std)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        """(probed name, module mapping the previous activation to this one), in order."""
        raise NotImplementedError

    def _run(self, x: torch.Tensor, keep: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        activations: dict[str, torch.Tensor] = {}
        h = self._normalize(x)
        for name, stage in self._stages():
            h = stage(h)
            if keep:
                activations[name] = h.flatten(1)
        return self.head(h.flatten(1)), activations

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, keep=False)[0]

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._run(x, keep=True)[1]

    def features_and_logits(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Both from one pass: scoring needs the activations and the model's own prediction."""
        logits, activations = self._run(x, keep=True)
        return activations, logits


def _dense(n_in: int, n_out: int, dropout: float = 0.0) -> nn.Sequential:
    """A fully connected layer and its ReLU, then dropout with probability ``dropout`` (active in training only).

    Dropout follows the ReLU, as in the authors' dropout models (the seed repository's
    ``TMLR_Dropout/code_required/cnn_create.py``: ``NgnCnn(dropout=0.2)`` after each fully connected ReLU,
    the commented-out ``mlp_drop`` likewise).  In eval mode it is the identity, so the probed activation
    is the post-ReLU one they probe.  With ``dropout == 0`` no module is added: the state-dict keys and
    the random-number stream of a model without dropout stay exactly as they were.
    """
    layers = [nn.Linear(n_in, n_out), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))  # parameter-free: the checkpoint's keys do not change
    return nn.Sequential(*layers)


class MLP(ProbedNetwork):
    """784 (or C*H*W) -> 128 -> 512 -> 2048 -> 2048 -> classes, ReLU; probed fc1..fc4 (post-ReLU)."""

    name = "mlp"
    widths = (128, 512, 2048, 2048)
    probe_layers = list(PROBE_LAYERS["mlp"])

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(input_shape, num_classes, dropout)
        n_in = input_shape[0] * input_shape[1] * input_shape[2]
        sizes = (n_in, *self.widths)
        layers = [_dense(a, b, dropout) for a, b in zip(sizes, sizes[1:])]
        layers[0] = nn.Sequential(nn.Flatten(), *layers[0])  # images (B, C, H, W) -> (B, C*H*W)
        self.fc = nn.ModuleList(layers)
        self.head = nn.Linear(self.widths[-1], num_classes)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        return list(zip(self.probe_layers, self.fc))


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    """Two 3x3 convolutions (padding 1) and a 2x2 max pool with stride 2, as the original code."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2, stride=2),
    )


def _flat_width(body: nn.Module, input_shape: tuple[int, int, int], model: str) -> int:
    """Width of the flattened body output, found by a dry run so any input size works."""
    with torch.no_grad():
        try:
            out = body(torch.zeros(1, *input_shape))
        except RuntimeError as error:
            raise ValueError(f"input shape {input_shape} is too small for the {model} model: {error}") from None
    return out.shape[1]


class CNN(ProbedNetwork):
    """Three blocks of two 3x3 convs (16, 32, 64) + 2x2/2 pool, then 3 x FC 250, bias-free head.

    Probed: ``flat`` (pooled conv output, flattened; 576 for 28x28, 1024 for 32x32) and fc1..fc3.
    Pooling stride 2 follows the authors' code; the appendix's "stride 1" would give a 40,000-wide
    flatten for MNIST, inconsistent with the flatten sizes the code and figures use.
    """

    name = "cnn"
    probe_layers = list(PROBE_LAYERS["cnn"])

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(input_shape, num_classes, dropout)
        self.body = nn.Sequential(
            _conv_block(input_shape[0], 16), _conv_block(16, 32), _conv_block(32, 64), nn.Flatten()
        )
        flat = _flat_width(self.body, input_shape, "cnn")
        self.fc = nn.ModuleList([_dense(flat, 250, dropout), _dense(250, 250, dropout), _dense(250, 250, dropout)])
        self.head = nn.Linear(250, num_classes, bias=False)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        return list(zip(self.probe_layers, [self.body, *self.fc]))


class AlexNet(ProbedNetwork):
    """AlexNet for 64x64 Tiny ImageNet as in the authors' code; probed flat (256), fc1, fc2 (4096)."""

    name = "alexnet"
    probe_layers = list(PROBE_LAYERS["alexnet"])

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        super().__init__(input_shape, num_classes, dropout)
        self.body = nn.Sequential(
            nn.Conv2d(input_shape[0], 64, 11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2),
            nn.Flatten(),
        )
        flat = _flat_width(self.body, input_shape, "alexnet")
        self.fc = nn.ModuleList([_dense(flat, 4096, dropout), _dense(4096, 4096, dropout)])
        self.head = nn.Linear(4096, num_classes)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        return list(zip(self.probe_layers, [self.body, *self.fc]))


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions without bias, each followed by batch norm, the first by a ReLU; the input (through a
    1x1 convolution and batch norm where the shape changes) is added before the last ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()  # the identity: no parameters
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


def _resnet_stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    """Two basic blocks; the first changes the width and (stride 2) halves the resolution."""
    return nn.Sequential(_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1))


# Each network's feature extractor (torch.fx GraphModule), built on first use.  Kept outside the module so
# that it is no submodule (no state-dict keys), is not copied by ``copy.deepcopy`` and goes with the network.
_FEATURE_EXTRACTORS: weakref.WeakKeyDictionary[nn.Module, nn.Module] = weakref.WeakKeyDictionary()


class ResNet18(ProbedNetwork):
    """The CIFAR variant of ResNet-18 in the authors' code (``ResNet18`` in simranketha/MASC_DNN,
    ``Compare_experiments/Modern_backbones/MASC/cnn_create.py``, the network of the seed repository's
    ``TMLR_ResNet18_during_training``): a 3x3 stride-1 convolution without bias (64), batch norm, ReLU and a
    3x3 max pool with stride 2 (the stem); four stages of two basic blocks (64, 128, 256, 512; stride 1, 2, 2,
    2); global average pooling; ``Linear(512, classes)`` with bias.

    Probed (flattened, as the authors' ``.view(-1)`` of each return node): ``stem`` (their ``maxpool``),
    ``layer1`` .. ``layer4`` (their ``layerN.1.relu_1``, each stage's output) and ``pool`` (their ``view``,
    the 512 averages the classifier reads).  Widths for 32x32 inputs: 16,384, 16,384, 8,192, 4,096, 2,048,
    512.

    ``features`` reads them through torchvision's ``create_feature_extractor`` (named return nodes, the
    authors' tool) traced over the stage modules; the input normalization runs before the traced graph, so
    torch.fx bakes no buffer into a constant (``latentgen.scoring.transfer``'s docstring) and the state dict is the
    network's own.  ``forward`` and ``LayerTransfer`` run the same stage modules in a plain loop; the two
    paths give the same numbers (tests/training/test_resnet.py).  Batch norm makes the activations depend on the
    mode: extraction always runs in eval mode (``latentgen.scoring.activations``), with the running statistics.
    """

    name = "resnet18"
    probe_layers = list(PROBE_LAYERS["resnet18"])

    def __init__(self, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> None:
        if dropout:
            raise ValueError(
                "the resnet18 model has no fully connected hidden layer to apply dropout to; train it without dropout"
            )
        super().__init__(input_shape, num_classes, dropout)
        self.stem = nn.Sequential(
            nn.Conv2d(input_shape[0], 64, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        self.layer1 = _resnet_stage(64, 64, 1)
        self.layer2 = _resnet_stage(64, 128, 2)
        self.layer3 = _resnet_stage(128, 256, 2)
        self.layer4 = _resnet_stage(256, 512, 2)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(512, num_classes)

    def _stages(self) -> list[tuple[str, nn.Module]]:
        return [
            ("stem", self.stem),
            ("layer1", self.layer1),
            ("layer2", self.layer2),
            ("layer3", self.layer3),
            ("layer4", self.layer4),
            ("pool", self.pool),
        ]

    def feature_extractor(self) -> nn.Module:
        """The stage modules and the head traced by ``create_feature_extractor``: normalized images -> {probed
        layer: its (unflattened) output, "head": the logits}.  Built once per network; it shares the
        network's modules (weights, batch-norm buffers and train/eval mode included)."""
        extractor = _FEATURE_EXTRACTORS.get(self)
        if extractor is None:
            from torchvision.models.feature_extraction import create_feature_extractor  # torch.fx: only when used

            modes = {module: module.training for module in self.modules()}
            body = nn.Sequential(OrderedDict([*self._stages(), ("head", self.head)]))
            nodes = {name: name for name in [*self.probe_layers, "head"]}
            extractor = create_feature_extractor(body, return_nodes=nodes)
            for module, training in modes.items():  # tracing switches modes; leave the network as it was
                module.training = training
            _FEATURE_EXTRACTORS[self] = extractor
        return extractor

    def features_and_logits(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        outputs = self.feature_extractor()(self._normalize(x))
        logits = outputs.pop("head")
        return {name: outputs[name].flatten(1) for name in self.probe_layers}, logits

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.features_and_logits(x)[0]


_BUILDERS = {"mlp": MLP, "cnn": CNN, "alexnet": AlexNet, "resnet18": ResNet18}


def build(name: str, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0) -> ProbedNetwork:
    """The named model for images of ``input_shape`` = (C, H, W); ``dropout`` on its fully connected layers."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(_BUILDERS)}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return _BUILDERS[name](tuple(int(s) for s in input_shape), int(num_classes), float(dropout))


def load_checkpoint(
    checkpoint: Path | str,
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    dropout: float = 0.0,
    advice: str = "Delete it and rerun the job that wrote it.",
) -> ProbedNetwork:
    """The named model with a checkpoint's weights: the one way a stage loads a trained model.

    The file goes through ``fileio.load_torch`` (``weights_only=True``: nothing in it is executed; a damaged
    file raises DamagedFileError naming it, with ``advice``); weights that do not fit the model raise torch's
    RuntimeError.  The model is returned in the mode ``build`` gives it (training): callers set ``eval()``.
    """
    return model_from_state(
        load_torch(checkpoint, what="checkpoint", advice=advice), name, input_shape, num_classes, dropout=dropout
    )


def model_from_state(
    state: dict[str, torch.Tensor], name: str, input_shape: tuple[int, int, int], num_classes: int, dropout: float = 0.0
) -> ProbedNetwork:
    """The named model with the weights of ``state`` (a state dict already loaded: :func:`load_checkpoint`)."""
    model = build(name, input_shape, num_classes, dropout=dropout)
    model.load_state_dict(state)
    return model

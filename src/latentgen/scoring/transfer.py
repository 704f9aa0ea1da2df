"""The VeLPIC weight intervention: a model whose pre-softmax layer *is* the VeLPIC probe.

VeLPIC fitted on the last probed layer (the activations h that feed ``model.head``) predicts
argmax_c ⟨v_c, h⟩.  A linear head computes W h + b; with W = the stacked class vectors (K, d) and
b = 0 its logits are exactly those projections, so the modified network predicts what the probe
predicts, for every input, through an ordinary forward pass (the paper's Section 7).

Any probed layer L can be transferred the same way (``LayerTransfer``): the network's stages up to L
followed by a bias-free linear head of L's VeLPIC vectors.  It is a plain ``nn.Module``; saved with
``save_layer_transfer`` (a state dict plus what rebuilds it: model name, input shape, classes, layer)
it reloads with ``torch.load(weights_only=True)`` (``load_layer_transfer``).  For the last layer it
computes what ``apply_velpic`` computes.

Why a truncation of the stage list and not torchvision's ``create_feature_extractor``: the models
read their input-normalization buffers as attributes, which torch.fx does not proxy
(``Tracer.proxy_buffer_attributes`` is False), so an extractor traced over a whole model bakes them into
``_tensor_constantN`` attributes that it adds to the *original* model, numbered by how often it was
traced before; a saved state dict then does not load into a freshly traced network.  The stage list
(``_stages()``, the very modules ``forward`` runs) truncates without tracing.  (ResNet-18 extracts its
activations with ``create_feature_extractor``, traced over its stage modules only, the normalization
applied before the graph, which avoids the constants; ``LayerTransfer`` truncates the same modules.)
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from latentgen.common.fileio import DamagedFileError, load_torch, save_torch
from latentgen.training.models import ProbedNetwork, build, normalize_input
from latentgen.probes.paper import VeLPIC
from latentgen.training.editing import class_vectors


# --------------------------------------------------------------------------------------------------
# Transfer from any probed layer
# --------------------------------------------------------------------------------------------------

TRANSFER_FORMAT = "latentgen.layer_transfer/1"


class LayerTransfer(nn.Module):
    """The stages of a network up to probed layer ``layer``, then a bias-free linear head (K, width).

    ``forward`` runs exactly the operations of ``ProbedNetwork.features`` up to ``layer`` (same
    normalization, same modules), so the activations it feeds its head are those VeLPIC was fitted on.
    """

    def __init__(self, network: ProbedNetwork, layer: str) -> None:
        super().__init__()
        names = [name for name, _ in network._stages()]
        if layer not in names:
            raise ValueError(f"{layer!r} is not a probed layer of the {network.name} model; choose one of {names}")
        kept = [stage for _, stage in network._stages()[: names.index(layer) + 1]]
        self.model_name, self.input_shape, self.num_classes, self.layer = (
            network.name,
            network.input_shape,
            network.num_classes,
            layer,
        )
        self.register_buffer("input_mean", network.input_mean.detach().clone())
        self.register_buffer("input_std", network.input_std.detach().clone())
        self.stages = nn.ModuleList(copy.deepcopy(kept))  # the original network is left untouched
        self.head = nn.Linear(_layer_width(self), network.num_classes, bias=False)

    def layer_features(self, x: torch.Tensor) -> torch.Tensor:
        """The activations of ``layer`` (batch, width), as ``ProbedNetwork.features`` returns them."""
        h = normalize_input(x, self.input_mean, self.input_std)
        for stage in self.stages:
            h = stage(h)
        return h.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.layer_features(x))

    def rebuild_info(self) -> dict:
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "num_classes": self.num_classes,
            "layer": self.layer,
        }


@torch.no_grad()
def _layer_width(transfer: LayerTransfer) -> int:
    """The width of ``transfer.layer`` from one pass in eval mode: a training-mode pass would move the
    batch-norm running statistics (ResNet-18) of the copied stages, and with them every later prediction."""
    probe_input = torch.zeros(1, *transfer.input_shape, device=transfer.input_mean.device)
    training = transfer.training
    try:
        return int(transfer.eval().layer_features(probe_input).shape[1])
    finally:
        transfer.train(training)


def transfer_from_layer(network: ProbedNetwork, velpic: VeLPIC, layer: str) -> LayerTransfer:
    """The network up to ``layer`` with a head of ``velpic``'s class vectors (fitted on ``layer``, labels 0..K-1).

    Predicts argmax_c ⟨v_c, h_layer(x)⟩, VeLPIC's decision, for every input.  ``network`` is not modified.
    """
    if not isinstance(network, ProbedNetwork):
        raise TypeError(f"expected a latentgen.training.models network, got {type(network).__name__}")
    transferred = LayerTransfer(network, layer).to(network.input_mean.device)
    vectors = class_vectors(velpic, transferred.head)
    with torch.no_grad():
        transferred.head.weight.copy_(torch.from_numpy(vectors).to(transferred.head.weight))  # logit c = ⟨v_c, h⟩
    return transferred


def save_layer_transfer(transferred: LayerTransfer, path) -> str:
    """Write ``transferred`` atomically as plain tensors and values; returns the file's sha256."""
    state = {name: tensor.detach().cpu() for name, tensor in transferred.state_dict().items()}
    return save_torch({"format": TRANSFER_FORMAT, **transferred.rebuild_info(), "state_dict": state}, path)


def load_layer_transfer(path) -> LayerTransfer:
    """A saved transfer model, rebuilt from its record (``torch.load(weights_only=True)``: nothing is executed)."""
    record = load_torch(path, what="transfer model")
    if not isinstance(record, dict) or record.get("format") != TRANSFER_FORMAT:
        raise DamagedFileError(
            path,
            "transfer model",
            f"It holds no {TRANSFER_FORMAT} record; write it with "
            "latentgen.scoring.transfer.save_layer_transfer or `latentgen repair`.",
        )
    network = build(record["model"], tuple(record["input_shape"]), record["num_classes"])
    transferred = LayerTransfer(network, record["layer"])
    transferred.load_state_dict(record["state_dict"])
    return transferred.eval()

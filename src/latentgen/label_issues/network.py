"""A checkpoint's probed-layer activations and logits for every training image, from one forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from latentgen.common.fileio import tensor_over
from latentgen.data.arrays import to_unit_float
from latentgen.training.models import ProbedNetwork


@dataclass(frozen=True)
class NetworkOutputs:
    """``features``: layer -> (n, d) float32 tensor (on the device the pass ran on); ``logits``: (n, K) float32."""

    features: dict[str, torch.Tensor]
    logits: np.ndarray


def check_layers(model: ProbedNetwork, layers: list[str]) -> list[str]:
    """``layers`` if each is a probed layer of ``model``; ValueError naming the allowed ones otherwise."""
    unknown = [layer for layer in layers if layer not in model.probe_layers]
    if not layers or unknown:
        raise ValueError(
            f"layers {unknown or layers} are not probed layers of the {model.name} model; "
            f"allowed: {list(model.probe_layers)}"
        )
    return list(layers)


@torch.no_grad()
def network_outputs(
    model: ProbedNetwork, images: np.ndarray, layers: list[str], batch_size: int, device: torch.device
) -> NetworkOutputs:
    """Activations of ``layers`` and the logits of uint8 ``images``, in eval mode, in batches: the features
    latentgen.training.editing.last_layer_activations reads, for every probed layer, and the head's output
    from the same pass."""
    layers = check_layers(model, layers)
    model = model.to(device).eval()
    parts: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    logits = []
    for start in range(0, images.shape[0], batch_size):
        batch = tensor_over(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        activations, batch_logits = model.features_and_logits(to_unit_float(batch))
        for layer in layers:
            parts[layer].append(activations[layer].float())
        logits.append(batch_logits.float().cpu())
    features = {layer: torch.cat(chunks) for layer, chunks in parts.items()}
    return NetworkOutputs(features=features, logits=torch.cat(logits).numpy())

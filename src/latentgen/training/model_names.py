"""Model names and their probed layers, without importing torch.

The workflow reads these when it is parsed (config checks, layer lists), and on a cluster every job
parses the workflow again: importing torch there would cost each job its start-up time and ~0.5 GB.
``latentgen.training.models`` uses the same lists, so they cannot drift apart.
"""

PROBE_LAYERS: dict[str, tuple[str, ...]] = {
    "mlp": ("fc1", "fc2", "fc3", "fc4"),
    "cnn": ("flat", "fc1", "fc2", "fc3"),
    "alexnet": ("flat", "fc1", "fc2"),
    # the stem (after its max pool), each stage's output, and the average pool before the classifier
    "resnet18": ("stem", "layer1", "layer2", "layer3", "layer4", "pool"),
}
MODEL_NAMES = tuple(PROBE_LAYERS)

# Probed layers, input side first, as the models define them; callers pass the configured order.
DEFAULT_LAYER_ORDER: dict[str, list[str]] = {model: list(layers) for model, layers in PROBE_LAYERS.items()}


def probe_layers_of(name: str) -> list[str]:
    """Probed layer names of a model, in order (the last one feeds the pre-softmax layer)."""
    if name not in PROBE_LAYERS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(PROBE_LAYERS)}")
    return list(PROBE_LAYERS[name])


def model_layer_order(model: str, layers_present: list[str], layer_order: dict[str, list[str]] | None) -> list[str]:
    """The configured order for ``model``, then any layer found in the data but not configured (sorted), so that
    a layer missing from the configuration is drawn rather than silently dropped."""
    configured = (layer_order or {}).get(model) or DEFAULT_LAYER_ORDER.get(model, [])
    extra = sorted(set(layers_present) - set(configured))
    return list(configured) + extra

"""Model names and their probed layers, without importing torch.

The workflow reads these when it is parsed (config checks, layer lists), and on a cluster every job
parses the workflow again: importing torch there would cost each job its start-up time and ~0.5 GB.
``latentgen.models`` uses the same lists, so they cannot drift apart.
"""

PROBE_LAYERS: dict[str, tuple[str, ...]] = {
    "mlp": ("fc1", "fc2", "fc3", "fc4"),
    "cnn": ("flat", "fc1", "fc2", "fc3"),
    "alexnet": ("flat", "fc1", "fc2"),
    # the stem (after its max pool), each stage's output, and the average pool before the classifier
    "resnet18": ("stem", "layer1", "layer2", "layer3", "layer4", "pool"),
}
MODEL_NAMES = tuple(PROBE_LAYERS)


def probe_layers_of(name: str) -> list[str]:
    """Probed layer names of a model, in order (the last one feeds the pre-softmax layer)."""
    if name not in PROBE_LAYERS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(PROBE_LAYERS)}")
    return list(PROBE_LAYERS[name])

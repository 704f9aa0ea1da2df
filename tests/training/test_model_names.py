"""Model names and probed layers without torch (latentgen.training.model_names): one list for the models, the workflow's
config check, the schema and the claims."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from latentgen.training import models
from latentgen.config import SCHEMA_PATH
from latentgen.training.model_names import MODEL_NAMES, PROBE_LAYERS, probe_layers_of

SRC = Path(__file__).resolve().parents[2] / "src"


def test_importing_it_does_not_import_torch():
    """The workflow reads it at every parse (on a cluster: in every job); torch would cost each one seconds."""
    code = "import sys, latentgen.training.model_names; print('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_the_names_are_the_models_that_can_be_built_and_the_schemas():
    assert MODEL_NAMES == tuple(PROBE_LAYERS) and len(set(MODEL_NAMES)) == len(MODEL_NAMES)
    assert set(models._BUILDERS) == set(MODEL_NAMES)
    for name, model_class in models._BUILDERS.items():  # the classes' own lists (no model is built)
        assert model_class.probe_layers == list(PROBE_LAYERS[name]), name
    pair_schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["pairs"]["patternProperties"]
    (entry,) = pair_schema.values()
    assert entry["properties"]["model"]["enum"] == list(MODEL_NAMES)


def test_probe_layers_of_gives_a_copy_in_order_and_names_the_choices():
    layers = probe_layers_of("cnn")
    assert layers == ["flat", "fc1", "fc2", "fc3"]
    layers.append("changed")
    assert probe_layers_of("cnn") == ["flat", "fc1", "fc2", "fc3"], "the caller's list is its own"
    assert all(len(PROBE_LAYERS[name]) == len(set(PROBE_LAYERS[name])) for name in MODEL_NAMES)
    with pytest.raises(ValueError, match=r"unknown model 'vgg'; choose one of \['alexnet', 'cnn', 'mlp', 'resnet18'\]"):
        probe_layers_of("vgg")

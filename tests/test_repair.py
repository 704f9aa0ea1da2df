"""`latentgen repair` on any checkpoint with its arrays: the report, the repaired model, and clear errors.

The pipeline-checkpoint form runs on a real tiny pipeline run in tests/test_workflow.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from latentgen.data.labels import corrupt_labels
from latentgen.training.models import build
from latentgen.repair import main
from latentgen.scoring.transfer import load_layer_transfer

REPO = Path(__file__).resolve().parents[1]


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    """The command as a user runs it, in a fresh interpreter (this checkout's sources first on the path)."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, timeout=600, env=env
    )


@pytest.fixture(scope="module")
def arrays(tmp_path_factory) -> dict[str, Path]:
    """An (untrained) MLP checkpoint with 300 training images, their noisy labels, 100 selection images (never
    trained on) with noisy labels and 100 test images."""
    root = tmp_path_factory.mktemp("repair")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(500, 1, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=500)
    noisy, _ = corrupt_labels(labels[:400], 0.5, 10, seed=0)
    torch.manual_seed(0)
    torch.save(build("mlp", (1, 28, 28), 10).state_dict(), root / "checkpoint.pt")
    files = {
        "checkpoint": root / "checkpoint.pt",
        "images": root / "images.npy",
        "labels": root / "labels.npy",
        "test_images": root / "test_images.npy",
        "test_labels": root / "test_labels.npy",
        "select_images": root / "select_images.npy",
        "select_labels": root / "select_labels.npy",
    }
    np.save(files["images"], images[:300])
    np.save(files["labels"], noisy[:300])
    np.save(files["select_images"], images[300:400])
    np.save(files["select_labels"], noisy[300:400])
    np.save(files["test_images"], images[400:])
    np.save(files["test_labels"], labels[400:])
    return files


def _arguments(files: dict[str, Path], out: Path, **changes: Path) -> list[str]:
    files = {**files, **changes}
    return [
        str(files["checkpoint"]),
        "--out",
        str(out),
        "--model",
        "mlp",
        "--images",
        str(files["images"]),
        "--labels",
        str(files["labels"]),
        "--test-images",
        str(files["test_images"]),
        "--test-labels",
        str(files["test_labels"]),
        "--select-images",
        str(files["select_images"]),
        "--select-labels",
        str(files["select_labels"]),
        "--device",
        "cpu",
        "--batch-size",
        "100",
    ]


@pytest.fixture(scope="module")
def repaired(arrays, tmp_path_factory):
    out = tmp_path_factory.mktemp("repaired")
    result = run_module("latentgen.repair", *_arguments(arrays, out))
    assert result.returncode == 0, result.stderr
    return out, result


def test_repair_chooses_on_the_selection_data_by_the_one_standard_error_rule(repaired):
    out, result = repaired
    report = json.loads((out / "report.json").read_text())
    held_out = {c["layer"]: c["holdout_noisy_accuracy"] for c in report["candidates"]}
    errors = {c["layer"]: c["holdout_standard_error"] for c in report["candidates"]}
    assert list(held_out) == ["fc1", "fc2", "fc3", "fc4"]
    assert all(0 < error < 0.06 for error in errors.values())  # 100 selection images: about 4-5 points
    best = max(held_out, key=held_out.get)
    # the chosen layer is the best or an earlier one it cannot be told from (within a standard error)
    assert list(held_out).index(report["layer"]) <= list(held_out).index(best)
    assert held_out[best] - held_out[report["layer"]] <= errors[best] + errors[report["layer"]]
    assert report["chosen_on_held_out_data"] and report["selection_data"] == {"n_fit": 300, "n_held_out": 100}
    assert "one-standard-error" in report["choice"]
    assert f"chose velpic on {report['layer']}" in result.stdout
    assert "latentgen repair" in result.stderr and "step" in result.stderr  # the tqdm progress bar


def test_repaired_model_is_the_chosen_layers_velpic(repaired, arrays):
    out, _ = repaired
    report = json.loads((out / "report.json").read_text())
    model = load_layer_transfer(out / "model.pt")
    assert model.layer == report["layer"] and model.head.bias is None
    with torch.no_grad():
        images = torch.from_numpy(np.load(arrays["test_images"])).float() / 255
        accuracy = float((model(images).argmax(1).numpy() == np.load(arrays["test_labels"])).mean())
    chosen = next(c for c in report["candidates"] if c["layer"] == report["layer"])
    assert accuracy == report["repaired_model"]["test_accuracy"] == chosen["test_accuracy"]
    assert report["repaired_model"]["holdout_noisy_accuracy"] == chosen["holdout_noisy_accuracy"]


def test_repair_without_test_data_reports_no_test_accuracy(arrays, tmp_path):
    args = _arguments(arrays, tmp_path)
    args = args[: args.index("--test-images")] + args[args.index("--select-images") :]
    assert main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert "test_accuracy" not in report["repaired_model"] and "test_accuracy" not in report["candidates"][0]


def test_without_selection_data_it_transfers_the_last_layer_and_says_why(arrays, tmp_path, capsys):
    """Every training image was memorized: nothing can be chosen honestly, so the paper's choice is transferred."""
    args = _arguments(arrays, tmp_path)
    args = args[: args.index("--select-images")] + args[args.index("--device") :]
    assert main(args) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["layer"] == "fc4" and not report["chosen_on_held_out_data"]
    assert "no data the model never trained on" in report["choice"]
    assert "holdout_noisy_accuracy" not in report["candidates"][0]
    assert "without choosing" in capsys.readouterr().out


def _fails(capsys, args: list[str], message: str) -> None:
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("latentgen repair: error:") and message in error, error


def test_a_wrong_path_is_named(arrays, tmp_path, capsys):
    _fails(capsys, _arguments(arrays, tmp_path, checkpoint=tmp_path / "nope.pt"), "nope.pt does not exist")
    _fails(capsys, _arguments(arrays, tmp_path, labels=tmp_path / "nolabels.npy"), "nolabels.npy does not exist")


def test_a_damaged_checkpoint_is_named(arrays, tmp_path, capsys):
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(arrays["checkpoint"].read_bytes()[:5000])
    _fails(capsys, _arguments(arrays, tmp_path, checkpoint=damaged), "damaged")


def test_a_checkpoint_of_another_model_is_refused(arrays, tmp_path, capsys):
    cnn = tmp_path / "cnn.pt"
    torch.save(build("cnn", (1, 28, 28), 10).state_dict(), cnn)
    _fails(capsys, _arguments(arrays, tmp_path, checkpoint=cnn), "is not a checkpoint of latentgen's mlp model")


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.zeros(299, dtype=np.int64), "one label per image"),
        (np.full(300, 10), "the model has 10 classes"),
        (np.zeros(300), "integer class indices"),
    ],
)
def test_labels_that_do_not_fit_the_data_are_refused(arrays, tmp_path, capsys, labels, message):
    np.save(tmp_path / "bad.npy", labels)
    _fails(capsys, _arguments(arrays, tmp_path, labels=tmp_path / "bad.npy"), message)


def test_console_command_is_declared_and_dispatches_repair():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["latentgen"] == "latentgen.cli:main"
    result = run_module("latentgen.cli", "repair", "--help")
    assert result.returncode == 0 and "never trained on" in result.stdout

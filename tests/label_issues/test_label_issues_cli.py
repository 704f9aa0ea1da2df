"""`latentgen label-issues` (latentgen.find_label_issues): the table and summary it writes, and its clear errors
for a wrong path, a damaged file and labels that do not fit the images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from label_issues_synthetic import TINY_EPOCHS, tiny_prepared_mnist, tiny_run

from latentgen.find_label_issues import ISSUES_FILE, SUMMARY_FILE, main
from latentgen.label_issues import ISSUE_COLUMNS
from latentgen.training.models import build

REPO = Path(__file__).resolve().parents[2]
PROG = "latentgen label-issues"


@pytest.fixture(scope="module")
def arrays(tmp_path_factory) -> dict[str, Path]:
    """An untrained MLP checkpoint, 200 random images and their labels (20 per class)."""
    root = tmp_path_factory.mktemp("label_issue_cli")
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    torch.save(build("mlp", (1, 28, 28), 10).state_dict(), root / "checkpoint.pt")
    np.save(root / "images.npy", rng.integers(0, 256, size=(200, 1, 28, 28), dtype=np.uint8))
    np.save(root / "labels.npy", np.arange(200) % 10)
    return {"checkpoint": root / "checkpoint.pt", "images": root / "images.npy", "labels": root / "labels.npy"}


def _arguments(files: dict[str, Path], out: Path, *extra: str, **changes: Path) -> list[str]:
    files = {**files, **changes}
    return [
        str(files["checkpoint"]), "--out", str(out), "--model", "mlp", "--images", str(files["images"]),
        "--labels", str(files["labels"]), "--device", "cpu", "--layers", "fc4", "--probes", "ncm", *extra,
    ]  # fmt: skip


def _error(capsys, arguments: list[str]) -> str:
    assert main(arguments) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"{PROG}: error: ") and "Traceback" not in error
    return error


def test_a_wrong_path_is_named(arrays, tmp_path, capsys):
    error = _error(capsys, _arguments(arrays, tmp_path, checkpoint=tmp_path / "missing.pt"))
    assert "checkpoint" in error and "missing.pt does not exist" in error
    error = _error(capsys, _arguments(arrays, tmp_path, images=tmp_path / "nowhere.npy"))
    assert "training images" in error and "nowhere.npy does not exist" in error


def test_a_damaged_file_is_named(arrays, tmp_path, capsys):
    damaged = tmp_path / "images.npy"
    damaged.write_bytes(arrays["images"].read_bytes()[:100])
    assert "images.npy" in _error(capsys, _arguments(arrays, tmp_path, images=damaged))
    checkpoint = tmp_path / "checkpoint.pt"
    checkpoint.write_bytes(b"not a torch file")
    assert "checkpoint.pt" in _error(capsys, _arguments(arrays, tmp_path, checkpoint=checkpoint))


def test_labels_that_do_not_fit_the_images_are_refused(arrays, tmp_path, capsys):
    short = tmp_path / "short.npy"
    np.save(short, np.arange(199) % 10)
    assert "one label per image" in _error(capsys, _arguments(arrays, tmp_path, labels=short))
    out_of_range = tmp_path / "eleven.npy"
    np.save(out_of_range, np.arange(200) % 11)
    assert "10 classes" in _error(capsys, _arguments(arrays, tmp_path, labels=out_of_range))
    rare = tmp_path / "rare.npy"
    np.save(rare, np.r_[np.arange(198) % 9, [9, 9]])  # class 9 twice: too few for 5 folds
    assert "class 9: 2" in _error(capsys, _arguments(arrays, tmp_path, labels=rare))


def test_an_unknown_layer_is_refused(arrays, tmp_path, capsys):
    arguments = _arguments(arrays, tmp_path)
    arguments[arguments.index("fc4")] = "fc9"
    assert "fc9" in _error(capsys, arguments)


def test_arrays_give_the_table_and_a_summary_without_truth(arrays, tmp_path):
    """As a user runs it, in a fresh interpreter: the table of every method and a progress bar."""
    environment = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "latentgen.find_label_issues", *_arguments(arrays, tmp_path)],
        capture_output=True, text=True, timeout=600, env=environment,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PROG in result.stderr and "step" in result.stderr  # the tqdm bar
    table = pd.read_parquet(tmp_path / ISSUES_FILE)
    assert list(table.columns) == list(ISSUE_COLUMNS)
    methods = ["ncm", "network_softmax", "network_disagreement", "deep_knn", "pixel_logreg"]
    assert table["probe"].unique().tolist() == methods
    assert (table.groupby("probe")["index"].apply(list) == [list(range(200))] * 5).all()
    summary = json.loads((tmp_path / SUMMARY_FILE).read_text())
    assert summary["truth"] is None and summary["base_rate"] is None
    assert [entry["probe"] for entry in summary["methods"]] == methods
    for entry in summary["methods"]:
        rows = table[table["probe"] == entry["probe"]]
        assert entry["n_flagged"] == rows["is_label_issue"].sum() and "auprc" not in entry
    assert "wrote" in result.stdout


def test_a_pipeline_checkpoint_is_scored_against_its_true_labels(tmp_path, capsys):
    prepared = tiny_prepared_mnist(tmp_path / "datasets")
    run = tiny_run(tmp_path, prepared, 40)
    out = tmp_path / "flags"
    arguments = [run.checkpoints[-1], "--out", str(out), "--datasets-dir", str(tmp_path / "datasets")]
    assert main([*arguments, "--device", "cpu", "--no-baselines", "--layers", "fc3", "fc4"]) == 0
    assert "base rate" in capsys.readouterr().out
    table = pd.read_parquet(out / ISSUES_FILE)
    labels = pd.read_parquet(run.labels)
    train = labels[labels["split"] == "train"]
    assert set(table["probe"]) == {"velpic", "ncm"} and set(table["layer"]) == {"fc3", "fc4"}
    for _, rows in table.groupby(["layer", "probe"]):
        assert np.array_equal(rows["index"], train["index"])
        assert np.array_equal(rows["is_wrong"], train["c40"] != train["true"])
    summary = json.loads((out / SUMMARY_FILE).read_text())
    assert summary["base_rate"] == pytest.approx(float((train["c40"] != train["true"]).mean()))
    assert all(0.0 <= entry["auprc"] <= 1.0 for entry in summary["methods"])
    assert summary["source"]["seed"] == 0 and TINY_EPOCHS[-1] == 3

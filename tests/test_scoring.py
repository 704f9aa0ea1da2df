"""latentgen.scoring.checkpoint: one checkpoint's score table on a tiny CPU model (seconds), and the checkpoint it
refuses.  The scores of a trained model on real data are tested end to end in test_workflow.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latentgen.scoring.activations import extract_activations
from latentgen.common.fileio import DamagedFileError, save_torch
from latentgen.training.models import build
from latentgen.scoring.checkpoint import SCORE_COLUMNS, SCORED_SPLITS, score_checkpoint
from latentgen.data.arrays import TrainData

IDENTITY = {"model": "cnn", "dataset": "toy", "pair": "cnn-toy", "corruption": 40, "seed": 0, "epoch": 2}


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    images = rng.integers(0, 256, size=(60, 1, 28, 28), dtype=np.uint8)
    data = TrainData(images, (labels + (rng.random(60) < 0.4)) % 3, labels, images[:30], labels[:30], 3)
    torch.manual_seed(0)
    model = build("cnn", (1, 28, 28), 3)
    root = tmp_path_factory.mktemp("scoring")
    checkpoint = root / "epoch_0002.pt"
    save_torch(model.state_dict(), checkpoint)
    extract_activations(model, data.train_images, data.test_images, root / "activations", dtype="float32")
    frame = score_checkpoint(checkpoint, root / "activations", data, "cnn", 0.99, IDENTITY, probes=("masc", "ncm"))
    return frame, data, root, model


def test_score_table_has_a_row_per_layer_probe_and_split(scored):
    frame, _, _, model = scored
    assert list(frame.columns) == SCORE_COLUMNS
    assert frame["accuracy"].between(0, 1).all()
    for probe in ("masc", "ncm"):
        rows = frame[frame["probe"] == probe]
        assert set(zip(rows["layer"], rows["split"])) == {
            (layer, split) for layer in model.probe_layers for split in SCORED_SPLITS
        }
    assert frame["n_components"].notna().sum() == len(model.probe_layers) * len(SCORED_SPLITS), "MASC rows only"
    assert (frame[list(IDENTITY)] == list(IDENTITY.values())).all().all()


def test_transfer_rows_for_every_scored_layer_and_no_bias_rows_without_a_head_bias(scored):
    frame, _, _, model = scored
    transfer = frame[frame["probe"] == "transfer"]
    assert set(transfer["layer"]) == set(model.probe_layers)
    assert model.head.bias is None and "transfer_bias" not in set(frame["probe"])


def test_a_damaged_checkpoint_is_refused_by_name(scored, tmp_path):
    _, data, root, _ = scored
    damaged = tmp_path / "epoch_0002.pt"
    damaged.write_bytes((root / "epoch_0002.pt").read_bytes()[:100])
    with pytest.raises(DamagedFileError, match=f"checkpoint {damaged} is damaged"):
        score_checkpoint(damaged, root / "activations", data, "cnn", 0.99, IDENTITY, probes=("ncm",))
    wrong = tmp_path / "other.pt"
    save_torch(build("cnn", (1, 28, 28), 5).state_dict(), wrong)
    with pytest.raises(RuntimeError, match="size mismatch"):
        score_checkpoint(wrong, root / "activations", data, "cnn", 0.99, IDENTITY, probes=("ncm",))

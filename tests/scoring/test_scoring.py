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
from latentgen.probes.paper import VeLPIC
from latentgen.scoring.checkpoint import predict_classes, velpic_disagreements
from latentgen.scoring.transfer import transfer_from_layer
from latentgen.data.arrays import to_unit_float

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


def test_exactness_is_judged_on_float32_activations_where_float16_would_flip_a_near_tie():
    """VeLPIC vectors built so that on one test image classes 0 and 1 nearly tie: the float32 activations pick
    class 0, their float16 rounding (what the stored activations hold) picks class 1.  The transferred model computes
    the float32 decision, and the check, read from the float32 forward pass, counts 0 disagreements."""
    torch.manual_seed(0)
    model = build("mlp", (1, 28, 28), 10).eval()
    images = np.random.default_rng(0).integers(0, 256, size=(20, 1, 28, 28), dtype=np.uint8)
    with torch.no_grad():
        features = model.features_and_logits(to_unit_float(torch.from_numpy(images)))[0]["fc4"]
    h32, h16 = features[0].double(), features[0].half().double()
    rounding = h16 - h32
    across = rounding - (rounding @ h32) / (h32 @ h32) * h32  # the rounding's part orthogonal to h32
    step = across / (across @ across) - 0.5 * h32 / (h32 @ h32)  # <step, h32> = -0.5, <step, h16> = +0.5
    base = h32 / h32.norm()
    vectors = torch.stack([base, base + step, *[-base] * 8]).numpy()
    velpic = VeLPIC().fit(np.random.default_rng(1).random((40, vectors.shape[1])), np.arange(40) % 10)
    velpic.vectors_ = vectors
    transferred = transfer_from_layer(model, velpic, "fc4")
    predictions = predict_classes(transferred, images, 10, torch.device("cpu"))
    on_float16 = velpic.predict(features.half().float())
    assert (predictions[0], on_float16[0]) == (0, 1)  # float16 activations would flip this image
    counts = velpic_disagreements(model, {"fc4": velpic}, {"fc4": predictions}, images, 10, torch.device("cpu"))
    assert counts == {"fc4": 0}

"""latentgen.pipeline: the stage functions' own logic (run identity, train settings, checkpoint checks, the score
stage's resume keys) on small inputs.  The stages run end to end in test_workflow.py and test_reliability.py."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from latentgen import pipeline
from latentgen.common.fileio import (
    DamagedFileError,
    file_sha256,
    save_torch,
    write_json,
    write_parquet,
)
from latentgen.training.models import build
import dataclasses
from latentgen.training.checkpoints import model_from_run, verify_checkpoint
from latentgen.scoring import cache
from latentgen.common.pairs import run_identity
from latentgen.data.runs import load_run_data


def test_run_identity_reads_pairs_with_and_without_variant():
    assert run_identity("mlp-mnist-dropout", "40", "3") == {
        "pair": "mlp-mnist-dropout",
        "model": "mlp",
        "dataset": "mnist",
        "corruption": 40,
        "seed": 3,
    }


def test_train_settings_of_an_edited_run_start_from_its_edit():
    config = {
        "model": "mlp",
        "optimizer": "sgd",
        "lr": 0.01,
        "batch_size": 32,
        "max_epochs": 50,
        "stop_accuracy": 1.0,
        "checkpoints": {"early_every": 2, "early_until": 20, "late_every": 5},
        "not_a_setting": 1,
    }
    plain = pipeline.train_settings(config, 4)
    assert plain.seed == 4 and plain.max_epochs == 50 and plain.schedule.late_every == 5
    edited = pipeline.train_settings(config, 4, {"epoch": 10, "until": 30, "weights_sha256": "abc"})
    assert (edited.start_epoch, edited.max_epochs, edited.start_weights) == (10, 30, "abc")


@pytest.fixture
def run(tmp_path):
    model = build("mlp", (1, 28, 28), 10)
    checkpoint = tmp_path / "checkpoints" / "epoch_0002.pt"
    digest = save_torch(model.state_dict(), checkpoint)
    summary = {
        "settings": {"model": "mlp", "dropout": 0.0},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "checkpoint_sha256": {checkpoint.name: digest},
    }
    write_json(summary, tmp_path / "run.json")
    return tmp_path / "run.json", summary, checkpoint, model


def test_model_from_run_loads_the_recorded_checkpoint(run):
    run_json, _, checkpoint, model = run
    loaded = model_from_run(run_json, checkpoint)
    assert all((loaded.state_dict()[k] == v).all() for k, v in model.state_dict().items())


def test_a_changed_checkpoint_is_refused_with_the_retraining_advice(run):
    run_json, summary, checkpoint, _ = run
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match=f"(?s){checkpoint}.*differs from the recorded.*--forcerun {run_json}"):
        model_from_run(run_json, checkpoint)
    other = checkpoint.with_name("epoch_0004.pt")
    other.write_bytes(b"")
    with pytest.raises(DamagedFileError, match="records no checkpoint of that name"):
        verify_checkpoint(run_json, summary, other)


def test_a_run_summary_without_checkpoint_hashes_is_refused(run):
    run_json, summary, checkpoint, _ = run
    del summary["checkpoint_sha256"]
    with pytest.raises(DamagedFileError, match=f"(?s){run_json}.*records no checkpoint hashes.*--forcerun"):
        verify_checkpoint(run_json, summary, checkpoint)
    assert file_sha256(checkpoint)  # untouched


def _fragment(path, key):
    frame = pd.DataFrame({"epoch": [0], "layer": ["fc1"], "probe": ["masc"], "split": ["test"], "accuracy": [0.5]})
    write_parquet(frame, path, metadata={"fragment_key": key})
    return frame


def test_a_fragment_is_kept_only_for_its_own_key(tmp_path):
    """A score job keeps an earlier job's scores of a checkpoint only when the checkpoint's bytes, the settings
    and the code are those it would score with (the key); anything else is scored again."""
    path = tmp_path / "epoch_0000.parquet"
    assert cache.kept_fragment(path, "k") is None  # none yet
    frame = _fragment(path, "k")
    pd.testing.assert_frame_equal(cache.kept_fragment(path, "k"), frame)
    assert cache.kept_fragment(path, "other") is None


def test_a_damaged_fragment_is_scored_again_and_named(tmp_path, caplog):
    path = tmp_path / "epoch_0000.parquet"
    path.write_bytes(b"PAR1 not a parquet file")
    with caplog.at_level(logging.WARNING, logger="latentgen"):
        assert cache.kept_fragment(path, "k") is None
    assert "epoch_0000.parquet" in caplog.text


def test_fragment_keys_change_with_the_checkpoint_and_every_setting():
    settings = cache.ScoreSettings(
        variance=0.99, layers=["fc1"], batch_size=500, dtype="float16", device="cpu", code={"stage": "score"}
    )
    key = cache.fragment_key("sha", dataclasses.asdict(settings))
    assert key == cache.fragment_key("sha", dataclasses.asdict(settings))
    assert key != cache.fragment_key("other", dataclasses.asdict(settings))
    for change in (
        {"probes": ["masc"]},
        {"variance": 0.9},
        {"holdout": 0.1},
        {"code": {"stage": "x"}},
        {"dtype": "float32"},
    ):
        assert key != cache.fragment_key("sha", {**dataclasses.asdict(settings), **change}), change


def test_kept_activations_depend_on_the_extraction_not_on_the_probes():
    """Changing the probe list re-scores kept activations; a changed extraction setting extracts again."""
    settings = cache.ScoreSettings(
        variance=0.99, layers=["fc1"], batch_size=500, dtype="float16", device="cpu", code={"stage": "score"}
    )
    fewer = cache.ScoreSettings(**{**dataclasses.asdict(settings), "probes": ["masc"], "variance": 0.9})
    assert settings.extraction_key("sha") == fewer.extraction_key("sha")
    wider = cache.ScoreSettings(**{**dataclasses.asdict(settings), "dtype": "float32"})
    assert settings.extraction_key("sha") != wider.extraction_key("sha")
    assert settings.extraction_key("sha") != settings.extraction_key("other")


def test_unscheduled_epochs_are_removed_and_an_edited_run_is_left_alone(tmp_path):
    """A retrained run may stop at another epoch: what an earlier training left for checkpoints the run no longer
    has goes; the directory of a run edited from this one (a subdirectory) stays."""
    for name in ("epoch_0000.parquet", "epoch_0004.parquet"):
        _fragment(tmp_path / name, "k")
    (tmp_path / "edit10").mkdir()
    _fragment(tmp_path / "edit10" / "epoch_0010.parquet", "k")
    cache.remove_unscheduled(tmp_path, "epoch_*.parquet", {"epoch_0000.parquet"})
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet")) == [
        "edit10/epoch_0010.parquet",
        "epoch_0000.parquet",
    ]


def test_training_never_sees_the_held_out_slice(prepared_datasets, tmp_path, monkeypatch):
    """The slice is drawn from the label table before training and withheld from it: the trainer is handed only
    the other samples (every batch it draws comes from them), and run.json records which were withheld."""
    labels = tmp_path / "labels.parquet"
    pipeline.corrupt_labels(prepared_datasets / "mnist", labels, 42, {"per_class": 30}, {"size": 50, "seed": 0})
    handed = {}
    monkeypatch.setattr(
        pipeline.training,
        "train",
        lambda data, settings, run_dir, provenance, **_: handed.update(
            data=data, settings=settings, provenance=provenance
        ),
    )
    config = {
        "model": "mlp",
        "optimizer": "sgd",
        "lr": 0.01,
        "batch_size": 32,
        "max_epochs": 1,
        "stop_accuracy": 1.0,
        "checkpoints": {"early_every": 1, "early_until": 1, "late_every": 1},
    }
    pipeline.train(
        prepared_datasets / "mnist", labels, tmp_path / "run", "mlp-mnist", 80, 0, config, "cpu", holdout=0.1
    )
    run = load_run_data(prepared_datasets / "mnist", labels, 80)
    split = run.data.holdout(0.1)
    assert 25 <= len(split.held_out) <= 35 and np.intersect1d(split.fit, split.held_out).size == 0  # per-class rounding
    np.testing.assert_array_equal(handed["data"].train_images, run.data.train_images[split.fit])
    np.testing.assert_array_equal(handed["data"].train_noisy, run.data.train_noisy[split.fit])
    trained_on = {image.tobytes() for image in handed["data"].train_images}
    assert not any(run.data.train_images[i].tobytes() in trained_on for i in split.held_out)
    assert handed["provenance"]["held_out"] == split.record() and handed["settings"].holdout == 0.1
    # stratified by the corrupted labels: each class gives about a tenth of its samples
    per_class = np.bincount(run.data.train_noisy[split.held_out], minlength=10)
    expected = np.floor(0.1 * np.bincount(run.data.train_noisy, minlength=10) + 0.5)
    np.testing.assert_array_equal(per_class, expected)

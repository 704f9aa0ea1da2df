"""latentgen.pipeline: the stage functions' own logic (run identity, train settings, checkpoint checks, collecting
tables) on small inputs.  The stages run end to end in test_workflow.py and test_reliability.py."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from latentgen import pipeline
from latentgen.fileio import (
    DamagedFileError,
    file_sha256,
    parquet_metadata,
    read_parquet,
    save_torch,
    write_json,
    write_parquet,
)
from latentgen.models import build


def test_run_identity_reads_pairs_with_and_without_variant():
    assert pipeline.run_identity("mlp-mnist-dropout", "40", "3") == {
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
        "settings": {"model": "mlp"},
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "checkpoint_sha256": {checkpoint.name: digest},
    }
    write_json(summary, tmp_path / "run.json")
    return tmp_path / "run.json", summary, checkpoint, model


def test_model_from_run_loads_the_recorded_checkpoint(run):
    run_json, _, checkpoint, model = run
    loaded = pipeline._model_from_run(run_json, checkpoint)
    assert all((loaded.state_dict()[k] == v).all() for k, v in model.state_dict().items())


def test_a_changed_checkpoint_is_refused_with_the_retraining_advice(run):
    run_json, summary, checkpoint, _ = run
    data = bytearray(checkpoint.read_bytes())
    data[len(data) // 2] ^= 0xFF
    checkpoint.write_bytes(bytes(data))
    with pytest.raises(DamagedFileError, match=f"(?s){checkpoint}.*differs from the recorded.*--forcerun {run_json}"):
        pipeline._model_from_run(run_json, checkpoint)
    other = checkpoint.with_name("epoch_0004.pt")
    other.write_bytes(b"")
    with pytest.raises(DamagedFileError, match="records no checkpoint of that name"):
        pipeline.verify_checkpoint(run_json, summary, other)


def test_runs_without_recorded_hashes_are_loaded_with_a_warning(run, caplog):
    run_json, summary, checkpoint, _ = run
    del summary["checkpoint_sha256"]
    with caplog.at_level(logging.WARNING, logger="latentgen"):
        pipeline.verify_checkpoint(run_json, summary, checkpoint)
    assert "records no checkpoint hashes" in caplog.text
    assert file_sha256(checkpoint)  # untouched


def test_collect_stage_sorts_fragments_and_records_their_number(tmp_path):
    fragments = []
    for epoch in (4, 0, 2):
        path = tmp_path / f"f{epoch}.parquet"
        write_parquet(
            pd.DataFrame(
                {
                    "epoch": [epoch, epoch],
                    "layer": ["fc2", "fc1"],
                    "probe": ["masc"] * 2,
                    "split": ["test"] * 2,
                    "accuracy": [0.5, 0.6],
                }
            ),
            path,
        )
        fragments.append(str(path))
    pipeline.collect_run(fragments, tmp_path / "run.parquet")
    table = read_parquet(tmp_path / "run.parquet")
    assert list(zip(table["epoch"], table["layer"])) == [
        (0, "fc1"),
        (0, "fc2"),
        (2, "fc1"),
        (2, "fc2"),
        (4, "fc1"),
        (4, "fc2"),
    ]
    assert parquet_metadata(tmp_path / "run.parquet")["fragments"] == 3

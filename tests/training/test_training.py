"""Training: schedule, stopping, history, reproducibility, divergence and resume after a real kill."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from latentgen.training.learning import has_learned
from latentgen.common.fileio import load_torch
from latentgen.training.trainer import TrainingDivergedError, build_model, epoch_order, train
from latentgen.training.settings import IMAGENET_MEAN_STD, TrainSettings, input_statistics
from latentgen.training.schedule import Schedule
from latentgen.data.arrays import TrainData, to_unit_float


def checkpoint_file(run_dir, epoch: int) -> Path:
    """Where a run's checkpoint of ``epoch`` is: the layout the workflow's rules name (workflow/rules)."""
    return Path(run_dir) / "checkpoints" / f"epoch_{epoch:04d}.pt"


def synthetic_data(n_train=512, n_test=128, seed=0) -> TrainData:
    """Separable-ish images: class k brightens row block k, so a model can learn something."""
    rng = np.random.default_rng(seed)

    def make(n):
        labels = rng.integers(0, 10, size=n)
        images = rng.integers(0, 60, size=(n, 1, 28, 28)).astype(np.uint8)
        for i, k in enumerate(labels):
            images[i, 0, 2 * k : 2 * k + 3, :] = 250
        return images, labels.astype(np.int64)

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    noisy = train_y.copy()
    noisy[: n_train // 4] = rng.integers(0, 10, size=n_train // 4)
    return TrainData(train_x, noisy, train_y, test_x, test_y, 10)


def settings(**overrides) -> TrainSettings:
    base = dict(
        model="mlp",
        optimizer="sgd",
        lr=0.01,
        momentum=0.9,
        batch_size=32,
        max_epochs=6,
        stop_accuracy=1.0,
        seed=0,
        schedule=Schedule(2, 4, 3),
    )
    base.update(overrides)
    return TrainSettings(**base)


def test_schedule_matches_the_paper():
    paper = Schedule(early_every=2, early_until=20, late_every=5)
    assert [e for e in range(0, 41) if paper.is_checkpoint(e)] == [
        0,
        2,
        4,
        6,
        8,
        10,
        12,
        14,
        16,
        18,
        20,
        25,
        30,
        35,
        40,
    ]
    alexnet = Schedule(early_every=2, early_until=20, late_every=10)
    assert [e for e in range(21, 51) if alexnet.is_checkpoint(e)] == [30, 40, 50]


def test_schedule_with_epoch_one_matches_the_authors_select_model():
    # select_model (the seed repository's MASC_code.py): the initialization, epoch 1, every 2nd epoch
    # to 20, then every 5th
    authors = Schedule(early_every=2, early_until=20, late_every=5, extra_epochs=[1])
    assert [e for e in range(0, 36) if authors.is_checkpoint(e)] == [
        0,
        1,
        2,
        4,
        6,
        8,
        10,
        12,
        14,
        16,
        18,
        20,
        25,
        30,
        35,
    ]


@pytest.mark.parametrize("normalize, pixel_0, pixel_255", [("unit", 0.0, 1.0), ("half", -1.0, 1.0)])
def test_input_scaling_choices_map_pixels_as_documented(normalize, pixel_0, pixel_255):
    data = synthetic_data(n_train=16, n_test=4)
    model = build_model(settings(normalize=normalize), data)
    pixels = to_unit_float(torch.tensor([0, 255], dtype=torch.uint8)).view(2, 1, 1, 1)
    assert model._normalize(pixels).flatten().tolist() == [pixel_0, pixel_255]


def test_per_channel_and_imagenet_statistics():
    data = synthetic_data(n_train=64, n_test=4)
    mean, std = input_statistics("per_channel", data.train_images)
    assert mean.item() == pytest.approx(data.train_images.mean() / 255) and std.item() > 0
    rgb = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    assert [t.tolist() for t in input_statistics("imagenet", rgb)] == [list(v) for v in IMAGENET_MEAN_STD]
    with pytest.raises(ValueError, match="needs RGB"):
        input_statistics("imagenet", data.train_images)
    with pytest.raises(ValueError, match="normalize must be one of"):
        settings(normalize="none")


def test_unshuffled_order_is_the_dataset_order_for_every_seed_and_epoch():
    assert torch.equal(epoch_order(7, seed=0, epoch=1, shuffle=False), torch.arange(7))
    assert torch.equal(epoch_order(7, seed=3, epoch=9, shuffle=False), torch.arange(7))
    assert not torch.equal(epoch_order(50, seed=0, epoch=1), epoch_order(50, seed=1, epoch=1))


@pytest.mark.parametrize(
    "stop_on, column", [("running", "train_accuracy_running"), ("full_pass", "train_accuracy_corrupted")]
)
def test_each_stop_rule_reads_its_own_accuracy(tmp_path, stop_on, column):
    summary = train(synthetic_data(), settings(max_epochs=50, stop_accuracy=0.5, lr=0.05, stop_on=stop_on), tmp_path)
    assert summary["stop_reason"] == "reached_stop_accuracy"
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert history[column].iloc[-1] >= 0.5
    assert (history[column].iloc[1:-1] < 0.5).all()  # epoch 0 never stops a run
    assert summary["final_epoch"] in summary["checkpoint_epochs"]


def test_a_run_that_does_not_learn_is_flagged_in_the_log(tmp_path, caplog):
    assert not has_learned(2.30, 10) and has_learned(2.0, 10)
    # 80 % corruption: the loss stays near ln K while the network learns the true classes
    assert has_learned(2.29, 10, true_accuracy=0.36) and not has_learned(2.29, 10, true_accuracy=0.11)
    with caplog.at_level("WARNING", logger="latentgen"):
        train(synthetic_data(n_train=64, n_test=16), settings(lr=1e-12, max_epochs=3), tmp_path)
    assert "did not learn" in caplog.text and "ln K" in caplog.text


def test_run_writes_checkpoints_history_and_provenance(tmp_path):
    summary = train(synthetic_data(), settings(max_epochs=6), tmp_path, provenance={"run": "mlp-x/c25/s0"})
    # 0, 2, 4 (every 2 to 4), 7 would be next (every 3 after 4); 6 is the final epoch
    assert summary["checkpoint_epochs"] == [0, 2, 4, 6]
    for epoch in summary["checkpoint_epochs"]:
        assert checkpoint_file(tmp_path, epoch).exists()
    assert not checkpoint_file(tmp_path, 5).exists()
    history = pd.read_parquet(tmp_path / "history.parquet")
    assert list(history.epoch) == list(range(7))
    assert {
        "train_loss",
        "train_accuracy_running",
        "train_accuracy_corrupted",
        "train_accuracy_true",
        "test_accuracy",
        "seconds",
    } <= set(history)
    on_disk = json.loads((tmp_path / "run.json").read_text())
    assert on_disk["run"] == "mlp-x/c25/s0" and on_disk["settings"]["seed"] == 0
    assert on_disk["latentgen_version"] and on_disk["stop_reason"] == "reached_max_epochs"
    assert not (tmp_path / "resume.pt").exists()
    state = load_torch(checkpoint_file(tmp_path, 6))
    assert set(state) >= {"head.weight", "input_mean"}


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_the_runs_seed_alone_sets_the_initialization(model):
    """build_model seeds torch from the settings: whatever the random state before, the same seed gives the same
    weights, and another seed other weights in every layer."""
    data = synthetic_data(n_train=64, n_test=16)
    torch.manual_seed(123)
    first = build_model(settings(model=model), data).state_dict()
    torch.rand(1000)  # another random state before the second build
    again = build_model(settings(model=model), data).state_dict()
    other = build_model(settings(model=model, seed=1), data).state_dict()
    assert list(first) == list(again) and all(torch.equal(first[k], again[k]) for k in first)
    weights = [k for k in first if k.endswith("weight")]
    assert len(weights) >= 4 and not any(torch.equal(first[k], other[k]) for k in weights)


def test_same_seed_reproduces_and_other_seed_differs(tmp_path):
    data = synthetic_data()
    train(data, settings(max_epochs=2), tmp_path / "a")
    train(data, settings(max_epochs=2), tmp_path / "b")
    train(data, settings(max_epochs=2, seed=1), tmp_path / "c")
    a, b, c = (load_torch(checkpoint_file(tmp_path / k, 2)) for k in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["head.weight"], c["head.weight"])
    init_a, init_c = (load_torch(checkpoint_file(tmp_path / k, 0)) for k in "ac")
    assert not torch.equal(init_a["fc.0.1.weight"], init_c["fc.0.1.weight"])


def test_divergence_fails_clearly(tmp_path):
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 1.*Lower the learning rate"):
        train(synthetic_data(), settings(lr=1e12, max_epochs=3), tmp_path)
    assert not (tmp_path / "run.json").exists()


def test_changed_settings_start_from_scratch(tmp_path):
    train(synthetic_data(), settings(max_epochs=4), tmp_path)
    train(synthetic_data(), settings(max_epochs=2, lr=0.02), tmp_path)
    assert not checkpoint_file(tmp_path, 4).exists(), "stale checkpoint of the old settings survived"
    assert len(pd.read_parquet(tmp_path / "history.parquet")) == 3


TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path[:0] = {tests!r}  # this test's folder (its helpers) and tests/ (the shared ones)
    from test_training import synthetic_data, settings
    from latentgen.training.trainer import train
    train(synthetic_data(n_train=2048), settings(max_epochs=int(sys.argv[2]), lr=0.002), sys.argv[1])
    """
)


def assert_same_run(reference_dir, resumed_dir) -> None:
    """Every checkpoint bit-identical and the same history (but for the seconds each epoch took)."""
    for epoch in json.loads((reference_dir / "run.json").read_text())["checkpoint_epochs"]:
        expected = load_torch(checkpoint_file(reference_dir, epoch))
        resumed = load_torch(checkpoint_file(resumed_dir, epoch))
        assert all(torch.equal(expected[k], resumed[k]) for k in expected), f"epoch {epoch} differs"
    histories = [pd.read_parquet(d / "history.parquet").drop(columns=["seconds"]) for d in (reference_dir, resumed_dir)]
    pd.testing.assert_frame_equal(*histories)


def run_training_process(run_dir, epochs, script):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(run_dir), str(epochs)], env=env)


@contextlib.contextmanager
def alongside(process: subprocess.Popen):
    """``process`` runs while the block does (the uninterrupted reference beside the run that is killed: one
    thread each, and a run's result does not depend on its timing); killed if the block fails before it ends."""
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_resume_after_kill_equals_uninterrupted_run(tmp_path):
    script = tmp_path / "train_job.py"
    script.write_text(
        TRAIN_SCRIPT.format(tests=[os.path.dirname(__file__), os.path.dirname(os.path.dirname(__file__))])
    )
    epochs = 10
    with alongside(run_training_process(tmp_path / "reference", epochs, script)) as reference:
        victim = run_training_process(tmp_path / "killed", epochs, script)
        deadline = time.time() + 120
        while not checkpoint_file(tmp_path / "killed", 4).exists() and time.time() < deadline:
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        assert not (tmp_path / "killed" / "run.json").exists(), "the run finished before it was killed"
        assert (tmp_path / "killed" / "resume.pt").exists()

        assert run_training_process(tmp_path / "killed", epochs, script).wait() == 0
        assert reference.wait() == 0
    assert_same_run(tmp_path / "reference", tmp_path / "killed")


def test_dropout_changes_training_and_is_recorded(tmp_path):
    plain = train(synthetic_data(), settings(max_epochs=2), tmp_path / "plain")
    dropped = train(synthetic_data(), settings(max_epochs=2, dropout=0.5), tmp_path / "dropout")
    assert dropped["settings"]["dropout"] == 0.5
    first = load_torch(checkpoint_file(tmp_path / "plain", 0))
    assert all(torch.equal(first[k], v) for k, v in load_torch(checkpoint_file(tmp_path / "dropout", 0)).items()), (
        "same seed, same initialization: dropout has no parameters"
    )
    final_plain = load_torch(checkpoint_file(tmp_path / "plain", 2))
    final_dropped = load_torch(checkpoint_file(tmp_path / "dropout", 2))
    assert not torch.equal(final_plain["head.weight"], final_dropped["head.weight"])
    assert plain["final"]["test_accuracy"] >= 0  # both ran to the end


def test_every_setting_that_changes_training_changes_the_fingerprint():
    """Another dropout or another withheld slice trains another network: the run restarts instead of resuming."""
    assert settings(dropout=0.2).fingerprint() != settings().fingerprint()
    assert settings(holdout=0.1).fingerprint() != settings().fingerprint()
    assert settings(excluded="ab" * 32).fingerprint() != settings().fingerprint()
    assert settings().fingerprint() == settings().fingerprint()


def test_a_finished_run_is_restored_not_retrained_when_settings_and_provenance_are_unchanged(tmp_path, caplog):
    """Snakemake deletes run.json and the history before a rerun (the clean variant's flags were rewritten): with
    reuse_finished, the same settings and provenance and intact checkpoints restore them; anything else trains."""
    run_dir = tmp_path / "run"
    provenance = {"excluded": {"indices_sha256": "ab" * 32, "n": 3}, "training_code": {"version": 3}}
    first = train(synthetic_data(), settings(max_epochs=2), run_dir, provenance=provenance, reuse_finished=True)
    final = checkpoint_file(run_dir, 2)
    written = final.stat().st_mtime_ns
    history = pd.read_parquet(run_dir / "history.parquet")
    recorded = json.loads((run_dir / "run.json").read_text())
    assert recorded["fingerprint"] == first["fingerprint"]
    (run_dir / "run.json").unlink()
    (run_dir / "history.parquet").unlink()
    with caplog.at_level("INFO", logger="latentgen"):
        again = train(synthetic_data(), settings(max_epochs=2), run_dir, provenance=provenance, reuse_finished=True)
    assert again == recorded and "reusing" in caplog.text
    assert final.stat().st_mtime_ns == written  # not trained again
    pd.testing.assert_frame_equal(pd.read_parquet(run_dir / "history.parquet"), history)
    assert json.loads((run_dir / "run.json").read_text()) == recorded
    other = {**provenance, "excluded": {"indices_sha256": "cd" * 32, "n": 4}}  # other flags: trained again
    caplog.clear()
    with caplog.at_level("INFO", logger="latentgen"):
        train(synthetic_data(), settings(max_epochs=2), run_dir, provenance=other, reuse_finished=True)
    assert "reusing" not in caplog.text and final.stat().st_mtime_ns != written
    damaged = bytearray(final.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    final.write_bytes(bytes(damaged))  # a damaged checkpoint is never restored
    caplog.clear()
    with caplog.at_level("INFO", logger="latentgen"):
        train(synthetic_data(), settings(max_epochs=2), run_dir, provenance=other, reuse_finished=True)
    assert "reusing" not in caplog.text

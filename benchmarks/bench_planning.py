"""Planning at scale: `snakemake -n` on the paper grid once every run has finished training.

    .venv/bin/python benchmarks/bench_planning.py [--repetitions N] [--keep DIR] [--no-slurm]

The paper's config.yaml (every pair it lists, variants and edits included: read from the file, so a pair added
there is planned here too) is copied into a temporary working directory with ``results`` and ``datasets_dir``
pointed inside it, and finished training is simulated with small stand-in files: the prepared datasets and
label tables (empty); per standard run ``run.json`` (a realistic summary whose ``checkpoint_epochs`` follow the
pair's checkpoint schedule, the edit epochs included as the config adds them, up to the authors' stop epoch
of that pair and rate), ``history.parquet`` and one tiny file per checkpoint; per edited run
(``pairs.<pair>.edits``: one per edit epoch E of every standard run) the VeLPIC edit's weights
(``edits/<run>/epoch_<E>.pt``, the velpic_edit output) and the edited run's own run.json, history and
checkpoints from E to ``edits.until`` (trained to ``until``: the most jobs it can plan).  Modification times
are set in pipeline order and after the workflow's scripts (a script newer than its outputs reruns its rule),
so nothing upstream looks out of date.  Then the dry run must plan one score job per run (standard and
edited; it extracts and scores each of the run's checkpoints), and no training or edit.

Baseline, in the same process and interleaved (A, B, A, B, ...): the dry run of the same workflow with no
run finished, where Snakemake knows only the train jobs (and the edits waiting for them).  Each dry run is
timed in its own small wrapper process, which also reports the peak resident memory of Snakemake (and
anything it starts).  Once more, untimed against the target: the full grid through the SLURM profile
(``snakemake --profile slurm -n -j 50``), which must plan the same jobs.  Target: <= 60 s and <= 2 GB.
The last line reads, e.g. ``planning full grid: 41.2 s, 1.1 GB; ratio to untrained-grid plan: 6.3x``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from latentgen.config import _fill_pair_defaults, validate_schema
from latentgen.training.schedule import Schedule, edit_base_epoch
from latentgen.stale import job_stats

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).parent / "snakemake"  # the one installed beside this Python (.venv)
PREPARED_FILES = ("train_images.npy", "train_labels.npy", "test_images.npy", "test_labels.npy", "meta.json")
TARGET_SECONDS, TARGET_GB = 60.0, 2.0

# One wrapper process per dry run: its RUSAGE_CHILDREN then covers that dry run alone.
MEASURE = """
import json, resource, subprocess, sys, time
started = time.perf_counter()
with open(sys.argv[1], "w") as out:
    code = subprocess.run(sys.argv[3:], stdout=out, stderr=subprocess.STDOUT).returncode
seconds = time.perf_counter() - started
peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # Linux: kilobytes
json.dump({"seconds": seconds, "peak_kb": peak_kb, "returncode": code}, open(sys.argv[2], "w"))
"""


# --------------------------------------------------------------------------------------------------
# The simulated grid
# --------------------------------------------------------------------------------------------------


def paper_config() -> dict:
    """config.yaml as written (the scenario's config file is a copy of it)."""
    return yaml.safe_load((REPO / "config.yaml").read_text())


def filled(config: dict) -> dict:
    """The config with the defaults the workflow fills (schema defaults; edit epochs added to the schedules)."""
    config = validate_schema(config)
    _fill_pair_defaults(config)
    return config


# How many epochs the authors' runs trained before stopping, per pair and corruption rate (%): the mean of
# the three runs in the prior paper's published training logs (simranketha/MASC_DNN,
# Compare_experiments/model_accuracy/), stopped at its thresholds; 500 where they hit the cap.  (The seed
# repository's MLP-MNIST runs, stopped at a running accuracy of 100 %, took 266-324 epochs at 80 %.)
AUTHORS_STOP_EPOCHS = {
    "mlp-mnist": {0: 51, 20: 168, 40: 152, 60: 140, 80: 129, 100: 121},
    "cnn-fashion_mnist": {0: 71, 20: 365, 40: 500, 60: 500, 80: 500, 100: 500},
    "cnn-mnist": {0: 41, 20: 500, 40: 500, 60: 500, 80: 500, 100: 500},
    "mlp-cifar10": {0: 85, 20: 125, 40: 150, 60: 168, 80: 210, 100: 164},
    "cnn-cifar10": {0: 500, 20: 500, 40: 500, 60: 500, 80: 500, 100: 500},
    "alexnet-tiny_imagenet": {0: 172, 20: 189, 40: 251, 60: 405, 80: 500, 100: 500},
    # The published version's ResNet-18 (Compare_experiments/Modern_backbones/): the checkpoints its results/
    # probed end around epoch 16 at 0 % and 40 at 80 % (docs/architecture.md); 20-60 % linearly interpolated
    # between those two, as stop_epoch interpolates between any table's rates, and 100 % held at 80 %'s 40
    # (np.interp past the last rate).  An estimate, not the authors' logs: they published no stop epochs for it.
    "resnet18-cifar10": {0: 16, 20: 22, 40: 28, 60: 34, 80: 40, 100: 40},
}


def stop_epoch(pair: str, rate: int, seed: int, max_epochs: int) -> int:
    """The authors' stop epoch of this pair and rate (linearly interpolated between their rates; a few
    epochs apart between seeds, as their runs were); pairs they did not run: 60 at 0 % to 300 at 100 %."""
    table = AUTHORS_STOP_EPOCHS.get(pair)
    if table is None:
        epochs = 60 + 2.4 * rate
    else:
        rates = sorted(table)
        epochs = float(np.interp(rate, rates, [table[r] for r in rates]))
    return max(1, min(max_epochs, round(epochs) + 3 * seed))


def checkpoint_epochs(pair_config: dict, stop: int) -> list[int]:
    """The epochs the trainer keeps: its schedule up to ``stop``, and ``stop`` itself (as training._finish)."""
    schedule = Schedule(**pair_config.get("checkpoints", {}))
    return [epoch for epoch in range(stop + 1) if epoch == stop or schedule.is_checkpoint(epoch)]


def runs_of(config: dict) -> list[tuple[str, int, int]]:
    return [(pair, rate, seed) for pair in config["pairs"] for rate in config["corruption"] for seed in config["seeds"]]


def edit_epochs(pair_config: dict) -> list[int]:
    return list(pair_config.get("edits", {}).get("epochs", []))


def edited_runs_of(config: dict) -> list[tuple[str, int, int, int]]:
    """(pair, rate, seed, E) of every edited run: each edit epoch of each standard run of a pair with edits."""
    return [
        (pair, rate, seed, edit) for pair, rate, seed in runs_of(config) for edit in edit_epochs(config["pairs"][pair])
    ]


def edited_checkpoint_epochs(pair_config: dict, edit: int) -> list[int]:
    """An edited run's checkpoints: E (the edited weights), its schedule after E, and ``until`` (trained to it)."""
    schedule = Schedule(**pair_config.get("checkpoints", {}))
    until = pair_config["edits"]["until"]
    return [edit] + [epoch for epoch in range(edit + 1, until + 1) if epoch == until or schedule.is_checkpoint(epoch)]


def touch(path: Path, mtime: int, content: bytes = b"") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.utime(path, (mtime, mtime))


def write_scenario_config(root: Path, config: dict) -> Path:
    """The paper grid, with every output inside ``root``."""
    scenario = {**config, "results": str(root / "results"), "datasets_dir": str(root / "resources" / "datasets")}
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


def write_inputs(root: Path, config: dict, base_mtime: int) -> None:
    """Prepared datasets, then label tables (later mtimes): both stages look finished."""
    datasets = {pair["dataset"] for pair in config["pairs"].values()}
    # the corruption draws the runs train on: one shared draw (label_seed), or one per seed
    label_seeds = config["seeds"] if config.get("label_seed") is None else [config["label_seed"]]
    for dataset in datasets:
        for name in PREPARED_FILES:
            touch(root / "resources" / "datasets" / dataset / name, base_mtime)
        for seed in label_seeds:
            touch(root / "results" / "labels" / dataset / f"s{seed}.parquet", base_mtime + 100)


def run_summary(pair: str, pair_config: dict, rate: int, seed: int, epochs: list[int]) -> dict:
    """A run.json like the trainer's (same keys, similar size), so reading it costs what it really costs."""
    final = {
        "train_loss": 0.01,
        "train_accuracy_corrupted": 0.999,
        "train_accuracy_true": 0.99,
        "test_accuracy": 0.9,
        "test_loss": 0.3,
        "seconds": 4.2,
    }
    return {
        "pair": pair,
        "corruption": rate,
        "seed": seed,
        "labels": {"dataset": pair_config["dataset"], "seed": seed, "rates": list(range(101))},
        "fraction_labels_changed": rate / 100 * 0.9,
        "input_shape": [1, 28, 28],
        "num_classes": 10,
        "settings": {**pair_config, "seed": seed},
        "fingerprint": "0" * 16,
        "final_epoch": epochs[-1],
        "checkpoint_epochs": epochs,
        "stop_reason": "reached_stop_accuracy",
        "checkpoint_sha256": {f"epoch_{epoch:04d}.pt": "0" * 64 for epoch in epochs},
        "final": final,
        "device": "cuda",
        "latentgen_version": "0.1.0",
        "torch_version": "2.14.1",
    }


def write_run(run_dir: Path, summary: dict, mtime: int) -> None:
    """A finished run: its checkpoints, then history.parquet and run.json (written last by the trainer)."""
    for epoch in summary["checkpoint_epochs"]:
        touch(run_dir / "checkpoints" / f"epoch_{epoch:04d}.pt", mtime, b"\0" * 64)
    touch(run_dir / "history.parquet", mtime + 100, b"\0" * 64)
    touch(run_dir / "run.json", mtime + 100, json.dumps(summary, indent=2).encode())


def write_finished_runs(root: Path, config: dict, base_mtime: int) -> int:
    """Every standard run (newer than the label tables), then every edit and edited run (newer than the runs
    they edit); returns the checkpoint count of all of them."""
    total = 0
    finals = {}
    for pair, rate, seed in runs_of(config):
        pair_config = config["pairs"][pair]
        epochs = checkpoint_epochs(pair_config, stop_epoch(pair, rate, seed, pair_config["max_epochs"]))
        write_run(
            root / "results" / "runs" / pair / f"c{rate}" / f"s{seed}",
            run_summary(pair, pair_config, rate, seed, epochs),
            base_mtime + 200,
        )
        finals[pair, rate, seed] = epochs
        total += len(epochs)
    for pair, rate, seed, edit in edited_runs_of(config):
        pair_config = config["pairs"][pair]
        edit_base_epoch(finals[pair, rate, seed], edit)  # the checkpoint the edit reads exists (or the run stopped)
        touch(
            root / "results" / "edits" / pair / f"c{rate}" / f"s{seed}" / f"epoch_{edit:04d}.pt",
            base_mtime + 400,
            b"\0" * 64,
        )
        epochs = edited_checkpoint_epochs(pair_config, edit)
        summary = {
            **run_summary(pair, pair_config, rate, seed, epochs),
            "edit_epoch": edit,
            "stop_reason": "max_epochs",
        }
        write_run(root / "results" / "runs" / pair / f"c{rate}" / f"s{seed}" / f"edit{edit}", summary, base_mtime + 500)
        total += len(epochs)
    return total


def build_scenario(root: Path, config: dict, trained: bool) -> tuple[Path, int]:
    """A working directory for one scenario; returns its config path and the number of checkpoints."""
    root.mkdir(parents=True)
    config_path = write_scenario_config(root, config)
    base_mtime = int(time.time()) - 900  # stages 100 s apart, all in the past but after any code edit
    write_inputs(root, config, base_mtime)
    return config_path, write_finished_runs(root, filled(config), base_mtime) if trained else 0


# --------------------------------------------------------------------------------------------------
# Dry runs
# --------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    seconds: float
    peak_gb: float
    jobs: dict[str, int] = field(default_factory=dict)
    returncode: int = 0
    output: Path | None = None


def dry_run(root: Path, config_path: Path, label: str, extra: list[str] | None = None) -> Plan:
    """`snakemake -n` in ``root`` as a user would run it (repo Snakefile and workflow profile); ``extra``: more
    options, e.g. the SLURM profile."""
    output, stats = root / f"dry_run_{label}.txt", root / f"dry_run_{label}.json"
    command = [
        str(SNAKEMAKE),
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(root),
        "--configfile",
        str(config_path),
        "--workflow-profile",
        str(REPO / "profiles" / "default"),
        "-n",
        *(extra or []),
    ]
    subprocess.run([sys.executable, "-c", MEASURE, str(output), str(stats), *command], check=True, cwd=root)
    measured = json.loads(stats.read_text())
    return Plan(
        measured["seconds"], measured["peak_kb"] / 2**20, job_counts(output.read_text()), measured["returncode"], output
    )


def job_counts(text: str) -> dict[str, int]:
    """Snakemake's 'Job stats' table (rule -> count, with 'total'); empty when nothing is to be done."""
    counts = job_stats(text)
    return {**counts, "total": sum(counts.values())} if counts else counts
    for line in text.split("Job stats:", 1)[1].splitlines():
        match = re.fullmatch(r"\s*([A-Za-z_][\w]*)\s+(\d+)\s*", line)
        if match:
            counts[match.group(1)] = int(match.group(2))
        elif counts and not line.strip():
            break
    return counts


def problems(plan: Plan, config: dict, checkpoints: int, trained: bool) -> list[str]:
    """What makes a plan untrustworthy: a failed dry run, or jobs other than the ones the grid implies."""
    if plan.returncode != 0:
        return [f"snakemake exited {plan.returncode}; see {plan.output}"]
    runs, edited = len(runs_of(config)), len(edited_runs_of(config))
    expected = (
        {
            "train": 0,
            "velpic_edit": 0,
            "prepare_dataset": 0,
            "corrupt_labels": 0,
            "score": runs + edited,
        }
        if trained
        else {"train": runs + edited, "velpic_edit": edited, "prepare_dataset": 0, "corrupt_labels": 0}
    )
    return [
        f"{rule}: {plan.jobs.get(rule, 0)} jobs planned, expected {count}"
        for rule, count in expected.items()
        if plan.jobs.get(rule, 0) != count
    ]


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def print_jobs(label: str, plans: list[Plan]) -> None:
    """The planned jobs per rule, from the last dry run (every repetition plans the same)."""
    jobs = plans[-1].jobs
    rows = ", ".join(f"{rule} {count}" for rule, count in jobs.items() if rule != "total")
    print(f"{label}: {jobs.get('total', 0)} jobs ({rows})")


def summarize(label: str, plans: list[Plan]) -> tuple[float, float]:
    """Print and return the median wall time and the largest peak memory of a scenario's dry runs."""
    seconds = statistics.median(p.seconds for p in plans)
    peak = max(p.peak_gb for p in plans)
    runs = ", ".join(f"{p.seconds:.1f}" for p in plans)
    print(f"{label}: median {seconds:.1f} s (runs: {runs} s), peak memory {peak:.2f} GB")
    return seconds, peak


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=3, help="timed dry runs per scenario (default 3)")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build the scenarios in this (new) directory and keep them, e.g. to profile a dry run",
    )
    parser.add_argument("--no-slurm", action="store_true", help="skip the dry run through the SLURM profile")
    return parser.parse_args(argv)


def slurm_plan(work: Path, config_path: Path, config: dict, checkpoints: int) -> list[str]:
    """The full grid through the SLURM profile (`snakemake --profile slurm -n -j 50`): the same jobs must be
    planned, each its own submission (the profile groups nothing: a run's checkpoints are one score job)."""
    plan = dry_run(work / "full", config_path, "slurm", ["--profile", str(REPO / "slurm"), "-j", "50"])
    print_jobs("full grid plan, SLURM profile", [plan])
    groups = plan.output.read_text().count("Group job") if plan.output else 0
    print(f"full grid plan, SLURM profile: {plan.seconds:.1f} s, peak memory {plan.peak_gb:.2f} GB; {groups} groups")
    issues = [f"SLURM profile: {issue}" for issue in problems(plan, config, checkpoints, True)]
    if groups:
        issues.append(f"SLURM profile: {groups} group jobs planned, expected none (one submission per job)")
    return issues


def measure(work: Path, repetitions: int, slurm: bool = True) -> int:
    """Build both scenarios in ``work``, time their dry runs interleaved, print the report; 1 on a problem."""
    config = paper_config()
    untrained_config, _ = build_scenario(work / "untrained", config, trained=False)
    full_config, checkpoints = build_scenario(work / "full", config, trained=True)
    grid = filled(config)
    print(
        f"paper grid: {len(config['pairs'])} pairs ({', '.join(config['pairs'])}), {len(runs_of(grid))} standard "
        f"runs and {len(edited_runs_of(grid))} edited runs, {checkpoints} checkpoints simulated; "
        f"snakemake {subprocess.run([str(SNAKEMAKE), '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"{os.cpu_count()} CPUs"
    )
    dry_run(work / "untrained", untrained_config, "warmup")  # first start: bytecode and caches, not timed
    untrained, full = [], []
    for repetition in range(repetitions):  # interleaved: A, B, A, B, ...
        untrained.append(dry_run(work / "untrained", untrained_config, f"untrained_{repetition}"))
        full.append(dry_run(work / "full", full_config, f"full_{repetition}"))
    print_jobs("untrained grid plan", untrained)
    print_jobs("full grid plan", full)
    summarize("untrained grid plan", untrained)
    full_seconds, full_peak = summarize("full grid plan", full)
    found = [*(problems(p, grid, 0, False) for p in untrained), *(problems(p, grid, checkpoints, True) for p in full)]
    if slurm:
        found.append(slurm_plan(work, full_config, grid, checkpoints))
    issues = sorted({issue for plan_issues in found for issue in plan_issues})
    for issue in issues:
        print(f"PROBLEM: {issue}")
    verdict = "within" if full_seconds <= TARGET_SECONDS and full_peak <= TARGET_GB else "OUTSIDE"
    print(f"target <= {TARGET_SECONDS:.0f} s and <= {TARGET_GB:.0f} GB: {verdict}")
    ratio = statistics.median(f.seconds / u.seconds for u, f in zip(untrained, full))
    print(f"planning full grid: {full_seconds:.1f} s, {full_peak:.1f} GB; ratio to untrained-grid plan: {ratio:.1f}x")
    return 1 if issues else 0


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # progress lines show up at once, also through a pipe
    args = parse_args(argv)
    if args.keep is not None:
        return measure(args.keep, args.repetitions, not args.no_slurm)
    with tempfile.TemporaryDirectory(prefix="bench_planning_") as tmp:
        return measure(Path(tmp), args.repetitions, not args.no_slurm)


if __name__ == "__main__":
    sys.exit(main())

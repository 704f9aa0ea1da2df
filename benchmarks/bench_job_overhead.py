"""Per-job overhead of a checkpoint's extract + score jobs, paper MLP at full MNIST scale.

Each Snakemake job is a fresh Python process that imports torch and the package, loads (and
verifies) the dataset, the label table and the checkpoint before any useful work.  This measures
that fixed cost in fresh processes -- per job, a process that does only that job's start-up (the
extract job does not import scikit-learn, the score job does) -- against complete extract and score
jobs on the same inputs (60,000 train + 10,000 test images, 40 % corrupted labels, an MLP trained one
epoch on part of the data, activations in config.yaml's dtype as the paper grid writes them),
repetitions interleaved.  Last line: the two start-ups as a share of the two jobs' total time.

    .venv/bin/python benchmarks/bench_job_overhead.py [--repeats 2] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# What each job does before its useful work: Snakemake's script preamble, the job's imports (the extract job's
# script imports latentgen.pipeline: torch, pandas, pyarrow; the score job's also latentgen.scoring: scikit-learn),
# loading and verifying the dataset, label table and checkpoint, and choosing the device.
STARTUP = """
import snakemake.script
from latentgen import pipeline
{extra_import}
from latentgen.runs import load_run_data
from latentgen.fileio import load_torch
from latentgen.devices import assign_device
run = load_run_data({prepared!r}, {labels!r}, 40)
state = load_torch({checkpoint!r})
assign_device("auto")
"""
STARTUP_IMPORTS = {"extract": "", "score": "from latentgen import scoring"}

EXTRACT = """
import snakemake.script
from latentgen.pipeline import extract
extract({prepared!r}, {labels!r}, {run_json!r}, {checkpoint!r}, {activations!r}, 40, {dtype!r}, 1000, "auto")
"""

SCORE = """
import snakemake.script
from latentgen.pipeline import score
score({prepared!r}, {labels!r}, {run_json!r}, {checkpoint!r}, {activations!r}, {scores!r}, "mlp-mnist",
      40, 0, 1, 0.99, ["fc1", "fc2", "fc3", "fc4"], 1000, "auto")
"""


def prepare_inputs(cache: Path) -> dict[str, str]:
    """Full MNIST, its label table, and an MLP run trained one epoch on 6,000 images (cached)."""
    from latentgen import datasets
    from latentgen.pipeline import train
    from latentgen.labels import write_label_table

    prepared, labels, run_dir = cache / "mnist", cache / "labels_s0.parquet", cache / "run"
    if not (prepared / "meta.json").exists():
        datasets.prepare("mnist", prepared)
    if not labels.exists():
        write_label_table(prepared, labels, 0, None, None)
    if not (run_dir / "run.json").exists():
        quick = cache / "labels_quick.parquet"
        write_label_table(prepared, quick, 0, {"size": 6000, "seed": 0}, {"size": 1000, "seed": 0})
        pair = {
            "model": "mlp",
            "optimizer": "sgd",
            "lr": 0.001,
            "momentum": 0.9,
            "batch_size": 32,
            "max_epochs": 1,
            "stop_accuracy": 1.0,
            "normalize": "unit",
            "checkpoints": {"early_every": 1, "early_until": 1, "late_every": 1},
        }
        train(prepared, quick, run_dir, "mlp-mnist", 40, 0, pair, "cpu")
    return {
        "prepared": str(prepared),
        "labels": str(labels),
        "run_json": str(run_dir / "run.json"),
        "checkpoint": str(run_dir / "checkpoints" / "epoch_0001.pt"),
    }


def timed_process(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "latentgen-bench" / "overhead")
    args = parser.parse_args()
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    paths = prepare_inputs(args.cache_dir)
    paths["dtype"] = paper_activation_dtype()
    startups = {"extract": [], "score": []}
    extract, score = [], []
    with tempfile.TemporaryDirectory() as tmp:
        paths.update(activations=f"{tmp}/activations", scores=f"{tmp}/scores.parquet")
        for repeat in range(args.repeats):
            for job, extra_import in STARTUP_IMPORTS.items():
                startups[job].append(timed_process(STARTUP.format(extra_import=extra_import, **paths)))
            extract.append(timed_process(EXTRACT.format(**paths)))
            score.append(timed_process(SCORE.format(**paths)))
            print(
                f"repeat {repeat}: start-up only {startups['extract'][-1]:.1f} s (extract), "
                f"{startups['score'][-1]:.1f} s (score); extract job {extract[-1]:.1f} s, "
                f"score job {score[-1]:.1f} s",
                flush=True,
            )
    fixed = statistics.median(startups["extract"]) + statistics.median(startups["score"])
    total = statistics.median(extract) + statistics.median(score)
    print(
        f"median: start-up {fixed:.1f} s for the two jobs; extract + score {total:.1f} s ({paths['dtype']} "
        f"activations); useful work {total - fixed:.1f} s"
    )
    print(
        f"per-job overhead: {100 * fixed / total:.1f}% of extract+score time (ratio overhead/total {fixed / total:.3f})"
    )


def paper_activation_dtype() -> str:
    """The activation dtype of the paper grid (config.yaml), which decides what extraction writes."""
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())["activations"]["dtype"]


if __name__ == "__main__":
    main()

"""Per-job overhead of a score job (extraction and scoring of a run's checkpoints), paper MLP at full MNIST scale.

Each Snakemake job is a fresh Python process that imports torch, the package and scikit-learn, loads (and
verifies) the dataset, the label table and the checkpoint before any useful work.  This measures that fixed
cost in fresh processes -- a process that does only the score job's start-up -- against complete score jobs
of one checkpoint on the same inputs (60,000 train + 10,000 test images, 40 % corrupted labels, an MLP
trained one epoch on part of the data, activations in config.yaml's dtype as the paper grid writes them,
MASC + VeLPIC), repetitions interleaved.  A score job extracts and scores every checkpoint of its run, so a
run pays the start-up once, not twice per checkpoint as the extract + score jobs it replaced did.  Last
line: the start-up as a share of a one-checkpoint job's time (a run of N checkpoints: about 1/N of it).

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

# What the score job does before its useful work: Snakemake's script preamble, its imports (latentgen.pipeline:
# torch, pandas, pyarrow; latentgen.scoring.checkpoint: scikit-learn),
# loading and verifying the dataset, label table and
# checkpoint, and choosing the device.
STARTUP = """
import snakemake.script
from latentgen import pipeline
from latentgen.scoring import checkpoint as scoring
from latentgen.data.runs import load_run_data
from latentgen.common.fileio import load_torch
from latentgen.common.devices import assign_device
run = load_run_data({prepared!r}, {labels!r}, 40)
state = load_torch({checkpoint!r})
assign_device("auto")
"""
SCORE = """
import snakemake.script
from latentgen.pipeline import ScoreJob, ScoreSettings, score
settings = ScoreSettings(0.99, ["fc1", "fc2", "fc3", "fc4"], 1000, {dtype!r}, "auto", {{"stage": "score"}},
                         probes=["masc", "velpic"])
job = ScoreJob({prepared!r}, {labels!r}, {run_json!r}, [{checkpoint!r}], {fragments!r}, {activations!r}, {scores!r},
               "mlp-mnist", 40, 0, keep_activations=False)
score(job, settings)
"""


def prepare_inputs(cache: Path) -> dict[str, str]:
    """Full MNIST, its label table, and an MLP run trained one epoch on 6,000 images (cached)."""
    from latentgen.data import datasets
    from latentgen.pipeline import train
    from latentgen.data.labels import write_label_table

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
    startups, jobs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            # a fresh directory per job: a score job keeps the fragments an earlier one wrote
            paths.update(
                fragments=f"{tmp}/{repeat}/fragments",
                activations=f"{tmp}/{repeat}/activations",
                scores=f"{tmp}/{repeat}/scores.parquet",
            )
            startups.append(timed_process(STARTUP.format(**paths)))
            jobs.append(timed_process(SCORE.format(**paths)))
            print(
                f"repeat {repeat}: start-up only {startups[-1]:.1f} s; score job of one checkpoint {jobs[-1]:.1f} s",
                flush=True,
            )
    fixed, total = statistics.median(startups), statistics.median(jobs)
    print(
        f"median: start-up {fixed:.1f} s; score job of one checkpoint {total:.1f} s ({paths['dtype']} activations, "
        f"extracted and scored); useful work {total - fixed:.1f} s"
    )
    print(
        f"per-job overhead: {100 * fixed / total:.1f}% of a one-checkpoint score job "
        f"(ratio overhead/total {fixed / total:.3f})"
    )


def paper_activation_dtype() -> str:
    """The activation dtype of the paper grid (config.yaml), which decides what extraction writes."""
    import yaml

    return yaml.safe_load((REPO / "config.yaml").read_text())["activations"]["dtype"]


if __name__ == "__main__":
    main()

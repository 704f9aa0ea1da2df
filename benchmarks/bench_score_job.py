"""The score job's work on early and late checkpoints of one run: is scoring a memorized checkpoint much dearer?

    .venv/bin/python benchmarks/bench_score_job.py --checkpoint EARLY.pt --checkpoint LATE.pt [--labels TABLE]
        [--prepared resources/datasets/mnist] [--probes masc,velpic] [--solver auto|legacy] [--repeats 1]

Per checkpoint (pipeline checkpoints of the paper MLP on MNIST, e.g. ``results/fidelity/runs/mlp-mnist/c80/s0/
checkpoints/epoch_0001.pt`` and ``epoch_0025.pt``), in a fresh process each: what the score job does for it
(``latentgen.scoring.job``) after its start-up: the run's data (the label table's noisy labels), extraction of
every probed layer of the 60,000 training and 10,000 test images as float32 files (the paper grid's dtype) and
``latentgen.scoring.checkpoint.score_checkpoint`` with the probes given (default MASC and VeLPIC, as the issue's
measurement: fit, training and test predictions, the transfers), timed apart.  run.json is not needed (the run
may still be training): the checkpoint's hash is not verified.  Checkpoints alternate (A, B, A, B, ...) with
``--repeats``.  The per-layer MASC fit seconds and components come from the score table.  Last line: the
late (last given) checkpoint's score work over the early (first given) one's, e.g.
``late / early score job: 1.4x``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "benchmarks")]


def child(checkpoint: Path, labels: Path | None, prepared: Path, probes: list[str], solver: str, out: Path) -> None:
    started = time.perf_counter()
    import torch

    from bench_probes import _run_labels
    from latentgen.common.pairs import run_identity
    from latentgen.data.runs import load_run_data
    from latentgen.probes import paper
    from latentgen.scoring.activations import extract_activations
    from latentgen.scoring.checkpoint import score_checkpoint
    from latentgen.training.models import load_checkpoint

    if solver != "auto":  # the score stage builds MASC(variance=...): the solver is its default
        defaults = list(paper.MASC.__init__.__defaults__)
        defaults[-1] = solver
        paper.MASC.__init__.__defaults__ = tuple(defaults)
    imports = time.perf_counter() - started
    labels, rate = _run_labels(checkpoint, labels)
    started = time.perf_counter()
    data = load_run_data(prepared, labels, rate).data
    model = load_checkpoint(checkpoint, "mlp", data.input_shape, data.num_classes)
    load = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="bench_score_job_") as scratch:
        started = time.perf_counter()
        extract_activations(
            model, data.train_images, data.test_images, Path(scratch), dtype="float32", batch_size=1000, device="cpu"
        )
        extract = time.perf_counter() - started
        started = time.perf_counter()
        identity = {**run_identity("mlp-mnist", rate, 0), "epoch": int(checkpoint.stem.split("_")[-1])}
        frame = score_checkpoint(checkpoint, scratch, data, "mlp", 0.99, identity, device="cpu", probes=probes)
        score = time.perf_counter() - started
    masc = frame[(frame["probe"] == "masc") & (frame["split"] == "test")]
    per_layer = {
        row.layer: {"fit_seconds": float(row.fit_seconds), "n_components": float(row.n_components)}
        for row in masc.itertuples()
    }
    result = {"imports": imports, "load": load, "extract": extract, "score": score, "masc": per_layer}
    result["threads"] = torch.get_num_threads()
    out.write_text(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, action="append", required=True, help="early first, late last")
    parser.add_argument("--labels", type=Path)
    parser.add_argument("--prepared", type=Path, default=REPO / "resources" / "datasets" / "mnist")
    parser.add_argument("--probes", default="masc,velpic")
    parser.add_argument("--solver", default="auto", choices=("auto", "legacy", "dense"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    probes = args.probes.split(",")
    if args.child_out:
        child(args.checkpoint[0], args.labels, args.prepared, probes, args.solver, args.child_out)
        return
    load_before = os.getloadavg()[0]
    runs: dict[Path, list[dict]] = {path: [] for path in args.checkpoint}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for path in args.checkpoint:
                out = Path(scratch) / f"{repeat}_{path.stem}.json"
                command = [sys.executable, __file__, "--checkpoint", str(path), "--prepared", str(args.prepared)]
                command += ["--probes", args.probes, "--solver", args.solver, "--child-out", str(out)]
                command += ["--labels", str(args.labels)] if args.labels else []
                started = time.perf_counter()
                subprocess.run(command, check=True, cwd=REPO)
                found = json.loads(out.read_text())
                found["process"] = time.perf_counter() - started
                runs[path].append(found)
                layers = ", ".join(
                    f"{layer} {m['fit_seconds']:.1f} s / k {m['n_components']:.0f}"
                    for layer, m in found["masc"].items()
                )
                print(
                    f"{path.stem}: process {found['process']:.1f} s (imports {found['imports']:.1f}, data and model "
                    f"{found['load']:.1f}, extraction {found['extract']:.1f}, scoring {found['score']:.1f}); "
                    f"MASC fit, mean components per class: {layers}",
                    flush=True,
                )
    work = {path: statistics.median(r["extract"] + r["score"] for r in found) for path, found in runs.items()}
    whole = {path: statistics.median(r["process"] for r in found) for path, found in runs.items()}
    early, late = args.checkpoint[0], args.checkpoint[-1]
    print(
        f"extraction + scoring (median): {early.stem} {work[early]:.1f} s, {late.stem} {work[late]:.1f} s; whole "
        f"process {whole[early]:.1f} / {whole[late]:.1f} s ({whole[late] / whole[early]:.2f}x); probes {args.probes}, "
        f"solver {args.solver}, torch threads {runs[early][0]['threads']}; load average (1 min) before/after "
        f"{load_before:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    )
    print(f"late / early score job: {work[late] / work[early]:.2f}x")


if __name__ == "__main__":
    main()

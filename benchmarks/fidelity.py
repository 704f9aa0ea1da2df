"""Full-scale fidelity check (issue 11): latentgen trained as the authors' code did, against their runs.

Runs the pipeline on config/fidelity.yaml (the paper's MLP, all 60,000 MNIST images, 80 % corruption,
seed 0, 10 epochs, the authors' input scaling, order and stop rule) and prints, per checkpoint, the
test accuracy of the model, MASC and VeLPIC on every layer, and the transfer (bias zeroed and kept).
The authors' model test accuracies (their three runs of the seed repository's MLP-MNIST trainer, as
measured for issue 11) are printed beside the model's.

    .venv/bin/python benchmarks/fidelity.py [--cores 2] [--no-run]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config" / "fidelity.yaml"
SCORES = ROOT / "results" / "fidelity" / "scores.parquet"
FRAGMENTS = ROOT / "results" / "fidelity" / "scores" / "mlp-mnist" / "c80" / "s0"
# The authors' three runs at 80 %: the model's test accuracy after epochs 1, 2, 4 and 10 (min, max).
AUTHORS_MODEL_TEST = {1: (0.55, 0.56), 2: (0.73, 0.75), 4: (0.85, 0.86), 10: (0.89, 0.89)}
# The authors' MASC test accuracy (%) of their Run_1 at 80 %, per (epoch, layer): the class-wise accuracies
# they published (seed repository, MASC_during_training/angle_results/MNIST_MLP/results_0.8/angle_results/
# Run_1/<epoch>/layer_<layer>_acc_classwise_test.csv) weighted by MNIST's test class sizes.
AUTHORS_MASC_RUN1 = {
    (1, "fc1"): 62.4,
    (1, "fc4"): 85.0,
    (4, "fc1"): 68.5,
    (4, "fc4"): 92.4,
    (10, "fc1"): 71.1,
    (10, "fc2"): 90.8,
    (10, "fc3"): 93.5,
    (10, "fc4"): 93.2,
}


def run_pipeline(cores: int) -> None:
    command = [sys.executable, "-m", "snakemake", "--configfile", str(CONFIG), "--cores", str(cores)]
    subprocess.run(command, cwd=ROOT, check=True)


def accuracy_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per checkpoint epoch, one column per probe and layer (test accuracy, %): the model, then
    MASC, VeLPIC, the transfer (every layer it was scored on) and the transfer with its bias kept."""
    test = scores[scores.split == "test"].copy()
    test["column"] = test.probe.where(test.probe == "model", test.probe + ":" + test.layer)
    table = test.pivot_table(index="epoch", columns="column", values="accuracy", aggfunc="mean")
    ordered = ["model"] + [
        column
        for probe in ("masc", "velpic", "transfer", "transfer_bias")
        for column in sorted(c for c in table.columns if c.split(":")[0] == probe)
    ]
    return (100 * table[ordered]).round(1)


def authors_column(epochs: pd.Index) -> list[str]:
    return [
        f"{100 * AUTHORS_MODEL_TEST[e][0]:.0f}-{100 * AUTHORS_MODEL_TEST[e][1]:.0f}" if e in AUTHORS_MODEL_TEST else ""
        for e in epochs
    ]


def masc_comparison(table: pd.DataFrame) -> list[str]:
    """Lines 'epoch layer: ours / authors' Run_1' for every MASC value both have."""
    lines = []
    for (epoch, layer), theirs in AUTHORS_MASC_RUN1.items():
        column = f"masc:{layer}"
        if epoch in table.index and column in table.columns:
            ours = table.loc[epoch, column]
            lines.append(
                f"MASC epoch {epoch:2d} {layer}: ours {ours:5.1f} %, authors' Run_1 {theirs:5.1f} % "
                f"({ours - theirs:+.1f})"
            )
    return lines


def load_scores() -> pd.DataFrame:
    """The aggregated scores, or the per-checkpoint fragments of a run whose aggregation has not run."""
    if SCORES.exists():
        return pd.read_parquet(SCORES)
    return pd.concat([pd.read_parquet(path) for path in sorted(FRAGMENTS.glob("epoch_*.parquet"))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--no-run", action="store_true", help="only print the table of an earlier run")
    args = parser.parse_args()
    if not args.no_run:
        run_pipeline(args.cores)
    table = accuracy_table(load_scores())
    table.insert(1, "authors_model", authors_column(table.index))
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string())
    print("\n".join(masc_comparison(table)))
    final = table.index.max()
    last_transfer = [c for c in table.columns if c.startswith("transfer:")][-1]
    print(
        f"epoch {final}: model {table.loc[final, 'model']} % (authors "
        f"{table.loc[final, 'authors_model'] or 'n/a'} %), {last_transfer} {table.loc[final, last_transfer]} %"
    )


if __name__ == "__main__":
    main()

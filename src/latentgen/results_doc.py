"""docs/results.md from a finished scores table: final-epoch numbers per pair, rate and layer.

    python -m latentgen.results_doc results/quickstart/scores.parquet docs/results.md "make quickstart"
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from latentgen.figures import final_epoch_summary
from latentgen.fileio import atomic_path, read_parquet


def _percent(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.1f}"


def _table(summary: pd.DataFrame) -> list[str]:
    lines = ["| pair | corruption % | seed | final epoch | layer | model | MASC | VeLPIC | transfer | best probe − model |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in summary.itertuples():
        best = max(row.masc_test_accuracy, row.velpic_test_accuracy)
        lines.append(
            f"| {row.pair} | {row.corruption} | {row.seed} | {row.final_epoch} | {row.layer} | "
            f"{_percent(row.model_test_accuracy)} | {_percent(row.masc_test_accuracy)} | "
            f"{_percent(row.velpic_test_accuracy)} | {_percent(row.transfer_test_accuracy)} | "
            f"{100 * (best - row.model_test_accuracy):+.1f} |")
    return lines


def results_markdown(scores: pd.DataFrame, command: str) -> str:
    summary = final_epoch_summary(scores)
    header = [
        "# Results",
        "",
        f"Final-epoch **test accuracy (%)** of every run, produced by `{command}`",
        "(regenerate this page: `python -m latentgen.results_doc <scores.parquet> docs/results.md \"<command>\"`).",
        "Probes are fitted on the corrupted training labels; test accuracy is against the true test labels.",
        "*transfer* is the model with its pre-softmax weights replaced by the VeLPIC vectors of the last layer.",
        "",
    ]
    return "\n".join(header + _table(summary)) + "\n"


def main(argv: list[str]) -> None:
    scores_path, out, command = argv[1], argv[2], argv[3]
    text = results_markdown(read_parquet(scores_path, what="scores table"), command)
    with atomic_path(Path(out)) as tmp:
        tmp.write_text(text)


if __name__ == "__main__":
    main(sys.argv)

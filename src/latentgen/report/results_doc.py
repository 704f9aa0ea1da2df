"""docs/results.md from a finished scores table: final-epoch numbers per pair, rate and layer, and the claims.

    python -m latentgen.report.results_doc results/quickstart/scores.parquet docs/results.md "make quickstart" \
        [results/quickstart/claims.csv]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from latentgen.report.claims import split_edited_runs
from latentgen.report.summary import final_epoch_summary
from latentgen.common.fileio import atomic_path, read_parquet


def _percent(value: float) -> str:
    return "" if pd.isna(value) else f"{100 * value:.1f}"


def _table(summary: pd.DataFrame) -> list[str]:
    lines = [
        "| pair | corruption % | seed | final epoch | layer | model | MASC | VeLPIC | transfer | best probe − model |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary.itertuples():
        best = max(row.masc_test_accuracy, row.velpic_test_accuracy)
        lines.append(
            f"| {row.pair} | {row.corruption} | {row.seed} | {row.final_epoch} | {row.layer} | "
            f"{_percent(row.model_test_accuracy)} | {_percent(row.masc_test_accuracy)} | "
            f"{_percent(row.velpic_test_accuracy)} | {_percent(row.transfer_test_accuracy)} | "
            f"{100 * (best - row.model_test_accuracy):+.1f} |"
        )
    return lines


# How a claim's value and reference read in the table, by unit.
UNIT_FORMATS = {"pp": "{:.2f} pp", "%": "{:.2f} %", "nats": "{:.3f} nats", "layers": "{:g}"}


def _claim_number(value: float, unit: str) -> str:
    return "" if pd.isna(value) else UNIT_FORMATS.get(unit, "{:g}").format(value)


def _claim_runs(row: pd.Series) -> str:
    return f"mean of {row.n_seeds}" if pd.isna(row.seed) else f"seed {int(row.seed)}"


def _cell(text: object) -> str:
    """Table cell text: a criterion such as "max |transfer - VeLPIC|" must not split its row."""
    return "" if pd.isna(text) else str(text).replace("|", "\\|")


def claims_markdown(claims: pd.DataFrame) -> str:
    """The claims table (``report.claims.claims_table`` or claims.csv read back) as Markdown, one line each."""
    held = int((claims["holds"] == "yes").sum())
    lines = [
        f"{held} of {len(claims)} claims hold (criteria on seed means of the test accuracy, each stopped "
        "run counted with its final values up to its setting's last epoch; run_learned is per run).",
        "",
        "| pair | corruption % | runs | claim | subject | layer | epoch | value | reference | criterion | "
        "detail | holds |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in claims.itertuples(index=False):
        epoch = "" if pd.isna(row.epoch) else int(row.epoch)
        lines.append(
            f"| {row.pair} | {row.corruption} | {_claim_runs(row)} | {row.claim} | {row.subject} | "
            f"{row.layer} | {epoch} | {_claim_number(row.value, row.unit)} | "
            f"{_claim_number(row.reference, row.unit)} | {_cell(row.criterion)} | {_cell(row.detail)} | "
            f"{row.holds} |"
        )
    return "\n".join(lines) + "\n"


def results_markdown(scores: pd.DataFrame, command: str, claims: pd.DataFrame | None = None) -> str:
    standard, _ = split_edited_runs(scores)  # the final-epoch table is of standard training; edits are claims rows
    summary = final_epoch_summary(standard)
    header = [
        "# Results",
        "",
        f"Final-epoch **test accuracy (%)** of every run, produced by `{command}`",
        '(regenerate this page: `latentgen results-page <scores.parquet> docs/results.md "<command>"`).',
        "Probes are fitted on the corrupted training labels; test accuracy is against the true test labels.",
        "*transfer* is the model with its pre-softmax weights replaced by the VeLPIC vectors of the last layer.",
        "",
    ]
    text = "\n".join(header + _table(summary)) + "\n"
    if claims is not None:
        text += "\n## Claims\n\n" + claims_markdown(claims)
    return text


# Everything from this line on in docs/results.md is written by hand (measurements of other commands) and
# survives a regeneration of the page.
HAND_WRITTEN_MARKER = "<!-- hand-written below: kept when this page is regenerated -->"


def hand_written_part(path: Path) -> str:
    """The page's hand-written tail (from the marker on), or nothing."""
    text = path.read_text() if path.exists() else ""
    return text[text.index(HAND_WRITTEN_MARKER) :] if HAND_WRITTEN_MARKER in text else ""


def main(argv: list[str]) -> None:
    scores_path, out, command = argv[1], Path(argv[2]), argv[3]
    claims = pd.read_csv(argv[4]) if len(argv) > 4 else None
    text = results_markdown(read_parquet(scores_path, what="scores table"), command, claims)
    tail = hand_written_part(out)
    with atomic_path(out) as tmp:
        tmp.write_text(text + ("\n" + tail if tail else ""))


if __name__ == "__main__":
    main(sys.argv)

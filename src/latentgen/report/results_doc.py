"""docs/results.md from a finished scores table: final-epoch numbers per pair, rate and layer, and the claims.

    latentgen results-page --scores results/quickstart/scores.parquet --claims results/quickstart/claims.csv \
        --out docs/results.md --command "make quickstart"
    (or python -m latentgen.report.results_doc with the same options)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from latentgen.report.label_issue_tables import label_issue_markdown, retrained_markdown
from latentgen.report.claims import read_claims, split_edited_runs
from latentgen.scoring.selection import is_candidate
from latentgen.report.claims.glossary import GLOSSARY
from latentgen.report.summary import final_epoch_summary
from latentgen.common.fileio import DamagedFileError, atomic_path, read_parquet


def _percent(value: float | None) -> str:
    return "" if value is None or pd.isna(value) else f"{100 * value:.1f}"


def _best_probe(row: pd.Series) -> tuple[str, float]:
    """The row's best probe fitted on the corrupted labels (its name, test accuracy); the held-out choice's row has
    only its own. Oracles on the true labels (``*_true``) and the model and transfers are not probes of the task."""
    scores = {
        column.removesuffix("_test_accuracy"): value
        for column, value in row.items()
        if column.endswith("_test_accuracy") and pd.notna(value) and is_candidate(column.removesuffix("_test_accuracy"))
    }
    if not scores:
        return "", float("nan")
    name = max(scores, key=scores.get)
    return name, float(scores[name])


def _table(summary: pd.DataFrame) -> list[str]:
    lines = [
        "| pair | corruption % | seed | final epoch | layer | model | MASC | VeLPIC | transfer | best probe "
        "| best − model |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for _, row in summary.iterrows():
        name, best = _best_probe(row)
        if row["layer"] and ":" in str(row["layer"]):  # the held-out choice's line
            name, best = "the held-out choice", row.get("selected_test_accuracy", float("nan"))
        gap = "" if pd.isna(best) else f"{100 * (best - row['model_test_accuracy']):+.1f}"
        lines.append(
            f"| {row['pair']} | {row['corruption']} | {row['seed']} | {row['final_epoch']} | {row['layer']} | "
            f"{_percent(row['model_test_accuracy'])} | {_percent(row.get('masc_test_accuracy'))} | "
            f"{_percent(row.get('velpic_test_accuracy'))} | {_percent(row.get('transfer_test_accuracy'))} | "
            f"{name} {_percent(best)} | {gap} |"
        )
    return lines


# How a claim's value and reference read in the table, by unit.
UNIT_FORMATS = {"pp": "{:.2f} pp", "%": "{:.2f} %", "nats": "{:.3f} nats", "layers": "{:g}"}
# Decimals of a value with its interval: one for points; an AUPRC difference lives in [-1, 1], where one
# decimal would print "+0.1 [+0.1, +0.1]" for differences of 0.06 to 0.14.
INTERVAL_DECIMALS = {"AUPRC difference": 3}


def _claim_number(value: float, unit: str) -> str:
    return "" if pd.isna(value) else UNIT_FORMATS.get(unit, "{:g}").format(value)


def _claim_runs(row: pd.Series) -> str:
    return f"mean of {row.n_seeds}" if pd.isna(row.seed) else f"seed {int(row.seed)}"


def _cell(text: object) -> str:
    """Table cell text: a criterion such as "max |transfer - VeLPIC|" must not split its row."""
    return "" if pd.isna(text) else str(text).replace("|", "\\|")


OUTCOMES = ("holds", "fails", "inconclusive", "n/a")


def _interval(row) -> str:
    """``+3.1 [+1.2, +5.0] pp``: the tested value and its 95 % interval, in the row's unit."""
    if pd.isna(row.value):
        return ""
    if pd.isna(row.ci_low) or (row.ci_low == row.ci_high == row.value):
        return _claim_number(row.value, row.unit)
    decimals = INTERVAL_DECIMALS.get(row.unit, 1)
    return f"{row.value:+.{decimals}f} [{row.ci_low:+.{decimals}f}, {row.ci_high:+.{decimals}f}] {row.unit}"


def _setting(row) -> str:
    return f"{row.pair} c{row.corruption} ({100 * row.wrong_label_fraction:.0f} % wrong)"


def compact_claims(claims: pd.DataFrame) -> list[str]:
    """One line per claim and setting: its outcome and its value with the 95 % interval."""
    lines = ["| setting | claim | layer | value [95 % interval] | outcome |", "| --- | --- | --- | --- | --- |"]
    for row in claims.itertuples(index=False):
        if row.claim == "run_learned" and row.outcome == "holds":
            continue  # one line per run that learned adds nothing at a glance: the failures are shown
        lines.append(f"| {_setting(row)} | {row.claim} | {row.layer} | {_interval(row)} | **{row.outcome}** |")
    return lines


def claims_markdown(claims: pd.DataFrame) -> str:
    """The claims table (``report.claims.claims_table`` or claims.csv read back) as Markdown: the counts, a compact
    view (claim x setting with its outcome), the glossary of claim ids, then every row in detail."""
    counts = claims["outcome"].value_counts()
    summary = ", ".join(f"{int(counts.get(outcome, 0))} {outcome}" for outcome in OUTCOMES)
    lines = [
        f"{len(claims)} claims: {summary}. Each value is the quantity its criterion tests (test accuracies in "
        "percentage points, seed means), with a 95 % interval from the test images (paired per image where two "
        "classifiers are compared) and the seeds; *inconclusive*: the interval straddles the threshold; *n/a*: "
        "the claim's premise is absent (the detail says why). `epoch` is the epoch the value is read at "
        "(a peak epoch for the falls-from-peak claims, else the final epoch); `layer` a probed layer, `output` "
        "for the model, `all` for a claim over layers, `chosen` for the held-out choice.",
        "",
        *compact_claims(claims),
        "",
        "### Claim ids",
        "",
        *[f"- `{claim}`: {text}" for claim, text in GLOSSARY.items() if claim in set(claims["claim"])],
        "",
        "### Every row",
        "",
        "| setting | runs | claim | subject | layer | epoch | value [95 % interval] | reference | criterion | "
        "detail | outcome |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in claims.itertuples(index=False):
        epoch = "" if pd.isna(row.epoch) else int(row.epoch)
        lines.append(
            f"| {_setting(row)} | {_claim_runs(row)} | {row.claim} | {row.subject} | {row.layer} | {epoch} | "
            f"{_interval(row)} | {_claim_number(row.reference, row.unit)} | {_cell(row.criterion)} | "
            f"{_cell(row.detail)} | {row.outcome} |"
        )
    return "\n".join(lines) + "\n"


def results_markdown(
    scores: pd.DataFrame,
    command: str,
    claims: pd.DataFrame | None = None,
    label_issues: pd.DataFrame | None = None,
    retrained: pd.DataFrame | None = None,
) -> str:
    standard, _ = split_edited_runs(scores)  # the final-epoch table is of standard training; edits are claims rows
    summary = final_epoch_summary(standard)
    header = [
        "# Results",
        "",
        f"Final-epoch **test accuracy (%)** of every run, produced by `{command}`",
        "(regenerate this page: `latentgen results-page --scores <scores.parquet> --claims <claims.csv> "
        '--out docs/results.md --command "<command>"`).',
        "Probes are fitted on the corrupted training labels; test accuracy is against the true test labels.",
        "*transfer* is the model with its pre-softmax weights replaced by the VeLPIC vectors of the last layer.",
        "",
    ]
    text = "\n".join(header + _table(summary)) + "\n"
    if label_issues is not None and label_issue_markdown(label_issues):
        text += "\n## Which training labels are wrong\n\n" + label_issue_markdown(label_issues)
    if retrained is not None and retrained_markdown(retrained):
        text += "\n## Retrained without the flagged labels\n\n" + retrained_markdown(retrained)
    if claims is not None:
        text += "\n## Claims\n\n" + claims_markdown(claims)
    return text


def label_issue_outputs(scores_path: Path) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The label-issue metrics and the retrain-comparison tables the workflow writes beside scores.parquet
    (``label_issue_metrics.parquet``, ``retrained/``), each None when absent."""
    metrics_path = scores_path.parent / "label_issue_metrics.parquet"
    metrics = read_parquet(metrics_path, what="label-issue metrics") if metrics_path.is_file() else None
    tables = sorted((scores_path.parent / "retrained").glob("**/*.parquet"))
    retrained = (
        pd.concat([read_parquet(path, what="retrain-comparison table") for path in tables], ignore_index=True)
        if tables
        else None
    )
    return metrics, retrained


# Everything from this line on in docs/results.md is written by hand (measurements of other commands) and
# survives a regeneration of the page.
HAND_WRITTEN_MARKER = "<!-- hand-written below: kept when this page is regenerated -->"


def hand_written_part(path: Path) -> str:
    """The page's hand-written tail (from the marker on), or nothing."""
    text = path.read_text() if path.exists() else ""
    return text[text.index(HAND_WRITTEN_MARKER) :] if HAND_WRITTEN_MARKER in text else ""


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = (
        "Regenerate the results page (docs/results.md) from a finished scores table: the final-epoch test accuracy "
        "of every run and layer, the label-issue metrics and the retrained-on-clean comparison when the workflow "
        "wrote them beside the scores table, and the claims table. The page's hand-written part (from its marker "
        "line on) is kept."
    )
    parser.add_argument(
        "--scores", type=Path, required=True, help="the scores table, e.g. results/quickstart/scores.parquet"
    )
    parser.add_argument(
        "--claims",
        type=Path,
        help="the claims table (default: claims.csv beside the scores table, when there is one); the page's Claims "
        "section comes from it",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/results.md"), help="the page (default: docs/results.md)")
    parser.add_argument(
        "--command", required=True, help='what produced the scores, quoted on the page, e.g. "make quickstart"'
    )
    return parser


def claims_path(args: argparse.Namespace) -> Path | None:
    """--claims, else the claims.csv the workflow writes beside scores.parquet (None: there is none)."""
    if args.claims is not None:
        return args.claims
    beside = args.scores.parent / "claims.csv"
    return beside if beside.is_file() else None


def write_page(scores_path: Path, out: Path, command: str, claims_file: Path | None) -> None:
    claims = read_claims(claims_file) if claims_file is not None else None
    label_issues, retrained = label_issue_outputs(scores_path)
    text = results_markdown(read_parquet(scores_path, what="scores table"), command, claims, label_issues, retrained)
    tail = hand_written_part(out)
    with atomic_path(out) as tmp:
        tmp.write_text(text + ("\n" + tail if tail else ""))


def handle(args: argparse.Namespace, prog: str) -> int:
    """Write the page; a missing or damaged input is one line on stderr and exit status 2."""
    claims_file = claims_path(args)
    try:
        write_page(args.scores, args.out, args.command, claims_file)
    except (FileNotFoundError, DamagedFileError, pd.errors.ParserError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.out}"
        + (f" (claims from {claims_file})" if claims_file else " (no claims table: no Claims section)")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m latentgen.report.results_doc``: the same as ``latentgen results-page``."""
    prog = "python -m latentgen.report.results_doc"
    return handle(add_arguments(argparse.ArgumentParser(prog=prog)).parse_args(argv), prog)


if __name__ == "__main__":
    sys.exit(main())

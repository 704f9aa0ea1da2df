"""Compare two results folders of the same config: scores row by row, the summary and claims tables, PDFs by bytes.

    python scripts/compare_results.py results-before/ results-after/

Used to check that a change which only moves code changes no result (prints each difference; exit 1 if any).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

KEYS = ["pair", "corruption", "seed", "edit_epoch", "epoch", "layer", "probe", "split"]
TIMING_COLUMNS = {"fit_seconds"}  # wall-clock time: differs from run to run by nature


def compare_scores(before: Path, after: Path) -> list[str]:
    old, new = pd.read_parquet(before / "scores.parquet"), pd.read_parquet(after / "scores.parquet")
    keys = [key for key in KEYS if key in old.columns]
    shared = [c for c in old.columns if c in new.columns and c not in TIMING_COLUMNS]
    old = old[shared].sort_values(keys, kind="stable").reset_index(drop=True)
    new = new[shared].sort_values(keys, kind="stable").reset_index(drop=True)
    if len(old) != len(new):
        return [f"scores: {len(old)} rows before, {len(new)} after"]
    problems = []
    for column in shared:
        differs = ~((old[column] == new[column]) | (old[column].isna() & new[column].isna()))
        if differs.any():
            problems.append(f"scores.{column}: {int(differs.sum())} of {len(old)} rows differ")
    return problems


def compare_csv(before: Path, after: Path, name: str) -> list[str]:
    # keep_default_na=False: the claims' outcome "n/a" is a value, not a missing one
    old, new = (pd.read_csv(folder / name, keep_default_na=False) for folder in (before, after))
    if old.equals(new):
        return []
    return [f"{name}: differs ({len(old)} rows before, {len(new)} after)"]


def compare_pdfs(before: Path, after: Path) -> list[str]:
    problems = []
    for old in sorted((before / "figures").glob("*.pdf")):
        new = after / "figures" / old.name
        if not new.exists():
            problems.append(f"figures/{old.name}: missing after")
        elif old.read_bytes() != new.read_bytes():
            problems.append(f"figures/{old.name}: bytes differ")
    return problems


def main(argv: list[str]) -> int:
    before, after = Path(argv[1]), Path(argv[2])
    problems = compare_scores(before, after)
    problems += compare_csv(before, after, "summary.csv") + compare_csv(before, after, "claims.csv")
    problems += compare_pdfs(before, after)
    n_pdfs = len(list((before / "figures").glob("*.pdf")))
    print("\n".join(problems) if problems else f"identical: scores row by row, summary, claims, {n_pdfs} PDFs by bytes")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

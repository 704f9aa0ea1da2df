"""README.md stays true: its table of figures is the one figure_specs and config/quickstart.yaml give, the
quick-start config's comment names the figures it builds, and every `latentgen` subcommand is documented."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from latentgen import cli
from latentgen.config import check_config
from latentgen.report.figure_specs import ALL_RATES, FIGURES, PAIR_GROUPS, figure_pairs_and_rates

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
QUICKSTART = REPO / "config" / "quickstart.yaml"
TABLE_HEADER = "| figure | what it shows | pairs | rates (%) | the quick-start builds it |"


def _rates(rates: tuple[int, ...] | list[int]) -> str:
    return "0-100 in steps of 20" if tuple(rates) == ALL_RATES else ", ".join(str(rate) for rate in rates)


def _quickstart_cell(number: int, quickstart: dict) -> str:
    spec = FIGURES[number]
    edited = [pair for pair, settings in quickstart["pairs"].items() if settings.get("edits")]
    pairs, rates = figure_pairs_and_rates(number, list(quickstart["pairs"]), quickstart["corruption"], edited)
    if not pairs:
        return "no: it has no edited runs" if spec.needs_edits else f"no: it has no {spec.pair_group} pair"
    if number not in quickstart["figures"]["numbers"]:
        return "no: not in its figures.numbers"
    return "yes" if list(rates) == list(spec.rates) else f"yes, at {_rates(rates)} only"


def expected_figure_rows(quickstart: dict) -> list[str]:
    """The README's figure table, row by row, from the figure specs and the quick-start config."""
    rows = []
    for number in range(1, max(FIGURES) + 1):
        if number not in FIGURES:
            rows.append(f"| {number} | does not exist (the number is left free) | | | |")
            continue
        spec = FIGURES[number]
        pairs = "those with edits" if spec.needs_edits else spec.pair_group
        rows.append(
            f"| {number} | {spec.title} | {pairs} | {_rates(spec.rates)} | {_quickstart_cell(number, quickstart)} |"
        )
    return rows


def _quickstart() -> dict:
    return check_config(yaml.safe_load(QUICKSTART.read_text()))


def test_the_figure_table_is_computed_from_the_figure_specs():
    text = README.read_text()
    assert TABLE_HEADER in text, f"README.md has no figure table headed {TABLE_HEADER}"
    lines = text.split(TABLE_HEADER, 1)[1].splitlines()[2:]  # after the header's separator row
    table = [line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("|"))]]
    expected = expected_figure_rows(_quickstart())
    assert table == expected, "README.md's figure table should read:\n" + "\n".join(expected)


def test_the_pair_groups_are_named_as_figure_specs_has_them():
    text = README.read_text()
    for group, pairs in PAIR_GROUPS.items():
        if group != "all":
            assert f"*{group}*: {', '.join(pairs)}" in text, group


def test_the_quickstart_config_names_the_figures_it_builds():
    quickstart = _quickstart()
    built = [n for n in quickstart["figures"]["numbers"] if _quickstart_cell(n, quickstart).startswith("yes")]
    match = re.search(r"Built: those showing these pairs at these rates,\n\s*#\s*([\d, ]+)", QUICKSTART.read_text())
    assert match and [int(n) for n in match.group(1).replace(" ", "").strip(",").split(",")] == built, built


def test_every_subcommand_is_documented():
    text = README.read_text()
    for command in cli.SUBCOMMANDS:
        assert f"latentgen {command.name}" in text, command.name

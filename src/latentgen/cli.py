"""The ``latentgen`` console command (``[project.scripts]`` in pyproject.toml): one subcommand per job a user runs
outside Snakemake.

    latentgen repair CHECKPOINT --out DIR ...      repair a model trained on noisy labels (latentgen.repair)
    latentgen stale [snakemake options]            what snakemake would rerun, and why (latentgen.stale)
    latentgen training-code [--record [--bump]]    check or record the training code (latentgen.common.fingerprint)
    latentgen results-page --scores ... --out ...  regenerate docs/results.md (latentgen.report.results_doc)
    latentgen label-issues CHECKPOINT --out DIR    flag wrong training labels (latentgen.find_label_issues)

Each subcommand's module has ``add_arguments(parser)`` and ``handle(args, prog) -> int``.  The heavy ones are
imported only when their subcommand is asked for, so ``latentgen --help`` stays fast: no torch, pandas, sklearn
or cleanlab on its path.
The ``python -m`` forms of the same modules take the same arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from latentgen import stale
from latentgen.common import fingerprint


def _repair() -> ModuleType:
    from latentgen import repair  # on use only: keeps torch out of `latentgen --help`

    return repair


def _label_issues() -> ModuleType:
    from latentgen import find_label_issues  # on use only: keeps torch and cleanlab out of `latentgen --help`

    return find_label_issues


def _results_page() -> ModuleType:
    from latentgen.report import results_doc  # on use only: keeps pandas out of `latentgen --help`

    return results_doc


@dataclass(frozen=True)
class Subcommand:
    name: str
    load: Callable[[], ModuleType]  # the module with add_arguments and handle
    summary: str
    forwards_unknown: bool = False  # passes the options it does not know on to another program (stale: snakemake)


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("repair", _repair, "repair a model trained on noisy labels (no clean labels needed)"),
    Subcommand(
        "stale",
        lambda: stale,
        "list what snakemake would rerun and why (which code changed), without running anything",
        forwards_unknown=True,
    ),
    Subcommand(
        "training-code",
        lambda: fingerprint,
        "check or record the training code's fingerprint (workflow/training_code.json)",
    ),
    Subcommand("results-page", _results_page, "regenerate the results page (docs/results.md) from a scores table"),
    Subcommand("label-issues", _label_issues, "flag the training labels that are probably wrong, by a model's layers"),
)


def subcommand(name: str) -> Subcommand:
    return next(command for command in SUBCOMMANDS if command.name == name)


def _named(argv: list[str]) -> str | None:
    """The subcommand ``argv`` names: its first word that is not an option (the top level has no valued option)."""
    first_word = next((word for word in argv if not word.startswith("-")), None)
    return first_word if first_word in {command.name for command in SUBCOMMANDS} else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser, with the arguments of the subcommand ``argv`` names: only that subcommand's module is imported."""
    chosen = _named(argv or [])
    parser = argparse.ArgumentParser(
        prog="latentgen", description="latentgen's command-line tools; `latentgen COMMAND --help` for one of them."
    )
    subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="COMMAND")
    for command in SUBCOMMANDS:
        subparser = subparsers.add_parser(command.name, help=command.summary, description=command.summary)
        subparser.set_defaults(forwards_unknown=command.forwards_unknown)
        if command.name == chosen:
            command.load().add_arguments(subparser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    named = _named(argv)
    own, after_dashes = argv, []
    if named and subcommand(named).forwards_unknown:  # what follows `--` is the other program's, as given
        own, after_dashes = subcommand(named).load().split_forwarded(argv)
    args, unknown = parser.parse_known_args(own)
    if unknown and not args.forwards_unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.forwarded = unknown + after_dashes  # stale's snakemake options, in their order
    return subcommand(args.subcommand).load().handle(args, f"latentgen {args.subcommand}")


if __name__ == "__main__":
    sys.exit(main())

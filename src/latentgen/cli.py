"""The ``latentgen`` console command (``[project.scripts]`` in pyproject.toml): one subcommand per tool.

latentgen repair CHECKPOINT --out DIR ...   (see ``latentgen.repair``)
"""

from __future__ import annotations

import argparse
import sys

from latentgen import repair


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latentgen", description="latentgen's command-line tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    repair.add_arguments(commands.add_parser("repair", help="repair a model trained on noisy labels"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return repair.handle(args, f"latentgen {args.command}")


if __name__ == "__main__":
    sys.exit(main())

"""`make stale`: what a `snakemake` run would redo and why, stage by stage, without running anything.

It reads a dry run (`snakemake -n`): each planned job's rule, outputs and reasons.  A stage's code
fingerprint is one of its params (latentgen.common.fingerprint), so Snakemake's reason "Params have changed"
carries the fingerprints the finished job was made with and the current ones; comparing them per source
file names the modules whose code changed.

    latentgen stale [snakemake options, e.g. --configfile config/quickstart.yaml]
    python -m latentgen.stale [the same]

Options it does not know go to ``snakemake -n``; ``--help`` is its own and never runs a plan.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

JOB_HEADER = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):$")
FIELD = re.compile(r"^    (\w+): (.*)$")
PARAMS_REASON = "Params have changed since last execution: "
CODE_PARAM = re.compile(r"\{'stage': [^{}]*\}")  # the `code` param's repr: a flat dict (fingerprint.stage_code)
UPSTREAM_REASON = "Input files updated by another job: "


@dataclass
class PlannedJob:
    rule: str
    output: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def planned_jobs(dry_run: str) -> list[PlannedJob]:
    """The jobs a dry run's output lists, in its order (the summary table at the end is not a job)."""
    jobs: list[PlannedJob] = []
    for line in dry_run.splitlines():
        if header := JOB_HEADER.match(line):
            jobs.append(PlannedJob(header.group(1)))
        elif jobs and (item := FIELD.match(line)):
            key, value = item.groups()
            if key == "output":
                jobs[-1].output = value.split(", ")
            elif key == "reason":
                jobs[-1].reasons = value.split("; ")
    return [job for job in jobs if job.rule != "all"]


def job_stats(dry_run: str) -> dict[str, int]:
    """A dry run's 'Job stats' table as rule -> job count, the ``total`` row left out; empty when the dry run
    has none (nothing to be done)."""
    counts: dict[str, int] = {}
    if "Job stats:" not in dry_run:
        return counts
    for line in dry_run.split("Job stats:", 1)[1].splitlines():
        match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+(\d+)\s*", line)
        if match:
            if match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
        elif counts and not line.strip():
            break
    return counts


def _code_params(text: str) -> dict[str, str]:
    """The fingerprints in a "before: ..." or "now: ..." part of a params reason (empty: none there)."""
    found = CODE_PARAM.findall(text)
    return ast.literal_eval(found[0]) if found else {}


def _other_params(text: str) -> bool:
    return bool(CODE_PARAM.sub("", text).replace("<nothing exclusive>", "").strip(" ,"))


def params_change(reason: str) -> list[str]:
    """What a "Params have changed" reason means: the source files whose code changed, the training code
    version, and whether config values changed too."""
    before, _, now = reason.split(" before: ", 1)[-1].partition(" now: ")
    old, new = _code_params(before), _code_params(now)
    changed = sorted(name for name in old.keys() | new.keys() if name != "stage" and old.get(name) != new.get(name))
    meanings = []
    if "training_code_version" in changed:
        changed.remove("training_code_version")
        meanings.append(
            f"training code version {old.get('training_code_version')} -> {new.get('training_code_version')}"
        )
    if changed:
        meanings.append(f"code changed in {', '.join(changed)}")
    if _other_params(before) or _other_params(now):
        meanings.append("config values changed")
    return meanings


def why(job: PlannedJob, producers: dict[str, str]) -> list[str]:
    """One job's reasons in short: which code changed, which stage's output it waits for, or Snakemake's own."""
    short = []
    for reason in job.reasons:
        if reason.startswith(PARAMS_REASON):
            short.extend(params_change(reason))
        elif reason.startswith(UPSTREAM_REASON):
            files = reason[len(UPSTREAM_REASON) :].split(", ")
            stages = sorted({producers.get(f, "another job") for f in files})
            short.append(f"follows {', '.join(stages)}")
        else:
            short.append(reason)
    return short


def report(jobs: Iterable[PlannedJob]) -> str:
    jobs = list(jobs)
    if not jobs:
        return "Nothing is stale: snakemake would run no job."
    producers = {output: job.rule for job in jobs for output in job.output}
    stages: dict[str, list[PlannedJob]] = {}
    for job in jobs:
        stages.setdefault(job.rule, []).append(job)
    lines = []
    for stage, stage_jobs in stages.items():
        reasons = sorted({reason for job in stage_jobs for reason in why(job, producers)})
        lines.append(f"{stage}: {len(stage_jobs)} job{'s' * (len(stage_jobs) != 1)} ({'; '.join(reasons)})")
        lines.extend(sorted(f"    {job.output[0] if job.output else '(no output)'}" for job in stage_jobs))
    if "train" in stages:
        lines.append(
            "(the score jobs of retrained runs are planned once training ran: their checkpoints are known only then)"
        )
    return "\n".join(lines)


DESCRIPTION = (
    "What a `snakemake` run would redo and why, stage by stage, without running anything: it reads a dry run "
    "(`snakemake -n`) and names, per stage, the jobs and the modules whose code changed."
)
EPILOG = (
    "Every other option goes to `snakemake -n` as given, e.g. `latentgen stale --configfile config/quickstart.yaml`; "
    "a target after a --configfile file needs `--` before it (`... --configfile config/x.yaml -- results/x/fig3.pdf`)."
)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Only --help is stale's own: the rest are snakemake's options (``forwarded`` by the caller)."""
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.usage = f"{parser.prog} [-h] [snakemake options] [-- targets]"
    parser.allow_abbrev = False  # `--he...` is no --help: every option but -h/--help is snakemake's
    return parser


def split_forwarded(argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` up to a ``--``, and from it on: what follows ``--`` is another program's (snakemake's targets),
    kept as given, ``--`` included (argparse's own handling of ``--`` differs between Python versions)."""
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut:]


def plan(snakemake_args: list[str]) -> int:
    """Print what ``snakemake -n <snakemake_args>`` would run, by stage and reason; snakemake's own status."""
    result = subprocess.run([sys.executable, "-m", "snakemake", "-n", *snakemake_args], capture_output=True, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        return result.returncode
    print(report(planned_jobs(result.stdout + result.stderr)))
    return 0


def handle(args: argparse.Namespace, prog: str) -> int:
    return plan(list(args.forwarded))


def main(argv: list[str] | None = None) -> int:
    """``python -m latentgen.stale``: the same as ``latentgen stale``."""
    own, after_dashes = split_forwarded(sys.argv[1:] if argv is None else list(argv))
    _, forwarded = add_arguments(argparse.ArgumentParser(prog="python -m latentgen.stale")).parse_known_args(own)
    return plan(forwarded + after_dashes)


if __name__ == "__main__":
    sys.exit(main())

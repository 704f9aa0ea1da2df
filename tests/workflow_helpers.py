"""Running real Snakemake on tiny configs: shared by the workflow, reliability and SLURM tests."""

from __future__ import annotations

import ast
import contextlib
import copy
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from latentgen.stale import job_stats

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def tiny_config(datasets_dir: Path | str, **overrides: Any) -> dict[str, Any]:
    """Two real pairs on a few hundred real images for two epochs: the whole DAG in about a minute."""
    config = {
        "results": "results",
        "datasets_dir": str(datasets_dir),
        "device": "cpu",
        "datasets": {"mnist": {"source": "auto"}, "fashion_mnist": {"source": "auto"}},
        "train_subset": {"per_class": 20},
        "test_subset": {"size": 300, "seed": 0},
        "corruption": [0, 80],
        "seeds": [0],
        "label_seed": None,  # each seed its own corruption, so label tables are named after the run's seed
        "pairs": {
            "mlp-mnist": {
                "model": "mlp",
                "dataset": "mnist",
                "optimizer": "sgd",
                "lr": 0.01,
                "momentum": 0.9,
                "batch_size": 32,
                "stop_accuracy": 0.999,
                "max_epochs": 2,
                "checkpoints": {"early_every": 2, "early_until": 2, "late_every": 2, "extra_epochs": []},
            },
            "cnn-fashion_mnist": {
                "model": "cnn",
                "dataset": "fashion_mnist",
                "optimizer": "adam",
                "lr": 0.001,
                "batch_size": 32,
                "normalize": "per_channel",
                "stop_accuracy": 0.991,
                "max_epochs": 2,
                "checkpoints": {"early_every": 2, "early_until": 2, "late_every": 2, "extra_epochs": []},
            },
        },
        "activations": {"dtype": "float32", "keep": True, "batch_size": 500},
        "scoring": {"masc_variance": 0.99},
        "figures": {"numbers": list(range(1, 15)), "style": {"palette": "colorblind"}},
        "compute": {"train": {"threads": 1}, "score": {"threads": 1}},
    }
    return deep_update(config, overrides)


def deep_update(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_update(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def copy_workflow(workdir: Path) -> Path:
    """A private copy of the workflow and of the package, so a test may edit its scripts and its code
    (`snakemake` below runs the copy's package)."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", workdir / "Snakefile")
    shutil.copytree(REPO / "workflow", workdir / "workflow", dirs_exist_ok=True)
    shutil.copytree(REPO / "profiles", workdir / "profiles", dirs_exist_ok=True)
    shutil.copytree(
        REPO / "src", workdir / "src", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    shutil.copy(REPO / "environment.yml", workdir / "environment.yml")
    return workdir


@contextlib.contextmanager
def edited(path: Path, old: str, new: str) -> Iterator[None]:
    """``path`` with its one ``old`` replaced by ``new`` for the duration (then restored, also on failure)."""
    original = path.read_text()
    assert original.count(old) == 1, f"{old!r} is not once in {path}"
    with _rewritten(path, original.replace(old, new)):
        yield


REAL_CHANGE = "_changed = True  # not a comment: the code's syntax tree differs"


@contextlib.contextmanager
def inserted(path: Path, definition: str, line: str) -> Iterator[None]:
    """``line`` as the first line of the body of the top-level function or class ``definition`` (after its
    docstring) for the duration: a change there whatever else the definition holds."""
    original = path.read_text()
    node = next(n for n in ast.parse(original).body if getattr(n, "name", None) == definition)
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):  # after the docstring
        at = first.end_lineno
    else:  # before the first statement, its decorators included
        at = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))]) - 1
    lines = original.splitlines(keepends=True)
    lines.insert(at, " " * first.col_offset + line + "\n")
    with _rewritten(path, "".join(lines)):
        yield


@contextlib.contextmanager
def _rewritten(path: Path, text: str) -> Iterator[None]:
    original = path.read_text()
    path.write_text(text)
    try:
        yield
    finally:
        path.write_text(original)


def write_config(workdir: Path, config: dict[str, Any], name: str = "config.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path,
    config_path: Path,
    *args: str,
    check: bool = True,
    timeout: float = 900,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    command = [
        *SNAKEMAKE,
        "-s",
        str(workdir / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(config_path),
        *args,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    environment["PATH"] = f"{Path(sys.executable).parent}:{environment.get('PATH', '')}"
    # the copy's package first (copy_workflow): what Snakemake fingerprints and its jobs run
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir / "src"), environment.get("PYTHONPATH")]))
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n{result.stdout[-4000:]}\n"
            f"{result.stderr[-8000:]}"
        )
    return result


def planned_jobs(workdir: Path, config_path: Path, *targets: str) -> Counter:
    """What a dry run would execute, as rule -> job count (empty when nothing is to be done)."""
    return plan_of(dry_run(workdir, config_path, *targets))


def dry_run(workdir: Path, config_path: Path, *targets: str) -> str:
    result = snakemake(workdir, config_path, "-n", *targets)
    return result.stdout + result.stderr


def plan_of(dry_run_text: str) -> Counter:
    """The jobs a dry run plans, rule -> count (empty when nothing is to be done)."""
    return Counter(job_stats(dry_run_text))

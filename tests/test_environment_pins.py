"""environment.yml (conda users) installs what pyproject.toml declares: the same packages with the same pins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]


def _pins(requirements: list[str]) -> dict[str, SpecifierSet]:
    """Package name (normalized as pip does) -> its version specifiers, whatever their order or spacing."""
    parsed = [Requirement(text) for text in requirements]
    return {requirement.name.lower().replace("_", "-"): requirement.specifier for requirement in parsed}


def _environment() -> dict:
    return yaml.safe_load((REPO / "environment.yml").read_text())


def _pip_section(environment: dict) -> list[str]:
    return next(entry["pip"] for entry in environment["dependencies"] if isinstance(entry, dict) and "pip" in entry)


def _project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_environment_pins_equal_pyprojects_dependencies():
    pip_lines = _pip_section(_environment())
    packages = [line for line in pip_lines if not line.startswith("-e")]
    assert "-e ." in pip_lines, "environment.yml must install latentgen itself (its console command, its package data)"
    assert _pins(packages) == _pins(_project()["dependencies"])


def test_environments_python_is_one_the_project_supports():
    python = next(entry for entry in _environment()["dependencies"] if str(entry).startswith("python="))
    version = python.split("=", 1)[1]
    assert SpecifierSet(_project()["requires-python"]).contains(version), (version, _project()["requires-python"])

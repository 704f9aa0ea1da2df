"""The config schema ships inside the package: an installed latentgen validates a config without the repository.

(The config checks themselves, key by key, are in tests/test_reliability.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from latentgen import config

REPO = Path(__file__).resolve().parents[1]


def test_the_schema_is_package_data_and_the_only_copy():
    package = Path(config.__file__).resolve().parent
    assert config.SCHEMA_PATH.is_file() and config.SCHEMA_PATH.is_relative_to(package)
    assert "schemas/*.yaml" in (REPO / "pyproject.toml").read_text()  # what setuptools ships (package-data)
    copies = [p for p in REPO.rglob("*.schema.yaml") if not {".venv", ".snakemake"} & set(p.parts)]
    assert copies == [REPO / "src/latentgen/schemas/config.schema.yaml"], copies


@pytest.mark.slow
def test_a_non_editable_install_validates_the_config_outside_the_repository(tmp_path):
    """`pip install .` (not -e) into a fresh virtual environment; from another directory, with no path to the
    repository's sources, latentgen.config validates config.yaml. The fresh environment sees this one's packages
    (torch, jsonschema, ...) through a .pth file, after its own, so nothing is downloaded; ~10 s."""
    project = tmp_path / "project"  # a copy: the build writes build/ and *.egg-info next to the sources
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    ).stdout.strip()
    # plain path lines: the .pth files in those directories (an editable latentgen among them) are not run
    (Path(purelib) / "outer-environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--no-cache-dir",
            "--quiet",
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    shutil.rmtree(project)  # nothing left to import from but the installed package

    check = textwrap.dedent(f"""
        import json, yaml
        import latentgen, latentgen.config
        filled = latentgen.config.check_config(yaml.safe_load(open({str(REPO / "config.yaml")!r})))
        print(json.dumps({{"package": latentgen.__file__, "schema": str(latentgen.config.SCHEMA_PATH),
                          "pairs": sorted(filled["pairs"])}}))
    """)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=120, env=env, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert Path(found["package"]).is_relative_to(purelib), found  # the installed copy, not the repository's
    assert Path(found["schema"]).is_relative_to(purelib) and Path(found["schema"]).is_file()
    assert "mlp-mnist" in found["pairs"]
    with pytest.raises(subprocess.CalledProcessError):  # and the installed check still refuses a bad config
        subprocess.run(
            [python, "-c", "import latentgen.config as c; c.check_config({'results': 'r', 'typo': 1})"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            cwd=elsewhere,
            check=True,
        )


def test_the_retired_extract_stage_is_refused_with_what_replaced_it():
    """An older config's `compute.extract` names the key and says where its settings go now."""
    old = yaml.safe_load((REPO / "config" / "quickstart.yaml").read_text())
    old["compute"]["extract"] = {"threads": 1, "mem_mb": 4000, "runtime": 10}
    with pytest.raises(config.ConfigError, match=r"'compute\.extract'.*'compute\.score'"):
        config.check_config(old)
    del old["compute"]["extract"]
    assert "extract" not in config.check_config(old)["compute"]

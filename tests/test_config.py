"""The config schema ships inside the package: an installed latentgen validates a config without the repository;
a configured pair that no figure shows is warned of.

(The config checks themselves, key by key, are in tests/test_reliability.py.)
"""

from __future__ import annotations

import copy
import io
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
from latentgen.report import figure_specs
from workflow_helpers import copy_workflow, plan_of, snakemake, tiny_config, write_config

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


def _with_pair(base: dict, name: str, **changes) -> dict:
    """``base`` with one more pair, a copy of its mlp-mnist with ``changes`` (e.g. another dataset)."""
    extended = copy.deepcopy(base)
    extended["pairs"][name] = {**extended["pairs"]["mlp-mnist"], **changes}
    return extended


def test_a_pair_no_figure_shows_is_named_with_what_figures_show(tmp_path):
    configured = config.check_config(_with_pair(tiny_config(tmp_path), "mlp-fashion_mnist", dataset="fashion_mnist"))
    messages = config.unshown_pairs(configured)
    assert len(messages) == 1 and "'pairs.mlp-fashion_mnist'" in messages[0], messages
    assert "mlp-mnist" in messages[0] and "drawn in no figure" in messages[0]


def test_a_pair_only_unrequested_figures_show_is_named_with_those_figures(tmp_path):
    """cnn-mnist is an appendix pair: figures 5, 7, ... show it, but the config asks for figure 1 only."""
    base = tiny_config(tmp_path, figures={"numbers": [1]})
    configured = config.check_config(_with_pair(base, "cnn-mnist", model="cnn", optimizer="adam", momentum=0.0))
    messages = config.unshown_pairs(configured)
    assert [message.split("'")[1] for message in messages] == ["pairs.cnn-mnist"]
    shown_elsewhere = [n for n in figure_specs.FIGURES if "cnn-mnist" in figure_specs.FIGURES[n].pairs and n != 18]
    assert f"figures {shown_elsewhere} would" in messages[0]


def test_a_variant_and_the_shipped_configs_warn_of_nothing(tmp_path):
    variant = _with_pair(tiny_config(tmp_path), "mlp-mnist-dropout", dropout=0.2)
    assert config.unshown_pairs(config.check_config(variant)) == []
    for path in [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]:
        assert config.unshown_pairs(config.check_config(yaml.safe_load(path.read_text()))) == [], path


def test_warnings_go_to_the_stream_one_line_each(tmp_path):
    configured = config.check_config(_with_pair(tiny_config(tmp_path), "mlp-fashion_mnist", dataset="fashion_mnist"))
    stream = io.StringIO()
    assert config.warn_unshown_pairs(configured, stream) == config.unshown_pairs(configured)
    assert stream.getvalue().startswith("Warning: config key 'pairs.mlp-fashion_mnist'")
    assert stream.getvalue().count("\n") == 1


@pytest.mark.slow
def test_parsing_the_workflow_warns_of_a_pair_no_figure_shows(tmp_path):
    """A dry run (snakemake -n) of a config with mlp-fashion_mnist: the warning is on stderr, and the run goes on."""
    workdir = copy_workflow(tmp_path / "work")
    extended = _with_pair(tiny_config(tmp_path / "datasets"), "mlp-fashion_mnist", dataset="fashion_mnist")
    result = snakemake(workdir, write_config(workdir, extended), "-n")
    assert "Warning: config key 'pairs.mlp-fashion_mnist'" in result.stderr
    assert "pairs.mlp-mnist'" not in result.stderr and "train" in plan_of(result.stdout + result.stderr)


def test_integer_lists_from_snakemakes_command_line_are_read_as_integers(tmp_path):
    """`snakemake --config corruption=[20,40]` gives strings; they mean what a config file's numbers mean."""
    from_command_line = tiny_config(tmp_path, corruption=["20", "40"], seeds=["0", "1"])
    filled = config.check_config(from_command_line)
    assert filled["corruption"] == [20, 40] and filled["seeds"] == [0, 1]
    with pytest.raises(config.ConfigError, match=r"'corruption\.0': 'twenty'"):
        config.check_config(tiny_config(tmp_path, corruption=["twenty"]))

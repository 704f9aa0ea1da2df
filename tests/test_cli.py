"""latentgen.cli: the console command dispatches its subcommand to the tool; every subcommand has a real --help that
runs nothing, and `latentgen --help` imports none of the heavy libraries."""

import subprocess
import sys

import pytest

from latentgen import cli, repair, stale
from latentgen.common import fingerprint

SUBCOMMANDS = [command.name for command in cli.SUBCOMMANDS]
# What each subcommand's own help says (its description), so a help of the wrong tool or a generic one fails.
OWN_HELP = {
    "repair": "--datasets-dir",
    "stale": "snakemake -n",
    "training-code": "--bump",
    "results-page": "--claims",
    "label-issues": "cleanlab",
}


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def no_snakemake(monkeypatch):
    """Any attempt of `stale` to run snakemake fails the test; the commands it would have run are recorded."""
    attempts = []

    def run(command, **kwargs):
        attempts.append(command)
        raise AssertionError(f"ran {command}")

    monkeypatch.setattr(stale.subprocess, "run", run)
    return attempts


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2 and "COMMAND" in capsys.readouterr().err


def test_the_user_jobs_are_subcommands():
    assert {"repair", "stale", "training-code", "results-page", "label-issues"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_each_subcommand_has_its_own_help_and_runs_nothing(name, capsys, no_snakemake):
    with pytest.raises(SystemExit) as caught:
        cli.main([name, "--help"])
    out = capsys.readouterr().out
    assert caught.value.code == 0 and out.startswith(f"usage: latentgen {name}")
    assert OWN_HELP[name] in out and no_snakemake == []


def test_stale_help_among_snakemake_options_is_still_its_own(capsys, no_snakemake):
    with pytest.raises(SystemExit) as caught:
        cli.main(["stale", "--configfile", "config/quickstart.yaml", "-h"])
    assert caught.value.code == 0 and "snakemake -n" in capsys.readouterr().out and no_snakemake == []


def test_stale_passes_the_other_options_and_the_targets_to_a_dry_run(monkeypatch, capsys):
    seen = []

    def run(command, **kwargs):
        seen.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="Nothing to be done.\n", stderr="")

    monkeypatch.setattr(stale.subprocess, "run", run)
    args = ["--configfile", "config/quickstart.yaml", "--cores", "2", "--", "results/quickstart/figures/fig3.pdf"]
    assert cli.main(["stale", *args]) == 0
    assert seen == [[sys.executable, "-m", "snakemake", "-n", *args]]
    assert capsys.readouterr().out.startswith("Nothing is stale")
    assert stale.main(args) == 0 and seen[1] == seen[0]  # python -m latentgen.stale: the same


def test_a_tool_without_forwarding_refuses_an_unknown_option(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(["training-code", "--configfile", "config.yaml"])
    assert caught.value.code == 2 and "unrecognized arguments: --configfile" in capsys.readouterr().err


def test_repair_gets_its_arguments_and_its_program_name(monkeypatch, tmp_path):
    seen = {}

    def handle(args, prog):
        seen.update(vars(args), prog=prog)
        return 7

    monkeypatch.setattr(repair, "handle", handle)
    assert cli.main(["repair", str(tmp_path / "epoch_0002.pt"), "--out", str(tmp_path / "out")]) == 7
    assert seen["prog"] == "latentgen repair" and seen["subcommand"] == "repair"
    assert str(seen["out"]) == str(tmp_path / "out")


@pytest.mark.parametrize("drift, status, said", [([], 0, "as recorded"), (["latentgen.data.labels"], 1, "labels")])
def test_training_code_checks_the_record(monkeypatch, capsys, drift, status, said):
    monkeypatch.setattr(fingerprint, "training_code_drift", lambda workflow: drift)
    assert cli.main(["training-code"]) == status and said in capsys.readouterr().out


def test_training_code_records_and_bumps_only_when_asked(monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(
        fingerprint,
        "record_training_code",
        lambda workflow, bump: calls.append((workflow, bump)) or {"training_code_version": 4},
    )
    assert cli.main(["training-code", "--record", "--bump", "--workflow", str(tmp_path)]) == 0
    assert cli.main(["training-code", "--bump"]) == 2 and "--bump needs --record" in capsys.readouterr().err
    assert calls == [(tmp_path, True)]


def test_top_level_help_imports_no_heavy_library():
    """`latentgen --help` lists every subcommand without importing their modules (torch takes seconds)."""
    code = (
        "import sys\nfrom latentgen import cli\ntry:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'pandas', 'sklearn', 'cleanlab', 'latentgen.repair') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
    assert all(name in result.stdout for name in SUBCOMMANDS)


@pytest.mark.parametrize(
    "module, said",
    [
        ("latentgen.cli", "--out"),  # with "repair --help" below
        ("latentgen.stale", "snakemake -n"),
        ("latentgen.common.fingerprint", "--bump"),
        ("latentgen.report.results_doc", "--claims"),
        ("latentgen.find_label_issues", "cleanlab"),
    ],
)
def test_the_python_m_forms_are_aliases_with_the_same_help(module, said):
    result = run_module(module, *(["repair"] if module == "latentgen.cli" else []), "--help")
    assert result.returncode == 0 and said in result.stdout, result.stdout + result.stderr
    assert "Nothing is stale" not in result.stdout

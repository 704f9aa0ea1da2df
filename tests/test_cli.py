"""latentgen.cli: the console command dispatches its subcommand to the tool."""

import subprocess
import sys

import pytest

from latentgen import cli, repair


def test_a_command_is_required(capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    assert caught.value.code == 2 and "COMMAND" in capsys.readouterr().err


def test_repair_gets_its_arguments_and_its_program_name(monkeypatch, tmp_path):
    seen = {}

    def handle(args, prog):
        seen.update(vars(args), prog=prog)
        return 7

    monkeypatch.setattr(repair, "handle", handle)
    assert cli.main(["repair", str(tmp_path / "epoch_0002.pt"), "--out", str(tmp_path / "out")]) == 7
    assert seen["prog"] == "latentgen repair" and seen["command"] == "repair"
    assert str(seen["out"]) == str(tmp_path / "out")


def test_module_runs_as_a_program():
    result = subprocess.run([sys.executable, "-m", "latentgen.cli", "repair", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--out" in result.stdout

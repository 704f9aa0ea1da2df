"""docs/results.md: the generated part is rewritten, the hand-written part after the marker survives, and the
`latentgen results-page` command of README.md, run exactly as written there, writes the page with its claims."""

import itertools
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from latentgen.report import results_doc
from latentgen.report.claims import claims_table
from latentgen.report.claims import read_claims
from synthetic_scores import EPOCHS, PAIRS, RATES, SEEDS, make_scores

REPO = Path(__file__).resolve().parents[2]
PROGRAM = ".venv/bin/latentgen"


def _scores() -> pd.DataFrame:
    rows = []
    for probe, layer, accuracy in [
        ("model", "output", 0.30),
        ("masc", "fc4", 0.50),
        ("velpic", "fc4", 0.60),
        ("transfer", "fc4", 0.60),
    ]:
        rows.append(
            {
                "model": "mlp",
                "dataset": "mnist",
                "pair": "mlp-mnist",
                "corruption": 80,
                "seed": 0,
                "epoch": 3,
                "layer": layer,
                "probe": probe,
                "split": "test",
                "accuracy": accuracy,
                "n_components": None,
                "fit_seconds": 0.0,
                "edit_epoch": None,  # standard training, as in every real scores table
            }
        )
    return pd.DataFrame(rows).astype({"edit_epoch": "Int64"})


def _histories() -> pd.DataFrame:
    """A training history per synthetic run, every epoch: the loss falls from ln 10, so every run learned."""
    return pd.DataFrame(
        {
            "pair": pair,
            "corruption": rate,
            "seed": seed,
            "epoch": epoch,
            "train_loss": 2.3 - 0.2 * epoch,
            "train_accuracy_true": 0.5,
            "num_classes": 10,
            "test_accuracy": 0.5,
        }
        for pair, rate, seed, epoch in itertools.product(PAIRS, RATES, SEEDS, range(max(EPOCHS) + 1))
    )


def _args(scores: Path, page: Path, *more: str) -> list[str]:
    return ["--scores", str(scores), "--out", str(page), "--command", "make quickstart", *more]


def test_regenerating_keeps_the_hand_written_part(tmp_path):
    scores_path, page = tmp_path / "scores.parquet", tmp_path / "results.md"
    _scores().to_parquet(scores_path)
    page.write_text("# old generated table\n\n" + results_doc.HAND_WRITTEN_MARKER + "\n## Fidelity\nmeasured 0.55\n")
    assert results_doc.main(_args(scores_path, page)) == 0
    text = page.read_text()
    assert "old generated table" not in text
    assert "| mlp-mnist | 80 | 0 | 3 | fc4 | 30.0 | 50.0 | 60.0 | 60.0 | velpic 60.0 | +30.0 |" in text
    assert text.endswith(results_doc.HAND_WRITTEN_MARKER + "\n## Fidelity\nmeasured 0.55\n")


def test_a_page_without_the_marker_is_replaced_whole(tmp_path):
    scores_path, page = tmp_path / "scores.parquet", tmp_path / "results.md"
    _scores().to_parquet(scores_path)
    page.write_text("stale\n")
    assert results_doc.main(_args(scores_path, page)) == 0
    assert "stale" not in page.read_text() and results_doc.HAND_WRITTEN_MARKER not in page.read_text()


@pytest.fixture
def finished_quickstart(tmp_path) -> Path:
    """A folder laid out as the repository after `make quickstart`: synthetic scores and the claims made of them,
    and a docs/results.md with a hand-written part."""
    results = tmp_path / "results" / "quickstart"
    results.mkdir(parents=True)
    scores = make_scores()
    # as a real scores table has them: standard training only, each accuracy over 1,000 test images
    scores = scores.assign(edit_epoch=scores.get("edit_epoch", pd.NA), n_samples=scores.get("n_samples", 1000)).astype(
        {"edit_epoch": "Int64"}
    )
    scores.to_parquet(results / "scores.parquet")
    claims_table(scores, _histories()).to_csv(results / "claims.csv", index=False)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results.md").write_text("old\n" + results_doc.HAND_WRITTEN_MARKER + "\n## Fidelity\n")
    return tmp_path


def documented_command(name: str) -> list[str]:
    """README.md's command line for `latentgen <name> ...` (continuation lines joined), as the shell splits it."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{PROGRAM} {name} "))
    command = lines[start]
    while command.endswith("\\"):
        start += 1
        command = command[:-1] + " " + lines[start].strip()
    return shlex.split(command)


def test_the_documented_results_page_command_writes_the_page_with_its_claims(finished_quickstart):
    command = documented_command("results-page")
    assert command[0] == PROGRAM
    result = subprocess.run(
        [sys.executable, "-m", "latentgen.cli", *command[1:]],  # the venv's latentgen, as .venv/bin/latentgen runs it
        cwd=finished_quickstart,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    page = (finished_quickstart / "docs" / "results.md").read_text()
    claims = read_claims(finished_quickstart / "results" / "quickstart" / "claims.csv")
    assert "## Claims" in page and not page.startswith("old")
    assert all(claim in page for claim in claims["claim"].unique())
    assert page.endswith(results_doc.HAND_WRITTEN_MARKER + "\n## Fidelity\n")


def test_claims_are_found_beside_the_scores_and_their_absence_is_said(finished_quickstart, capsys):
    results, page = finished_quickstart / "results" / "quickstart", finished_quickstart / "page.md"
    assert results_doc.main(_args(results / "scores.parquet", page)) == 0
    assert "## Claims" in page.read_text() and "claims from" in capsys.readouterr().out
    (results / "claims.csv").unlink()
    assert results_doc.main(_args(results / "scores.parquet", page)) == 0
    assert "## Claims" not in page.read_text() and "no Claims section" in capsys.readouterr().out


def test_a_missing_input_is_one_line_and_status_2(tmp_path, capsys):
    page = tmp_path / "page.md"
    assert results_doc.main(_args(tmp_path / "nowhere.parquet", page)) == 2
    assert "nowhere.parquet" in capsys.readouterr().err and not page.exists()


def test_the_page_names_the_command_that_regenerates_it(finished_quickstart):
    command = documented_command("results-page")
    subprocess.run(
        [sys.executable, "-m", "latentgen.cli", *command[1:]], cwd=finished_quickstart, check=True, timeout=300
    )
    page = (finished_quickstart / "docs" / "results.md").read_text()
    assert "latentgen results-page --scores" in page and "--claims" in page


def test_the_label_issue_sections_show_the_chosen_flags_the_baselines_and_the_retrained_model():
    from latentgen.report.label_issue_tables import label_issue_markdown, retrained_markdown

    def metrics_row(method, layer, checkpoint, epoch, auprc, is_choice=False, corruption=80):
        return {"pair": "mlp-mnist", "corruption": corruption, "seed": 0, "epoch": epoch, "checkpoint": checkpoint,
                "layer": layer, "method": method, "is_choice": is_choice, "auprc": auprc, "f1": 0.5,
                "precision": 0.6, "recall": 0.4, "base_rate": 0.72}  # fmt: skip

    metrics = pd.DataFrame(
        [
            metrics_row("velpic", "fc1", "final", 25, 0.964, is_choice=True),
            metrics_row("ncm", "fc1", "final", 25, 0.95),
            metrics_row("network_softmax", "output", "final", 25, 0.838),
            metrics_row("velpic", "fc2", "peak", 5, 0.97, is_choice=True),
            metrics_row("velpic", "fc1", "final", 25, 0.5, is_choice=True, corruption=0),
        ]
    )
    text = label_issue_markdown(metrics)
    lines = text.splitlines()
    peak = lines.index("| mlp-mnist c80 | peak (epoch 5) | 72.0 | flags: velpic:fc2 | 97.0 | 50.0 | 60.0 | 40.0 |")
    final = lines.index("| mlp-mnist c80 | final (epoch 25) | 72.0 | flags: velpic:fc1 | 96.4 | 50.0 | 60.0 | 40.0 |")
    assert peak < final and "| network_softmax | 83.8 |" in text and "ncm" not in text and "c0 " not in text
    assert label_issue_markdown(metrics[metrics.corruption == 0]) == ""
    retrained = pd.DataFrame(
        [
            {
                "pair": "mlp-mnist",
                "corruption": 80,
                "seed": 0,
                "network": model,
                "layer": layer,
                "accuracy": accuracy,
                "n_excluded": 1300,
                "excluded_wrong": 1100,
                "trained_wrong": 270,
                "n_trained": 1350,
            }  # fmt: skip
            for model, layer, accuracy in [
                ("memorized", "output", 0.31),
                ("repaired", "fc1", 0.612),
                ("retrained_clean", "output", 0.70),
            ]  # fmt: skip
        ]
    )
    assert "| mlp-mnist c80 | 31.0 | 61.2 (fc1) | 70.0 | 1300 (1100) | 270 of 1350 (20.0 %) |" in retrained_markdown(
        retrained
    )


def test_an_auprc_difference_keeps_three_decimals_and_points_keep_one():
    """An AUPRC difference of 0.063 must not print as "+0.1 [+0.1, +0.1]"."""
    row = pd.Series({"value": 0.0631, "ci_low": 0.0512, "ci_high": 0.0754, "unit": "AUPRC difference"})
    assert results_doc._interval(row) == "+0.063 [+0.051, +0.075] AUPRC difference"
    points = pd.Series({"value": 3.61, "ci_low": 1.04, "ci_high": 6.2, "unit": "pp"})
    assert results_doc._interval(points) == "+3.6 [+1.0, +6.2] pp"

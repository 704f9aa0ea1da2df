"""The summary table (latentgen.report.summary): each run's test accuracies at its own final epoch."""

from __future__ import annotations

import pandas as pd
import pytest

from latentgen.report.summary import final_epoch_summary, write_summary
from latentgen.common.fileio import write_parquet
from synthetic_scores import LAYER_ORDER, RATES, SEEDS, make_scores, synthetic_value, with_new_probes


def test_final_epoch_summary_uses_each_runs_own_final_epoch() -> None:
    table = make_scores(epochs_by_seed={0: [0, 2, 4], 1: [0, 2, 4, 6, 8]})
    summary = final_epoch_summary(table, LAYER_ORDER)
    assert set(summary.loc[summary["seed"] == 0, "final_epoch"]) == {4}
    assert set(summary.loc[summary["seed"] == 1, "final_epoch"]) == {8}
    assert len(summary) == len(RATES) * len(SEEDS) * (4 + 4)  # runs x layers (mlp 4, cnn 4)

    row = summary[
        (summary["pair"] == "cnn-fashion_mnist")
        & (summary["corruption"] == 40)
        & (summary["seed"] == 1)
        & (summary["layer"] == "fc3")
    ].squeeze()

    def expected(layer: str, probe: str) -> float:
        return synthetic_value("cnn-fashion_mnist", 40, 1, 8, layer, probe, "test")

    assert row["masc_test_accuracy"] == pytest.approx(expected("fc3", "masc"))
    assert row["velpic_test_accuracy"] == pytest.approx(expected("fc3", "velpic"))
    assert row["model_test_accuracy"] == pytest.approx(expected("output", "model"))
    assert row["transfer_test_accuracy"] == pytest.approx(expected("fc3", "transfer"))

    run = summary[(summary["pair"] == "cnn-fashion_mnist") & (summary["corruption"] == 40) & (summary["seed"] == 1)]
    assert list(run["layer"]) == ["flat", "fc1", "fc2", "fc3"]
    assert run["transfer_test_accuracy"].notna().tolist() == [False, False, False, True]


def test_summary_has_a_selected_line_per_run_and_a_column_per_probe() -> None:
    summary = final_epoch_summary(with_new_probes(make_scores()), LAYER_ORDER)
    assert {"selected_test_accuracy", "knn_test_accuracy", "masc_true_test_accuracy"} <= set(summary.columns)
    run = summary[(summary["pair"] == "mlp-mnist") & (summary["corruption"] == 40) & (summary["seed"] == 0)]
    assert list(run["layer"]) == ["fc1", "fc2", "fc3", "fc4", "velpic:fc2"]  # the choice closes its run
    chosen = run.iloc[-1]
    assert chosen["selected_test_accuracy"] == run.loc[run["layer"] == "fc2", "velpic_test_accuracy"].item()
    assert pd.isna(chosen["masc_test_accuracy"]) and run["transfer_test_accuracy"].iloc[:4].notna().all()


def test_the_written_summary_is_in_percent_and_of_standard_runs_only(tmp_path) -> None:
    standard = make_scores().assign(edit_epoch=pd.array([None] * len(make_scores()), dtype="Int64"))
    edited = standard.assign(edit_epoch=pd.array([2] * len(standard), dtype="Int64"), accuracy=0.0)
    write_parquet(pd.concat([standard, edited], ignore_index=True), tmp_path / "scores.parquet")
    write_summary(tmp_path / "scores.parquet", tmp_path / "summary.csv", LAYER_ORDER)
    written = pd.read_csv(tmp_path / "summary.csv")
    assert len(written) == len(RATES) * len(SEEDS) * (4 + 4)  # the edited runs (all zeros) are left out
    row = written[
        (written["pair"] == "mlp-mnist")
        & (written["corruption"] == 0)
        & (written["seed"] == 0)
        & (written["layer"] == "fc2")
    ].squeeze()
    expected = synthetic_value("mlp-mnist", 0, 0, 6, "fc2", "masc", "test")
    assert row["masc_test_accuracy_percent"] == pytest.approx(round(100 * expected, 2))  # the unit in the name

"""The summary table (rule ``summary``): each run's test accuracies at its own final epoch, per probed layer.

Kept free of torch and of plotting: the summary stage and the results document read it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from latentgen.report.claims import split_edited_runs
from latentgen.common.fileio import atomic_path, read_parquet
from latentgen.training.model_names import model_layer_order
from latentgen.report.seed_means import RUN_KEYS, run_final_epochs


# Summary columns of the probes every table has, in this order; any other probe follows, sorted by name.
SUMMARY_PROBES = ["masc", "velpic", "transfer", "selected"]


def _summary_probes(probes: pd.DataFrame) -> list[str]:
    present = set(probes["probe"].unique())
    optional = {"transfer_bias", "selected"}  # not in every table: a column only where scored
    return [p for p in SUMMARY_PROBES if p in present or p not in optional] + sorted(
        present - set(SUMMARY_PROBES) - {"transfer_bias"}
    )


def final_epoch_summary(scores: pd.DataFrame, layer_order: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Test accuracies at each run's own final epoch, one row per run (pair, corruption, seed) and probed layer,
    plus the run's ``selected`` line.

    Columns: pair, model, dataset, corruption, seed, final_epoch, layer, model_test_accuracy (run-level: the
    same on every row of a run), then ``{probe}_test_accuracy`` for masc, velpic, transfer (the model made from
    that layer's VeLPIC vectors), selected (where something was held out) and any further probe in the scores.
    The ``selected`` line has ``layer`` = the held-out choice (``"velpic:fc3"``) and only
    ``selected_test_accuracy`` besides the model's: the accuracy of a probe chosen without the test set.
    Accuracies are fractions in [0, 1], as in ``scores``. Runs end at different epochs (accuracy threshold), so
    the final epoch is taken per run, never a global maximum.
    """
    final_epochs = run_final_epochs(scores, ["pair", "model", "dataset", "corruption"])
    at_final = scores[scores["split"] == "test"].merge(final_epochs, on=RUN_KEYS)
    at_final = at_final[at_final["epoch"] == at_final["final_epoch"]]
    run_and_epoch = RUN_KEYS + ["final_epoch"]

    model = (
        at_final[at_final["probe"] == "model"]
        .groupby(run_and_epoch, observed=True)["accuracy"]
        .mean()
        .rename("model_test_accuracy")
        .reset_index()
    )
    probes = at_final[at_final["probe"] != "model"]
    per_layer = probes.groupby(run_and_epoch + ["layer", "probe"], observed=True)["accuracy"].mean().unstack("probe")
    per_layer = per_layer.reindex(columns=_summary_probes(probes))
    per_layer.columns = [f"{probe}_test_accuracy" for probe in per_layer.columns]
    summary = per_layer.reset_index().merge(model, on=run_and_epoch, how="left")

    columns = run_and_epoch + ["layer", "model_test_accuracy", *per_layer.columns]
    return _sort_by_layer_order(summary[columns], layer_order)


def _sort_by_layer_order(summary: pd.DataFrame, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    def position(row: pd.Series) -> int:
        if ":" in row["layer"]:  # the selected line (``probe:layer``) closes its run
            return len(model_layer_order(row["model"], [], layer_order)) + 1000
        order = model_layer_order(row["model"], [row["layer"]], layer_order)
        return order.index(row["layer"])

    if summary.empty:
        return summary.reset_index(drop=True)
    ranked = summary.assign(_layer_position=summary.apply(position, axis=1))
    ranked = ranked.sort_values(["pair", "corruption", "seed", "_layer_position"], kind="stable")
    return ranked.drop(columns="_layer_position").reset_index(drop=True)


def write_summary(scores: Path | str, out: Path | str, layer_order: dict[str, list[str]]) -> None:
    """The summary of the standard runs in ``scores`` (the paper's table; edited runs have the claims table)
    as CSV for people (the report shows it): accuracies in percent rounded to 0.01, the unit in each column's name
    (``model_test_accuracy_percent``)."""
    standard, _ = split_edited_runs(read_parquet(scores, what="scores table"))
    summary = final_epoch_summary(standard, layer_order)
    accuracy_columns = [c for c in summary.columns if c.endswith("_accuracy")]
    summary[accuracy_columns] = (100 * summary[accuracy_columns]).round(2)
    summary = summary.rename(columns={column: f"{column}_percent" for column in accuracy_columns})
    with atomic_path(out) as tmp:
        summary.to_csv(tmp, index=False)

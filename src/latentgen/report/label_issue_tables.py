"""The results page's label-issue sections: how well each method finds the wrong labels, and what retraining
without the flagged examples gives (Markdown; ``latentgen.report.results_doc`` places them).

* ``label_issue_markdown``: per pair, rate above 0 % and flagged checkpoint (the model's peak on the held-out slice,
  its final epoch), the base rate (the fraction of training labels that are wrong) and, for the flags of the
  truth-free choice and for each baseline, AUPRC, F1, precision and recall, seed means;
* ``retrained_markdown``: per pair and rate, the test accuracy of the memorized network, its repair and the network
  retrained on the examples not flagged, with what was removed.

Fractions are shown as percent here (a page for people); the Parquet tables keep fractions.
"""

from __future__ import annotations

import pandas as pd

from latentgen.label_issues.tables import BASELINES

CHECKPOINT_ORDER = {"peak": 0, "peak+final": 1, "final": 2, "checkpoint": 3}
RETRAINED_MODELS = ("memorized", "repaired", "retrained_clean")  # latentgen.label_issues.retraining


def _percent(value: float) -> str:
    return "–" if pd.isna(value) else f"{100 * value:.1f}"


def _method_rows(checkpoint: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The truth-free choice's rows (named by their method and layer), then each baseline's."""
    chosen = checkpoint[checkpoint["is_choice"]]
    named = [(f"flags: {m}:{layer}", chosen[(chosen["method"] == m) & (chosen["layer"] == layer)])
             for m, layer in sorted(set(zip(chosen["method"], chosen["layer"])))]  # fmt: skip
    return named + [(name, checkpoint[checkpoint["method"] == name]) for name in BASELINES]


def label_issue_markdown(metrics: pd.DataFrame) -> str:
    """The label-issue metrics table as Markdown (module docstring); empty when no rate above 0 % was flagged."""
    corrupted = metrics[metrics["corruption"] > 0]
    if corrupted.empty:
        return ""
    lines = [
        "Which training labels are wrong (rule `label_issues`): the flags of the probe and layer chosen without the "
        "truth (the held-out choice's layer) and the baselines on the same examples, against the corruption mask. "
        "Percent, seed means; *base rate*: the fraction of training labels that are wrong (what a random ranking's "
        "AUPRC would be).",
        "",
        "| setting | checkpoint | base rate | method | AUPRC | F1 | precision | recall |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    keys = ["pair", "corruption", "checkpoint"]
    order = corrupted["checkpoint"].map(CHECKPOINT_ORDER)
    ordered = corrupted.assign(order=order).sort_values(["pair", "corruption", "order"])
    for (pair, rate, role), checkpoint in ordered.groupby(keys, sort=False):
        epochs = "/".join(str(e) for e in sorted(set(checkpoint["epoch"])))
        base = _percent(checkpoint["base_rate"].mean())
        for name, rows in _method_rows(checkpoint):
            if rows.empty:
                continue
            means = rows[["auprc", "f1", "precision", "recall"]].mean()
            lines.append(
                f"| {pair} c{rate} | {role} (epoch {epochs}) | {base} | {name} | {_percent(means['auprc'])} | "
                f"{_percent(means['f1'])} | {_percent(means['precision'])} | {_percent(means['recall'])} |"
            )
    return "\n".join(lines) + "\n"


def retrained_markdown(table: pd.DataFrame) -> str:
    """The retrain-comparison tables as Markdown (module docstring); empty when there is none."""
    if table.empty:
        return ""
    lines = [
        "Retrained without the flagged examples (`label_issues.retrain`): test accuracy (%) of the memorized network "
        "at its final epoch, its `latentgen repair` (the layer the held-out slice chooses) and the network trained "
        "again, same settings, on the examples not flagged; seed means. The claims `retrained_beats_*` give the "
        "paired intervals.",
        "",
        "| setting | memorized | repaired (layer) | retrained on the unflagged | removed (of them wrong) "
        "| wrong labels left in training |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for (pair, rate), setting in table.groupby(["pair", "corruption"], sort=True):
        accuracy = setting.groupby("network")["accuracy"].mean()
        layers = ", ".join(sorted(set(setting.loc[setting["network"] == "repaired", "layer"])))
        retrained = setting[setting["network"] == "retrained_clean"]
        left = (retrained["trained_wrong"] / retrained["n_trained"]).mean()
        lines.append(
            f"| {pair} c{rate} | {_percent(accuracy.get('memorized'))} | {_percent(accuracy.get('repaired'))} "
            f"({layers}) | {_percent(accuracy.get('retrained_clean'))} | {retrained['n_excluded'].mean():.0f} "
            f"({retrained['excluded_wrong'].mean():.0f}) | {retrained['trained_wrong'].mean():.0f} of "
            f"{retrained['n_trained'].mean():.0f} ({_percent(left)} %) |"
        )
    return "\n".join(lines) + "\n"

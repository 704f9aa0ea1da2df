"""What each figure plots, as DataFrames: the aggregation of the tidy scores table behind every figure (pure
functions, so what is drawn can be tested without looking at pixels; ``latentgen.report.figures`` draws it).

Every figure is a grid: one column per model-dataset pair, one row per corruption rate, epochs on x (figure 17:
layers). Lines are the mean over seeds and the shading the min-max range over seeds, a run that stopped earlier
counted with its final values up to the setting's last epoch (``latentgen.report.seed_means``).
"""

from __future__ import annotations

import pandas as pd

from latentgen.data.datasets import DATASETS
from latentgen.data.labels import expected_correct_fraction
from latentgen.probes.names import OTHER_ROWS, PROBE_NAMES
from latentgen.report.claims import split_edited_runs
from latentgen.report.figure_specs import DIFFERENCE_PROBES, FigureSpec, base_pair, figure_spec
from latentgen.report.figure_text import MODEL_SERIES, TRANSFER_SERIES, edit_label, probe_label, series_label
from latentgen.report.seed_means import seed_spread
from latentgen.training.model_names import model_layer_order

PLOT_DATA_COLUMNS = [
    "pair",
    "corruption",
    "epoch",
    "series",
    "label",
    "role",
    "mean",
    "min",
    "max",
    "n_seeds",
    "n_carried",
]

# Figure 17 compares probes; the scores table's other rows are no probe of their own (the model is the dotted
# reference, the transfer predicts exactly what VeLPIC does, the selected rows repeat a probe's).
NOT_COMPARED_PROBES = OTHER_ROWS

# Figure 18: the lines of each edited run.
EDIT_LINES = ("model", "masc", "velpic")


def correct_labels_percent(pair: str, rate: int) -> float:
    """Percent of training labels still correct at ``rate`` % corruption of ``pair``'s dataset (K from its
    facts in ``latentgen.data.datasets``)."""
    dataset = pair.partition("-")[2]
    return 100.0 * expected_correct_fraction(rate / 100.0, DATASETS[dataset].num_classes)


# --------------------------------------------------------------------------------------------------------------
# Layer order
# --------------------------------------------------------------------------------------------------------------


def merge_layer_orders(orders: list[list[str]]) -> list[str]:
    """One order for layers of several models, so colours and legend follow input-to-output order.

    A layer first met in a later model is inserted before the next layer of that model already placed:
    MLP ``fc1..fc4`` and CNN ``flat, fc1..fc3`` merge to ``flat, fc1, fc2, fc3, fc4``.
    """
    merged: list[str] = []
    for order in orders:
        for position, layer in enumerate(order):
            if layer in merged:
                continue
            later_placed = [other for other in order[position + 1 :] if other in merged]
            merged.insert(merged.index(later_placed[0]) if later_placed else len(merged), layer)
    return merged


# --------------------------------------------------------------------------------------------------------------
# Plot data
# --------------------------------------------------------------------------------------------------------------


def _shows_pair(pair_column: pd.Series, pairs: list[str] | tuple[str, ...]) -> pd.Series:
    """Rows of the figure's paper pairs and of their variants (a dropout-trained model shows beside its pair)."""
    return pair_column.astype(str).map(base_pair).isin(list(pairs))


def _select(scores: pd.DataFrame, probe: str, split: str, pairs: list[str], rates: list[int]) -> pd.DataFrame:
    rows = scores[
        (scores["probe"] == probe)
        & (scores["split"] == split)
        & _shows_pair(scores["pair"], pairs)
        & scores["corruption"].isin(rates)
    ]
    return rows.assign(percent=rows["accuracy"] * 100.0)


def _layer_series(scores: pd.DataFrame, spec: FigureSpec) -> pd.DataFrame:
    rows = _select(scores, spec.probe, spec.split, list(spec.pairs), list(spec.rates))
    return seed_spread(rows, "percent", ["layer"]).rename(columns={"layer": "series"})


def _transfer_series(scores: pd.DataFrame, spec: FigureSpec, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    rows = _select(scores, spec.probe, spec.split, list(spec.pairs), list(spec.rates))
    # The paper's intervention replaces the head fed by the last probed layer: of the transfers from every scored
    # layer in the table (figure 16 draws them all), the transfer figures show that one.
    rows = _last_layer_rows(rows, layer_order)
    spread = seed_spread(rows, "percent")
    return spread.assign(series=TRANSFER_SERIES)


def _difference_series(scores: pd.DataFrame, spec: FigureSpec) -> pd.DataFrame:
    """VeLPIC - MASC in percentage points, differenced per seed before aggregating so that the shading is the
    range of the difference over seeds (not the difference of two ranges)."""
    minuend, subtrahend = DIFFERENCE_PROBES
    keys = ["pair", "corruption", "seed", "epoch", "layer"]
    first = _select(scores, minuend, spec.split, list(spec.pairs), list(spec.rates))[keys + ["percent"]]
    second = _select(scores, subtrahend, spec.split, list(spec.pairs), list(spec.rates))[keys + ["percent"]]
    both = first.merge(second, on=keys, suffixes=("_minuend", "_subtrahend"), validate="one_to_one")
    both = both.assign(difference=both["percent_minuend"] - both["percent_subtrahend"])
    spread = seed_spread(both, "difference", ["layer"])
    return spread.rename(columns={"layer": "series"})


def _model_reference(scores: pd.DataFrame, spec: FigureSpec) -> pd.DataFrame:
    rows = _select(scores, "model", spec.split, list(spec.pairs), list(spec.rates))
    return seed_spread(rows, "percent").assign(series=MODEL_SERIES)


def _at_setting_final_epoch(spread: pd.DataFrame) -> pd.DataFrame:
    """The rows at each setting's last epoch: with runs carried forward, every run's own final values."""
    last = spread.groupby(["pair", "corruption"], observed=True)["epoch"].transform("max")
    return spread[spread["epoch"] == last]


def _with_layer_positions(rows: pd.DataFrame, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    def position(row: pd.Series) -> int:
        model = row["pair"].partition("-")[0]
        return model_layer_order(model, [row["layer"]], layer_order).index(row["layer"])

    return rows.assign(position=rows.apply(position, axis=1) if len(rows) else pd.Series(dtype=int))


def _probe_series(scores: pd.DataFrame, spec: FigureSpec, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    """Every probe's seed-mean accuracy per layer at the setting's final epoch (figure 17)."""
    rows = scores[
        (scores["split"] == spec.split)
        & _shows_pair(scores["pair"], spec.pairs)
        & scores["corruption"].isin(spec.rates)
        & ~scores["probe"].isin(NOT_COMPARED_PROBES)
    ]
    spread = seed_spread(rows.assign(percent=rows["accuracy"] * 100.0), "percent", ["probe", "layer"])
    lines = _with_layer_positions(_at_setting_final_epoch(spread), layer_order)
    return lines.rename(columns={"probe": "series"})


def _final_model_reference(scores: pd.DataFrame, spec: FigureSpec, probe_lines: pd.DataFrame) -> pd.DataFrame:
    """The model's final-epoch accuracy, repeated at every layer position of its panel (a flat dotted line)."""
    model = _at_setting_final_epoch(_model_reference(scores, spec)).drop(columns="epoch")
    positions = probe_lines[["pair", "corruption", "epoch", "layer", "position"]].drop_duplicates()
    return positions.merge(model, on=["pair", "corruption"])


def figure_plot_data(
    scores: pd.DataFrame, number: int, layer_order: dict[str, list[str]] | None = None
) -> pd.DataFrame:
    """Exactly what figure ``number`` draws, one row per (pair, corruption, epoch, series).

    Columns: pair, corruption, epoch, series (layer name, ``"transfer"`` or ``"model"``), label (legend text),
    role (``"probe"`` for the compared lines, ``"reference"`` for the dotted model line), mean, min, max
    (over seeds, in % accuracy; in percentage points for the difference figures), n_seeds (always every run of
    the panel) and n_carried (how many of them had stopped and count with their final values).
    Only the figure's own pairs and rates are kept. The difference figures have no reference rows: their
    reference is the constant zero line.
    """
    spec = figure_spec(number)
    if spec.kind == "probes":
        return _probes_plot_data(scores, spec, layer_order)
    if spec.kind == "edits":
        return _edits_plot_data(scores, spec, layer_order)
    if spec.kind == "layers":
        probe_lines = _layer_series(scores, spec)
    elif spec.kind == "transfer":
        probe_lines = _transfer_series(scores, spec, layer_order)
    else:
        probe_lines = _difference_series(scores, spec)
    parts = [probe_lines.assign(role="probe")]
    if spec.kind != "difference":
        parts.append(_model_reference(scores, spec).assign(role="reference"))
    data = _finish_plot_data(pd.concat(parts, ignore_index=True), series_label)
    return data[PLOT_DATA_COLUMNS].sort_values(["pair", "corruption", "role", "series", "epoch"], ignore_index=True)


def _finish_plot_data(data: pd.DataFrame, label) -> pd.DataFrame:
    data = data.assign(label=data["series"].map(label))
    data["corruption"] = data["corruption"].astype(int)
    data["n_seeds"] = data["n_seeds"].astype(int)
    data["n_carried"] = data["n_carried"].astype(int)
    return data


def _probes_plot_data(scores: pd.DataFrame, spec: FigureSpec, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    """Figure 17's data: as ``figure_plot_data`` plus ``layer`` and ``position`` (its place on x, input side
    first); ``epoch`` is the setting's final epoch."""
    probe_lines = _probe_series(scores, spec, layer_order)
    reference = _final_model_reference(scores, spec, probe_lines)
    data = _finish_plot_data(
        pd.concat([probe_lines.assign(role="probe"), reference.assign(role="reference")], ignore_index=True),
        probe_label,
    )
    data["position"] = data["position"].astype(int)
    return data[PLOT_DATA_COLUMNS + ["layer", "position"]].sort_values(
        ["pair", "corruption", "role", "series", "position"], ignore_index=True
    )


def edit_series(edit_epoch: int, line: str) -> str:
    """Series key of one line of the runs edited at ``edit_epoch``: ``"edit10"`` (the model), ``"edit10:masc"``."""
    return f"edit{edit_epoch}" if line == "model" else f"edit{edit_epoch}:{line}"


def _last_layer_rows(rows: pd.DataFrame, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    """Each pair's rows of its last probed layer (the one feeding the head, which the edit rewrites)."""
    keep = []
    for _, pair_rows in rows.groupby("pair", sort=False, observed=True):
        layers = list(pair_rows["layer"].unique())
        order = model_layer_order(pair_rows["model"].iloc[0], layers, layer_order)
        keep.append(pair_rows[pair_rows["layer"] == max(layers, key=order.index)])
    return pd.concat(keep) if keep else rows


def _edits_plot_data(scores: pd.DataFrame, spec: FigureSpec, layer_order: dict[str, list[str]] | None) -> pd.DataFrame:
    """Figure 18's data: as ``figure_plot_data`` plus ``edit_epoch`` (E; null on the standard-training reference),
    ``line`` (model, masc or velpic) and ``layer`` (the probes' last probed layer; ``"output"`` for the model).

    The edited runs of one pair, rate and E are a setting of their own (their seeds' mean, min and max, stopped
    runs carried forward); standard training is drawn up to the last epoch of the pair's edited runs.
    """
    columns = PLOT_DATA_COLUMNS + ["edit_epoch", "line", "layer"]
    standard, edited = split_edited_runs(scores)
    if edited.empty:
        return pd.DataFrame(columns=columns)
    # every pair with edited runs (figure_pairs_and_rates orders them), also one the paper's groups do not name
    edited = edited[(edited["split"] == spec.split) & edited["corruption"].isin(spec.rates)]
    edited = edited.assign(percent=edited["accuracy"] * 100.0, edit_epoch=edited["edit_epoch"].astype(int))
    model = edited[edited["probe"] == "model"]
    probes = _last_layer_rows(edited[edited["probe"].isin(EDIT_LINES[1:])], layer_order)
    keys = ["pair", "corruption", "edit_epoch"]
    lines = seed_spread(pd.concat([model, probes], ignore_index=True), "percent", ["probe", "layer"], setting_keys=keys)
    lines = lines.rename(columns={"probe": "line"})
    lines["edit_epoch"] = lines["edit_epoch"].astype(int)
    lines["series"] = [edit_series(e, line) for e, line in zip(lines["edit_epoch"], lines["line"])]

    reference_rows = standard[
        (standard["probe"] == "model")
        & (standard["split"] == spec.split)
        & standard["pair"].isin(lines["pair"])
        & standard["corruption"].isin(spec.rates)
    ]
    reference = _standard_to_edits_end(
        seed_spread(reference_rows.assign(percent=reference_rows["accuracy"] * 100.0), "percent"), lines
    )
    reference = reference.assign(
        series=MODEL_SERIES, line="model", layer="output", edit_epoch=pd.array([None] * len(reference), dtype="Int64")
    )
    lines["edit_epoch"] = lines["edit_epoch"].astype("Int64")
    data = _finish_plot_data(
        pd.concat([lines.assign(role="probe"), reference.assign(role="reference")], ignore_index=True), edit_label
    )
    return data[columns].sort_values(["pair", "corruption", "role", "series", "epoch"], ignore_index=True)


def _standard_to_edits_end(reference: pd.DataFrame, lines: pd.DataFrame) -> pd.DataFrame:
    """Standard training up to the last epoch of the setting's edited runs: cut there, and where every standard
    run had stopped before, their final values carried on to the edited runs' epochs (a stopped run is a fixed
    model; the claims compare with it so, ``edit_keeps_gain``)."""
    epochs = lines[["pair", "corruption", "epoch"]].drop_duplicates()
    end = epochs.groupby(["pair", "corruption"], observed=True)["epoch"].max().rename("end").reset_index()
    reference = reference.merge(end, on=["pair", "corruption"])
    reference = reference[reference["epoch"] <= reference["end"]].drop(columns="end")
    last = reference.sort_values("epoch").groupby(["pair", "corruption"], observed=True).tail(1)
    later = last.drop(columns="epoch").merge(epochs, on=["pair", "corruption"])
    later = later.merge(
        last[["pair", "corruption", "epoch"]].rename(columns={"epoch": "last_epoch"}), on=["pair", "corruption"]
    )
    later = later[later["epoch"] > later["last_epoch"]].drop(columns="last_epoch")
    later = later.assign(n_carried=later["n_seeds"])
    return pd.concat([reference, later[reference.columns]], ignore_index=True)


def figure_series_order(
    plot_data: pd.DataFrame, pairs: list[str], layer_order: dict[str, list[str]] | None
) -> list[str]:
    """Series keys in legend order: layers input to output across the shown pairs, then transfer, then model
    (figure 17: the paper's probes, the others by name, oracles last, then the model)."""
    probe_series = set(plot_data.loc[plot_data["role"] == "probe", "series"])
    if "position" in plot_data.columns:
        known = [p for p in PROBE_NAMES if p in probe_series]
        others = sorted(probe_series - set(known))
        ordered = sorted(known + others, key=lambda p: (p.endswith("_true"), known.index(p) if p in known else 99))
        return ordered + [MODEL_SERIES]
    per_pair_orders = []
    for pair in pairs:
        model = pair.partition("-")[0]
        layers_here = plot_data.loc[(plot_data["pair"] == pair) & (plot_data["role"] == "probe"), "series"]
        per_pair_orders.append(model_layer_order(model, list(layers_here.unique()), layer_order))
    layers = [layer for layer in merge_layer_orders(per_pair_orders) if layer in probe_series]
    specials = [s for s in (TRANSFER_SERIES, MODEL_SERIES) if s in set(plot_data["series"])]
    return [s for s in layers if s not in specials] + specials

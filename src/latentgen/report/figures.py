"""The paper's figures 1-14 and latentgen's own (16: transfer from every layer; 17: every probe per layer; 18: the
runs edited midway against standard training) from the tidy scores table, and the final-epoch summary for the report.

Every figure is a grid: one column per model-dataset pair, one row per corruption rate, epochs on x.
Lines are the mean over seeds and the shading the min-max range over seeds, a run that stopped earlier counted
with its final values up to the setting's last epoch (``latentgen.report.seed_means``). The aggregation is a pure
function (``figure_plot_data``) so what is drawn can be tested without looking at pixels.

Figures are built on ``matplotlib.figure.Figure`` objects, never through pyplot: no display is needed,
no global figure state leaks between calls, and the backend is whatever ``savefig(format="pdf")`` picks.
"""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from latentgen.common.pairs import parse_pair
from latentgen.data.labels import expected_correct_fraction
from latentgen.data.datasets import DATASETS
from latentgen.common.fileio import atomic_path
from latentgen.report.figure_specs import (
    DIFFERENCE_PROBES,
    FIGURES,
    FigureSpec,
    base_pair,
    figure_pairs_and_rates,
    figure_spec,
)
from latentgen.training.model_names import DEFAULT_LAYER_ORDER, model_layer_order
from latentgen.report.seed_means import seed_spread

__all__ = [
    "FIGURES",
    "FigureSpec",
    "figure_pairs_and_rates",
    "figure_plot_data",
    "plot_figure",
    "DEFAULT_LAYER_ORDER",
    "DEFAULT_STYLE",
]

DEFAULT_STYLE: dict[str, Any] = {
    "panel_width": 3.2,  # inches per panel
    "panel_height": 2.4,
    "context": "paper",  # seaborn plotting context
    "font_scale": 1.0,
    "palette": "colorblind",  # seaborn palette for the layer lines
    "shade_range": True,  # shade the min-max range over seeds
}

MODEL_TITLES = {"mlp": "MLP", "cnn": "CNN", "alexnet": "AlexNet", "resnet18": "ResNet-18"}
DATASET_TITLES = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "tiny_imagenet": "Tiny ImageNet",
}

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

# Series keys besides layer names, and how the legend names them.
MODEL_SERIES = "model"
TRANSFER_SERIES = "transfer"
SERIES_LABELS = {
    MODEL_SERIES: "Model (standard training)",
    TRANSFER_SERIES: "With VeLPIC weight intervention",
}
# The reference is black so it never shares a colour with a layer; dotted as in the paper.
REFERENCE_COLOR = "black"
REFERENCE_LINESTYLE = ":"
# The fraction of correct labels (figures 13, 14): grey and dashed, apart from the dotted model line.
CORRECT_LABELS_COLOR = "0.45"
CORRECT_LABELS_LINESTYLE = "--"
CORRECT_LABELS_LABEL = "Correct labels, 1 \u2212 c(1 \u2212 1/K)"
RANGE_ALPHA = 0.18
# Accuracies are plotted on 0-100 %; a little headroom keeps lines at exactly 0 or 100 visible.
ACCURACY_LIMITS = (-3.0, 103.0)
MIN_FIGURE_WIDTH = 6.5  # inches


# --------------------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------------------


def pair_title(pair: str) -> str:
    """``"cnn-fashion_mnist"`` -> ``"CNN – Fashion-MNIST"``, ``"mlp-mnist-dropout"`` -> ``"MLP – MNIST (dropout)"``;
    unknown names pass through readable."""
    name = parse_pair(pair)
    model, dataset = MODEL_TITLES.get(name.model, name.model.upper()), DATASET_TITLES.get(name.dataset, name.dataset)
    return f"{model} \u2013 {dataset.replace('_', ' ')}" + "".join(f" ({v.replace('_', ' ')})" for v in name.variant)


def layer_label(layer: str) -> str:
    """``"fc3"`` -> ``"FC3"``, ``"flat"`` -> ``"Flat"`` (the paper's legend names)."""
    if layer.startswith("fc"):
        return layer.upper()
    return layer.replace("_", " ").capitalize()


def series_label(series: str) -> str:
    return SERIES_LABELS.get(series, layer_label(series))


def rate_label(rate: int) -> str:
    return f"Corruption {rate} %"


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
# Data preparation (pure)
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
    # The intervention replaces the head fed by the last probed layer; should a table ever hold transfer scores
    # for several layers, the last one is the one the paper reports.
    keep = []
    for pair, pair_rows in rows.groupby("pair", sort=False, observed=True):
        model = pair_rows["model"].iloc[0]
        order = model_layer_order(model, list(pair_rows["layer"].unique()), layer_order)
        last_layer = max(pair_rows["layer"].unique(), key=order.index)
        keep.append(pair_rows[pair_rows["layer"] == last_layer])
    rows = pd.concat(keep) if keep else rows
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


# Figure 17 compares probes; these rows are no probe of their own (the model is the dotted reference, the transfer
# predicts exactly what VeLPIC does, the selected rows repeat a probe's).
NOT_COMPARED_PROBES = {"model", "transfer", "transfer_bias", "selected"}
PROBE_LABELS = {
    "masc": "MASC",
    "velpic": "VeLPIC",
    "logreg": "Logistic regression",
    "ncm": "Nearest class mean",
    "knn": "k-nearest neighbours",
    "lda": "LDA",
    "masc_true": "MASC on true labels (oracle)",
}


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


def probe_label(series: str) -> str:
    return "Model (standard training)" if series == MODEL_SERIES else PROBE_LABELS.get(series, series)


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


# Figure 18: the lines of each edited run, and how they are drawn.
EDIT_LINES = ("model", "masc", "velpic")
EDIT_LINE_LABELS = {"model": "Model", "masc": "MASC", "velpic": "VeLPIC"}
EDIT_LINE_STYLES = {"model": "-", "masc": "--", "velpic": "-."}
EDIT_LINE_WIDTHS = {"model": 1.7, "masc": 0.9, "velpic": 0.9}


def edit_series(edit_epoch: int, line: str) -> str:
    """Series key of one line of the runs edited at ``edit_epoch``: ``"edit10"`` (the model), ``"edit10:masc"``."""
    return f"edit{edit_epoch}" if line == "model" else f"edit{edit_epoch}:{line}"


def _split_edited(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(standard training, edited runs); a table without ``edit_epoch`` (from before edits) is all standard."""
    if "edit_epoch" not in scores.columns:
        return scores, scores.iloc[0:0]
    edited = scores["edit_epoch"].notna()
    return scores[~edited], scores[edited]


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
    standard, edited = _split_edited(scores)
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
        pd.concat([lines.assign(role="probe"), reference.assign(role="reference")], ignore_index=True), _edit_label
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


def _edit_label(series: str) -> str:
    if series == MODEL_SERIES:
        return "Standard training"
    edit, _, line = series.partition(":")
    return f"Edited at epoch {edit.removeprefix('edit')}" + (f", {EDIT_LINE_LABELS[line]}" if line else "")


def figure_series_order(
    plot_data: pd.DataFrame, pairs: list[str], layer_order: dict[str, list[str]] | None
) -> list[str]:
    """Series keys in legend order: layers input to output across the shown pairs, then transfer, then model
    (figure 17: the paper's probes, the others by name, oracles last, then the model)."""
    probe_series = set(plot_data.loc[plot_data["role"] == "probe", "series"])
    if "position" in plot_data.columns:
        known = [p for p in PROBE_LABELS if p in probe_series]
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


# --------------------------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------------------------


def _resolve_style(style: dict | None) -> dict[str, Any]:
    style = dict(style or {})
    unknown = sorted(set(style) - set(DEFAULT_STYLE))
    if unknown:
        # Config sections may carry options meant for other steps; tell rather than fail.
        warnings.warn(f"figure style options ignored: {unknown}", stacklevel=3)
    return {**DEFAULT_STYLE, **{key: value for key, value in style.items() if key in DEFAULT_STYLE}}


# Seaborn's "colorblind" palette puts orange (1) and a similar vermillion (3) or brown (5) among its first six.
# Five layers occur (flat, fc1..fc4); sky blue (9) for the fifth keeps every line in a panel distinct, and its
# closest colour, blue, goes to "flat", which never shares a panel with "fc4" (no model probes both).
PALETTE_PREFERENCE = {"colorblind": [0, 1, 2, 4, 9, 3, 5, 6, 7, 8]}


def _series_colors(series_order: list[str], palette: str, layer_order: dict[str, list[str]] | None) -> dict[str, Any]:
    """A colour per series, fixed by the layer's place among all configured layers, so a layer keeps its colour
    in every panel and in every figure (FC1 is the same colour in figures 1 and 5)."""
    all_layers = merge_layer_orders([*(layer_order or DEFAULT_LAYER_ORDER).values()])
    lines = [s for s in series_order if s != MODEL_SERIES]
    ranked = all_layers + [s for s in lines if s not in all_layers]
    if not set(lines) & set(all_layers):  # figure 17's lines are probes: the palette's first colours, in order
        ranked = lines
    positions = {series: (0 if series == TRANSFER_SERIES else ranked.index(series)) for series in lines}
    preference = PALETTE_PREFERENCE.get(palette, [])
    needed = max([*positions.values(), len(preference) - 1, 0]) + 1
    available = sns.color_palette(palette, n_colors=needed)
    order = preference + [i for i in range(needed) if i not in preference]
    colors: dict[str, Any] = {series: available[order[position]] for series, position in positions.items()}
    colors[MODEL_SERIES] = REFERENCE_COLOR
    return colors


def _y_label(spec: FigureSpec) -> str:
    if spec.kind == "difference":
        return "VeLPIC \u2212 MASC test accuracy (pp)"
    if spec.split == "train_corrupted":
        return "Training accuracy on corrupted labels (%)"
    if spec.split == "train_true":
        return "Training accuracy on true labels (%)"
    return "Test accuracy (%)"


def _symmetric_limit(plot_data: pd.DataFrame) -> float:
    """Half-height of the difference figures' y axis: the largest |value| (range included), rounded up to 5 pp,
    shared by all panels so that panels compare at a glance."""
    largest = float(np.nanmax(np.abs(plot_data[["min", "max", "mean"]].to_numpy()))) if len(plot_data) else 0.0
    return max(5.0, 5.0 * np.ceil(largest * 1.05 / 5.0))


def _draw_panel(
    ax: Axes, panel: pd.DataFrame, series_order: list[str], colors: dict[str, Any], shade: bool, x: str = "epoch"
) -> None:
    # Probe lines first, the reference last so the dotted line stays visible on top of them.
    for series in series_order:
        rows = panel[panel["series"] == series].sort_values(x)
        if rows.empty:
            continue
        is_reference = series == MODEL_SERIES
        color = colors[series]
        if shade and (rows["max"] > rows["min"]).any():
            ax.fill_between(
                rows[x],
                rows["min"],
                rows["max"],
                color=color,
                alpha=RANGE_ALPHA * (0.7 if is_reference else 1.0),
                linewidth=0,
                zorder=1,
            )
        ax.plot(
            rows[x],
            rows["mean"],
            color=color,
            linestyle=REFERENCE_LINESTYLE if is_reference else "-",
            linewidth=1.8 if is_reference else 1.4,
            zorder=3 if is_reference else 2,
            marker=None if x == "epoch" or is_reference else "o",
            markersize=3.5,
        )


def _mark_empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")


def _legend_handles(
    spec: FigureSpec, series_order: list[str], colors: dict[str, Any], seeds_text: str, shade: bool
) -> list[Any]:
    handles: list[Any] = []
    label = probe_label if spec.kind == "probes" else series_label
    for series in series_order:
        is_reference = series == MODEL_SERIES
        handles.append(
            Line2D(
                [],
                [],
                color=colors[series],
                linestyle=REFERENCE_LINESTYLE if is_reference else "-",
                linewidth=1.8 if is_reference else 1.4,
                label=label(series),
            )
        )
    if spec.kind == "difference":
        handles.append(
            Line2D(
                [],
                [],
                color=REFERENCE_COLOR,
                linestyle=REFERENCE_LINESTYLE,
                linewidth=1.2,
                label="Zero (no difference)",
            )
        )
    if spec.correct_labels_line:
        handles.append(
            Line2D(
                [],
                [],
                color=CORRECT_LABELS_COLOR,
                linestyle=CORRECT_LABELS_LINESTYLE,
                linewidth=1.2,
                label=CORRECT_LABELS_LABEL,
            )
        )
    if shade:
        handles.append(Patch(facecolor="0.5", alpha=0.35, linewidth=0, label=f"Min\u2013max range over {seeds_text}"))
    return handles


def _seeds_text(plot_data: pd.DataFrame) -> str:
    """How many seeds a panel's lines average: the most seeds any epoch of a panel has (its number of runs)."""
    runs_per_panel = plot_data.groupby(["pair", "corruption"])["n_seeds"].max()
    low, high = int(runs_per_panel.min()), int(runs_per_panel.max())
    noun = "seed" if high == 1 else "seeds"
    return f"{high} {noun}" if low == high else f"{low}\u2013{high} {noun}"


def _runs_stop_at_different_epochs(plot_data: pd.DataFrame) -> bool:
    return bool((plot_data["n_carried"] > 0).any())


def _figure_title(spec: FigureSpec, note: str, width_inches: float, font_size: float) -> str:
    heading = f"Figure {spec.number}: {spec.title}"
    # Wrap to the figure width: roughly 0.52 em per character in the default sans-serif font.
    chars_per_line = max(30, int(width_inches * 72 / (font_size * 0.52)))
    return "\n".join(textwrap.wrap(heading, chars_per_line) + textwrap.wrap(note, chars_per_line))


def _figure_note(plot_data: pd.DataFrame, seeds_text: str, shaded: bool) -> str:
    shading = ", shading: min\u2013max range" if shaded else ""
    note = f"Lines: mean over {seeds_text}{shading}; columns: model \u2013 dataset; rows: label corruption rate."
    if _runs_stop_at_different_epochs(plot_data):
        # Training stops at an accuracy threshold, so seeds end at different epochs; say what the later points are.
        note += (
            " A run that stopped earlier counts with its final values up to the last epoch of the setting's "
            "longest run."
        )
    return note


def _write_pdf_atomically(fig: Figure, out_pdf: Path, metadata: dict[str, str]) -> None:
    """Readers (snakemake, a report build) never see a half-written PDF: write a temporary name, then rename."""
    with atomic_path(out_pdf) as temporary:
        fig.savefig(temporary, format="pdf", metadata=metadata)


def _rc_params(style: dict[str, Any]) -> dict[str, Any]:
    return {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context(style["context"], font_scale=style["font_scale"]),
        # TrueType (Type 42) subsets: fonts embedded, text stays text (searchable, editable), unlike Type 3.
        "pdf.fonttype": 42,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


def plot_figure(
    scores: pd.DataFrame,
    number: int,
    out_pdf: Path,
    layer_order: dict[str, list[str]],
    style: dict | None = None,
) -> None:
    """Draw paper figure ``number`` from the tidy scores table into ``out_pdf`` (one page).

    Columns are the figure's pairs present in ``scores``, rows its corruption rates present. A pair with no
    scores at one of the shown rates gets an explicit "no data" panel. Raises ValueError naming the figure if
    ``scores`` holds nothing the figure shows.
    """
    spec = figure_spec(number)
    resolved = _resolve_style(style)
    plot_data = figure_plot_data(scores, number, layer_order)
    probe_pairs = list(plot_data.loc[plot_data["role"] == "probe", "pair"].unique())
    pairs, rates = figure_pairs_and_rates(
        number,
        probe_pairs,
        list(plot_data.loc[plot_data["role"] == "probe", "corruption"].unique()),
        edited_pairs=probe_pairs,
    )
    if not pairs:
        what = "edited runs' scores" if spec.needs_edits else f"{spec.probe} scores"
        raise ValueError(
            f"Figure {number} ({spec.title}): no {what} on split {spec.split!r} for pairs "
            f"{list(spec.pairs)} at corruption rates {list(spec.rates)}"
        )
    build = _build_edit_figure if spec.needs_edits else _build_figure
    with matplotlib.rc_context(_rc_params(resolved)):
        fig = build(spec, plot_data, pairs, rates, layer_order, resolved)
        metadata = {
            "Title": f"Figure {spec.number}: {spec.title}",
            "Subject": f"latentgen reproduction; {_y_label(spec)} over epochs; "
            f"pairs {', '.join(pairs)}; corruption {', '.join(map(str, rates))} %",
            "Creator": "latentgen.report.figures",
            # No timestamp: the same scores give a byte-identical PDF, so reruns show no spurious change.
            "CreationDate": None,
        }
        _write_pdf_atomically(fig, Path(out_pdf), metadata)


def _panel_grid(n_rows: int, n_cols: int, style: dict[str, Any], margin_height: float):
    """(figure, axes, width): n_rows x n_cols panels sharing axes, ``margin_height`` inches beyond them.

    The margin holds the title block, the shared axis labels and the legend row(s); a minimum width
    keeps the title block to a few lines when a configuration leaves one or two columns.
    """
    width = max(style["panel_width"] * n_cols + 0.6, MIN_FIGURE_WIDTH)
    fig = Figure(figsize=(width, style["panel_height"] * n_rows + margin_height), layout="constrained")
    return fig, fig.subplots(n_rows, n_cols, sharex="col", sharey=True, squeeze=False), width


def _build_figure(
    spec: FigureSpec,
    plot_data: pd.DataFrame,
    pairs: list[str],
    rates: list[int],
    layer_order: dict[str, list[str]] | None,
    style: dict[str, Any],
) -> Figure:
    shown = plot_data[plot_data["pair"].isin(pairs) & plot_data["corruption"].isin(rates)]
    series_order = figure_series_order(shown, pairs, layer_order)
    colors = _series_colors(series_order, style["palette"], layer_order)
    seeds_text = _seeds_text(shown)
    n_rows, n_cols = len(rates), len(pairs)
    fig, axes, width = _panel_grid(n_rows, n_cols, style, margin_height=1.6)

    for row, rate in enumerate(rates):
        for col, pair in enumerate(pairs):
            ax = axes[row, col]
            panel = shown[(shown["pair"] == pair) & (shown["corruption"] == rate)]
            if panel.empty:
                _mark_empty(ax)
            else:
                _draw_panel(
                    ax,
                    panel,
                    series_order,
                    colors,
                    style["shade_range"],
                    x="position" if spec.kind == "probes" else "epoch",
                )
                if spec.kind == "probes":
                    _layer_ticks(ax, panel)
            if spec.kind == "difference":
                ax.axhline(0.0, color=REFERENCE_COLOR, linestyle=REFERENCE_LINESTYLE, linewidth=1.2, zorder=4)
            if spec.correct_labels_line:
                ax.axhline(
                    correct_labels_percent(pair, rate),
                    color=CORRECT_LABELS_COLOR,
                    linestyle=CORRECT_LABELS_LINESTYLE,
                    linewidth=1.2,
                    zorder=1.5,
                )
            if row == 0:
                ax.set_title(pair_title(pair), fontweight="bold")
            if col == 0:
                ax.set_ylabel(rate_label(rate), fontweight="bold")
            if row == n_rows - 1:
                # Per-column x labels rather than fig.supxlabel, which constrained layout puts on the legend row.
                ax.set_xlabel("Layer (final epoch)" if spec.kind == "probes" else "Epoch")
            ax.margins(x=0.02)

    _set_y_axis(axes[0, 0], spec, shown)
    label_size = float(matplotlib.rcParams["axes.labelsize"])
    fig.supylabel(_wrap_to_length(_y_label(spec), style["panel_height"] * n_rows, label_size), fontsize=label_size)
    title_size = float(matplotlib.rcParams["axes.titlesize"]) * 1.15
    note = _figure_note(shown, seeds_text, style["shade_range"])
    fig.suptitle(_figure_title(spec, note, width, title_size), fontsize=title_size)
    handles = _legend_handles(spec, series_order, colors, seeds_text, style["shade_range"])
    _legend_within_width(fig, handles, _legend_columns(len(handles), n_cols))
    return fig


def _edit_colors(edit_epochs: list[int], palette: str) -> dict[int, Any]:
    """A colour per edit epoch, in the palette's preferred order (earliest edit first)."""
    preference = PALETTE_PREFERENCE.get(palette, [])
    needed = max(len(edit_epochs), len(preference))
    available = sns.color_palette(palette, n_colors=needed)
    order = preference + [i for i in range(needed) if i not in preference]
    return {epoch: available[order[i]] for i, epoch in enumerate(sorted(edit_epochs))}


def _draw_edit_panel(ax: Axes, panel: pd.DataFrame, colors: dict[int, Any], shade: bool) -> None:
    """Standard training dotted black; per edit epoch its model (solid, a marker at the edit) with the seed range
    shaded, and its MASC and VeLPIC (thinner, dashed and dash-dotted) in the same colour."""
    reference = panel[panel["role"] == "reference"].sort_values("epoch")
    if not reference.empty:
        if shade and (reference["max"] > reference["min"]).any():
            ax.fill_between(
                reference["epoch"],
                reference["min"],
                reference["max"],
                color=REFERENCE_COLOR,
                alpha=RANGE_ALPHA * 0.6,
                linewidth=0,
                zorder=1,
            )
        ax.plot(
            reference["epoch"],
            reference["mean"],
            color=REFERENCE_COLOR,
            linestyle=REFERENCE_LINESTYLE,
            linewidth=1.8,
            zorder=4,
        )
    edited = panel[panel["role"] == "probe"]
    for (edit, line), rows in edited.groupby(["edit_epoch", "line"], sort=True, observed=True):
        rows = rows.sort_values("epoch")
        color = colors[int(edit)]
        if line == "model" and shade and (rows["max"] > rows["min"]).any():
            ax.fill_between(
                rows["epoch"], rows["min"], rows["max"], color=color, alpha=RANGE_ALPHA, linewidth=0, zorder=1
            )
        ax.plot(
            rows["epoch"],
            rows["mean"],
            color=color,
            linestyle=EDIT_LINE_STYLES[line],
            linewidth=EDIT_LINE_WIDTHS[line],
            alpha=1.0 if line == "model" else 0.75,
            zorder=3 if line == "model" else 2,
            marker="o" if line == "model" else None,
            markevery=[0],
            markersize=4.5,
        )


def _edit_legend_handles(edit_epochs: list[int], colors: dict[int, Any], seeds_text: str, shade: bool) -> list[Any]:
    handles: list[Any] = [
        Line2D(
            [],
            [],
            color=REFERENCE_COLOR,
            linestyle=REFERENCE_LINESTYLE,
            linewidth=1.8,
            label="Standard training (model)",
        )
    ]
    handles += [
        Line2D(
            [],
            [],
            color=colors[e],
            linestyle="-",
            linewidth=1.7,
            marker="o",
            markersize=4.5,
            label=f"Edited at epoch {e}",
        )
        for e in edit_epochs
    ]
    handles += [
        Line2D(
            [],
            [],
            color="0.35",
            linestyle=EDIT_LINE_STYLES[line],
            linewidth=EDIT_LINE_WIDTHS[line],
            label=f"{EDIT_LINE_LABELS[line]}, edited runs",
        )
        for line in EDIT_LINES
    ]
    if shade:
        handles.append(Patch(facecolor="0.5", alpha=0.35, linewidth=0, label=f"Min\u2013max range over {seeds_text}"))
    return handles


def _last_layers_text(plot_data: pd.DataFrame, pairs: list[str]) -> str:
    """``"FC4 (MLP), FC3 (CNN)"``: the last probed layer of each model shown."""
    probes = plot_data[(plot_data["role"] == "probe") & (plot_data["line"] != "model")]
    probes = probes.assign(
        model=probes["pair"].str.partition("-")[0], order=probes["pair"].map({pair: i for i, pair in enumerate(pairs)})
    )
    per_model = probes.sort_values("order")[["model", "layer"]].drop_duplicates()
    return (
        ", ".join(
            f"{layer_label(layer)} ({MODEL_TITLES.get(model, model.upper())})"
            for model, layer in per_model.itertuples(index=False)
        )
        or "last probed layer"
    )


def _build_edit_figure(
    spec: FigureSpec,
    plot_data: pd.DataFrame,
    pairs: list[str],
    rates: list[int],
    layer_order: dict[str, list[str]] | None,
    style: dict[str, Any],
) -> Figure:
    shown = plot_data[plot_data["pair"].isin(pairs) & plot_data["corruption"].isin(rates)]
    edit_epochs = sorted(int(e) for e in shown["edit_epoch"].dropna().unique())
    colors = _edit_colors(edit_epochs, style["palette"])
    seeds_text = _seeds_text(shown)
    n_rows, n_cols = len(rates), len(pairs)
    fig, axes, width = _panel_grid(n_rows, n_cols, style, margin_height=1.9)  # a taller legend block
    for row, rate in enumerate(rates):
        for col, pair in enumerate(pairs):
            ax = axes[row, col]
            panel = shown[(shown["pair"] == pair) & (shown["corruption"] == rate)]
            if panel[panel["role"] == "probe"].empty:
                _mark_empty(ax)
            else:
                _draw_edit_panel(ax, panel, colors, style["shade_range"])
            for edit in edit_epochs:  # where each edit happens, faintly, so the markers read against it
                ax.axvline(edit, color=colors[edit], linewidth=0.6, alpha=0.35, zorder=0)
            if row == 0:
                ax.set_title(pair_title(pair), fontweight="bold")
            if col == 0:
                ax.set_ylabel(rate_label(rate), fontweight="bold")
            if row == n_rows - 1:
                ax.set_xlabel("Epoch")
            ax.margins(x=0.02)
    _set_y_axis(axes[0, 0], spec, shown)
    label_size = float(matplotlib.rcParams["axes.labelsize"])
    fig.supylabel(_wrap_to_length(_y_label(spec), style["panel_height"] * n_rows, label_size), fontsize=label_size)
    title_size = float(matplotlib.rcParams["axes.titlesize"]) * 1.15
    shading = ", shading: min\u2013max range" if style["shade_range"] else ""
    note = (
        f"Lines: mean over {seeds_text}{shading}; colour: the edit epoch E (marker: the edited model at E); "
        f"MASC and VeLPIC on the last probed layer, {_last_layers_text(shown, pairs)}; standard training up to the "
        "edited runs' last epoch"
    )
    if _runs_stop_at_different_epochs(shown):
        note += ", a run that stopped earlier (standard or edited) counted with its final values up to there"
    note += "; columns: model \u2013 dataset; rows: label corruption rate."
    fig.suptitle(_figure_title(spec, note, width, title_size), fontsize=title_size)
    handles = _edit_legend_handles(edit_epochs, colors, seeds_text, style["shade_range"])
    # Colours (standard training, each edit epoch) on one row, the line styles under them where the figure is narrow.
    columns = len(handles) if n_cols >= 4 else max(len(edit_epochs) + 1, 3)
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, frameon=False)
    return fig


def _layer_ticks(ax: Axes, panel: pd.DataFrame) -> None:
    layers = panel[["position", "layer"]].drop_duplicates().sort_values("position")
    ax.set_xticks(layers["position"].tolist(), [layer_label(layer) for layer in layers["layer"]])


def _wrap_to_length(text: str, length_inches: float, font_size: float) -> str:
    """Wrap a label so it is no longer than the grid it labels (a one-row grid is shorter than most y labels)."""
    chars = max(12, int(length_inches * 72 / (font_size * 0.6)))
    return "\n".join(textwrap.wrap(text, chars))


def _set_y_axis(ax: Axes, spec: FigureSpec, shown: pd.DataFrame) -> None:
    # sharey=True: setting one panel sets all.
    if spec.kind == "difference":
        limit = _symmetric_limit(shown[shown["role"] == "probe"])
        ax.set_ylim(-limit, limit)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 5, 10], integer=True, symmetric=True))
    else:
        ax.set_ylim(*ACCURACY_LIMITS)
        ax.set_yticks([0, 25, 50, 75, 100])


def _legend_columns(n_entries: int, n_panel_columns: int) -> int:
    # About two legend entries fit under one panel; more rows rather than a legend wider than the figure.
    return max(1, min(n_entries, 2 * n_panel_columns + 1))


# Inches a legend keeps clear of the figure's edges: Agg's text extents, which decide the columns, run a little
# narrower than the PDF's glyphs (a legend 0.4 px inside the figure by Agg's measure was cut in the PDF).
LEGEND_MARGIN = 0.3


def _legend_within_width(fig: Figure, handles: list[Any], columns: int) -> None:
    """The figure's legend below the panels in at most ``columns`` columns, fewer where its rendered width would
    pass the figure's edges (long labels, e.g. figure 17's probe names on a two-column quick-start figure)."""
    renderer = FigureCanvasAgg(fig).get_renderer()  # text extents as the PDF will set them, near enough
    while True:
        legend = fig.legend(handles=handles, loc="outside lower center", ncols=columns, frameon=False)
        if columns == 1 or legend.get_window_extent(renderer).width <= fig.bbox.width - LEGEND_MARGIN * fig.dpi:
            return
        legend.remove()
        columns -= 1


# --------------------------------------------------------------------------------------------------------------
# Report table
# --------------------------------------------------------------------------------------------------------------

"""The label-issue figure: how well each method finds the wrong training labels, over the flagged checkpoints.

One panel per corruption rate above 0 % (rows) and per pair and probe (columns).  In each panel: the AUPRC of the
probe cross-fitted on each layer (coloured, one line per layer, input side first), the baselines on the same
examples (grey: cleanlab on the network's own softmax, the network's disagreement, cleanlab on a pixel logistic
regression, deep k-NN on the last layer), and the base rate (dotted black: what a random ranking scores).  Values
are means over seeds per epoch; the shading is the min-max range over seeds.  The table it draws is a pure function
(``label_issue_plot_data``) so what is drawn can be tested without looking at pixels.

Built on ``matplotlib.figure.Figure`` (no pyplot, no global state) with the figures' style (``figures.style``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from latentgen.common.fileio import atomic_path
from latentgen.report.figure_style import rc_params, resolve_style
from latentgen.report.figure_text import layer_label, pair_title
from latentgen.training.model_names import model_layer_order

BASELINE_STYLES = {  # label, grey level, line style, marker
    "network_softmax": ("cleanlab on the network's softmax (in sample)", "0.25", "--", "s"),
    "network_disagreement": ("network prediction ≠ given label", "0.45", "-.", "D"),
    "pixel_logreg": ("cleanlab on a K-fold pixel logistic regression", "0.6", ":", "^"),
    "deep_knn": ("deep k-NN on the last layer", "0.7", (0, (5, 1)), "v"),
}
SHOWN_ROLES = ("peak", "final", "peak+final")  # named under their epoch; other checkpoints by epoch only
PLOT_COLUMNS = [
    "pair",
    "corruption",
    "probe",
    "series",
    "kind",
    "epoch",
    "checkpoint",
    "mean",
    "low",
    "high",
    "n_seeds",
]


def _spread(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    grouped = rows.groupby(keys, sort=False)["auprc"]  # pairs and probes in the order the runs list them
    return grouped.agg(mean="mean", low="min", high="max", n_seeds="count").reset_index()


def label_issue_plot_data(metrics: pd.DataFrame) -> pd.DataFrame:
    """What the figure draws (``PLOT_COLUMNS``): per pair, rate > 0, panel probe, series (a layer of the probe, a
    baseline, or "base_rate") and epoch, the mean AUPRC over seeds and its min-max range.  Baselines and the base
    rate are repeated in every probe's panels."""
    rows = metrics[(metrics["corruption"] > 0) & metrics["auprc"].notna()]
    probes = _spread(rows[rows["kind"] == "probe"], ["pair", "corruption", "method", "layer", "epoch"])
    probes = probes.rename(columns={"method": "probe", "layer": "series"}).assign(kind="probe")
    baselines = _spread(rows[rows["kind"] == "baseline"], ["pair", "corruption", "method", "epoch"])
    baselines = baselines.rename(columns={"method": "series"}).assign(kind="baseline")
    base = rows.groupby(["pair", "corruption", "seed", "epoch"])["base_rate"].first().reset_index()
    base = _spread(base.rename(columns={"base_rate": "auprc"}), ["pair", "corruption", "epoch"])
    base = base.assign(series="base_rate", kind="base_rate")
    panels = probes[["pair", "corruption", "probe"]].drop_duplicates()
    shared = pd.concat([baselines, base], ignore_index=True).merge(panels, on=["pair", "corruption"])
    return pd.concat([probes, shared], ignore_index=True).merge(_roles(rows), on=KEYS)[PLOT_COLUMNS]


KEYS = ["pair", "corruption", "epoch"]


def _roles(rows: pd.DataFrame) -> pd.DataFrame:
    """The checkpoint's role at each pair, rate and epoch ("peak", "final", ...), empty where seeds disagree."""
    roles = rows.groupby(KEYS)["checkpoint"].agg(lambda values: values.iloc[0] if values.nunique() == 1 else "")
    return roles.reset_index()


def _panel_columns(plot_data: pd.DataFrame) -> list[tuple[str, str]]:
    """(pair, probe) of every column, pairs in the order they first appear, probes in the configured order."""
    probes = list(dict.fromkeys(plot_data.loc[plot_data["kind"] == "probe", "probe"]))
    pairs = list(dict.fromkeys(plot_data["pair"]))
    present = set(zip(plot_data["pair"], plot_data["probe"]))
    return [(pair, probe) for pair in pairs for probe in probes if (pair, probe) in present]


def _layer_colors(layers: list[str], palette: str) -> dict[str, Any]:
    return dict(zip(layers, sns.color_palette(palette, n_colors=max(len(layers), 1))))


def _draw_line(ax: Axes, line: pd.DataFrame, style: tuple, shade: bool, shift: float, width: float = 1.4) -> None:
    """One series, its x shifted by ``shift`` epochs (a dodge: series at the same epochs stay apart)."""
    color, linestyle, marker = style
    line = line.sort_values("epoch")
    x = line["epoch"] + shift
    ax.plot(x, line["mean"], color=color, linestyle=linestyle, marker=marker, markersize=3.5, lw=width)
    if shade and (line["n_seeds"] > 1).any():
        ax.fill_between(x, line["low"], line["high"], color=color, alpha=0.15, lw=0)


def _draw_panel(ax: Axes, panel: pd.DataFrame, layers: list[str], colors: dict, shade: bool) -> list[Line2D]:
    """The panel's lines, the base rate and the epoch ticks; returns the legend handles of its layers."""
    series = [("probe", layer, (colors[layer], "-", "o"), 1.8) for layer in layers]
    series += [
        ("baseline", name, (grey, dash, marker), 1.4) for name, (_, grey, dash, marker) in BASELINE_STYLES.items()
    ]
    epochs = sorted(panel["epoch"].unique())
    # 1.2 % of the x range between neighbouring series; a lone epoch is drawn on epoch ± 1, its series 0.08 apart
    step = 0.012 * (epochs[-1] - epochs[0]) if len(epochs) > 1 else 0.08
    handles = []
    for position, (kind, name, style, width) in enumerate(series):
        line = panel[(panel["kind"] == kind) & (panel["series"] == name)]
        if not line.empty:
            _draw_line(ax, line, style, shade, (position - (len(series) - 1) / 2) * step, width)
            if kind == "probe":
                handles.append(Line2D([], [], color=style[0], marker="o", lw=width, label=layer_label(name)))
    base = panel.loc[panel["kind"] == "base_rate", "mean"]
    if not base.empty:  # the fraction of wrong labels: the same at every checkpoint of a run
        ax.axhline(float(base.mean()), color="black", linestyle=":", lw=1.2)
    ax.set_ylim(0.0, 1.02)
    ticks = panel[["epoch", "checkpoint"]].drop_duplicates("epoch").sort_values("epoch")
    ax.set_xticks(
        ticks["epoch"],
        [f"{e}\n{role}" if role in SHOWN_ROLES else f"{e}" for e, role in zip(ticks["epoch"], ticks["checkpoint"])],
    )
    if len(epochs) == 1:
        ax.set_xlim(epochs[0] - 1, epochs[0] + 1)
    return handles


def _shared_legend() -> list[Line2D]:
    handles = [
        Line2D([], [], color=grey, linestyle=linestyle, marker=marker, lw=1.4, label=label)
        for label, grey, linestyle, marker in BASELINE_STYLES.values()
    ]
    return [*handles, Line2D([], [], color="black", linestyle=":", lw=1.2, label="base rate (fraction wrong)")]


def _build(plot_data: pd.DataFrame, layer_order: dict[str, list[str]] | None, style: dict[str, Any]) -> Figure:
    columns = _panel_columns(plot_data)
    rates = sorted(plot_data["corruption"].unique())
    width = max(style["panel_width"] * len(columns) + 0.6, 6.5)
    fig = Figure(figsize=(width, style["panel_height"] * len(rates) + 1.6), layout="constrained")
    # x not shared: each rate has its own peak epoch, named under its tick
    axes = fig.subplots(len(rates), len(columns), sharey=True, squeeze=False)
    for col, (pair, probe) in enumerate(columns):
        model = pair.partition("-")[0]
        shown = plot_data[(plot_data["pair"] == pair) & (plot_data["probe"] == probe)]
        present = shown.loc[shown["kind"] == "probe", "series"].unique().tolist()
        layers = [layer for layer in model_layer_order(model, present, layer_order) if layer in present]
        colors = _layer_colors(layers, style["palette"])
        for row, rate in enumerate(rates):
            ax = axes[row, col]
            handles = _draw_panel(ax, shown[shown["corruption"] == rate], layers, colors, style["shade_range"])
            ax.set_title(f"{pair_title(pair)}, {probe}, {rate} %", fontsize="small")
            if row == 0 and handles:
                ax.legend(
                    handles=handles, title="layer", fontsize="x-small", title_fontsize="x-small", loc="lower right"
                )
            if col == 0:
                ax.set_ylabel("AUPRC")
            if row == len(rates) - 1:
                ax.set_xlabel("epoch")
    fig.legend(handles=_shared_legend(), loc="outside lower center", ncols=min(3, len(columns) + 1), fontsize="small")
    fig.suptitle("Finding the wrong training labels: AUPRC at the model's peak and final checkpoints")
    return fig


def plot_label_issue_figure(
    metrics: pd.DataFrame, out_pdf: Path, layer_order: dict[str, list[str]] | None = None, style: dict | None = None
) -> None:
    """Draw the figure of ``metrics`` (the label-issue stage's metrics tables, concatenated) to ``out_pdf``."""
    style = resolve_style(style)
    plot_data = label_issue_plot_data(metrics)
    if plot_data.empty:
        raise ValueError("no run with corrupted labels (and a defined AUPRC) to draw")
    with matplotlib.rc_context(rc_params(style)):
        fig = _build(plot_data, layer_order, style)
        with atomic_path(out_pdf) as temporary:
            fig.savefig(temporary, format="pdf", metadata={"Title": "latentgen: finding the wrong training labels"})

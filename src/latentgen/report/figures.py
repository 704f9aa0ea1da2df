"""Drawing the paper's figures 1-14 and latentgen's own (16: transfer from every layer; 17: every probe per layer;
18: the runs edited midway against standard training) from the tidy scores table, one PDF each.

What each figure plots comes from ``latentgen.report.figure_data``, its words from ``figure_text``, its colours,
line styles and legend entries from ``figure_style``; this module lays out the panels, draws them and writes the
PDF. Figures are built on ``matplotlib.figure.Figure`` objects, never through pyplot: no display is needed,
no global figure state leaks between calls, and the backend is whatever ``savefig(format="pdf")`` picks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from latentgen.common.fileio import atomic_path
from latentgen.report.figure_data import correct_labels_percent, figure_plot_data, figure_series_order
from latentgen.report.figure_specs import FigureSpec, figure_pairs_and_rates, figure_spec
from latentgen.report.figure_style import (
    CORRECT_LABELS_COLOR,
    CORRECT_LABELS_LINESTYLE,
    EDIT_LINE_STYLES,
    EDIT_LINE_WIDTHS,
    RANGE_ALPHA,
    REFERENCE_COLOR,
    REFERENCE_LINESTYLE,
    edit_colors,
    edit_legend_handles,
    legend_handles,
    rc_params,
    resolve_style,
    series_colors,
)
from latentgen.report.figure_text import (
    MODEL_SERIES,
    describe_seeds,
    edit_figure_note,
    figure_note,
    figure_title,
    layer_label,
    pair_title,
    wrap_to_length,
    y_label,
)

__all__ = ["plot_figure", "rate_label"]

# Accuracies are plotted on 0-100 %; a little headroom keeps lines at exactly 0 or 100 visible.
ACCURACY_LIMITS = (-3.0, 103.0)
MIN_FIGURE_WIDTH = 6.5  # inches


def rate_label(rate: int) -> str:
    return f"Corruption {rate} %"


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
    resolved = resolve_style(style)
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
    with matplotlib.rc_context(rc_params(resolved)):
        fig = build(spec, plot_data, pairs, rates, layer_order, resolved)
        metadata = {
            "Title": f"Figure {spec.number}: {spec.title}",
            "Subject": f"latentgen reproduction; {y_label(spec)} over epochs; "
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
    colors = series_colors(series_order, style["palette"], layer_order)
    seeds_text = describe_seeds(shown)
    fig, axes, width = _panel_grid(len(rates), len(pairs), style, margin_height=1.6)
    # Per-column x labels rather than fig.supxlabel, which constrained layout puts on the legend row.
    x_label = "Layer (final epoch)" if spec.kind == "probes" else "Epoch"
    for row, rate in enumerate(rates):
        for col, pair in enumerate(pairs):
            panel = shown[(shown["pair"] == pair) & (shown["corruption"] == rate)]
            _draw_figure_panel(axes[row, col], spec, panel, pair, rate, series_order, colors, style)
            _label_panel(axes, row, col, pair, rate, x_label)
    _title_block(fig, axes, spec, shown, figure_note(shown, seeds_text, style["shade_range"]), width, style)
    handles = legend_handles(spec, series_order, colors, seeds_text, style["shade_range"])
    _legend_within_width(fig, handles, _legend_columns(len(handles), len(pairs)))
    return fig


def _draw_figure_panel(
    ax: Axes,
    spec: FigureSpec,
    panel: pd.DataFrame,
    pair: str,
    rate: int,
    series_order: list[str],
    colors: dict[str, Any],
    style: dict[str, Any],
) -> None:
    """One panel of figures 1-17: its lines (or "no data") and the figure's horizontal reference lines."""
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


def _label_panel(axes, row: int, col: int, pair: str, rate: int, x_label: str) -> None:
    """Pair titles on the top row, rates on the left column, the x label under the bottom row."""
    ax = axes[row, col]
    if row == 0:
        ax.set_title(pair_title(pair), fontweight="bold")
    if col == 0:
        ax.set_ylabel(rate_label(rate), fontweight="bold")
    if row == axes.shape[0] - 1:
        ax.set_xlabel(x_label)
    ax.margins(x=0.02)


def _title_block(
    fig: Figure, axes, spec: FigureSpec, shown: pd.DataFrame, note: str, width: float, style: dict[str, Any]
) -> None:
    """The shared y axis and its label, and the title with ``note`` under it."""
    _set_y_axis(axes[0, 0], spec, shown)
    label_size = float(matplotlib.rcParams["axes.labelsize"])
    grid_height = style["panel_height"] * axes.shape[0]
    fig.supylabel(wrap_to_length(y_label(spec), grid_height, label_size), fontsize=label_size)
    title_size = float(matplotlib.rcParams["axes.titlesize"]) * 1.15
    fig.suptitle(figure_title(spec, note, width, title_size), fontsize=title_size)


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
    colors = edit_colors(edit_epochs, style["palette"])
    seeds_text = describe_seeds(shown)
    fig, axes, width = _panel_grid(len(rates), len(pairs), style, margin_height=1.9)  # a taller legend block
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
            _label_panel(axes, row, col, pair, rate, "Epoch")
    note = edit_figure_note(shown, pairs, seeds_text, style["shade_range"])
    _title_block(fig, axes, spec, shown, note, width, style)
    handles = edit_legend_handles(edit_epochs, colors, seeds_text, style["shade_range"])
    # Colours (standard training, each edit epoch) on one row, the line styles under them where the figure is narrow.
    columns = len(handles) if len(pairs) >= 4 else max(len(edit_epochs) + 1, 3)
    fig.legend(handles=handles, loc="outside lower center", ncols=columns, frameon=False)
    return fig


# --------------------------------------------------------------------------------------------------------------
# Panels
# --------------------------------------------------------------------------------------------------------------


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


def _mark_empty(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")


def _layer_ticks(ax: Axes, panel: pd.DataFrame) -> None:
    layers = panel[["position", "layer"]].drop_duplicates().sort_values("position")
    ax.set_xticks(layers["position"].tolist(), [layer_label(layer) for layer in layers["layer"]])


def _set_y_axis(ax: Axes, spec: FigureSpec, shown: pd.DataFrame) -> None:
    # sharey=True: setting one panel sets all.
    if spec.kind == "difference":
        limit = _symmetric_limit(shown[shown["role"] == "probe"])
        ax.set_ylim(-limit, limit)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, steps=[1, 2, 5, 10], integer=True, symmetric=True))
    else:
        ax.set_ylim(*ACCURACY_LIMITS)
        ax.set_yticks([0, 25, 50, 75, 100])


def _symmetric_limit(plot_data: pd.DataFrame) -> float:
    """Half-height of the difference figures' y axis: the largest |value| (range included), rounded up to 5 pp,
    shared by all panels so that panels compare at a glance."""
    largest = float(np.nanmax(np.abs(plot_data[["min", "max", "mean"]].to_numpy()))) if len(plot_data) else 0.0
    return max(5.0, 5.0 * np.ceil(largest * 1.05 / 5.0))


# --------------------------------------------------------------------------------------------------------------
# Legend and PDF
# --------------------------------------------------------------------------------------------------------------


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


def _write_pdf_atomically(fig: Figure, out_pdf: Path, metadata: dict[str, str]) -> None:
    """Readers (snakemake, a report build) never see a half-written PDF: write a temporary name, then rename."""
    with atomic_path(out_pdf) as temporary:
        fig.savefig(temporary, format="pdf", metadata=metadata)

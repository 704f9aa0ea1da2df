"""How the figures look: the configurable style (``figures.style`` of the config), matplotlib's settings, the
colour of each line and the legend entries (``latentgen.report.figures`` draws with them)."""

from __future__ import annotations

import warnings
from typing import Any

import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from latentgen.report.figure_data import EDIT_LINES, merge_layer_orders
from latentgen.report.figure_specs import FigureSpec
from latentgen.report.figure_text import (
    CORRECT_LABELS_LABEL,
    EDIT_LINE_LABELS,
    MODEL_SERIES,
    TRANSFER_SERIES,
    probe_label,
    series_label,
)
from latentgen.training.model_names import DEFAULT_LAYER_ORDER

DEFAULT_STYLE: dict[str, Any] = {
    "panel_width": 3.2,  # inches per panel
    "panel_height": 2.4,
    "context": "paper",  # seaborn plotting context
    "font_scale": 1.0,
    "palette": "colorblind",  # seaborn palette for the layer lines
    "shade_range": True,  # shade the min-max range over seeds
}

# The reference is black so it never shares a colour with a layer; dotted as in the paper.
REFERENCE_COLOR = "black"
REFERENCE_LINESTYLE = ":"
# The fraction of correct labels (figures 13, 14): grey and dashed, apart from the dotted model line.
CORRECT_LABELS_COLOR = "0.45"
CORRECT_LABELS_LINESTYLE = "--"
RANGE_ALPHA = 0.18

# Figure 18: how the lines of each edited run are drawn.
EDIT_LINE_STYLES = {"model": "-", "masc": "--", "velpic": "-."}
EDIT_LINE_WIDTHS = {"model": 1.7, "masc": 0.9, "velpic": 0.9}


def resolve_style(style: dict | None) -> dict[str, Any]:
    style = dict(style or {})
    unknown = sorted(set(style) - set(DEFAULT_STYLE))
    if unknown:
        # Config sections may carry options meant for other steps; tell rather than fail.
        warnings.warn(f"figure style options ignored: {unknown}", stacklevel=3)
    return {**DEFAULT_STYLE, **{key: value for key, value in style.items() if key in DEFAULT_STYLE}}


def rc_params(style: dict[str, Any]) -> dict[str, Any]:
    return {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context(style["context"], font_scale=style["font_scale"]),
        # TrueType (Type 42) subsets: fonts embedded, text stays text (searchable, editable), unlike Type 3.
        "pdf.fonttype": 42,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }


# Seaborn's "colorblind" palette puts orange (1) and a similar vermillion (3) or brown (5) among its first six.
# Five layers occur (flat, fc1..fc4); sky blue (9) for the fifth keeps every line in a panel distinct, and its
# closest colour, blue, goes to "flat", which never shares a panel with "fc4" (no model probes both).
PALETTE_PREFERENCE = {"colorblind": [0, 1, 2, 4, 9, 3, 5, 6, 7, 8]}


def series_colors(series_order: list[str], palette: str, layer_order: dict[str, list[str]] | None) -> dict[str, Any]:
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


def edit_colors(edit_epochs: list[int], palette: str) -> dict[int, Any]:
    """A colour per edit epoch, in the palette's preferred order (earliest edit first)."""
    preference = PALETTE_PREFERENCE.get(palette, [])
    needed = max(len(edit_epochs), len(preference))
    available = sns.color_palette(palette, n_colors=needed)
    order = preference + [i for i in range(needed) if i not in preference]
    return {epoch: available[order[i]] for i, epoch in enumerate(sorted(edit_epochs))}


def legend_handles(
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


def edit_legend_handles(edit_epochs: list[int], colors: dict[int, Any], seeds_text: str, shade: bool) -> list[Any]:
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

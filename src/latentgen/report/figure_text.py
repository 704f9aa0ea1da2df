"""Every word the figures show: panel titles, legend labels, the y-axis label and the note under each title.

Pure functions of names and plot data (``latentgen.report.figure_data``), free of matplotlib, so the labels the
plot data carries need no plotting stack.
"""

from __future__ import annotations

import textwrap

import pandas as pd

from latentgen.common.pairs import parse_pair
from latentgen.probes.names import PROBE_LABELS
from latentgen.report.figure_specs import FigureSpec

MODEL_TITLES = {"mlp": "MLP", "cnn": "CNN", "alexnet": "AlexNet", "resnet18": "ResNet-18"}
DATASET_TITLES = {
    "mnist": "MNIST",
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "tiny_imagenet": "Tiny ImageNet",
}

# Series keys besides layer names, and how the legend names them.
MODEL_SERIES = "model"
TRANSFER_SERIES = "transfer"
SERIES_LABELS = {
    MODEL_SERIES: "Model (standard training)",
    TRANSFER_SERIES: "With VeLPIC weight intervention",
}

CORRECT_LABELS_LABEL = "Correct labels, 1 \u2212 c(1 \u2212 1/K)"

# Figure 18: how the legend names the lines of each edited run.
EDIT_LINE_LABELS = {"model": "Model", "masc": "MASC", "velpic": "VeLPIC"}


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


def probe_label(series: str) -> str:
    return "Model (standard training)" if series == MODEL_SERIES else PROBE_LABELS.get(series, series)


def edit_label(series: str) -> str:
    if series == MODEL_SERIES:
        return "Standard training"
    edit, _, line = series.partition(":")
    return f"Edited at epoch {edit.removeprefix('edit')}" + (f", {EDIT_LINE_LABELS[line]}" if line else "")


# --------------------------------------------------------------------------------------------------------------
# Axis label, title and note
# --------------------------------------------------------------------------------------------------------------


def y_label(spec: FigureSpec) -> str:
    if spec.kind == "difference":
        return "VeLPIC \u2212 MASC test accuracy (pp)"
    if spec.split == "train_corrupted":
        return "Training accuracy on corrupted labels (%)"
    if spec.split == "train_true":
        return "Training accuracy on true labels (%)"
    return "Test accuracy (%)"


def wrap_to_length(text: str, length_inches: float, font_size: float) -> str:
    """Wrap a label so it is no longer than the grid it labels (a one-row grid is shorter than most y labels)."""
    chars = max(12, int(length_inches * 72 / (font_size * 0.6)))
    return "\n".join(textwrap.wrap(text, chars))


def describe_seeds(plot_data: pd.DataFrame) -> str:
    """How many seeds a panel's lines average: the most seeds any epoch of a panel has (its number of runs)."""
    runs_per_panel = plot_data.groupby(["pair", "corruption"])["n_seeds"].max()
    low, high = int(runs_per_panel.min()), int(runs_per_panel.max())
    noun = "seed" if high == 1 else "seeds"
    return f"{high} {noun}" if low == high else f"{low}\u2013{high} {noun}"


def _runs_stop_at_different_epochs(plot_data: pd.DataFrame) -> bool:
    return bool((plot_data["n_carried"] > 0).any())


def figure_title(spec: FigureSpec, note: str, width_inches: float, font_size: float) -> str:
    heading = f"Figure {spec.number}: {spec.title}"
    # Wrap to the figure width: roughly 0.52 em per character in the default sans-serif font.
    chars_per_line = max(30, int(width_inches * 72 / (font_size * 0.52)))
    return "\n".join(textwrap.wrap(heading, chars_per_line) + textwrap.wrap(note, chars_per_line))


def figure_note(plot_data: pd.DataFrame, seeds_text: str, shaded: bool) -> str:
    shading = ", shading: min\u2013max range" if shaded else ""
    note = f"Lines: mean over {seeds_text}{shading}; columns: model \u2013 dataset; rows: label corruption rate."
    if _runs_stop_at_different_epochs(plot_data):
        # Training stops at an accuracy threshold, so seeds end at different epochs; say what the later points are.
        note += (
            " A run that stopped earlier counts with its final values up to the last epoch of the setting's "
            "longest run."
        )
    return note


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


def edit_figure_note(plot_data: pd.DataFrame, pairs: list[str], seeds_text: str, shaded: bool) -> str:
    """Figure 18's note under its title: what its lines, colours and markers are."""
    shading = ", shading: min\u2013max range" if shaded else ""
    note = (
        f"Lines: mean over {seeds_text}{shading}; colour: the edit epoch E (marker: the edited model at E); "
        f"MASC and VeLPIC on the last probed layer, {_last_layers_text(plot_data, pairs)}; standard training up to "
        "the edited runs' last epoch"
    )
    if _runs_stop_at_different_epochs(plot_data):
        note += ", a run that stopped earlier (standard or edited) counted with its final values up to there"
    return note + "; columns: model \u2013 dataset; rows: label corruption rate."

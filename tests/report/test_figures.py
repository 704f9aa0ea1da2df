"""Figures: specs, the pure plot-data preparation and PDF output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pypdf
import pytest

from latentgen.probes.names import PROBE_LABELS
from latentgen.report.figure_data import correct_labels_percent, figure_plot_data, merge_layer_orders
from latentgen.report.figure_specs import (
    ALL_RATES,
    APPENDIX_PAIRS,
    FIGURES,
    MAIN_PAIRS,
    buildable_figures,
    figure_pairs_and_rates,
)
from latentgen.report.figure_text import pair_title
from latentgen.report.figures import plot_figure
from synthetic_scores import EPOCHS, LAYER_ORDER, PAIRS, RATES, SEEDS, make_scores, synthetic_value, with_new_probes


@pytest.fixture(scope="module")
def scores() -> pd.DataFrame:
    return make_scores()


def assert_one_page_pdf(path: Path) -> None:
    assert path.exists()
    assert path.read_bytes().startswith(b"%PDF")
    reader = pypdf.PdfReader(path)
    assert len(reader.pages) == 1
    assert reader.metadata.title.startswith("Figure ")


# ---------------------------------------------------------------------------------------------------------------
# Specs
# ---------------------------------------------------------------------------------------------------------------


def test_the_papers_fourteen_figures_and_latentgens_own() -> None:
    assert sorted(FIGURES) == [*range(1, 15), 16, 17, 18]
    assert FIGURES[16].kind == "layers" and FIGURES[16].probe == "transfer" and FIGURES[17].kind == "probes"
    assert [n for n, spec in FIGURES.items() if spec.needs_edits] == [18]
    assert {n for n, spec in FIGURES.items() if spec.pair_group == "appendix"} == {5, 7, 10, 12, 14}
    assert {n for n, spec in FIGURES.items() if spec.kind == "difference"} == {8, 9, 10}
    assert FIGURES[13].split == "train_corrupted" and FIGURES[3].split == "test"


def test_figure_pairs_and_rates_intersects_in_spec_order() -> None:
    pairs, rates = figure_pairs_and_rates(1, list(reversed(MAIN_PAIRS)) + ["cnn-mnist"], [80, 0, 20, 100])
    assert pairs == list(MAIN_PAIRS)
    assert rates == [20, 80]
    assert figure_pairs_and_rates(4, PAIRS, RATES) == (PAIRS, [0])


def test_a_variant_pair_is_shown_right_after_its_paper_pair() -> None:
    pairs, _ = figure_pairs_and_rates(1, ["mlp-mnist-dropout", "cnn-fashion_mnist", "mlp-mnist"], [40])
    assert pairs == ["mlp-mnist", "mlp-mnist-dropout", "cnn-fashion_mnist"]
    assert figure_pairs_and_rates(1, ["mlp-mnist-dropout"], [40]) == (["mlp-mnist-dropout"], [40])
    assert pair_title("mlp-mnist-dropout") == "MLP \u2013 MNIST (dropout)"


def test_a_variant_pairs_scores_reach_its_figures(scores: pd.DataFrame, tmp_path: Path) -> None:
    variant = scores[scores["pair"] == "mlp-mnist"].assign(pair="mlp-mnist-dropout")
    variant = variant.assign(accuracy=variant["accuracy"] * 0.9)
    data = figure_plot_data(pd.concat([scores, variant], ignore_index=True), 1, LAYER_ORDER)
    assert set(data["pair"]) == {"mlp-mnist", "mlp-mnist-dropout", "cnn-fashion_mnist"}
    plot_figure(pd.concat([scores, variant], ignore_index=True), 1, tmp_path / "fig1.pdf", LAYER_ORDER, {})
    assert_one_page_pdf(tmp_path / "fig1.pdf")


def test_figures_without_configured_pairs_or_rates_are_empty() -> None:
    for number in (5, 7, 10, 12, 14):
        assert figure_pairs_and_rates(number, PAIRS, RATES) == ([], [])
    assert figure_pairs_and_rates(1, PAIRS, [0, 100]) == ([], [])
    assert buildable_figures(PAIRS, RATES) == [1, 2, 3, 4, 6, 8, 9, 11, 13, 16, 17]
    assert buildable_figures(list(APPENDIX_PAIRS), [0]) == [5, 7, 10, 12, 14, 16, 17]
    # figure 18 only where some pair has edited runs, and only those pairs (paper order, then any other pair)
    assert buildable_figures(PAIRS, RATES, edited_pairs=["cnn-fashion_mnist"])[-1] == 18
    assert figure_pairs_and_rates(18, ["resnet18-cifar10", *PAIRS], RATES, ["resnet18-cifar10", "mlp-mnist"]) == (
        ["mlp-mnist", "resnet18-cifar10"],
        RATES,
    )


def test_every_pair_and_rate_is_in_a_masc_and_a_velpic_figure() -> None:
    """Figures 5 and 7 show the appendix pairs at every rate, as 10, 12 and 14 do (the main pairs split them
    over 1/2 and 4/6)."""
    for probe in ("masc", "velpic"):
        for pair in MAIN_PAIRS + APPENDIX_PAIRS:
            shown = {
                rate for spec in FIGURES.values() if spec.probe == probe and pair in spec.pairs for rate in spec.rates
            }
            assert shown == set(ALL_RATES), (probe, pair)
    for number in (5, 7, 10, 12, 14):
        assert FIGURES[number].rates == ALL_RATES


def test_the_correct_labels_line_is_on_the_training_accuracy_figures() -> None:
    assert {n for n, spec in FIGURES.items() if spec.correct_labels_line} == {13, 14}
    assert correct_labels_percent("mlp-mnist", 0) == 100.0
    assert correct_labels_percent("mlp-mnist", 80) == pytest.approx(28.0)  # 1 - 0.8 * (1 - 1/10)
    assert correct_labels_percent("alexnet-tiny_imagenet", 100) == pytest.approx(0.5)  # 1/200


def test_unknown_figure_number_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Figure 15"):
        figure_pairs_and_rates(15, PAIRS, RATES)


def test_layer_orders_merge_input_to_output() -> None:
    assert merge_layer_orders([LAYER_ORDER["mlp"], LAYER_ORDER["cnn"]]) == ["flat", "fc1", "fc2", "fc3", "fc4"]


# ---------------------------------------------------------------------------------------------------------------
# Plot data
# ---------------------------------------------------------------------------------------------------------------


def test_layer_figure_data_is_mean_min_max_over_seeds_in_percent(scores: pd.DataFrame) -> None:
    data = figure_plot_data(scores, 1, LAYER_ORDER)
    assert set(data["corruption"]) == {40, 80}  # figure 1 shows 20-80 only
    row = data[
        (data["pair"] == "mlp-mnist") & (data["corruption"] == 40) & (data["epoch"] == 4) & (data["series"] == "fc2")
    ].squeeze()
    per_seed = [100 * synthetic_value("mlp-mnist", 40, s, 4, "fc2", "masc", "test") for s in SEEDS]
    assert row["mean"] == pytest.approx(np.mean(per_seed))
    assert row["min"] == pytest.approx(min(per_seed)) and row["max"] == pytest.approx(max(per_seed))
    assert row["n_seeds"] == 2 and row["label"] == "FC2" and row["role"] == "probe"
    reference = data[data["role"] == "reference"]
    assert set(reference["series"]) == {"model"} and set(reference["label"]) == {"Model (standard training)"}


def test_a_run_that_stopped_counts_with_its_final_values() -> None:
    """Seed 0 stops at epoch 4, seed 1 at 8: at 6 and 8 seed 0's epoch-4 value enters the mean and range."""
    table = make_scores(epochs_by_seed={0: [0, 2, 4], 1: [0, 2, 4, 6, 8]})
    data = figure_plot_data(table, 2, LAYER_ORDER)
    line = data[(data["pair"] == "mlp-mnist") & (data["corruption"] == 40) & (data["series"] == "fc3")]
    line = line.set_index("epoch")
    stopped = 100 * synthetic_value("mlp-mnist", 40, 0, 4, "fc3", "velpic", "test")
    for epoch in (6, 8):
        running = 100 * synthetic_value("mlp-mnist", 40, 1, epoch, "fc3", "velpic", "test")
        assert line.loc[epoch, "mean"] == pytest.approx((stopped + running) / 2)
        assert line.loc[epoch, "min"] == pytest.approx(min(stopped, running))
        assert line.loc[epoch, "max"] == pytest.approx(max(stopped, running))
    assert line["n_seeds"].tolist() == [2] * 5 and line["n_carried"].tolist() == [0, 0, 0, 1, 1]


def test_difference_is_velpic_minus_masc_per_seed_in_points(scores: pd.DataFrame) -> None:
    data = figure_plot_data(scores, 8, LAYER_ORDER)
    assert set(data["role"]) == {"probe"}  # the zero line is the reference, not data
    row = data[
        (data["pair"] == "cnn-fashion_mnist")
        & (data["corruption"] == 80)
        & (data["epoch"] == 2)
        & (data["series"] == "flat")
    ].squeeze()
    differences = [
        100
        * (
            synthetic_value("cnn-fashion_mnist", 80, s, 2, "flat", "velpic", "test")
            - synthetic_value("cnn-fashion_mnist", 80, s, 2, "flat", "masc", "test")
        )
        for s in SEEDS
    ]
    assert row["mean"] == pytest.approx(np.mean(differences))
    assert row["min"] == pytest.approx(min(differences)) and row["max"] == pytest.approx(max(differences))


def test_difference_range_is_over_per_seed_differences() -> None:
    """Seed 0: VeLPIC 60, MASC 50 -> +10; seed 1: VeLPIC 70, MASC 80 -> -10. Range [-10, 10], mean 0."""
    base = {
        "pair": "mlp-mnist",
        "model": "mlp",
        "dataset": "mnist",
        "corruption": 40,
        "epoch": 2,
        "layer": "fc1",
        "split": "test",
        "n_components": np.nan,
        "fit_seconds": 0.0,
    }
    values = {(0, "velpic"): 0.6, (0, "masc"): 0.5, (1, "velpic"): 0.7, (1, "masc"): 0.8}
    table = pd.DataFrame([{**base, "seed": s, "probe": p, "accuracy": a} for (s, p), a in values.items()])
    row = figure_plot_data(table, 8, LAYER_ORDER).squeeze()
    assert (row["mean"], row["min"], row["max"]) == pytest.approx((0.0, -10.0, 10.0))


def test_transfer_data_uses_the_split_of_the_figure(scores: pd.DataFrame) -> None:
    data = figure_plot_data(scores, 13, LAYER_ORDER)
    assert set(data["series"]) == {"transfer", "model"}
    row = data[
        (data["pair"] == "mlp-mnist")
        & (data["corruption"] == 0)
        & (data["epoch"] == 6)
        & (data["series"] == "transfer")
    ].squeeze()
    expected = [100 * synthetic_value("mlp-mnist", 0, s, 6, "fc4", "transfer", "train_corrupted") for s in SEEDS]
    assert row["mean"] == pytest.approx(np.mean(expected))
    assert row["label"] == "With VeLPIC weight intervention"


def test_the_plot_data_needs_no_plotting_stack() -> None:
    """What a figure plots is computed without matplotlib or seaborn (they load only to draw)."""
    code = (
        "import sys, latentgen.report.figure_data; "
        "print(sorted(m for m in ('matplotlib', 'seaborn', 'torch') if m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


# ---------------------------------------------------------------------------------------------------------------
# PDFs
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("number", [1, 3, 9, 13])  # one of each kind: layers, transfer (test), difference, train
def test_plot_figure_writes_a_one_page_pdf(scores: pd.DataFrame, tmp_path: Path, number: int) -> None:
    out = tmp_path / "nested" / f"figure_{number:02d}.pdf"
    plot_figure(scores, number, out, LAYER_ORDER, {"panel_width": 2.5, "panel_height": 1.8})
    assert_one_page_pdf(out)
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary file left behind


def test_same_scores_give_a_byte_identical_pdf(scores: pd.DataFrame, tmp_path: Path) -> None:
    first, second = tmp_path / "a.pdf", tmp_path / "b.pdf"
    plot_figure(scores, 4, first, LAYER_ORDER)
    plot_figure(scores, 4, second, LAYER_ORDER)
    assert first.read_bytes() == second.read_bytes()


def test_plot_figure_without_data_names_the_figure(scores: pd.DataFrame, tmp_path: Path) -> None:
    out = tmp_path / "figure_05.pdf"
    with pytest.raises(ValueError, match="Figure 5"):
        plot_figure(scores, 5, out, LAYER_ORDER)
    assert not out.exists()


def test_plot_figure_marks_missing_panels_and_unknown_style_keys(
    scores: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from latentgen.report import figures

    marked = []  # (row, column) of every panel drawn as "no data"
    mark_empty = figures._mark_empty
    monkeypatch.setattr(
        figures,
        "_mark_empty",
        lambda ax: (
            marked.append((ax.get_subplotspec().rowspan.start, ax.get_subplotspec().colspan.start)) or mark_empty(ax)
        ),
    )
    partial = scores[~((scores["pair"] == "cnn-fashion_mnist") & (scores["corruption"] == 80))]
    out = tmp_path / "figure_02.pdf"
    with pytest.warns(UserWarning, match="dpi"):
        plot_figure(partial, 2, out, LAYER_ORDER, {"dpi": 300})
    assert_one_page_pdf(out)
    pairs, rates = figure_pairs_and_rates(2, PAIRS, RATES)
    assert marked == [(rates.index(80), pairs.index("cnn-fashion_mnist"))]  # that panel, and no other
    assert pypdf.PdfReader(out).pages[0].extract_text().count("no data") == 1  # and it says so on the page
    marked.clear()
    plot_figure(scores, 2, tmp_path / "complete.pdf", LAYER_ORDER)
    assert marked == [] and "no data" not in pypdf.PdfReader(tmp_path / "complete.pdf").pages[0].extract_text()


# ---------------------------------------------------------------------------------------------------------------
# Transfer from every layer (16), every probe per layer (17), the selected line of the summary
# ---------------------------------------------------------------------------------------------------------------


def test_figure_16_draws_the_transfer_from_every_layer(scores, tmp_path) -> None:
    table = with_new_probes(scores)
    data = figure_plot_data(table, 16, LAYER_ORDER)
    mlp = data[(data["pair"] == "mlp-mnist") & (data["role"] == "probe")]
    assert set(mlp["series"]) == {"fc1", "fc2", "fc3", "fc4"}
    point = mlp[(mlp["series"] == "fc2") & (mlp["corruption"] == 40) & (mlp["epoch"] == 4)].squeeze()
    expected = [100 * synthetic_value("mlp-mnist", 40, seed, 4, "fc2", "velpic", "test") for seed in SEEDS]
    assert point["mean"] == pytest.approx(np.mean(expected))
    plot_figure(table, 16, tmp_path / "fig16.pdf", LAYER_ORDER)
    assert_one_page_pdf(tmp_path / "fig16.pdf")


def test_figure_17_compares_every_probe_per_layer_at_the_final_epoch(scores, tmp_path) -> None:
    table = with_new_probes(scores)
    data = figure_plot_data(table, 17, LAYER_ORDER)
    probes = data[data["role"] == "probe"]
    assert set(probes["series"]) == {"masc", "velpic", "knn", "masc_true"}  # not transfer, selected, model
    assert dict(zip(probes["series"], probes["label"])) == {p: PROBE_LABELS[p] for p in probes["series"]}
    assert set(probes["epoch"]) == {6}
    cnn = probes[(probes["pair"] == "cnn-fashion_mnist") & (probes["series"] == "masc") & (probes["corruption"] == 40)]
    assert list(cnn.sort_values("position")["layer"]) == ["flat", "fc1", "fc2", "fc3"]
    reference = data[(data["role"] == "reference") & (data["pair"] == "mlp-mnist") & (data["corruption"] == 80)]
    assert len(reference) == 4 and reference["mean"].nunique() == 1
    plot_figure(table, 17, tmp_path / "fig17.pdf", LAYER_ORDER)
    assert_one_page_pdf(tmp_path / "fig17.pdf")


# ---------------------------------------------------------------------------------------------------------------
# The edited runs (18)
# ---------------------------------------------------------------------------------------------------------------


EDITS, UNTIL = (2, 4), 8


def with_edited_runs(scores: pd.DataFrame) -> pd.DataFrame:
    """Each run's edits at epochs 2 and 4, trained on to 8: their scores from E on, a few points above the run's."""
    standard = scores.assign(edit_epoch=pd.array([None] * len(scores), dtype="Int64"))
    edited = []
    for edit in EDITS:
        start = standard[standard["epoch"] == 0]
        for epoch in range(edit, UNTIL + 1, 2):
            edited.append(
                start.assign(
                    epoch=epoch, edit_epoch=edit, accuracy=start["accuracy"] + 0.01 * edit - 0.002 * (epoch - edit)
                )
            )
    return pd.concat([standard, *edited], ignore_index=True)


def test_figure_18_draws_each_edit_against_standard_training(scores, tmp_path) -> None:
    table = with_edited_runs(scores)
    data = figure_plot_data(table, 18, LAYER_ORDER)
    edited = data[data["role"] == "probe"]
    assert set(edited["series"]) == {f"edit{e}{line}" for e in EDITS for line in ("", ":masc", ":velpic")}
    assert set(edited.loc[edited["line"] != "model", "layer"]) == {"fc4", "fc3"}  # each model's last probed layer
    line = edited[(edited["series"] == "edit4") & (edited["pair"] == "mlp-mnist") & (edited["corruption"] == 40)]
    assert list(line["epoch"]) == [4, 6, 8] and line["n_seeds"].eq(len(SEEDS)).all()
    expected = [100 * (synthetic_value("mlp-mnist", 40, seed, 0, "output", "model", "test") + 0.04) for seed in SEEDS]
    assert line["mean"].iloc[0] == pytest.approx(np.mean(expected))
    reference = data[data["role"] == "reference"]
    assert set(reference["series"]) == {"model"} and reference["edit_epoch"].isna().all()
    # standard training stopped at 6: its final values carried on to the edited runs' last epoch, 8
    mlp = reference[(reference["pair"] == "mlp-mnist") & (reference["corruption"] == 40)].set_index("epoch")
    assert list(mlp.index) == [*EPOCHS, UNTIL] and mlp.loc[UNTIL, "mean"] == mlp.loc[max(EPOCHS), "mean"]
    assert mlp.loc[UNTIL, "n_carried"] == len(SEEDS) and mlp.loc[max(EPOCHS), "n_carried"] == 0
    plot_figure(table, 18, tmp_path / "fig18.pdf", LAYER_ORDER)
    assert_one_page_pdf(tmp_path / "fig18.pdf")
    with pytest.raises(ValueError, match="Figure 18"):  # no edited runs: nothing to draw
        plot_figure(scores, 18, tmp_path / "none.pdf", LAYER_ORDER)


def test_a_legend_of_long_labels_takes_more_rows_rather_than_passing_the_edges(scores, monkeypatch) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from latentgen.report import figures

    built = []
    monkeypatch.setattr(figures, "_write_pdf_atomically", lambda fig, out, metadata: built.append(fig))
    velpic = scores[scores["probe"] == "velpic"]
    many_probes = pd.concat(
        [with_new_probes(scores), *(velpic.assign(probe=probe) for probe in ("logreg", "ncm", "lda"))],
        ignore_index=True,
    )
    plot_figure(many_probes, 17, "unused.pdf", LAYER_ORDER)  # two columns of panels, nine long entries
    plot_figure(scores, 13, "unused.pdf", LAYER_ORDER)
    for fig in built:
        fig.draw_without_rendering()  # constrained layout places the legend
        legend = fig.legends[0].get_window_extent(FigureCanvasAgg(fig).get_renderer())
        assert 0 <= legend.x0 and legend.x1 <= fig.bbox.width, (fig.get_suptitle()[:10], legend, fig.bbox)
    assert built[0].legends[0]._ncols < 5  # fewer than the 2 x 2 + 1 the panels alone would allow

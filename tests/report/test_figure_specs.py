"""latentgen.report.figure_specs: which part of a configured grid each figure shows."""

import pytest

from latentgen.report.figure_specs import (
    FIGURES,
    base_pair,
    buildable_figures,
    figure_pairs_and_rates,
    figure_spec,
    variants_of,
)


def test_figure_spec_names_the_valid_numbers():
    assert figure_spec(5) is FIGURES[5]
    with pytest.raises(ValueError, match=r"Figure 99 is not one of the figures \[1, "):
        figure_spec(99)


def test_variants_follow_their_pair_and_unknown_pairs_are_left_out():
    pairs = ["cnn-mnist", "mlp-mnist-dropout", "mlp-mnist", "vgg-svhn"]
    assert base_pair("mlp-mnist-dropout") == "mlp-mnist" and variants_of("mlp-mnist", pairs) == ["mlp-mnist-dropout"]
    main = next(n for n, spec in FIGURES.items() if spec.pair_group == "main" and not spec.needs_edits)
    shown, rates = figure_pairs_and_rates(main, pairs, [80, 0, 40, 33])
    assert shown == ["mlp-mnist", "mlp-mnist-dropout"]
    assert rates == [rate for rate in FIGURES[main].rates if rate in (0, 40, 80)], (
        "the figure's order, not the config's"
    )


def test_an_empty_grid_is_no_figure_and_edit_figures_need_edited_pairs():
    edits = next(n for n, spec in FIGURES.items() if spec.needs_edits)
    assert figure_pairs_and_rates(edits, ["mlp-mnist"], [40]) == ([], [])
    assert figure_pairs_and_rates(edits, ["vgg-svhn", "mlp-mnist"], [40], ["vgg-svhn", "mlp-mnist"])[0] == [
        "mlp-mnist",
        "vgg-svhn",
    ], "the paper's pairs first, then others in config order"
    for number in FIGURES:
        assert figure_pairs_and_rates(number, [], [0, 40]) == ([], [])
    built = buildable_figures(["mlp-mnist"], [40])
    assert edits not in built and built == [
        n for n in FIGURES if "mlp-mnist" in FIGURES[n].pairs and 40 in FIGURES[n].rates and not FIGURES[n].needs_edits
    ]
    assert edits in buildable_figures(["mlp-mnist"], [40], ["mlp-mnist"])

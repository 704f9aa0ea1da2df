"""What each figure shows, as data: the paper's figures 1-14, and latentgen's 16 (the transfer from every probed
layer, the paper's open question), 17 (every probe's final-epoch test accuracy per layer) and 18 (the runs edited
midway, the published version's VeLPIC intervention at epochs 1, 10 and 40, against standard training).

Kept free of matplotlib/seaborn so the workflow can ask which figures a configuration produces
(``figure_pairs_and_rates``) without importing a plotting stack.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from latentgen.common.pairs import parse_pair

FigureKind = Literal["layers", "transfer", "difference", "probes", "edits"]

# The paper's main-text model-dataset pairs and the three it moves to the appendix, in the paper's column order;
# the published version's ResNet-18-CIFAR-10 joins the appendix figures as their last column.
MAIN_PAIRS: tuple[str, ...] = ("mlp-mnist", "cnn-fashion_mnist", "alexnet-tiny_imagenet")
APPENDIX_PAIRS: tuple[str, ...] = ("mlp-cifar10", "cnn-mnist", "cnn-cifar10", "resnet18-cifar10")
PAIR_GROUPS: dict[str, tuple[str, ...]] = {
    "main": MAIN_PAIRS,
    "appendix": APPENDIX_PAIRS,
    "all": MAIN_PAIRS + APPENDIX_PAIRS,
}

ALL_RATES: tuple[int, ...] = (0, 20, 40, 60, 80, 100)
MIDDLE_RATES: tuple[int, ...] = (20, 40, 60, 80)
EXTREME_RATES: tuple[int, ...] = (0, 100)

# The appendix has no separate 0 % / 100 % figures (the main pairs have 4, 6, 9 and 11), so its MASC and VeLPIC
# figures 5 and 7 show every rate, as its difference, transfer and training figures 10, 12 and 14 do.

# The difference figures subtract the second probe from the first, per seed, epoch and layer.
DIFFERENCE_PROBES: tuple[str, str] = ("velpic", "masc")


@dataclass(frozen=True)
class FigureSpec:
    """One paper figure.

    kind:
        ``layers``     one line per probed layer (probe ``probe``), model accuracy as dotted reference;
        ``transfer``   one line for the model with the VeLPIC weight intervention, model as dotted reference;
        ``difference`` VeLPIC - MASC per layer in percentage points, a dotted zero line as reference;
        ``probes``     at each run's final epoch, layers on x, one line per probe in the scores (the model dotted);
        ``edits``      the model of each edited run (one line per edit epoch E, from E on) against standard training
                       (dotted), with MASC and VeLPIC of the edited runs on the last probed layer; only the pairs
                       with edited runs (``edited_pairs``).
    probe: the probe plotted (``"velpic-masc"`` for the difference figures).
    split: which accuracy is plotted, for the probe and for the model reference alike.
    pair_group: ``"main"``, ``"appendix"`` or ``"all"`` (see PAIR_GROUPS).
    rates: corruption percentages shown as rows, in row order.
    correct_labels_line: draw the fraction of correct training labels, 1 - c (1 - 1/K), in every panel
        (figures 13 and 14, whose caption compares the training accuracy against it).
    """

    number: int
    kind: FigureKind
    probe: str
    split: str
    pair_group: str
    rates: tuple[int, ...]
    title: str

    @property
    def correct_labels_line(self) -> bool:
        # Accuracy on the corrupted training labels: the fraction still correct is the natural level to compare.
        return self.split == "train_corrupted"

    @property
    def needs_edits(self) -> bool:
        """Shows edited runs: built for the pairs that have some (``pairs.<pair>.edits``), and only for those."""
        return self.kind == "edits"

    @property
    def pairs(self) -> tuple[str, ...]:
        return PAIR_GROUPS[self.pair_group]


def _spec(
    number: int, kind: FigureKind, probe: str, split: str, group: str, rates: tuple[int, ...], title: str
) -> FigureSpec:
    return FigureSpec(number, kind, probe, split, group, rates, title)


FIGURES: dict[int, FigureSpec] = {
    spec.number: spec
    for spec in (
        _spec(1, "layers", "masc", "test", "main", MIDDLE_RATES, "MASC test accuracy of each layer during training"),
        _spec(
            2, "layers", "velpic", "test", "main", MIDDLE_RATES, "VeLPIC test accuracy of each layer during training"
        ),
        _spec(
            3,
            "transfer",
            "transfer",
            "test",
            "main",
            MIDDLE_RATES,
            "Model test accuracy with the VeLPIC weight intervention vs standard training",
        ),
        _spec(
            4,
            "layers",
            "masc",
            "test",
            "main",
            EXTREME_RATES,
            "MASC test accuracy of each layer during training, 0 % and 100 % corruption",
        ),
        _spec(
            5,
            "layers",
            "masc",
            "test",
            "appendix",
            ALL_RATES,
            "MASC test accuracy of each layer during training (appendix pairs)",
        ),
        _spec(
            6,
            "layers",
            "velpic",
            "test",
            "main",
            EXTREME_RATES,
            "VeLPIC test accuracy of each layer during training, 0 % and 100 % corruption",
        ),
        _spec(
            7,
            "layers",
            "velpic",
            "test",
            "appendix",
            ALL_RATES,
            "VeLPIC test accuracy of each layer during training (appendix pairs)",
        ),
        _spec(
            8,
            "difference",
            "velpic-masc",
            "test",
            "main",
            MIDDLE_RATES,
            "Test accuracy difference VeLPIC \u2212 MASC per layer, in percentage points (pp)",
        ),
        _spec(
            9,
            "difference",
            "velpic-masc",
            "test",
            "main",
            EXTREME_RATES,
            "Test accuracy difference VeLPIC \u2212 MASC per layer in percentage points (pp), 0 % and 100 % corruption",
        ),
        _spec(
            10,
            "difference",
            "velpic-masc",
            "test",
            "appendix",
            ALL_RATES,
            "Test accuracy difference VeLPIC \u2212 MASC per layer in percentage points (pp), appendix pairs",
        ),
        _spec(
            11,
            "transfer",
            "transfer",
            "test",
            "main",
            EXTREME_RATES,
            "Model test accuracy with the VeLPIC weight intervention vs standard training, 0 % and 100 % corruption",
        ),
        _spec(
            12,
            "transfer",
            "transfer",
            "test",
            "appendix",
            ALL_RATES,
            "Model test accuracy with the VeLPIC weight intervention vs standard training (appendix pairs)",
        ),
        _spec(
            13,
            "transfer",
            "transfer",
            "train_corrupted",
            "main",
            ALL_RATES,
            "Training accuracy on the corrupted labels with the VeLPIC weight intervention vs standard training",
        ),
        _spec(
            14,
            "transfer",
            "transfer",
            "train_corrupted",
            "appendix",
            ALL_RATES,
            "Training accuracy on the corrupted labels with the VeLPIC weight intervention vs standard training "
            "(appendix pairs)",
        ),
        # latentgen's own figures (15 is left to the probe-family cost work).
        _spec(
            16,
            "layers",
            "transfer",
            "test",
            "all",
            ALL_RATES,
            "Test accuracy of the model made from each layer's VeLPIC vectors (transfer from that layer) vs "
            "standard training",
        ),
        _spec(
            17,
            "probes",
            "all",
            "test",
            "all",
            ALL_RATES,
            "Final-epoch test accuracy of every probe per layer (masc_true: an oracle fitted on the true labels)",
        ),
        _spec(
            18,
            "edits",
            "model",
            "test",
            "all",
            ALL_RATES,
            "Test accuracy of the model edited at epoch E (its VeLPIC vectors as pre-softmax weights, then trained "
            "on) vs standard training, with MASC and VeLPIC of the edited runs on the last probed layer",
        ),
    )
}


def figure_spec(number: int) -> FigureSpec:
    """The spec of figure ``number``; a ValueError (not a bare KeyError) names the valid numbers."""
    try:
        return FIGURES[number]
    except KeyError:
        raise ValueError(f"Figure {number} is not one of the figures {sorted(FIGURES)}") from None


def figure_pairs_and_rates(
    number: int, pairs: list[str], rates: list[int], edited_pairs: Iterable[str] = ()
) -> tuple[list[str], list[int]]:
    """The part of the configured grid (``pairs`` x ``rates``) that figure ``number`` shows, in the figure's order.

    ``edited_pairs``: the pairs with edited runs; a figure of edited runs (figure 18) shows those only, the paper's
    pairs (and variants) in its order, then any other pair (e.g. one added to the config) in the order given.
    Both lists come back empty when either is, so a caller can skip the figure with one check:
    a grid without columns or without rows is not a figure.
    """
    spec = figure_spec(number)
    configured_rates = {int(rate) for rate in rates}
    shown_pairs = [pair for base in spec.pairs for pair in [base, *variants_of(base, pairs)] if pair in pairs]
    if spec.needs_edits:
        edited = set(edited_pairs)
        shown_pairs = [pair for pair in [*shown_pairs, *(p for p in pairs if p not in shown_pairs)] if pair in edited]
    shown_rates = [rate for rate in spec.rates if rate in configured_rates]
    if not shown_pairs or not shown_rates:
        return [], []
    return shown_pairs, shown_rates


def base_pair(pair: str) -> str:
    """``"mlp-mnist-dropout"`` -> ``"mlp-mnist"``: the paper's pair a variant belongs to."""
    return parse_pair(pair).base


def variants_of(base: str, pairs: list[str]) -> list[str]:
    """The configured variants of a paper pair (e.g. its dropout-trained model), in config order: each figure
    shows them in a column right after their pair, so the two read side by side."""
    return [pair for pair in pairs if pair != base and base_pair(pair) == base]


def buildable_figures(pairs: list[str], rates: list[int], edited_pairs: Iterable[str] = ()) -> list[int]:
    """Numbers of the figures a configuration with these pairs and rates (and these pairs with edits) produces."""
    edited = list(edited_pairs)
    return [number for number in FIGURES if figure_pairs_and_rates(number, pairs, rates, edited)[0]]

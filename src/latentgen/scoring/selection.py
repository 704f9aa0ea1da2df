"""Choosing a probe and layer without the test set: a stratified held-out slice of the corrupted training set.

A slice of the training samples (``scoring.holdout``, default 10 %) is set aside, stratified by the *corrupted*
labels (the only labels a user of a noisily trained model has), and no probe is fitted on it.  Every candidate
(probe, layer) is scored on the slice against its corrupted labels, and the best one is the checkpoint's
choice, the probe ``selected`` of ``scores.parquet``.

Why noisy labels can rank classifiers: a corrupted label is the true one with probability 1 - c and a class
drawn uniformly from all K with probability c (``latentgen.data.labels``).  For a classifier that predicts the
true class with probability a and that does not depend on the slice's labels, the expected agreement with the
corrupted labels is therefore (1 - c)·a + c/K (``expected_noisy_accuracy``): increasing in a for any c < 1, so
ranking by held-out noisy accuracy ranks by true accuracy, up to sampling noise of the slice.

Caveat, stated wherever the choice is reported: the *network* was trained on the whole training set, slice
included, so its own prediction (and a layer that memorized the slice) is not independent of the slice's labels.
The model itself is therefore never a candidate, and the choice can favour memorizing layers; how far that
matters is measured by the claims table (the held-out choice against the test-chosen best).

Free of torch so the claims table and figures can use the candidate rules without it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SELECTED = "selected"
# Not candidates: the model (trained on the slice too, see above), the transfer with the trained bias (not what
# VeLPIC decides), the choice itself, and oracles fitted on the true labels (``*_true``, e.g. masc_true), which a
# user does not have.  ``transfer`` predicts exactly what VeLPIC predicts on the same layer (tests/test_transfer.py),
# so it is left out as a duplicate: the choice names the probe, and a VeLPIC choice is transferable.
NON_CANDIDATES = frozenset({"model", "transfer", "transfer_bias", SELECTED})
HOLDOUT_SPLITS = ("holdout_corrupted", "holdout_true")
RANKING_SPLIT = "holdout_corrupted"


def is_candidate(probe: str) -> bool:
    """Whether ``probe`` may be chosen by the held-out slice (any probe fitted on corrupted labels only)."""
    return probe not in NON_CANDIDATES and not probe.endswith("_true")


def choice_name(probe: str, layer: str) -> str:
    """What a ``selected`` row puts in its ``layer`` column: ``"velpic:fc3"``."""
    return f"{probe}:{layer}"


def parse_choice(name: str) -> tuple[str, str]:
    """``"velpic:fc3"`` -> ``("velpic", "fc3")``."""
    probe, separator, layer = name.partition(":")
    if not separator:
        raise ValueError(f"{name!r} is not a probe:layer choice")
    return probe, layer


def expected_noisy_accuracy(true_accuracy: float | np.ndarray, corruption: float, num_classes: int):
    """Expected accuracy on labels corrupted at rate ``corruption`` (a fraction) of a classifier with true
    accuracy ``true_accuracy``, independent of the corruption: (1 - c)·a + c/K."""
    return (1.0 - corruption) * np.asarray(true_accuracy) + corruption / num_classes


# --------------------------------------------------------------------------------------------------------------
# The slice
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# The choice
# --------------------------------------------------------------------------------------------------------------


def choose(rows: pd.DataFrame) -> pd.Series | None:
    """The ``RANKING_SPLIT`` row of the best candidate among ``rows`` (one checkpoint's tidy scores), or None.

    Highest held-out noisy accuracy wins; a tie goes to the candidate met first in ``rows`` (scoring writes
    probes in their configured order, layers input side first), so the choice is deterministic.  Never reads
    a test row.
    """
    ranked = rows[(rows["split"] == RANKING_SPLIT) & rows["probe"].map(is_candidate)]
    if ranked.empty:
        return None
    return ranked.loc[ranked["accuracy"].idxmax()]  # idxmax: the first maximum


def selected_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Every split of the chosen candidate, relabelled probe ``selected`` with ``layer`` = ``probe:layer``.

    Its ``test`` row is the honest answer to "how good is the best probe?": chosen without the test set.
    Empty when nothing was held out (no ``RANKING_SPLIT`` rows).
    """
    best = choose(rows)
    if best is None:
        return rows.iloc[0:0]
    chosen = rows[(rows["probe"] == best["probe"]) & (rows["layer"] == best["layer"])]
    return chosen.assign(probe=SELECTED, layer=choice_name(best["probe"], best["layer"]))

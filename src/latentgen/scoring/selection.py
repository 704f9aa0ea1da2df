"""Choosing a probe and layer without the test set: a stratified held-out slice of the corrupted training set.

A slice of the training samples (``scoring.holdout``, default 10 %; ``latentgen.data.holdout``) is withheld,
stratified by the *corrupted* labels (the only labels a user of a noisily trained model has): the network never
trains on it and no probe is fitted on it.  Every candidate (probe, layer) is scored on the slice against its
corrupted labels, and the one-standard-error rule (``choose``) picks the checkpoint's choice, the probe
``selected`` of ``scores.parquet``.

Why noisy labels can rank classifiers: a corrupted label is the true one with probability 1 - c and a class
drawn uniformly from all K with probability c (``latentgen.data.labels``).  For a classifier that predicts the
true class with probability a and that does not depend on the slice's labels, the expected agreement with the
corrupted labels is therefore (1 - c)·a + c/K (``expected_noisy_accuracy``): increasing in a for any c < 1, so
ranking by held-out noisy accuracy ranks by true accuracy, up to sampling noise of the slice.

Because the network never saw the slice, no layer can have memorized its labels, and the expectation above holds
for every candidate; the claims table checks it (``heldout_slice_unbiased``: held-out noisy accuracy against
(1 - c)·a + c/K, per pair and rate).  Until latentgen withheld the slice from training, layers near the output fit
the slice's noisy labels they had memorized, and the choice drifted toward them.  The model itself is not a
candidate: the choice is of a probe that reads the network.

Free of torch so the claims table and figures can use the candidate rules without it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from latentgen.common.stats import Candidate, one_standard_error_choice
from latentgen.training.model_names import PROBE_LAYERS

SELECTED = "selected"
# Not candidates: the model (what the probes are to improve on), the transfer with the trained bias (not what
# VeLPIC decides), the choice itself, and oracles fitted on the true labels (``*_true``, e.g. masc_true), which a
# user does not have.  ``transfer`` predicts exactly what VeLPIC predicts on the same layer
# (tests/scoring/test_transfer.py), so it is left out as a duplicate: the choice names the probe, and a VeLPIC
# choice is transferable.
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


# Simplicity of a probe, for the one-standard-error rule (lower is simpler): a class mean, a class vector, a
# shared-covariance linear rule, class subspaces, an optimized linear model, the whole training set.
PROBE_SIMPLICITY = ("ncm", "velpic", "lda", "masc", "logreg", "knn")


def pack_correct(correct: np.ndarray) -> bytes:
    """Which samples a classifier got right, as packed bits (one byte per 8 samples) for the score tables."""
    return np.packbits(np.asarray(correct, dtype=bool)).tobytes()


def unpack_correct(packed: bytes, n: int) -> np.ndarray:
    """The inverse of ``pack_correct`` for ``n`` samples."""
    return np.unpackbits(np.frombuffer(packed, dtype=np.uint8), count=int(n)).astype(bool)


def simplicity(probe: str, layer: str, layer_order: list[str]) -> float:
    """Earlier layer first, then the simpler probe: the direction the one-SE rule moves a tie toward."""
    layer_rank = layer_order.index(layer) if layer in layer_order else len(layer_order)
    probe_rank = PROBE_SIMPLICITY.index(probe) if probe in PROBE_SIMPLICITY else len(PROBE_SIMPLICITY)
    return layer_rank * (len(PROBE_SIMPLICITY) + 1) + probe_rank


def _layer_order(rows: pd.DataFrame) -> list[str]:
    """The model's probed layers, input side first (the order of the rows where the model is not named)."""
    models = set(rows["model"]) if "model" in rows else set()
    if len(models) == 1 and next(iter(models)) in PROBE_LAYERS:
        return list(PROBE_LAYERS[next(iter(models))])
    return list(dict.fromkeys(rows["layer"]))


def choose(rows: pd.DataFrame) -> pd.Series | None:
    """The ``RANKING_SPLIT`` row of the chosen candidate among ``rows`` (one checkpoint's tidy scores), or None.

    The one-standard-error rule (``latentgen.common.stats.one_standard_error_choice``): the candidates whose
    held-out noisy accuracy is within one paired standard error of the best one's are tied with it, and the
    simplest of them (earliest layer, then simplest probe: ``simplicity``) is chosen, so that sampling noise of
    the slice does not decide between layers it cannot tell apart.  Candidates need per-sample correctness on
    the slice (``correct``); a probe scored on a subset of it (kNN above its row cap) is not one.  Never reads a
    test row.
    """
    ranked = rows[(rows["split"] == RANKING_SPLIT) & rows["probe"].map(is_candidate)]
    if "correct" in ranked:
        ranked = ranked[ranked["correct"].notna()]
    if ranked.empty:
        return None
    layer_order = _layer_order(ranked)
    candidates = [
        Candidate(
            name=str(position),
            correct=unpack_correct(row.correct, row.n_samples),
            simplicity=simplicity(row.probe, row.layer, layer_order),
        )
        for position, row in enumerate(ranked.itertuples())
    ]
    return ranked.iloc[int(one_standard_error_choice(candidates).chosen)]


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


TRANSFERABLE_PROBE = "velpic"  # the probe whose decision a linear head can carry (latentgen.scoring.transfer)


def transfer_layer(rows: pd.DataFrame, layers: list[str]) -> tuple[str, bool]:
    """(the layer ``latentgen repair`` transfers, whether the held-out slice chose it) for one checkpoint's rows.

    VeLPIC's rows only: the one-standard-error choice among its layers on the held-out slice (``choose``); without
    held-out rows nothing can be chosen honestly, and the paper's choice, the last of ``layers``, is taken.
    The repair command and the retrained-on-clean comparison both call this, so they transfer the same layer.
    """
    best = choose(rows[rows["probe"] == TRANSFERABLE_PROBE])
    if best is None:
        return layers[-1], False
    return str(best["layer"]), True

"""Every value of the scores table's ``probe`` column, in one table: the probes scoring fits (by the name they get
in scores.parquet; ``latentgen.probes.family.PROBES`` builds them) and the rows of other kinds, each with the label
figures and the claims table show and what it is.

Torch-free: the workflow and the config check import it while parsing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProbeName:
    """One value of the ``probe`` column.

    label: how figure legends and claim sentences name it (the other kinds of rows are named as a claim's
    sentence reads them). description: what it is. fitted: a probe scoring fits (one of the config's
    ``scoring.probes``); otherwise a row of another kind. oracle: fitted on the clean training labels, an upper
    bound, never a result a user could reach.
    """

    label: str
    description: str
    fitted: bool = True
    oracle: bool = False


# The fitted probes in scoring order (also the default of the config's ``scoring.probes``), then the other rows.
PROBE_TABLE: dict[str, ProbeName] = {
    "masc": ProbeName("MASC", "MASC (minimum angle subspace classifier), fitted on the corrupted labels"),
    "velpic": ProbeName("VeLPIC", "VeLPIC (one top eigenvector per class), fitted on the corrupted labels"),
    "logreg": ProbeName(
        "Logistic regression", "multinomial logistic regression (L-BFGS, 30 iterations), fitted on the corrupted labels"
    ),
    "ncm": ProbeName(
        "Nearest class mean", "nearest class mean of the unit-normalized rows, fitted on the corrupted labels"
    ),
    "knn": ProbeName(
        "k-nearest neighbours", "5 nearest neighbours by cosine (leave-one-out on training samples), corrupted labels"
    ),
    "lda": ProbeName("LDA", "linear discriminant analysis with shrinkage 0.1, fitted on the corrupted labels"),
    "masc_true": ProbeName(
        "MASC on true labels (oracle)",
        "ORACLE: MASC fitted on the true training labels (an upper bound, not a probe of the noisy task)",
        oracle=True,
    ),
    "model": ProbeName("model", "the network's own prediction (its output layer)", fitted=False),
    "transfer": ProbeName(
        "transfer", "the network up to a layer, then a bias-free head of that layer's VeLPIC vectors", fitted=False
    ),
    "transfer_bias": ProbeName(
        "transfer with the trained bias",
        "the transfer from the last probed layer, keeping the trained head's bias (heads with a bias only)",
        fitted=False,
    ),
    "selected": ProbeName(
        "the held-out choice",
        "the (probe, layer) chosen on the held-out slice of the corrupted training set",
        fitted=False,
    ),
}

# The fitted probes, in scoring order.
PROBE_NAMES: tuple[str, ...] = tuple(name for name, probe in PROBE_TABLE.items() if probe.fitted)
# Rows of the scores table that no probe of ``PROBE_NAMES`` fitted.
OTHER_ROWS: frozenset[str] = frozenset(name for name, probe in PROBE_TABLE.items() if not probe.fitted)
PROBE_LABELS: dict[str, str] = {name: probe.label for name, probe in PROBE_TABLE.items()}
PROBE_DESCRIPTIONS: dict[str, str] = {name: probe.description for name, probe in PROBE_TABLE.items()}
# Probes that see the clean training labels: upper bounds, never a result a user could reach.
ORACLE_PROBES: frozenset[str] = frozenset(name for name, probe in PROBE_TABLE.items() if probe.oracle)

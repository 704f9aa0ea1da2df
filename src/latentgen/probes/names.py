"""The probes scoring can run, by the name they get in scores.parquet (torch-free: the workflow and the
config check import it while parsing).  ``latentgen.probes.family.PROBES`` builds them."""

from __future__ import annotations

# In scoring order; also the default of the config's ``scoring.probes``.
PROBE_DESCRIPTIONS: dict[str, str] = {
    "masc": "MASC (minimum angle subspace classifier), fitted on the corrupted labels",
    "velpic": "VeLPIC (one top eigenvector per class), fitted on the corrupted labels",
    "logreg": "multinomial logistic regression (Adam, 20 epochs), fitted on the corrupted labels",
    "ncm": "nearest class mean of the unit-normalized rows, fitted on the corrupted labels",
    "knn": "5 nearest neighbours by cosine (leave-one-out on training samples), corrupted labels",
    "lda": "linear discriminant analysis with shrinkage 0.1, fitted on the corrupted labels",
    "masc_true": "ORACLE: MASC fitted on the true training labels (an upper bound, not a probe of the noisy task)",
}
PROBE_NAMES: tuple[str, ...] = tuple(PROBE_DESCRIPTIONS)
# Probes that see the clean training labels: upper bounds, never a result a user could reach.
ORACLE_PROBES: frozenset[str] = frozenset({"masc_true"})

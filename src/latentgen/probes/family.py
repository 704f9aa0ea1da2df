"""The probes scoring can run, as a registry: ``PROBES`` maps each scores.parquet name
(``latentgen.probes.names``) to how scoring builds and fits it; ``build_probe`` builds one.

Every probe is a scikit-learn classifier computing in torch and shares MASC's and VeLPIC's machinery
(``latentgen.probes.base``): input validation (numpy, memory-mapped float16 or tensors on any device), the CPU
thread policy, float32 rows gathered into reused buffers, chunked scoring, ties to the first of ``classes_``.
Fitted attributes are numpy arrays.

* ``masc``, ``velpic``: the paper's probes (``latentgen.probes.paper``).
* ``logreg``: ``LogisticRegressionProbe`` (``latentgen.probes.logistic``).
* ``ncm``, ``lda``: ``NCM`` and ``LDA`` (``latentgen.probes.geometry``).
* ``knn``: ``KNN`` (``latentgen.probes.knn``).
* ``masc_true``: ``MASC`` fitted on the *true* training labels.  An ORACLE upper bound, not a probe of
  the noisy-label problem: no user of a model trained on noisy labels has those labels.

Agreement with the scikit-learn references and the cost at full scale: docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from latentgen.probes.base import TorchProbe
from latentgen.probes.geometry import LDA, NCM
from latentgen.probes.knn import KNN
from latentgen.probes.logistic import LogisticRegressionProbe
from latentgen.probes.names import PROBE_NAMES
from latentgen.probes.paper import MASC, VeLPIC

__all__ = ["KNN_SCORED_ROWS", "PROBES", "ProbeSpec", "build_probe"]


@dataclass(frozen=True)
class ProbeSpec:
    """How scoring builds and fits one probe of ``scoring.probes``.

    ``build(masc_variance)`` returns the unfitted estimator; ``fit_on`` names the training labels it
    is fitted on ("corrupted", or "true" for an oracle); ``max_scored_rows`` caps the samples of each
    split it is scored on (a seeded random subset; None: every sample).
    """

    build: Callable[[float], TorchProbe]
    fit_on: str = "corrupted"
    max_scored_rows: int | None = None


# kNN costs one product with every training row per query: 60,000 x 60,000 x 2048 for the training
# split of the MLP's 2048-unit layers alone.  Its accuracies are means over samples, so at full scale
# they are estimated on 2,000 samples per split (standard error <= 1.1 points); the quick-start (2,000
# training, 1,000 test samples) is scored on every sample.  docs/performance.md, "Probe family".
KNN_SCORED_ROWS = 2000

PROBES: dict[str, ProbeSpec] = {
    "masc": ProbeSpec(lambda variance: MASC(variance=variance)),
    "velpic": ProbeSpec(lambda variance: VeLPIC()),
    "logreg": ProbeSpec(lambda variance: LogisticRegressionProbe()),
    "ncm": ProbeSpec(lambda variance: NCM()),
    "knn": ProbeSpec(lambda variance: KNN(n_neighbors=5), max_scored_rows=KNN_SCORED_ROWS),
    "lda": ProbeSpec(lambda variance: LDA(shrinkage=0.1)),
    "masc_true": ProbeSpec(lambda variance: MASC(variance=variance), fit_on="true"),  # the ORACLE
}
assert tuple(PROBES) == PROBE_NAMES, "latentgen.probes.names lists the same probes in the same order"


def build_probe(name: str, masc_variance: float) -> tuple[TorchProbe, ProbeSpec]:
    """The unfitted estimator for ``name`` (a key of ``PROBES``) and its spec."""
    spec = PROBES[name]
    return spec.build(masc_variance), spec

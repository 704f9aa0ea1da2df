"""Probes: classifiers of layer activations, as scikit-learn estimators computing in torch.

``paper`` holds the paper's MASC and VeLPIC, ``geometry`` NCM and LDA, ``logistic`` logistic regression, ``knn``
the k nearest neighbours; ``family`` is the registry scoring builds them from (``build_probe``), ``names`` their
torch-free names and labels, ``base`` what they share; ``spectrum``, ``cpu_blas`` and ``cpu_threads`` are how they
compute on a CPU.  They need no model: imports only ``latentgen.common``.
"""

__all__ = [
    "base",
    "cpu_blas",
    "cpu_threads",
    "family",
    "geometry",
    "knn",
    "logistic",
    "names",
    "paper",
    "spectrum",
]

"""Probes: classifiers of layer activations, as scikit-learn estimators computing in torch.

``paper`` holds the paper's MASC and VeLPIC, ``family`` the rest (NCM, LDA, logistic regression, kNN and the
registry ``build_probe``), ``base`` what they share; ``spectrum``, ``cpu_blas`` and ``cpu_threads`` are how they
compute on a CPU.  They need no model: imports only ``latentgen.common``.
"""

__all__ = ["base", "cpu_blas", "cpu_threads", "family", "names", "paper", "spectrum"]

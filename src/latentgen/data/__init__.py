"""Data: datasets from their real on-disk formats, the corrupted-label table, a run's arrays and held-out slice.

Imports only ``latentgen.common``.
"""

__all__ = ["arrays", "datasets", "holdout", "labels", "runs"]

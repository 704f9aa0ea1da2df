"""Scoring: a checkpoint's activations, every probe and transfer on them, the held-out choice, and the score
job's per-checkpoint resume cache.

Imports ``common``, ``data``, ``probes`` and ``training``.
"""

__all__ = ["activations", "cache", "checkpoint", "selection", "transfer"]

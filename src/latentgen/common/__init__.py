"""Shared at the bottom of the package: atomic file I/O and safe loads, the job's device, statistics.

Nothing here imports another latentgen subpackage.
"""

__all__ = ["devices", "fileio", "fingerprint", "pairs", "stats"]

"""The errors of the datasets package: a source that is not there, content that differs from its pins, a
damaged file, and a pickle that tried to run code."""

from __future__ import annotations

import pickle


class DatasetSourceUnavailable(RuntimeError):
    """The requested source of a dataset is not installed here, or its download failed."""


class DatasetMismatchError(ValueError):
    """A source gave content that differs from the pinned canonical content of the dataset."""


class DatasetIntegrityError(ValueError):
    """A prepared dataset directory (or a raw file read from a source) is missing, truncated or corrupted."""


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle asked for a global outside the numpy reconstruction allow-list."""

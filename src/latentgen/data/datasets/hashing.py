"""Content hashes of a dataset, independent of file formats (:func:`content_sha256` is the definition)."""

from __future__ import annotations

import hashlib

import numpy as np

from latentgen.common.fileio import file_sha256  # noqa: F401 (re-exported: the hash of a prepared file)


def canonical_array(array: np.ndarray, kind: str) -> np.ndarray:
    """The array in its canonical dtype and memory layout: C-ordered uint8 images, little-endian int64 labels."""
    dtype = np.dtype(np.uint8) if kind == "images" else np.dtype("<i8")
    if array.dtype != dtype and not np.can_cast(array.dtype, dtype, casting="same_kind"):
        raise ValueError(f"{kind} must be convertible to {dtype}, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=dtype)


def array_sha256(array: np.ndarray, kind: str) -> str:
    """sha256 of one array's canonical bytes (``kind`` is ``"images"`` or ``"labels"``)."""
    return hashlib.sha256(memoryview(canonical_array(array, kind)).cast("B")).hexdigest()


def content_sha256(
    train_images: np.ndarray, train_labels: np.ndarray, test_images: np.ndarray, test_labels: np.ndarray
) -> str:
    """One hash over a dataset's content, independent of file formats.

    Definition: sha256 over, for each split in the order train then test, an ASCII line
    ``"<split>:images:uint8:<shape>\\n"`` followed by the images as C-ordered uint8 bytes in
    (N, C, H, W) layout, then ``"<split>:labels:int64le:<N>\\n"`` followed by the labels as
    little-endian int64 bytes.  ``<shape>`` is comma-separated (e.g. ``60000,1,28,28``).  The header
    lines pin the layout and the split boundaries, so the same bytes arranged differently (HWC
    instead of CHW, or a sample moved from test to train) hash differently.
    """
    digest = hashlib.sha256()
    for split, images, labels in (("train", train_images, train_labels), ("test", test_images, test_labels)):
        images = canonical_array(images, "images")
        labels = canonical_array(labels, "labels")
        digest.update(f"{split}:images:uint8:{','.join(map(str, images.shape))}\n".encode("ascii"))
        digest.update(memoryview(images).cast("B"))
        digest.update(f"{split}:labels:int64le:{labels.shape[0]}\n".encode("ascii"))
        digest.update(memoryview(labels).cast("B"))
    return digest.hexdigest()

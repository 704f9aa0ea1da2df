"""Per-checkpoint activation extraction to disk, and memory-mapped reading back.

One checkpoint's activations are a directory::

    train_<layer>.npy, test_<layer>.npy   (n, width) in the configured dtype (float16 by default)
    train_model_pred.npy, test_model_pred.npy   the model's own predictions (int64)
    manifest.json   shapes, dtype, a CRC-32 per file, and where the activations came from

The directory is built under a temporary name and renamed into place, so a killed extraction never
leaves a directory that looks complete.  Reading checks every file against the manifest (size via
the .npy header, content via CRC-32, which is fast enough to run on every read and catches truncation
and flipped bytes; these are intermediate files, not a defence against tampering).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentgen.data.datasets.registry import SPLITS
from latentgen.common.fileio import DamagedFileError, atomic_directory, read_json, tensor_over, write_json
from latentgen.training.models import ProbedNetwork
from latentgen.data.arrays import to_unit_float

MANIFEST = "manifest.json"
ADVICE = "Delete the activation directory and rerun its extraction job (snakemake reruns it)."


def file_crc32(path: Path, chunk_size: int = 1 << 24) -> str:
    crc = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


@torch.no_grad()
def _extract_split(
    model: ProbedNetwork,
    images: np.ndarray,
    out_dir: Path,
    split: str,
    dtype: np.dtype,
    batch_size: int,
    device: torch.device,
) -> dict[str, list[int]]:
    """Stream activations of one split into preallocated .npy files, batch by batch.

    Streaming keeps host memory at one batch even at full MNIST scale (70k x 4,736 values).
    """
    n = images.shape[0]
    outputs: dict[str, np.memmap] = {}
    predictions = np.empty(n, dtype=np.int64)
    for start in range(0, n, batch_size):
        batch = tensor_over(np.ascontiguousarray(images[start : start + batch_size])).to(device)
        activations, logits = model.features_and_logits(to_unit_float(batch))
        for layer, values in activations.items():
            if layer not in outputs:
                outputs[layer] = np.lib.format.open_memmap(
                    out_dir / f"{split}_{layer}.npy", mode="w+", dtype=dtype, shape=(n, values.shape[1])
                )
            outputs[layer][start : start + values.shape[0]] = values.cpu().numpy().astype(dtype)
        predictions[start : start + logits.shape[0]] = logits.argmax(1).cpu().numpy()
    np.save(out_dir / f"{split}_model_pred.npy", predictions)
    shapes = {layer: list(array.shape) for layer, array in outputs.items()}
    for array in outputs.values():
        array.flush()
    return shapes


def extract_activations(
    model: ProbedNetwork,
    train_images: np.ndarray,
    test_images: np.ndarray,
    out_dir: Path | str,
    dtype: str = "float16",
    batch_size: int = 1000,
    device: torch.device | str = "cpu",
    provenance: dict[str, Any] | None = None,
) -> None:
    """Write the probed activations of ``model`` (eval mode) for both splits into ``out_dir``."""
    device = torch.device(device)
    model = model.to(device).eval()
    with atomic_directory(out_dir) as tmp:  # also removes what a killed extraction of this checkpoint left
        shapes = {
            split: _extract_split(model, images, tmp, split, np.dtype(dtype), batch_size, device)
            for split, images in zip(SPLITS, (train_images, test_images))
        }
        checksums = {path.name: file_crc32(path) for path in sorted(tmp.glob("*.npy"))}
        write_json(
            {
                "dtype": dtype,
                "layers": list(model.probe_layers),
                "shapes": shapes,
                "crc32": checksums,
                **(provenance or {}),
            },
            tmp / MANIFEST,
        )


@dataclass
class Activations:
    """Memory-mapped activations of one checkpoint: ``train[layer]``, ``test[layer]``, predictions."""

    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    train_model_pred: np.ndarray
    test_model_pred: np.ndarray
    manifest: dict[str, Any]


def _load_checked(directory: Path, name: str, manifest: dict[str, Any], verify: bool) -> np.ndarray:
    path = directory / name
    if name not in manifest["crc32"]:
        raise DamagedFileError(path, "activation file", f"It is not listed in {directory / MANIFEST}. {ADVICE}")
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DamagedFileError(path, "activation file", ADVICE, error) from error
    if verify and file_crc32(path) != manifest["crc32"][name]:
        raise DamagedFileError(path, "activation file", f"Its checksum does not match the manifest. {ADVICE}")
    return array


def read_activations(directory: Path | str, layers: list[str] | None = None, verify: bool = True) -> Activations:
    """Open one checkpoint's activations memory-mapped, refusing damaged files by name."""
    directory = Path(directory)
    if directory.is_dir() and not (directory / MANIFEST).exists():
        raise DamagedFileError(
            directory / MANIFEST, "activation manifest", f"It is missing, so {directory} is incomplete. {ADVICE}"
        )
    manifest = read_json(directory / MANIFEST, what="activation manifest", advice=ADVICE)
    layers = layers or manifest["layers"]
    missing = [layer for layer in layers if layer not in manifest["layers"]]
    if missing:
        raise ValueError(f"{directory} has no activations for layers {missing}; it has {manifest['layers']}")

    def load(name: str) -> np.ndarray:
        return _load_checked(directory, name, manifest, verify)

    return Activations(
        train={layer: load(f"train_{layer}.npy") for layer in layers},
        test={layer: load(f"test_{layer}.npy") for layer in layers},
        train_model_pred=load("train_model_pred.npy"),
        test_model_pred=load("test_model_pred.npy"),
        manifest=manifest,
    )

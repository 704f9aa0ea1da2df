"""A trained model and its data, as ``latentgen repair`` and ``latentgen label-issues`` take them: a checkpoint the
pipeline wrote (its run.json, label table and prepared dataset found from it, its checkpoint verified, its
withheld slice redrawn) or any checkpoint of latentgen's models with the user's arrays.  Inputs that do not fit
raise ``ModelInputError`` (or FileNotFoundError / DamagedFileError) with a message a user can act on."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latentgen.common.fileio import DamagedFileError, load_torch, read_json
from latentgen.data.arrays import TrainData
from latentgen.data.holdout import HoldoutSplit
from latentgen.data.labels import label_table_name
from latentgen.data.runs import load_run_data
from latentgen.training.checkpoints import verify_checkpoint
from latentgen.training.models import ProbedNetwork, model_from_state

__all__ = [
    "ModelInputError",
    "ModelInputs",
    "array_inputs",
    "check_images",
    "check_labels",
    "existing",
    "load_network",
    "load_npy",
    "pipeline_inputs",
    "run_command",
]


class ModelInputError(ValueError):
    """Inputs that cannot be used as given (labels that do not fit the data, a checkpoint of another model)."""


@dataclass
class ModelInputs:
    network: ProbedNetwork
    data: TrainData  # the training images, then the selection images (if any); test arrays empty without test data
    has_test: bool
    split: HoldoutSplit  # fit: what the model trained on; held_out: the selection data (empty: none)
    source: dict[str, Any]  # where everything came from, for the report


def existing(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return path


def load_npy(path: Path | str, what: str) -> np.ndarray:
    path = existing(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DamagedFileError(path, what, "Give a .npy file written by numpy.save.", error) from error


def check_labels(labels: np.ndarray, n_images: int, num_classes: int, what: str) -> np.ndarray:
    """``labels`` as int64 if they are one integer class in 0..K-1 per image; else a ModelInputError naming why."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_images:
        raise ModelInputError(
            f"{what} have shape {labels.shape}, but there are {n_images} images: "
            "give one label per image, in the images' order"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ModelInputError(f"{what} must be integer class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ModelInputError(
            f"{what} lie in {labels.min()}..{labels.max()}, but the model has {num_classes} "
            f"classes (0..{num_classes - 1})"
        )
    return labels.astype(np.int64)


def check_images(images: np.ndarray, what: str) -> np.ndarray:
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ModelInputError(f"{what} must be uint8 images of shape (N, C, H, W), got {images.dtype} {images.shape}")
    return images


def load_network(
    model_name: str, input_shape: tuple[int, ...], num_classes: int, state: dict, checkpoint: Path
) -> ProbedNetwork:
    try:
        network = model_from_state(state, model_name, input_shape, num_classes)
    except RuntimeError as error:
        raise ModelInputError(
            f"{checkpoint} is not a checkpoint of latentgen's {model_name} model for images of "
            f"shape {tuple(input_shape)} and {num_classes} classes: {error}"
        ) from None
    return network.eval()


def pipeline_inputs(checkpoint: Path, datasets_dir: Path | str, label_table: Path | str | None = None) -> ModelInputs:
    """A checkpoint the pipeline wrote, with its run.json, label table and prepared dataset."""
    run_dir = checkpoint.parent.parent
    run_json = existing(run_dir / "run.json", "run summary (run.json of the checkpoint's run)")
    summary = read_json(run_json, what="run summary")
    verify_checkpoint(run_json, summary, checkpoint)
    results = run_dir.parents[3]  # results/runs/{pair}/c{rate}/s{seed}
    labels_path = (
        Path(label_table)
        if label_table
        else (
            results
            / "labels"
            / summary["dataset"]
            / label_table_name(summary["labels"]["seed"], summary["labels"].get("label_draw", "nested"))
        )
    )
    prepared = existing(Path(datasets_dir) / summary["dataset"], "prepared dataset")
    run = load_run_data(prepared, existing(labels_path, "label table"), int(summary["corruption"]))
    n_train = run.data.train_images.shape[0]
    if run.data.train_noisy.shape[0] != n_train or summary["num_classes"] != run.data.num_classes:
        raise ModelInputError(f"label table {labels_path} does not fit the run of {run_json}")
    split = run.data.holdout(float(summary["settings"].get("holdout", 0.0)))
    try:
        split.check(summary.get("held_out"), str(run_json))
    except ValueError as error:
        raise ModelInputError(str(error)) from None
    network = load_network(
        summary["settings"]["model"],
        tuple(summary["input_shape"]),
        summary["num_classes"],
        load_torch(checkpoint, what="checkpoint"),
        checkpoint,
    )
    source = {
        "kind": "pipeline",
        "run_json": str(run_json),
        "label_table": str(labels_path),
        "prepared_dataset": str(prepared),
        "pair": summary["pair"],
        "corruption": int(summary["corruption"]),
        "seed": int(summary["seed"]),
    }
    return ModelInputs(network, run.data, run.data.test_images.shape[0] > 0, split, source)


def _more_images(
    images: Path | str | None,
    labels: Path | str | None,
    what: str,
    train_images: np.ndarray,
    noisy: np.ndarray,
    num_classes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Further images of the training images' shape with their labels (none when not given)."""
    if images is None:
        return train_images[:0], noisy[:0]
    more = check_images(load_npy(images, f"{what} images"), f"{what} images")
    if more.shape[1:] != train_images.shape[1:]:
        raise ModelInputError(
            f"{what} images {more.shape[1:]} and training images {train_images.shape[1:]} differ in shape"
        )
    return more, check_labels(load_npy(labels, f"{what} labels"), more.shape[0], num_classes, f"{what} labels")


def array_inputs(
    checkpoint: Path,
    model_name: str,
    images: Path | str,
    labels: Path | str,
    test_images: Path | str | None,
    test_labels: Path | str | None,
    select_images: Path | str | None = None,
    select_labels: Path | str | None = None,
) -> ModelInputs:
    """Any checkpoint of latentgen's models with its training images and noisy labels (and selection and test
    data)."""
    if (test_images is None) != (test_labels is None):
        raise ModelInputError("give --test-images and --test-labels together, or neither")
    if (select_images is None) != (select_labels is None):
        raise ModelInputError("give --select-images and --select-labels together, or neither")
    state = load_torch(checkpoint, what="checkpoint")
    if not isinstance(state, dict) or "head.weight" not in state:
        raise ModelInputError(f"{checkpoint} holds no state dict of a latentgen model (no 'head.weight')")
    num_classes = int(state["head.weight"].shape[0])
    train_images = check_images(load_npy(images, "training images"), "training images")
    noisy = check_labels(load_npy(labels, "noisy labels"), train_images.shape[0], num_classes, "noisy labels")
    test_x, test_y = _more_images(test_images, test_labels, "test", train_images, noisy, num_classes)
    select_x, select_y = _more_images(select_images, select_labels, "selection", train_images, noisy, num_classes)
    n_fit = train_images.shape[0]
    train_images, noisy = np.concatenate([train_images, select_x]), np.concatenate([noisy, select_y])
    network = load_network(model_name, train_images.shape[1:], num_classes, state, checkpoint)
    # The true training labels are unknown here: ``train_true`` repeats the noisy ones and is never read.
    data = TrainData(train_images, noisy, noisy, test_x, test_y, num_classes)
    split = HoldoutSplit(fit=np.arange(n_fit), held_out=np.arange(n_fit, train_images.shape[0]))
    source = {
        "kind": "arrays",
        "images": str(images),
        "labels": str(labels),
        "select_images": None if select_images is None else str(select_images),
        "test_images": None if test_images is None else str(test_images),
    }
    return ModelInputs(network, data, test_images is not None, split, source)


def run_command(args: argparse.Namespace, prog: str, summary_line: Callable[[Any], str]) -> int:
    """Run a parsed command of ``repair`` or ``label-issues``: the errors a user can fix (a wrong path, a damaged
    file, inputs that do not fit) become one line on stderr and exit status 2; else its summary line, status 0."""
    try:
        result = args.handler(args)
    except (FileNotFoundError, DamagedFileError, ModelInputError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    print(summary_line(result))
    return 0

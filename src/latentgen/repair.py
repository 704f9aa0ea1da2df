"""``latentgen repair``: turn a model trained on noisy labels into the VeLPIC transfer of its best layer.

The layer is chosen without any test data, as the pipeline's ``selected`` probe is (``latentgen.scoring.selection``): a
stratified slice of the corrupted training set is held out, VeLPIC is fitted on every probed layer of the rest,
and the layer whose VeLPIC agrees best with the slice's corrupted labels wins.  The repaired model is that layer's
transfer (``latentgen.scoring.transfer.LayerTransfer``: the network up to the layer, then a bias-free head of its VeLPIC
vectors), saved so that ``latentgen.scoring.transfer.load_layer_transfer`` reloads it with
``torch.load(weights_only=True)``.

Two ways to name the data:

* a checkpoint the pipeline wrote, ``{results}/runs/{pair}/c{rate}/s{seed}/checkpoints/epoch_XXXX.pt``: its
  ``run.json`` (two folders up) gives the model, the rate and the seed, its label table
  (``{results}/labels/{dataset}/s{label seed}.parquet``) the noisy and test labels, ``--datasets-dir`` the images;
  the checkpoint's sha256 is checked against run.json, and the slice is the one the pipeline's scoring held out;
* any checkpoint of latentgen's models: ``--model`` plus ``--images``/``--labels`` (.npy: uint8 images
  (N, C, H, W) and the noisy integer labels), optionally ``--test-images``/``--test-labels``.

Writes ``model.pt`` and ``report.json`` into ``--out``.  Run as ``latentgen repair ...`` or
``python -m latentgen.repair ...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from latentgen import __version__
from latentgen.scoring.activations import extract_activations, read_activations
from latentgen.common.devices import assign_device
from latentgen.common.fileio import DamagedFileError, load_torch, read_json, write_json
from latentgen.data.holdout import HoldoutSplit, stratified_holdout
from latentgen.scoring.selection import choose
from latentgen.training.models import MODEL_NAMES, ProbedNetwork, model_from_state
from latentgen.data.runs import load_run_data
from latentgen.probes.paper import VeLPIC, velpic_for_every_class
from latentgen.scoring.checkpoint import predict_classes
from latentgen.scoring.transfer import load_layer_transfer, save_layer_transfer, transfer_from_layer
from latentgen.training.checkpoints import verify_checkpoint
from latentgen.data.arrays import TrainData

DEFAULT_HOLDOUT = 0.1  # the pipeline's default (scoring.holdout)
PROBE = "velpic"  # the probe whose decision a linear head can carry, hence the only transferable candidate


class RepairInputError(ValueError):
    """Inputs that cannot be repaired as given (labels that do not fit the data, a checkpoint of another model)."""


@dataclass
class RepairInputs:
    network: ProbedNetwork
    data: TrainData  # test arrays empty when no test data was given
    has_test: bool
    seed: int  # draws the held-out slice
    source: dict[str, Any]  # where everything came from, for the report


# --------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------


def _existing(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return path


def _load_npy(path: Path | str, what: str) -> np.ndarray:
    path = _existing(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise DamagedFileError(path, what, "Give a .npy file written by numpy.save.", error) from error


def check_labels(labels: np.ndarray, n_images: int, num_classes: int, what: str) -> np.ndarray:
    """``labels`` as int64 if they are one integer class in 0..K-1 per image; else a RepairInputError naming why."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] != n_images:
        raise RepairInputError(
            f"{what} have shape {labels.shape}, but there are {n_images} images: "
            "give one label per image, in the images' order"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise RepairInputError(f"{what} must be integer class indices, got dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise RepairInputError(
            f"{what} lie in {labels.min()}..{labels.max()}, but the model has {num_classes} "
            f"classes (0..{num_classes - 1})"
        )
    return labels.astype(np.int64)


def _check_images(images: np.ndarray, what: str) -> np.ndarray:
    if images.ndim != 4 or images.dtype != np.uint8:
        raise RepairInputError(f"{what} must be uint8 images of shape (N, C, H, W), got {images.dtype} {images.shape}")
    return images


def _load_network(
    model_name: str, input_shape: tuple[int, ...], num_classes: int, state: dict, checkpoint: Path
) -> ProbedNetwork:
    try:
        network = model_from_state(state, model_name, input_shape, num_classes)
    except RuntimeError as error:
        raise RepairInputError(
            f"{checkpoint} is not a checkpoint of latentgen's {model_name} model for images of "
            f"shape {tuple(input_shape)} and {num_classes} classes: {error}"
        ) from None
    return network.eval()


def pipeline_inputs(checkpoint: Path, datasets_dir: Path | str, label_table: Path | str | None = None) -> RepairInputs:
    """A checkpoint the pipeline wrote, with its run.json, label table and prepared dataset."""
    run_dir = checkpoint.parent.parent
    run_json = _existing(run_dir / "run.json", "run summary (run.json of the checkpoint's run)")
    summary = read_json(run_json, what="run summary")
    verify_checkpoint(run_json, summary, checkpoint)
    results = run_dir.parents[3]  # results/runs/{pair}/c{rate}/s{seed}
    labels_path = (
        Path(label_table)
        if label_table
        else (results / "labels" / summary["dataset"] / f"s{summary['labels']['seed']}.parquet")
    )
    prepared = _existing(Path(datasets_dir) / summary["dataset"], "prepared dataset")
    run = load_run_data(prepared, _existing(labels_path, "label table"), int(summary["corruption"]))
    n_train = run.data.train_images.shape[0]
    if run.data.train_noisy.shape[0] != n_train or summary["num_classes"] != run.data.num_classes:
        raise RepairInputError(f"label table {labels_path} does not fit the run of {run_json}")
    network = _load_network(
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
    return RepairInputs(network, run.data, run.data.test_images.shape[0] > 0, int(summary["seed"]), source)


def array_inputs(
    checkpoint: Path,
    model_name: str,
    images: Path | str,
    labels: Path | str,
    test_images: Path | str | None,
    test_labels: Path | str | None,
    seed: int,
) -> RepairInputs:
    """Any checkpoint of latentgen's models with its training images and noisy labels (and test data)."""
    if (test_images is None) != (test_labels is None):
        raise RepairInputError("give --test-images and --test-labels together, or neither")
    state = load_torch(checkpoint, what="checkpoint")
    if not isinstance(state, dict) or "head.weight" not in state:
        raise RepairInputError(f"{checkpoint} holds no state dict of a latentgen model (no 'head.weight')")
    num_classes = int(state["head.weight"].shape[0])
    train_images = _check_images(_load_npy(images, "training images"), "training images")
    noisy = check_labels(_load_npy(labels, "noisy labels"), train_images.shape[0], num_classes, "noisy labels")
    if test_images is not None:
        test_x = _check_images(_load_npy(test_images, "test images"), "test images")
        if test_x.shape[1:] != train_images.shape[1:]:
            raise RepairInputError(
                f"test images {test_x.shape[1:]} and training images {train_images.shape[1:]} differ in shape"
            )
        test_y = check_labels(_load_npy(test_labels, "test labels"), test_x.shape[0], num_classes, "test labels")
    else:
        test_x, test_y = train_images[:0], noisy[:0]
    network = _load_network(model_name, train_images.shape[1:], num_classes, state, checkpoint)
    # The true training labels are unknown here: ``train_true`` repeats the noisy ones and is never read.
    data = TrainData(train_images, noisy, noisy, test_x, test_y, num_classes)
    source = {
        "kind": "arrays",
        "images": str(images),
        "labels": str(labels),
        "test_images": None if test_images is None else str(test_images),
    }
    return RepairInputs(network, data, test_images is not None, seed, source)


# --------------------------------------------------------------------------------------------------------------
# Choosing and writing
# --------------------------------------------------------------------------------------------------------------


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float | None:
    return float(np.mean(predictions == labels)) if labels.size else None


def _candidates(
    activations, data: TrainData, has_test: bool, split: HoldoutSplit, layers: list[str], progress: tqdm
) -> tuple[pd.DataFrame, dict[str, VeLPIC]]:
    """VeLPIC on every layer, fitted on ``split.fit``: held-out noisy (and test) accuracy as tidy rows."""
    rows, velpics = [], {}
    for layer in layers:
        progress.set_postfix_str(f"VeLPIC on {layer}")
        train_x = np.asarray(activations.train[layer])
        velpic = VeLPIC().fit(train_x[split.fit], data.train_noisy[split.fit])
        held_out = velpic.predict(train_x[split.held_out])
        rows.append(
            {
                "probe": PROBE,
                "layer": layer,
                "split": "holdout_corrupted",
                "accuracy": _accuracy(held_out, data.train_noisy[split.held_out]),
            }
        )
        if has_test:
            rows.append(
                {
                    "probe": PROBE,
                    "layer": layer,
                    "split": "test",
                    "accuracy": _accuracy(velpic.predict(np.asarray(activations.test[layer])), data.test_labels),
                }
            )
        velpics[layer] = velpic
        progress.update()
    return pd.DataFrame(rows), velpics


@torch.no_grad()
def _predict(model: torch.nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    return predict_classes(model.to(device).eval(), images, batch_size, device)


def repair(
    inputs: RepairInputs,
    out_dir: Path | str,
    holdout: float = DEFAULT_HOLDOUT,
    batch_size: int = 1000,
    device: str = "auto",
    checkpoint: Path | str = "",
) -> dict[str, Any]:
    """Choose the layer on the held-out slice, write ``model.pt`` and ``report.json`` into ``out_dir``."""
    if not 0.0 < holdout < 0.5:
        raise RepairInputError(f"--holdout must be in (0, 0.5): something has to be held out to choose; got {holdout}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch_device = assign_device(device)
    network, data = inputs.network, inputs.data
    layers = list(network.probe_layers)
    split = stratified_holdout(data.train_noisy, holdout, inputs.seed)
    with (
        tqdm(total=len(layers) + 3, desc="latentgen repair", unit="step", file=sys.stderr) as progress,
        tempfile.TemporaryDirectory(prefix="latentgen-repair-") as scratch,
    ):
        progress.set_postfix_str("activations")
        # Without test data one training image stands in for the test split the extraction writes; it is never read.
        test_images = data.test_images if inputs.has_test else data.train_images[:1]
        extract_activations(
            network,
            data.train_images,
            test_images,
            Path(scratch) / "activations",
            dtype="float32",
            batch_size=batch_size,
            device=torch_device,
        )
        activations = read_activations(Path(scratch) / "activations")
        progress.update()
        candidates, velpics = _candidates(activations, data, inputs.has_test, split, layers, progress)
        best = choose(candidates)
        layer = str(best["layer"])
        progress.set_postfix_str(f"writing the transfer of {layer}")
        repaired = transfer_from_layer(network.cpu(), velpic_for_every_class(velpics[layer], data.num_classes), layer)
        model_path = out_dir / "model.pt"
        digest = save_layer_transfer(repaired, model_path)
        progress.update()
        progress.set_postfix_str("checking the saved model")
        reloaded = load_layer_transfer(model_path)
        held_out_predictions = _predict(reloaded, data.train_images[split.held_out], batch_size, torch_device)
        model_held_out = np.asarray(activations.train_model_pred)[split.held_out]
        model_test = np.asarray(activations.test_model_pred) if inputs.has_test else None
        test_predictions = _predict(reloaded, data.test_images, batch_size, torch_device) if inputs.has_test else None
        progress.update()
    noisy_held_out = data.train_noisy[split.held_out]
    by_split = candidates.pivot(index="layer", columns="split", values="accuracy").reindex(layers)
    report = {
        "checkpoint": str(checkpoint),
        "model": network.name,
        "source": inputs.source,
        "layer": layer,
        "probe": PROBE,
        "choice": (
            "highest held-out accuracy on the corrupted labels; a tie goes to the layer nearest the input. "
            "No test data is read to choose."
        ),
        "holdout": {
            "fraction": holdout,
            "seed": inputs.seed,
            "stratified_by": "corrupted label",
            "n_fit": int(len(split.fit)),
            "n_held_out": int(len(split.held_out)),
        },
        "candidates": [
            {
                "probe": PROBE,
                "layer": name,
                "holdout_noisy_accuracy": float(by_split.loc[name, "holdout_corrupted"]),
                **({"test_accuracy": float(by_split.loc[name, "test"])} if inputs.has_test else {}),
            }
            for name in layers
        ],
        "original_model": {
            "holdout_noisy_accuracy": _accuracy(model_held_out, noisy_held_out),
            "note": "trained on the held-out slice too (it memorized it): not comparable, never a candidate",
            **({"test_accuracy": _accuracy(model_test, data.test_labels)} if inputs.has_test else {}),
        },
        "repaired_model": {
            "path": str(model_path),
            "sha256": digest,
            "load_with": "latentgen.scoring.transfer.load_layer_transfer(path)",
            "holdout_noisy_accuracy": _accuracy(held_out_predictions, noisy_held_out),
            **({"test_accuracy": _accuracy(test_predictions, data.test_labels)} if inputs.has_test else {}),
        },
        "latentgen_version": __version__,
    }
    write_json(report, out_dir / "report.json")
    return report


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = (
        "Repair a model trained on noisy labels: choose its best layer on a held-out slice of "
        "the corrupted training set (never the test set) and write that layer's VeLPIC transfer."
    )
    parser.add_argument("checkpoint", type=Path, help="a checkpoint (.pt state dict) of a latentgen model")
    parser.add_argument("--out", type=Path, required=True, help="folder for model.pt and report.json")
    parser.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path("resources/datasets"),
        help="prepared datasets (pipeline checkpoints; default resources/datasets)",
    )
    parser.add_argument("--label-table", type=Path, help="the run's label table (default: found from run.json)")
    parser.add_argument(
        "--model",
        choices=MODEL_NAMES,
        help="the checkpoint's model: repairs any checkpoint, with --images and --labels",
    )
    parser.add_argument("--images", type=Path, help="training images, uint8 .npy of shape (N, C, H, W)")
    parser.add_argument("--labels", type=Path, help="the noisy training labels the model was trained on (.npy)")
    parser.add_argument("--test-images", type=Path, help="test images (.npy), to report test accuracies")
    parser.add_argument("--test-labels", type=Path, help="their true labels (.npy)")
    parser.add_argument(
        "--holdout",
        type=float,
        default=DEFAULT_HOLDOUT,
        help=f"fraction of the training set held out to choose the layer (default {DEFAULT_HOLDOUT})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="draws the held-out slice (pipeline checkpoints: the run's seed, as its scoring)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    checkpoint = _existing(args.checkpoint, "checkpoint")
    if args.model is None:
        if args.images is not None or args.labels is not None:
            raise RepairInputError("--images and --labels need --model (which of latentgen's models the checkpoint is)")
        inputs = pipeline_inputs(checkpoint, args.datasets_dir, args.label_table)
    else:
        if args.images is None or args.labels is None:
            raise RepairInputError("--model needs --images and --labels (the data the model was trained on)")
        inputs = array_inputs(
            checkpoint, args.model, args.images, args.labels, args.test_images, args.test_labels, args.seed
        )
    return repair(inputs, args.out, args.holdout, args.batch_size, args.device, checkpoint)


def _summary_line(report: dict[str, Any]) -> str:
    line = (
        f"chose {report['probe']} on {report['layer']}: held-out noisy accuracy "
        f"{report['repaired_model']['holdout_noisy_accuracy']:.4f}"
    )
    if "test_accuracy" in report["repaired_model"]:
        line += (
            f"; test accuracy {report['repaired_model']['test_accuracy']:.4f} "
            f"(the model as trained: {report['original_model']['test_accuracy']:.4f})"
        )
    return line + f"\nwrote {report['repaired_model']['path']} and its report.json"


def handle(args: argparse.Namespace, prog: str) -> int:
    """Run a parsed command; the errors a user can fix become one line on stderr and exit status 2."""
    try:
        report = args.handler(args)
    except (FileNotFoundError, DamagedFileError, RepairInputError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    print(_summary_line(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="latentgen repair"))
    return handle(parser.parse_args(argv), "latentgen repair")


if __name__ == "__main__":
    sys.exit(main())

"""``latentgen repair``: turn a model trained on noisy labels into the VeLPIC transfer of its best layer.

The layer is chosen only on data the model never trained on, as the pipeline's ``selected`` probe is
(``latentgen.scoring.selection``): VeLPIC is fitted on every probed layer of the training data, and the layer
whose VeLPIC agrees best with the (noisy) labels of the selection data wins, by the one-standard-error rule (a
layer within one paired standard error of the best counts as tied, and the earliest tied layer is taken).  The
selection data is a pipeline run's withheld slice (``latentgen.data.holdout``: the network never trained on it)
or the user's ``--select-images``/``--select-labels``.  Without either nothing can be chosen honestly (every
training image was memorized), so the paper's choice is transferred, the last probed layer, and the report and
the summary line say so.  The repaired model is that layer's
transfer (``latentgen.scoring.transfer.LayerTransfer``: the network up to the layer, then a bias-free head of its VeLPIC
vectors), saved so that ``latentgen.scoring.transfer.load_layer_transfer`` reloads it with
``torch.load(weights_only=True)``.

Two ways to name the data:

* a checkpoint the pipeline wrote, ``{results}/runs/{pair}/c{rate}/s{seed}/checkpoints/epoch_XXXX.pt``: its
  ``run.json`` (two folders up) gives the model, the rate and the seed, its label table
  (``{results}/labels/{dataset}/s{label seed}.parquet``) the noisy and test labels, ``--datasets-dir`` the images;
  the checkpoint's sha256 is checked against run.json, and the selection data is the slice its training withheld
  (run.json records it; the same slice scoring ranks on);
* any checkpoint of latentgen's models: ``--model`` plus ``--images``/``--labels`` (.npy: uint8 images
  (N, C, H, W) and the noisy integer labels it was trained on), optionally ``--select-images``/``--select-labels``
  (images it never trained on, with labels as noisy as you have) and ``--test-images``/``--test-labels``.

Writes ``model.pt`` and ``report.json`` into ``--out``.  Run as ``latentgen repair ...`` or
``python -m latentgen.repair ...``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from latentgen import __version__
from latentgen.scoring.activations import extract_activations, read_activations
from latentgen.common.devices import assign_device
from latentgen.common.fileio import write_json
from latentgen.common.stats import accuracy_interval
from latentgen.data.holdout import HoldoutSplit
from latentgen.scoring.selection import TRANSFERABLE_PROBE, pack_correct, transfer_layer
from latentgen.training.models import MODEL_NAMES, ProbedNetwork
from latentgen.model_inputs import ModelInputError, ModelInputs, array_inputs, existing, pipeline_inputs, run_command
from latentgen.probes.paper import VeLPIC, velpic_for_every_class
from latentgen.scoring.checkpoint import predict_classes
from latentgen.scoring.transfer import load_layer_transfer, save_layer_transfer, transfer_from_layer
from latentgen.data.arrays import TrainData

PROBE = TRANSFERABLE_PROBE  # the only probe whose decision a linear head can carry


# --------------------------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# Choosing and writing
# --------------------------------------------------------------------------------------------------------------


def _accuracy(predictions: np.ndarray, labels: np.ndarray) -> float | None:
    return float(np.mean(predictions == labels)) if labels.size else None


CANDIDATE_COLUMNS = ["probe", "layer", "split", "accuracy", "n_samples", "correct", "standard_error"]


def _candidates(
    activations, data: TrainData, has_test: bool, split: HoldoutSplit, layers: list[str], progress: tqdm
) -> tuple[pd.DataFrame, dict[str, VeLPIC]]:
    """VeLPIC on every layer, fitted on ``split.fit``: held-out noisy accuracy with its standard error (and test
    accuracy) as tidy rows; no held-out rows when there is no selection data."""
    rows, velpics = [], {}
    for layer in layers:
        progress.set_postfix_str(f"VeLPIC on {layer}")
        train_x = np.asarray(activations.train[layer])
        velpics[layer] = velpic = VeLPIC().fit(train_x[split.fit], data.train_noisy[split.fit])
        if len(split.held_out):
            right = np.asarray(velpic.predict(train_x[split.held_out])) == data.train_noisy[split.held_out]
            rows.append(_candidate_row(layer, "holdout_corrupted", right))
        if has_test:
            right = np.asarray(velpic.predict(np.asarray(activations.test[layer]))) == data.test_labels
            rows.append(_candidate_row(layer, "test", right))
        progress.update()
    return pd.DataFrame(rows, columns=CANDIDATE_COLUMNS), velpics


def _candidate_row(layer: str, split: str, right: np.ndarray) -> dict[str, Any]:
    estimate = accuracy_interval(right)
    return dict(
        zip(
            CANDIDATE_COLUMNS,
            [PROBE, layer, split, estimate.value, len(right), pack_correct(right), estimate.standard_error],
        )
    )


@torch.no_grad()
def _predict(model: torch.nn.Module, images: np.ndarray, batch_size: int, device: torch.device) -> np.ndarray:
    return predict_classes(model.to(device).eval(), images, batch_size, device)


NO_SELECTION_DATA = (
    "no data the model never trained on (a pipeline run that withheld no slice, or no --select-images/"
    "--select-labels): every training image was memorized, so no layer can be chosen honestly; the paper's "
    "choice, the last probed layer, is transferred"
)
ONE_SE_RULE = (
    "one-standard-error rule on the selection data's noisy labels: the layers whose held-out accuracy is within "
    "one paired standard error of the best's are tied, and the earliest of them is taken. No test data is read."
)


def _extract(network: ProbedNetwork, inputs: ModelInputs, scratch: Path, batch_size: int, device: torch.device):
    """float32 activations of every training (and selection) image and of the test images, read back."""
    data = inputs.data
    # Without test data one training image stands in for the test split the extraction writes; it is never read.
    test_images = data.test_images if inputs.has_test else data.train_images[:1]
    extract_activations(
        network, data.train_images, test_images, scratch, dtype="float32", batch_size=batch_size, device=device
    )
    return read_activations(scratch)


def _chosen_layer(candidates: pd.DataFrame, layers: list[str]) -> tuple[str, str]:
    """(layer, how it was chosen): by the one-SE rule on the selection data, else the last probed layer."""
    layer, on_held_out = transfer_layer(candidates, layers)
    return layer, ONE_SE_RULE if on_held_out else NO_SELECTION_DATA


def repair(
    inputs: ModelInputs,
    out_dir: Path | str,
    batch_size: int = 1000,
    device: str = "auto",
    checkpoint: Path | str = "",
) -> dict[str, Any]:
    """Choose the layer on data the model never trained on, write ``model.pt`` and ``report.json`` into
    ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch_device = assign_device(device)
    network, data, split = inputs.network, inputs.data, inputs.split
    layers = list(network.probe_layers)
    with (
        tqdm(total=len(layers) + 3, desc="latentgen repair", unit="step", file=sys.stderr) as progress,
        tempfile.TemporaryDirectory(prefix="latentgen-repair-") as scratch,
    ):
        progress.set_postfix_str("activations")
        activations = _extract(network, inputs, Path(scratch) / "activations", batch_size, torch_device)
        progress.update()
        candidates, velpics = _candidates(activations, data, inputs.has_test, split, layers, progress)
        layer, how = _chosen_layer(candidates, layers)
        progress.set_postfix_str(f"writing the transfer of {layer}")
        repaired = transfer_from_layer(network.cpu(), velpic_for_every_class(velpics[layer], data.num_classes), layer)
        model_path = out_dir / "model.pt"
        digest = save_layer_transfer(repaired, model_path)
        progress.update()
        progress.set_postfix_str("checking the saved model")
        reloaded = load_layer_transfer(model_path)
        predictions = {
            "repaired_held_out": (
                _predict(reloaded, data.train_images[split.held_out], batch_size, torch_device)
                if len(split.held_out)
                else None
            ),
            "repaired_test": (
                _predict(reloaded, data.test_images, batch_size, torch_device) if inputs.has_test else None
            ),
            "model_held_out": np.asarray(activations.train_model_pred)[split.held_out],
            "model_test": np.asarray(activations.test_model_pred) if inputs.has_test else None,
        }
        progress.update()
    report = _report(inputs, candidates, layers, layer, how, predictions, {"path": str(model_path), "sha256": digest})
    report["checkpoint"] = str(checkpoint)
    write_json(report, out_dir / "report.json")
    return report


def _candidate_entries(candidates: pd.DataFrame, layers: list[str], has_test: bool) -> list[dict[str, Any]]:
    """Each layer's held-out noisy accuracy with its standard error (and test accuracy)."""
    entries = []
    for layer in layers:
        rows = candidates[candidates["layer"] == layer].set_index("split")
        entry: dict[str, Any] = {"probe": PROBE, "layer": layer}
        if "holdout_corrupted" in rows.index:
            entry["holdout_noisy_accuracy"] = float(rows.loc["holdout_corrupted", "accuracy"])
            entry["holdout_standard_error"] = float(rows.loc["holdout_corrupted", "standard_error"])
        if has_test:
            entry["test_accuracy"] = float(rows.loc["test", "accuracy"])
        entries.append(entry)
    return entries


def _accuracies(held_out: np.ndarray, test: np.ndarray | None, inputs: ModelInputs) -> dict[str, Any]:
    data, split = inputs.data, inputs.split
    result: dict[str, Any] = {}
    if len(split.held_out):
        result["holdout_noisy_accuracy"] = _accuracy(held_out, data.train_noisy[split.held_out])
    if inputs.has_test:
        result["test_accuracy"] = _accuracy(test, data.test_labels)
    return result


def _report(
    inputs: ModelInputs,
    candidates: pd.DataFrame,
    layers: list[str],
    layer: str,
    how: str,
    predictions: dict[str, np.ndarray | None],
    saved: dict[str, str],
) -> dict[str, Any]:
    split = inputs.split
    return {
        "model": inputs.network.name,
        "source": inputs.source,
        "layer": layer,
        "probe": PROBE,
        "choice": how,
        "chosen_on_held_out_data": bool(len(split.held_out)),
        "selection_data": {"n_fit": int(len(split.fit)), "n_held_out": int(len(split.held_out))},
        "candidates": _candidate_entries(candidates, layers, inputs.has_test),
        "original_model": _accuracies(predictions["model_held_out"], predictions["model_test"], inputs),
        "repaired_model": {
            **saved,
            "load_with": "latentgen.scoring.transfer.load_layer_transfer(path)",
            **_accuracies(predictions["repaired_held_out"], predictions["repaired_test"], inputs),
        },
        "latentgen_version": __version__,
    }


# --------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = (
        "Repair a model trained on noisy labels: choose its best layer on data it never trained on (a pipeline "
        "run's withheld slice, or --select-images/--select-labels; never the test set) and write that layer's "
        "VeLPIC transfer."
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
        "--select-images",
        type=Path,
        help="images the model never trained on (.npy), to choose the layer on (with --select-labels)",
    )
    parser.add_argument(
        "--select-labels", type=Path, help="their labels (.npy); noisy labels are fine: they rank layers"
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    checkpoint = existing(args.checkpoint, "checkpoint")
    if args.model is None:
        if args.images is not None or args.labels is not None:
            raise ModelInputError("--images and --labels need --model (which of latentgen's models the checkpoint is)")
        if args.select_images is not None or args.select_labels is not None:
            raise ModelInputError("a pipeline checkpoint chooses on its run's withheld slice: no --select-images")
        inputs = pipeline_inputs(checkpoint, args.datasets_dir, args.label_table)
    else:
        if args.images is None or args.labels is None:
            raise ModelInputError("--model needs --images and --labels (the data the model was trained on)")
        inputs = array_inputs(
            checkpoint,
            args.model,
            args.images,
            args.labels,
            args.test_images,
            args.test_labels,
            args.select_images,
            args.select_labels,
        )
    return repair(inputs, args.out, args.batch_size, args.device, checkpoint)


def _summary_line(report: dict[str, Any]) -> str:
    if report["chosen_on_held_out_data"]:
        line = (
            f"chose {report['probe']} on {report['layer']} ({ONE_SE_RULE.split(':')[0]}): held-out noisy accuracy "
            f"{report['repaired_model']['holdout_noisy_accuracy']:.4f}"
        )
    else:
        line = f"transferred {report['probe']} on {report['layer']} without choosing: {NO_SELECTION_DATA}"
    if "test_accuracy" in report["repaired_model"]:
        line += (
            f"; test accuracy {report['repaired_model']['test_accuracy']:.4f} "
            f"(the model as trained: {report['original_model']['test_accuracy']:.4f})"
        )
    return line + f"\nwrote {report['repaired_model']['path']} and its report.json"


def handle(args: argparse.Namespace, prog: str) -> int:
    """Run a parsed command (``model_inputs.run_command``: user errors are one line and exit status 2)."""
    return run_command(args, prog, _summary_line)


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="latentgen repair"))
    return handle(parser.parse_args(argv), "latentgen repair")


if __name__ == "__main__":
    sys.exit(main())

"""``latentgen label-issues``: which training labels of a model's data are wrong, by its own layers.

For one checkpoint, every probed layer (or ``--layers``) gets each probe of ``--probes`` cross-fitted on the
given labels (K folds: an example is scored by probes that never saw it), calibrated, and handed to cleanlab's
``find_label_issues`` and its self-confidence ranking (``latentgen.label_issues``).  Beside them, unless
``--no-baselines``: cleanlab on the network's own softmax (in sample), the network's prediction ≠ the given label,
deep k-NN on the last probed layer and cleanlab on a K-fold pixel logistic regression.

The data are named as for ``latentgen repair`` (its input loading is reused, ``latentgen.repair``): a checkpoint
the pipeline wrote (run.json, label table and prepared dataset found from it; the folds are drawn from the run's
seed, as the pipeline's stage draws them), or any checkpoint of latentgen's models with ``--model``,
``--images`` and ``--labels``.  A pipeline checkpoint's label table also holds the true labels, so the summary
then scores every method against them (precision, recall, F1, AUPRC, AUROC and the base rate).

Writes ``label_issues.parquet`` (one row per example and method, cleanlab's Datalab columns ``is_label_issue``,
``label_score`` (low: likely wrong), ``given_label``, ``predicted_label``, plus ``index`` (the example's index in
the dataset), ``layer``, ``probe``, and ``is_wrong`` when the truth is known) and ``summary.json`` into ``--out``.
Run as ``latentgen label-issues ...`` or ``python -m latentgen.find_label_issues ...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from latentgen import __version__
from latentgen.common.devices import assign_device
from latentgen.common.fileio import write_json, write_parquet
from latentgen.label_issues.baselines import pixel_logreg_issues
from latentgen.label_issues.crossfit import check_enough_per_class
from latentgen.data.runs import train_index
from latentgen.label_issues.job import DEFAULT_FOLDS, DEFAULT_PROBES, checkpoint_issues
from latentgen.label_issues.metrics import label_issue_metrics
from latentgen.model_inputs import ModelInputError, ModelInputs, array_inputs, pipeline_inputs, run_command
from latentgen.training.models import MODEL_NAMES

PROBE_CHOICES = ("velpic", "ncm", "masc", "lda", "logreg", "knn")
ISSUES_FILE = "label_issues.parquet"
SUMMARY_FILE = "summary.json"


def existing(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} {path} does not exist")
    return path


def load_inputs(args: argparse.Namespace) -> ModelInputs:
    """The network and its data, as ``latentgen repair`` loads them."""
    checkpoint = existing(args.checkpoint, "checkpoint")
    if args.model is None:
        if args.images is not None or args.labels is not None:
            raise ModelInputError("--images and --labels need --model (which of latentgen's models the checkpoint is)")
        return pipeline_inputs(checkpoint, args.datasets_dir, args.label_table)
    if args.images is None or args.labels is None:
        raise ModelInputError("--model needs --images and --labels (the data the model was trained on)")
    return array_inputs(checkpoint, args.model, args.images, args.labels, test_images=None, test_labels=None)


def dataset_index(inputs: ModelInputs) -> np.ndarray:
    """Each training example's index in the dataset: the label table's ``index`` for a pipeline checkpoint, the
    row of ``--images`` otherwise."""
    n = inputs.data.train_images.shape[0]
    if inputs.source.get("kind") != "pipeline":
        return np.arange(n, dtype=np.int64)
    index = train_index(inputs.source["label_table"])
    if len(index) != n:
        raise ModelInputError(f"label table {inputs.source['label_table']} lists {len(index)} training examples")
    return index


def _check_settings(inputs: ModelInputs, layers: list[str] | None, folds: int) -> list[str]:
    probed = list(inputs.network.probe_layers)
    unknown = [layer for layer in layers or [] if layer not in probed]
    if unknown:
        raise ModelInputError(f"--layers {unknown} are not probed layers of the {inputs.network.name} model: {probed}")
    try:
        check_enough_per_class(inputs.data.train_noisy, inputs.data.num_classes, folds)
    except ValueError as error:
        raise ModelInputError(f"{error}; give fewer --folds or more examples") from None
    return [layer for layer in probed if layer in layers] if layers else probed


def flag_checkpoint(inputs: ModelInputs, args: argparse.Namespace) -> list[pd.DataFrame]:
    """Every method's flags on the checkpoint's training data (one table each), with a progress bar on stderr."""
    layers = _check_settings(inputs, args.layers, args.folds)
    seed = int(inputs.source.get("seed", args.seed))
    index = dataset_index(inputs)
    data, device = inputs.data, assign_device(args.device)
    steps = 1 + len(layers) * len(args.probes) + (2 if args.baselines else 0)
    with tqdm(total=steps, desc="latentgen label-issues", unit="step", file=sys.stderr) as progress:

        def step(name: str) -> None:
            progress.set_postfix_str(name)
            progress.update()

        tables = checkpoint_issues(
            inputs.network, data.train_images, data.train_noisy, index, layers, args.probes, args.folds, seed,
            batch_size=args.batch_size, device=device, on_step=step, baselines=args.baselines,
        )  # fmt: skip
        if args.baselines:
            tables.append(pixel_logreg_issues(data.train_images, data.train_noisy, index, args.folds, seed))
            step("pixel logistic regression")
    return tables


def _method_summary(issues: pd.DataFrame, is_wrong: np.ndarray | None) -> list[dict[str, Any]]:
    entries = []
    for (layer, probe), rows in issues.groupby(["layer", "probe"], sort=False):
        entry = {"probe": probe, "layer": layer, "n_flagged": int(rows["is_label_issue"].sum())}
        entry["flagged_fraction"] = entry["n_flagged"] / len(rows)
        if is_wrong is not None:
            metrics = label_issue_metrics(is_wrong, rows["is_label_issue"], rows["label_score"])
            entry.update({name: metrics[name] for name in ("precision", "recall", "f1", "auprc", "auroc")})
        entries.append(entry)
    return entries


def label_issues(inputs: ModelInputs, args: argparse.Namespace) -> dict[str, Any]:
    """Flag, then write the table and the summary into ``args.out``; returns the summary."""
    started = time.perf_counter()
    tables = flag_checkpoint(inputs, args)
    # only a pipeline checkpoint's label table holds the true labels (a user's arrays repeat the given ones)
    truth_known = inputs.source.get("kind") == "pipeline"
    is_wrong = (inputs.data.train_noisy != inputs.data.train_true) if truth_known else None
    if is_wrong is not None:
        tables = [table.assign(is_wrong=is_wrong) for table in tables]
    issues = pd.concat(tables, ignore_index=True)
    out = Path(args.out)
    summary = {
        "checkpoint": str(args.checkpoint),
        "model": inputs.network.name,
        "source": inputs.source,
        "n_examples": int(len(inputs.data.train_noisy)),
        "probes": list(args.probes),
        "folds": args.folds,
        "truth": "the label table's true labels" if truth_known else None,
        "base_rate": float(is_wrong.mean()) if is_wrong is not None else None,
        "methods": _method_summary(issues, is_wrong),
        "table": str(out / ISSUES_FILE),
        "seconds": round(time.perf_counter() - started, 1),
        "latentgen_version": __version__,
    }
    write_parquet(issues, out / ISSUES_FILE, metadata={k: v for k, v in summary.items() if k != "methods"})
    write_json(summary, out / SUMMARY_FILE)
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.description = (
        "Find the wrong training labels of a model's data: probes cross-fitted on its layers, calibrated and handed "
        "to cleanlab, beside cleanlab on the network's own softmax and other baselines."
    )
    parser.add_argument("checkpoint", type=Path, help="a checkpoint (.pt state dict) of a latentgen model")
    parser.add_argument("--out", type=Path, required=True, help=f"folder for {ISSUES_FILE} and {SUMMARY_FILE}")
    parser.add_argument(
        "--datasets-dir", type=Path, default=Path("resources/datasets"),
        help="prepared datasets (pipeline checkpoints; default resources/datasets)",
    )  # fmt: skip
    parser.add_argument("--label-table", type=Path, help="the run's label table (default: found from run.json)")
    parser.add_argument("--model", choices=MODEL_NAMES, help="the checkpoint's model, with --images and --labels")
    parser.add_argument("--images", type=Path, help="training images, uint8 .npy of shape (N, C, H, W)")
    parser.add_argument("--labels", type=Path, help="their given (possibly wrong) integer labels (.npy)")
    parser.add_argument("--probes", nargs="+", choices=PROBE_CHOICES, default=list(DEFAULT_PROBES))
    parser.add_argument("--layers", nargs="+", help="probed layers to flag on (default: every probed layer)")
    parser.add_argument("--folds", type=int, default=DEFAULT_FOLDS, help="K of the cross-fitting (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="draws the folds (pipeline checkpoints: the run's seed)")
    parser.add_argument(
        "--baselines", action=argparse.BooleanOptionalAction, default=True,
        help="also the network's softmax and disagreement, deep k-NN and a pixel logistic regression",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.set_defaults(handler=run)
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.folds < 2:
        raise ModelInputError(f"--folds must be at least 2, got {args.folds}")
    return label_issues(load_inputs(args), args)


def _summary_line(summary: dict[str, Any]) -> str:
    lines = []
    for entry in summary["methods"]:
        flagged = f"{entry['n_flagged']} flagged ({entry['flagged_fraction']:.1%})"
        line = f"{entry['probe']:>20} {entry['layer']:>6}: {flagged}"
        if "auprc" in entry:
            line += f", precision {entry['precision']:.3f}, recall {entry['recall']:.3f}, AUPRC {entry['auprc']:.3f}"
        lines.append(line)
    if summary["base_rate"] is not None:
        lines.append(f"base rate (fraction of given labels that are wrong): {summary['base_rate']:.3f}")
    return "\n".join([*lines, f"wrote {summary['table']} and its {SUMMARY_FILE}"])


def handle(args: argparse.Namespace, prog: str) -> int:
    """Run a parsed command (``model_inputs.run_command``: user errors are one line and exit status 2)."""
    return run_command(args, prog, _summary_line)


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="latentgen label-issues"))
    return handle(parser.parse_args(argv), "latentgen label-issues")


if __name__ == "__main__":
    sys.exit(main())

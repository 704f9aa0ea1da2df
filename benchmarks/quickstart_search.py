"""Quick-start search (issue 11, item 5): which small training run shows the paper's point on a CPU.

Trains one run in memory with the library's own steps (``latentgen.training.trainer``: the same model, input
scaling, batch order and optimizer as the pipeline; labels from ``latentgen.data.runs.make_label_table``
with the shared corruption draw ``label_seed``), and at the chosen epochs prints the training loss and
running accuracy, the model's test accuracy, VeLPIC's test accuracy on every probed layer (VeLPIC on
the last probed layer *is* the transfer with the bias zeroed), and optionally MASC's.

    PYTHONPATH=src .venv/bin/python benchmarks/quickstart_search.py \\
        --pair mlp-mnist --per-class 500 --rate 80 --lr 0.01 --eval 5,10,20 [--masc] [--threads 1]

Each printed row: epoch, seconds of training so far, mean minibatch loss, running accuracy on the
corrupted labels, model test %, VeLPIC test % per layer (``T`` marks the last layer = transfer),
MASC test % per layer with ``--masc``, and best probe - model / transfer - model in points.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from latentgen.data import datasets
from latentgen.probes.paper import MASC, VeLPIC
from latentgen.data.labels import make_label_table
from latentgen.data.runs import train_data_from_table
from latentgen.training.trainer import DeviceData, build_model, build_optimizer, evaluate, train_one_epoch
from latentgen.training.settings import TrainSettings
from latentgen.training.schedule import Schedule
from latentgen.data.arrays import TrainData, to_unit_float

PAIRS = {  # the paper's optimizers and batch size; lr and the rest from the command line
    "mlp-mnist": ("mlp", "mnist", "sgd"),
    "cnn-fashion_mnist": ("cnn", "fashion_mnist", "adam"),
    "cnn-mnist": ("cnn", "mnist", "adam"),
}


def run_data(
    datasets_dir: Path,
    dataset: str,
    per_class: int | None,
    size: int | None,
    test_size: int,
    rate: int,
    label_seed: int,
) -> TrainData:
    prepared = datasets.load(datasets_dir / dataset, verify=False, mmap=True)
    train_subset = {"per_class": per_class} if per_class else ({"size": size, "seed": 0} if size else None)
    test_subset = {"size": test_size, "seed": 0} if test_size else None
    return train_data_from_table(prepared, make_label_table(prepared, label_seed, train_subset, test_subset), rate)


@torch.no_grad()
def features(model: torch.nn.Module, images: torch.Tensor, batch: int = 1000) -> dict[str, torch.Tensor]:
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, images.shape[0], batch):
        for name, value in model.features(to_unit_float(images[start : start + batch])).items():
            parts.setdefault(name, []).append(value)
    return {name: torch.cat(values) for name, values in parts.items()}


def probe_scores(model, dev: DeviceData, data: TrainData, masc_layers: list[str]) -> dict[str, float]:
    train_f, test_f = features(model, dev.train_images), features(model, dev.test_images)
    out = {}
    for layer in model.probe_layers:
        velpic = VeLPIC().fit(train_f[layer], data.train_noisy)
        out[f"velpic:{layer}"] = float(np.mean(np.asarray(velpic.predict(test_f[layer])) == data.test_labels))
        if layer in masc_layers:
            masc = MASC(variance=0.99).fit(train_f[layer], data.train_noisy)
            out[f"masc:{layer}"] = float(np.mean(np.asarray(masc.predict(test_f[layer])) == data.test_labels))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pair", default="mlp-mnist", choices=sorted(PAIRS))
    parser.add_argument("--datasets-dir", type=Path, default=Path("/work/main/resources/datasets"))
    parser.add_argument("--per-class", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="a uniform random training subset instead")
    parser.add_argument("--test-size", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=80)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--optimizer", default=None, help="default: the pair's (MLP sgd, CNN adam)")
    parser.add_argument("--normalize", default="half")
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label-seed", type=int, default=42)
    parser.add_argument("--eval", default="5,10,20", help="epochs to probe, comma-separated (last = end)")
    parser.add_argument("--loss-every", action="store_true", help="print loss after every epoch")
    parser.add_argument("--masc", default="", help="layers to score with MASC too, comma-separated (or 'all')")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    model_name, dataset, optimizer = PAIRS[args.pair]
    data = run_data(args.datasets_dir, dataset, args.per_class, args.size, args.test_size, args.rate, args.label_seed)
    eval_epochs = sorted({int(e) for e in args.eval.split(",")})
    settings = TrainSettings(
        model=model_name,
        optimizer=args.optimizer or optimizer,
        lr=args.lr,
        batch_size=args.batch_size,
        max_epochs=eval_epochs[-1],
        stop_accuracy=1.0,
        seed=args.seed,
        momentum=args.momentum if optimizer == "sgd" else 0.0,
        normalize=args.normalize,
        shuffle=args.shuffle,
        schedule=Schedule(),
    )
    model = build_model(settings, data)
    opt = build_optimizer(settings, model)
    dev = DeviceData.from_arrays(data, torch.device("cpu"))
    masc_layers = model.probe_layers if args.masc == "all" else [m for m in args.masc.split(",") if m]
    print(
        f"# {args.pair} n_train={len(data.train_noisy)} rate={args.rate} lr={args.lr} batch={args.batch_size} "
        f"opt={settings.optimizer} normalize={args.normalize} shuffle={args.shuffle} seed={args.seed} "
        f"threads={args.threads} labels_changed={np.mean(data.train_noisy != data.train_true):.3f} "
        f"ln K={math.log(data.num_classes):.4f}",
        flush=True,
    )
    trained = 0.0
    for epoch in range(1, eval_epochs[-1] + 1):
        started = time.perf_counter()
        loss, running = train_one_epoch(model, opt, dev, settings, epoch, progress=False)
        trained += time.perf_counter() - started
        if args.loss_every and epoch not in eval_epochs:
            print(f"epoch {epoch:4d} t={trained:7.1f}s loss={loss:.4f} run_acc={100 * running:5.1f}", flush=True)
        if epoch not in eval_epochs:
            continue
        model.eval()
        (test_acc,), _ = evaluate(model, dev.test_images, [dev.test_labels], 1000)
        scores = probe_scores(model, dev, data, masc_layers)
        model.train()
        last = f"velpic:{model.probe_layers[-1]}"
        best_name = max(scores, key=scores.get)
        cells = " ".join(
            f"{k.split(':')[0][0]}{k.split(':')[1]}{'(T)' if k == last else ''}={100 * v:5.1f}"
            for k, v in scores.items()
        )
        print(
            f"epoch {epoch:4d} t={trained:7.1f}s loss={loss:.4f} run_acc={100 * running:5.1f} "
            f"model={100 * test_acc:5.1f} {cells} | best={best_name} {100 * (scores[best_name] - test_acc):+5.1f} "
            f"transfer-model={100 * (scores[last] - test_acc):+5.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

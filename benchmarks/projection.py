"""How long the paper grid takes: device-hours and wall time on 1, 8 and 50 devices, from measured costs.

    .venv/bin/python benchmarks/projection.py [--device cpu|cuda] [--config config.yaml] [--threads N]

1. **Measures** each stage of every pair in the config on this device, at the pair's full scale:
   * training: ``latentgen.training.trainer.train_one_epoch`` (the pipeline's own loop, the pair's model,
     optimizer and batch size) on synthetic uint8 images of the dataset's shape -- the compute of a
     step depends on shapes only -- giving seconds per step; plus the per-epoch evaluation passes;
   * extraction: ``latentgen.scoring.activations.extract_activations`` on synthetic images, seconds per image;
   * scoring: MASC and VeLPIC fitted on one class of real per-class size (n_train / classes rows of
     each probed layer's real width) and predicting those rows, scaled to all classes and to n_train + n_test
     predictions per probe, in two regimes, since MASC's cost depends on the components its classes need:
     *early* (the class's second moment needs ``EARLY_COMPONENTS`` of min(n_c, d) for 99 %) and *memorized*
     (``MEMORIZED_COMPONENTS``), measured on synthetic classes built to need that many (a k-dimensional signal
     plus an isotropic tail of 0.5 % of the variance).  A run's score job is costed checkpoint by checkpoint:
     early before epoch ``MEMORIZING_FROM``, memorized from it on;
   * the fixed start-up of a job (a fresh interpreter importing torch and latentgen).
   * the VeLPIC edit (rule velpic_edit): a forward pass of the training images (as extraction) and a
     VeLPIC fit on the last probed layer (as scoring).
   The score stage's basis is MASC + VeLPIC on every probed layer.  The default probe family
   (``scoring.probes``: seven probes) costs more per checkpoint: the table repeats the first projection with
   the score stage scaled by ``--family-factor`` (8.1, the family's cost over MASC + VeLPIC measured by
   ``benchmarks/bench_probes.py --family`` on the paper MLP, docs/performance.md).
   ``--estimate PAIR`` (repeatable) does not measure a pair's score stage (e.g. ResNet-18, whose 16,384-wide
   layers take long on a CPU) but scales it from the measured pairs' by its layers' flops (see
   ``estimated_score``).
2. **Builds the grid's jobs** from the config (every pair in it, variants included): per standard run
   (pair x corruption x seed) one training job of S epochs, then one score job extracting and scoring every
   checkpoint of the pair's schedule (the edit epochs included, as the config adds them).  How many epochs a
   run needs until it memorizes is not known before it runs; S is the authors' own stop epoch of that pair and rate
   (benchmarks/bench_planning.py ``AUTHORS_STOP_EPOCHS``: the mean of their three runs in MASC_DNN's
   published training logs), and the table repeats the projection with every run reaching the 500-epoch
   cap (an upper bound).  Per edited run (``pairs.<pair>.edits``: each edit epoch E of each standard run)
   one edit job and one training job of ``until`` - E epochs (trained to ``until``, the most it trains), then
   its score job over its checkpoints from E to ``until``.
3. **Schedules** them on 1, 8 and 50 devices, as a cluster would run them: a run's score job becomes
   ready when its training ends (the workflow learns them from run.json), an edited run's edit and training
   when its standard run's training ends; ready jobs take the next free device, training before score
   jobs and longest first.

Prints the measured costs, the job counts and the table.  Last line: the wall-time ratio of 1 device
to 50 devices under the first assumption.
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "benchmarks")]

from bench_planning import (
    checkpoint_epochs,
    edit_epochs,
    edited_checkpoint_epochs,
    filled,
    stop_epoch,
)  # the same assumed grid
from latentgen.scoring.activations import extract_activations, read_activations
from latentgen.data.datasets import dataset_info
from latentgen.training.models import build
from latentgen.pipeline import train_settings
from latentgen.probes.paper import MASC, VeLPIC
from latentgen.training.trainer import DeviceData, build_model, build_optimizer, evaluate, train_one_epoch
from latentgen.data.arrays import TrainData

DEFAULT_MIN_TIME = 2.0
DEVICE_COUNTS = (1, 8, 50)
# The default probe family's score cost over MASC + VeLPIC's: benchmarks/bench_probes.py --family, session 7
# (docs/performance.md, "Probe family": 117.2 s against 14.4 s per checkpoint of the paper MLP, one thread).
FAMILY_FACTOR = 8.1
# Components per class MASC keeps for 99 %, as a fraction of min(n_c, d), in a run's two phases.  Measured on
# the paper MLP (fc3, fc4: 2048 wide): 5-8 per class on fc4 and 12-24 on fc3 after one epoch at 40 % (0.3-1 %,
# bench_probes.py's early checkpoint); MLP-MNIST at 80 % (config/fidelity.yaml) ~400 on fc4 at epoch 25 (20 %;
# docs/performance.md, "Probes at a memorized checkpoint").
EARLY_COMPONENTS = 0.01
MEMORIZED_COMPONENTS = 0.2
# The first epoch costed as memorized: fc4 of that run needed 174-204 components per class at epoch 10 (108 at
# epoch 4), past the 128 from which MASC's solver goes dense at this width (spectrum.KRYLOV_COLUMNS_PER_COMPONENT).
# An assumption for the other pairs and rates, measured on one run only.
MEMORIZING_FROM = 10


@dataclass
class PairCosts:
    """Seconds per unit of work of one pair on the measured device."""

    step: float  # one optimizer step at the pair's batch size
    eval_image: float  # one image through the per-epoch evaluation pass
    extract_image: float  # one image through extraction (forward, features to disk)
    score_early: float  # MASC + VeLPIC on every probed layer of one early checkpoint (few components)
    score_memorized: float  # the same at a memorized checkpoint (hundreds of components per class)
    velpic_last: float  # a VeLPIC fit on the last probed layer's training activations (the edit)

    def epoch(self, n_train: int, n_test: int, batch_size: int) -> float:
        return -(-n_train // batch_size) * self.step + (2 * n_train + n_test) * self.eval_image

    def checkpoint(self, n_train: int, n_test: int, epoch: int = 0) -> tuple[float, float]:
        """(extraction, scoring) seconds of the checkpoint at ``epoch``: memorized from ``MEMORIZING_FROM``."""
        score = self.score_memorized if epoch >= MEMORIZING_FROM else self.score_early
        return (n_train + n_test) * self.extract_image, score

    def checkpoints(self, n_train: int, n_test: int, epochs: list[int], score_factor: float = 1.0) -> float:
        """Seconds of extracting and scoring the checkpoints at ``epochs``."""
        return sum(
            extract + score_factor * score for extract, score in (self.checkpoint(n_train, n_test, e) for e in epochs)
        )

    def edit(self, n_train: int) -> float:
        """The velpic_edit job's work: the training images forward (as extraction), VeLPIC on the last layer."""
        return n_train * self.extract_image + self.velpic_last


def _timed(action, minimum: float) -> float:
    """Seconds per call of ``action``, after one untimed call, repeated for at least ``minimum`` s."""
    action()
    calls, started = 0, time.perf_counter()
    while True:
        action()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= minimum:
            return elapsed / calls


def _synthetic_data(dataset: str, n: int, seed: int = 0) -> TrainData:
    info = dataset_info(dataset)
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *info.shape), dtype=np.uint8)
    labels = rng.integers(0, info.num_classes, size=n, dtype=np.int64)
    return TrainData(images, labels, labels, images[: max(1, n // 6)], labels[: max(1, n // 6)], info.num_classes)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_training(pair_config: dict, device: torch.device, min_time: float) -> tuple[float, float]:
    """(seconds per step, seconds per evaluated image) of the pair's real training loop."""
    settings = train_settings(pair_config, seed=0)
    steps = 8 if pair_config["model"] == "alexnet" else 40
    data = _synthetic_data(pair_config["dataset"], steps * settings.batch_size)
    model = build_model(settings, data).to(device)
    optimizer = build_optimizer(settings, model)
    on_device = DeviceData.from_arrays(data, device)

    def one_epoch() -> None:
        train_one_epoch(model, optimizer, on_device, settings, epoch=1, progress=False)
        _sync(device)

    def one_evaluation() -> None:
        evaluate(model, on_device.train_images, [on_device.train_noisy], settings.eval_batch_size)
        _sync(device)

    return _timed(one_epoch, min_time) / steps, _timed(one_evaluation, min_time) / data.train_images.shape[0]


def synthetic_class(rows: int, width: int, components: int, seed: int = 0) -> torch.Tensor:
    """(rows, width) float32 whose second moment needs about ``components`` components for 99 %: a signal in
    ``components`` random orthonormal directions, then as many more holding 0.5 % of the variance (a tail above
    the probes' rank tolerance).  As in post-ReLU activations, one direction (their mean's) holds about half
    the second moment, a gap VeLPIC's top vector relies on; the others' variances fall from 1 to 0.5.
    Non-negative activations are not needed: the probes' cost depends on the shapes, the gaps and the
    components."""
    generator = torch.Generator().manual_seed(seed)
    tail_count = min(components, width - components)
    directions = torch.linalg.qr(torch.randn(width, components + tail_count, generator=generator)).Q
    rest = torch.linspace(1.0, 0.5, components - 1)
    signal = torch.cat([rest.sum().clamp(min=1.0).reshape(1), rest])
    tail = torch.full((tail_count,), 0.005 / 0.995 * float(signal.sum()) / max(tail_count, 1))
    scales = torch.cat([signal, tail]).sqrt()
    return ((torch.randn(rows, len(scales), generator=generator) * scales) @ directions.T).contiguous()


def measure_scoring(
    widths: list[int],
    class_rows: int,
    n_all: int,
    classes: int,
    device: torch.device,
    variance: float,
    min_time: float,
    fraction: float,
) -> tuple[float, list[int]]:
    """Seconds of MASC + VeLPIC on every layer of one checkpoint whose classes need ``fraction`` of min(n_c, d)
    components, and the components MASC kept per layer."""
    one_class = np.zeros(class_rows, dtype=np.int64)
    score, kept = 0.0, []
    for width in widths:
        k = max(1, round(fraction * min(class_rows, width)))
        rows = synthetic_class(class_rows, width, k).to(device)
        for probe in (MASC(variance=variance), VeLPIC()):
            fit = _timed(lambda: probe.fit(rows, one_class), min_time / 4)
            predict = _timed(lambda: probe.predict(rows), min_time / 4)
            score += classes * fit + n_all / class_rows * predict * classes
            if isinstance(probe, MASC):
                kept.append(int(probe.n_components_[0]))
    return score, kept


def measure_checkpoint(
    pair_config: dict, device: torch.device, variance: float, min_time: float, score: bool = True
) -> tuple[float, float, float, float, list[int]]:
    """(seconds per extracted image, seconds to score one early and one memorized checkpoint, seconds of the
    edit's VeLPIC fit on the last layer, the probed layers' widths) at the pair's full scale; without ``score``
    the three probe costs are NaN (``estimated_score`` fills them in)."""
    info = dataset_info(pair_config["dataset"])
    n_train, n_test = info.sizes
    class_rows = n_train // info.num_classes
    data = _synthetic_data(pair_config["dataset"], class_rows)
    torch.manual_seed(0)
    model = build(pair_config["model"], info.shape, info.num_classes).eval()
    with tempfile.TemporaryDirectory() as tmp:

        def extract() -> None:
            extract_activations(
                model,
                data.train_images,
                data.test_images,
                Path(tmp) / "acts",
                dtype="float32",
                batch_size=1000,
                device=device,
            )

        per_image = _timed(extract, min_time) / (data.train_images.shape[0] + data.test_images.shape[0])
        extracted = read_activations(Path(tmp) / "acts")
        widths = [int(np.prod(extracted.train[layer].shape[1:])) for layer in extracted.train]
    if not score:
        return per_image, float("nan"), float("nan"), float("nan"), widths
    n_all = n_train + n_test
    args = (widths, class_rows, n_all, info.num_classes, device, variance, min_time)
    early, early_k = measure_scoring(*args, EARLY_COMPONENTS)
    memorized, memorized_k = measure_scoring(*args, MEMORIZED_COMPONENTS)
    print(f"  components kept per layer: early {early_k}, memorized {memorized_k}", flush=True)
    last = synthetic_class(class_rows, widths[-1], max(1, round(EARLY_COMPONENTS * min(class_rows, widths[-1]))))
    velpic_fit = info.num_classes * _timed(
        lambda: VeLPIC().fit(last.to(device), np.zeros(class_rows, dtype=np.int64)), min_time / 4
    )
    return per_image, early, memorized, velpic_fit, widths


def estimated_score(
    widths: list[int], class_rows: int, measured: dict[str, tuple[list[int], int, PairCosts]]
) -> tuple[float, float, float]:
    """Score costs of a pair not measured (``--estimate``), scaled from the measured pair with the most flops per
    checkpoint: early and memorized by the flops of the dense floor summed over layers (per class min(n, d)²·max(n, d)
    for the Gram or dual Gram plus min(n, d)³ for eigh, and the projections ∝ n·d·k), the edit's VeLPIC by n·d
    of the last layer."""

    def flops(layer_widths: list[int], rows: int, fraction: float) -> float:
        total = 0.0
        for width in layer_widths:
            small, large = min(rows, width), max(rows, width)
            total += small * small * large + small**3 + rows * width * fraction * small
        return total

    name, (ref_widths, ref_rows, ref) = max(measured.items(), key=lambda item: flops(item[1][0], item[1][1], 0.2))
    early = (
        ref.score_early * flops(widths, class_rows, EARLY_COMPONENTS) / flops(ref_widths, ref_rows, EARLY_COMPONENTS)
    )
    memorized = (
        ref.score_memorized
        * flops(widths, class_rows, MEMORIZED_COMPONENTS)
        / flops(ref_widths, ref_rows, MEMORIZED_COMPONENTS)
    )
    velpic = ref.velpic_last * (class_rows * widths[-1]) / (ref_rows * ref_widths[-1])
    print(f"  score estimated from {name}'s by flops: early {early:.1f} s, memorized {memorized:.1f} s", flush=True)
    return early, memorized, velpic


def measure_startup() -> float:
    """Seconds for a fresh interpreter to import what every job imports."""
    command = [sys.executable, "-c", "import torch, pandas, sklearn, latentgen.pipeline, latentgen.scoring.checkpoint"]
    subprocess.run(command, check=True, cwd=REPO)
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=REPO)
        runs.append(time.perf_counter() - started)
    return float(np.median(runs))


# --------------------------------------------------------------------------------------------------
# The grid's jobs and their schedule
# --------------------------------------------------------------------------------------------------


@dataclass
class Run:
    train: float  # seconds of the training job (an edited run: its edit job too)
    checkpoints: int  # its checkpoints (extracted and scored one after the other by its score job)
    score: float  # seconds of its score job (one start-up, then every checkpoint)
    base: int | None = None  # an edited run: the index of the standard run it edits (it waits for its training)
    memorized: int = 0  # of its checkpoints, those costed as memorized (epoch >= MEMORIZING_FROM)


def grid_runs(
    config: dict, costs: dict[str, PairCosts], startup: float, epochs_of, score_factor: float = 1.0
) -> list[Run]:
    """One Run per (pair, corruption, seed), then one per edited run; ``epochs_of(pair, corruption, seed,
    max_epochs)`` gives a standard run's stop epoch, ``score_factor`` scales the score stage."""
    runs, edited = [], []
    for name, pair in config["pairs"].items():
        n_train, n_test = dataset_info(pair["dataset"]).sizes
        cost = costs[name]
        epoch = cost.epoch(n_train, n_test, pair["batch_size"])
        for corruption in config["corruption"]:
            for seed in config["seeds"]:
                epochs = epochs_of(name, corruption, seed, pair["max_epochs"])
                kept = checkpoint_epochs(pair, epochs)
                score = startup + cost.checkpoints(n_train, n_test, kept, score_factor)
                runs.append(
                    Run(startup + epochs * epoch, len(kept), score, memorized=sum(e >= MEMORIZING_FROM for e in kept))
                )
                base = len(runs) - 1
                for edit in edit_epochs(pair):
                    train = startup + cost.edit(n_train) + startup + (pair["edits"]["until"] - edit) * epoch
                    kept = edited_checkpoint_epochs(pair, edit)
                    score = startup + cost.checkpoints(n_train, n_test, kept, score_factor)
                    edited.append(Run(train, len(kept), score, base, sum(e >= MEMORIZING_FROM for e in kept)))
    return runs + edited


def device_seconds(runs: list[Run]) -> float:
    return sum(run.train + run.score for run in runs)


def makespan(runs: list[Run], devices: int) -> float:
    """Wall seconds of list scheduling on ``devices``: a free device takes the longest training job that is
    ready (a standard run's at once, an edited run's when its standard run's training ends), else the
    earliest-released score job (a run's is released when its training ends); with nothing ready it
    waits for the next release."""
    dependents: dict[int, list[int]] = {}
    for index, run in enumerate(runs):
        if run.base is not None:
            dependents.setdefault(run.base, []).append(index)
    future: list[tuple[float, float, int]] = [(0.0, -run.train, i) for i, run in enumerate(runs) if run.base is None]
    heapq.heapify(future)  # (release time, -seconds, run) of trainings not yet ready
    ready: list[tuple[float, int]] = []  # (-seconds, run): longest first
    released: list[tuple[float, int, float]] = []  # (release time, release order, seconds) of score jobs
    order = itertools.count()
    free_at = [0.0] * devices
    end = 0.0
    while future or ready or released:
        now = heapq.heappop(free_at)
        while future and future[0][0] <= now:
            _, seconds, index = heapq.heappop(future)
            heapq.heappush(ready, (seconds, index))
        if not ready and not (released and released[0][0] <= now):  # idle until the next release
            now = min(([future[0][0]] if future else []) + ([released[0][0]] if released else []))
            while future and future[0][0] <= now:
                _, seconds, index = heapq.heappop(future)
                heapq.heappush(ready, (seconds, index))
        if ready:
            _, index = heapq.heappop(ready)
            run = runs[index]
            finish = now + run.train
            heapq.heappush(released, (finish, next(order), run.score))
            for dependent in dependents.get(index, []):
                heapq.heappush(future, (finish, -runs[dependent].train, dependent))
        else:
            released_at, _, seconds = heapq.heappop(released)
            finish = max(now, released_at) + seconds
        heapq.heappush(free_at, finish)
        end = max(end, finish)
    return end


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:,.1f}"


def _without_edits(config: dict) -> dict:
    return {
        **config,
        "pairs": {name: {k: v for k, v in pair.items() if k != "edits"} for name, pair in config["pairs"].items()},
    }


def report(
    config: dict, costs: dict[str, PairCosts], startup: float, device_name: str, family_factor: float = FAMILY_FACTOR
) -> float:
    print(
        f"\nper-stage costs on {device_name} (job start-up {startup:.1f} s; score: MASC + VeLPIC on every "
        f"probed layer):"
    )
    print(
        f"{'pair':24} {'s/step':>8} {'s/epoch':>9} {'extract s/ckpt':>15} {'score early':>12} {'memorized':>10} "
        f"{'mean s/ckpt':>12} {'memorized share':>16} {'edit s':>7}"
    )
    for name, pair in config["pairs"].items():
        n_train, n_test = dataset_info(pair["dataset"]).sizes
        extract, _ = costs[name].checkpoint(n_train, n_test)
        epoch = costs[name].epoch(n_train, n_test, pair["batch_size"])
        edit = f"{costs[name].edit(n_train):7.1f}" if pair.get("edits") else f"{'-':>7}"
        runs = [
            checkpoint_epochs(pair, stop_epoch(name, rate, seed, pair["max_epochs"]))
            for rate in config["corruption"]
            for seed in config["seeds"]
        ]
        kept = [epoch_ for run in runs for epoch_ in run]
        share = sum(e >= MEMORIZING_FROM for e in kept) / len(kept)
        mean = costs[name].checkpoints(n_train, n_test, kept) / len(kept) - extract
        print(
            f"{name:24} {costs[name].step:8.4f} {epoch:9.1f} {extract:15.1f} {costs[name].score_early:12.1f} "
            f"{costs[name].score_memorized:10.1f} {mean:12.1f} {share:16.0%} {edit}"
        )
    print(
        f"(score: early = classes needing {EARLY_COMPONENTS:.0%} of min(n_c, d) components, memorized = "
        f"{MEMORIZED_COMPONENTS:.0%}; a run's checkpoints from epoch {MEMORIZING_FROM} on are costed as memorized; "
        "mean and share over the standard runs' checkpoints at the authors' stop epochs)"
    )
    authors = stop_epoch
    scenarios = [
        ("the authors' stop epochs", config, authors, 1.0),
        ("the authors' stop epochs, no edited runs", _without_edits(config), authors, 1.0),
        (
            f"the authors' stop epochs, score x {family_factor:g} (the default probe family)",
            config,
            authors,
            family_factor,
        ),
        ("every run to its 500-epoch cap", config, lambda pair, corruption, seed, max_epochs: max_epochs, 1.0),
    ]
    ratio = 0.0
    print("\n| epochs assumed | devices | device-hours | wall time (h) | busy |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, grid, epochs_of, factor in scenarios:
        runs = grid_runs(grid, costs, startup, epochs_of, factor)
        busy = device_seconds(runs)
        walls = {devices: makespan(runs, devices) for devices in DEVICE_COUNTS}
        for devices, wall in walls.items():
            print(f"| {label} | {devices} | {_hours(busy)} | {_hours(wall)} | {busy / (devices * wall):.0%} |")
        standard = [run for run in runs if run.base is None]
        edited = [run for run in runs if run.base is not None]
        print(
            f"|   ({len(standard)} standard runs, {sum(r.checkpoints for r in standard):,} checkpoints "
            f"({sum(r.memorized for r in standard):,} costed as memorized); "
            f"{len(edited)} edited runs (an edit job each), {sum(r.checkpoints for r in edited):,} checkpoints; "
            f"of the device-hours: edited runs {_hours(device_seconds(edited))}) | | | | |"
        )
        ratio = ratio or walls[DEVICE_COUNTS[0]] / walls[DEVICE_COUNTS[-1]]
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument(
        "--min-time",
        type=float,
        default=DEFAULT_MIN_TIME,
        help="seconds each training/extraction measurement runs at least (probes: a quarter)",
    )
    parser.add_argument(
        "--estimate",
        action="append",
        default=[],
        help="a pair whose score stage is estimated from the measured pairs' by flops, not measured (repeatable)",
    )
    parser.add_argument("--pairs", help="measure and project only these pairs (comma-separated; default: all)")
    parser.add_argument(
        "--family-factor",
        type=float,
        default=FAMILY_FACTOR,
        help="the default probe family's score cost over MASC + VeLPIC's (a scenario of the table)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = filled(yaml.safe_load(args.config.read_text()))  # the defaults the workflow fills, edit epochs too
    device = torch.device(args.device)
    variance = float(config["scoring"]["masc_variance"])
    if args.pairs:
        config["pairs"] = {name: config["pairs"][name] for name in args.pairs.split(",")}
    costs, measured, estimated = {}, {}, {}
    for name, pair in config["pairs"].items():
        started = time.perf_counter()
        step, eval_image = measure_training(pair, device, args.min_time)
        extract_image, early, memorized, velpic_last, widths = measure_checkpoint(
            pair, device, variance, args.min_time, score=name not in args.estimate
        )
        costs[name] = PairCosts(step, eval_image, extract_image, early, memorized, velpic_last)
        info = dataset_info(pair["dataset"])
        (estimated if name in args.estimate else measured)[name] = (
            widths,
            info.sizes[0] // info.num_classes,
            costs[name],
        )
        print(f"measured {name} in {time.perf_counter() - started:.0f} s (probed widths {widths})", flush=True)
    for name, (widths, rows, cost) in estimated.items():
        cost.score_early, cost.score_memorized, cost.velpic_last = estimated_score(widths, rows, measured)
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    )
    ratio = report(config, costs, measure_startup(), device_name, args.family_factor)
    print(f"wall-time ratio 1 / {DEVICE_COUNTS[-1]} devices: {ratio:.1f}x")


if __name__ == "__main__":
    main()

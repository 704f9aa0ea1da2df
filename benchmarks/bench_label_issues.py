"""What the label-issue stage costs on one full-scale checkpoint: cross-fitting against one probe fit.

    .venv/bin/python benchmarks/bench_label_issues.py [--cache-dir DIR] [--threads 2] [--layers fc4 ...]

Workload: bench_probes.py's checkpoint (the paper's MLP after one epoch on all 60,000 MNIST training images with
40 % corrupted labels; its float16 activations cached, built on first use).  Per layer (default fc4: 60,000 x 2048)
it times, each on its own:

* ``velpic fit``: one VeLPIC fit on all 60,000 rows and its scores of them (what the score stage does per probe);
* ``velpic cross-fit``: the stage's K = 5 cross-fitted VeLPIC (five fits on 48,000 rows, each scoring its 12,000);
* ``ncm cross-fit``: the same for NCM;
* ``calibration + cleanlab``: the softmax calibration and cleanlab's flags and ranking of one probe's scores;
* ``deep k-NN``: exact 10 nearest neighbours of every row among all 60,000 (Euclidean);
and once per checkpoint ``pixel logistic regression`` (K = 5 on the 784 pixels) and the bootstrap of one method's
AUPRC (200 resamples).  The AUPRC of each method against the truth of the corruption is printed beside its time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_probes  # noqa: E402  (the cached full-scale checkpoint's activations)


def _timed(name: str, function, rows: list):
    started = time.perf_counter()
    result = function()
    seconds = time.perf_counter() - started
    rows.append((name, seconds))
    print(f"{name:<45} {seconds:8.1f} s", flush=True)
    return result


def _auprc(is_wrong: np.ndarray, table) -> float:
    from latentgen.label_issues import label_issue_metrics

    return label_issue_metrics(is_wrong, table["is_label_issue"], table["label_score"])["auprc"]


def bench_layer(layer: str, features, noisy: np.ndarray, is_wrong: np.ndarray, rows: list) -> None:
    from latentgen.label_issues import cross_fitted_scores, deep_knn_issues, label_issue_table
    from latentgen.label_issues.calibration import calibrated_probabilities
    from latentgen.label_issues.layer import probe_factory
    from latentgen.probes.paper import VeLPIC

    index = np.arange(len(noisy))
    _timed(
        f"{layer}: velpic fit (60,000 rows) + scores",
        lambda: VeLPIC().fit(features, noisy).predict_scores(features),
        rows,
    )
    crossfit = _timed(
        f"{layer}: velpic cross-fit, K = 5", lambda: cross_fitted_scores(features, noisy, probe_factory("velpic")), rows
    )
    table = _timed(
        f"{layer}: calibration + cleanlab",
        lambda: label_issue_table(noisy, calibrated_probabilities(crossfit.scores, noisy)[0], index, layer, "velpic"),
        rows,
    )
    print(f"    velpic AUPRC {_auprc(is_wrong, table):.3f} (base rate {is_wrong.mean():.3f})")
    ncm = _timed(
        f"{layer}: ncm cross-fit, K = 5", lambda: cross_fitted_scores(features, noisy, probe_factory("ncm")), rows
    )
    ncm_table = label_issue_table(noisy, calibrated_probabilities(ncm.scores, noisy)[0], index, layer, "ncm")
    print(f"    ncm AUPRC {_auprc(is_wrong, ncm_table):.3f}")
    knn = _timed(f"{layer}: deep k-NN (k = 10)", lambda: deep_knn_issues(features, noisy, index, layer), rows)
    print(f"    deep k-NN AUPRC {_auprc(is_wrong, knn):.3f}")


def bench_checkpoint(images: np.ndarray, noisy: np.ndarray, is_wrong: np.ndarray, rows: list) -> None:
    from latentgen.label_issues import pixel_logreg_issues
    from latentgen.label_issues.metrics import bootstrap_auprc, bootstrap_counts

    index = np.arange(len(noisy))
    pixel = _timed("pixel logistic regression, K = 5", lambda: pixel_logreg_issues(images, noisy, index), rows)
    print(f"    pixel AUPRC {_auprc(is_wrong, pixel):.3f}")
    counts = _timed("bootstrap resamples (200 x 60,000)", lambda: bootstrap_counts(len(noisy)), rows)
    _timed("bootstrap of one method's AUPRC", lambda: bootstrap_auprc(is_wrong, pixel["label_score"], counts), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=bench_probes.DEFAULT_CACHE)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (a score job's compute threads)")
    parser.add_argument("--layers", nargs="+", default=["fc4"])
    args = parser.parse_args()
    import torch

    from latentgen.data.labels import corrupt_labels

    torch.set_num_threads(args.threads)
    cache = bench_probes.ensure_activations(args.cache_dir)
    train_images, train_labels, _, _ = bench_probes._load_mnist()
    noisy = np.load(cache / "train_noisy.npy")
    assert np.array_equal(noisy, corrupt_labels(train_labels, bench_probes.CORRUPTION, 10, bench_probes.SEED)[0])
    is_wrong = noisy != train_labels
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; torch threads {args.threads}")
    rows: list = []
    for layer in args.layers:
        features = torch.from_numpy(np.load(cache / f"{layer}_train.npy").astype(np.float32))
        bench_layer(layer, features, noisy, is_wrong, rows)
    bench_checkpoint(train_images, noisy, is_wrong, rows)
    fit = dict(rows).get(f"{args.layers[0]}: velpic fit (60,000 rows) + scores")
    cross = dict(rows).get(f"{args.layers[0]}: velpic cross-fit, K = 5")
    print(f"velpic cross-fit / one fit: {cross / fit:.1f}x")


if __name__ == "__main__":
    main()

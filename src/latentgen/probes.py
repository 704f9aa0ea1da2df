"""Class-subspace probes of layer activations: MASC and VeLPIC, as scikit-learn classifiers.

Both probes look, per class c, at the eigenvectors of the class's *uncentered* second-moment matrix
G_c = X_cᵀX_c (X_c: the (n_c, d) activations labelled c).  That matrix is exactly what PCA of the
augmented set [X_c; -X_c] diagonalizes: the augmented set has zero mean, so its covariance is
2·G_c / (2·n_c - 1), the same eigenvectors and the same explained-variance ratios.  Nothing is
ever augmented or centered here.

* ``MASC`` (Minimum Angle Subspace Classifier, the paper's Algorithm 2): the class subspace is spanned
  by the fewest top eigenvectors whose cumulative explained-variance ratio *exceeds* ``variance``;
  prediction is the class whose subspace makes the smallest angle with x, i.e. argmax_c ‖P_c x‖/‖x‖.
  Since ‖x‖ is the same for every class this is argmax_c xᵀP_c x, the quadratic form of Proposition 1.
* ``VeLPIC`` (the paper's Algorithm 1): one unit vector per class, the top eigenvector, its sign chosen
  so that the mean projection of the class's own data is ≥ 0; prediction is argmax_c ⟨v_c, x⟩.

Deterministic rules for degenerate input (no NaN anywhere):

* An all-zero x has no angle with anything: every MASC score (a cosine) is 0, every VeLPIC score is 0.
* Ties go to the lowest class index, i.e. the first of ``classes_`` (``torch.argmax`` returns the first
  maximum).  So an all-zero x is predicted ``classes_[0]``.
* A class whose activations are all zero has a zero second moment: an empty subspace (MASC,
  ``n_components_ == 0``) or a zero vector (VeLPIC).  Its score is 0 for every x, so it only wins a
  tie in which every score is 0.
* Eigenvalues at or below a rank tolerance (rounding noise of a singular G_c) count as zero: they
  never become components, and ``variance=1.0`` keeps exactly the non-zero ones.

Computation runs in torch on the device of the data (a CUDA tensor stays on the GPU) or on ``device``.
Fitted attributes are plain numpy arrays so a fitted probe pickles and moves between machines.

How the eigenpairs are found (``class_spectrum``):

* Small problems (min(n_c, d) ≤ ``DENSE_LIMIT``): the d×d Gram X_cᵀX_c, or the n_c×n_c dual X_cX_cᵀ
  when n_c < d (eigenvectors u → v = X_cᵀu/√λ), accumulated in float32 and diagonalized by
  ``torch.linalg.eigh`` in float64.
* Large problems whose needed components are few compared with min(n_c, d) (the usual case: the
  MLP's 2048-unit ReLU layers need 5-25 components for 99 %): a block Krylov space built from
  products with X_c (never the d×d Gram, whose n_c·d² cost would dominate), Rayleigh-Ritz in
  float64, accepted when the Davis-Kahan bound on the angle between the kept Ritz subspace and the
  exact eigenspace is small; otherwise the space grows, and past a quarter of min(n_c, d) the dense
  path is used instead.  VeLPIC, which needs only the top eigenvector, takes this path from
  min(n_c, d) > ``TOP_VECTOR_DENSE_LIMIT``.

Precision (``benchmarks/bench_probes.py --precision``, real activations of the paper's MLP after one
epoch on MNIST with 40 % label noise, 60,000 train / 10,000 test, see docs/performance.md): against an
all-float64 computation, a float32 Gram with a float64 eigh gives identical MASC test predictions on
all four layers (cosines within 1.3e-6), a float32 eigh changes 0.01-0.05 % of them, and the library
as configured (dense or Krylov) is identical.  So products are float32 and eigensolvers float64.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from latentgen.fileio import tensor_over

# min(n_c, d) up to which the full Gram (or dual Gram) is diagonalized; eigh of 1024×1024 in float64
# takes ~0.2 s on 2 CPU cores, 2048×2048 ~1.7 s, which is when the Krylov path starts to pay.
DENSE_LIMIT = 1024
# VeLPIC needs only the top eigenvector, which a Krylov space finds in 2-3 products (its gap to the
# second eigenvalue is large for activations): the Krylov path pays from much smaller sizes.
TOP_VECTOR_DENSE_LIMIT = 64
# Krylov subspaces are accepted when their Davis-Kahan sin Θ bound is below SUBSPACE_TOL.  Measured on
# the MLP's 2048-unit layers (60,000 activations): the bound overestimates the true angle ~10x, so 1e-3
# means sin Θ ~ 1e-4, and all 10,000 test predictions equal those of float64 eigh; an earlier rule
# (residual ≤ 1e-5·θ_1) stopped at sin Θ ~ 3e-2 and changed 7 of them.  When the residual stalls at
# the float32 noise floor (a gap too small for float32 data to resolve) SUBSPACE_FLOOR_TOL applies.
SUBSPACE_TOL = 1e-3
SUBSPACE_FLOOR_TOL = 1e-1
KRYLOV_BLOCK = 16
KRYLOV_FIRST_CHECK = 2
# The Krylov space may grow to this fraction of min(n_c, d) columns before the dense path takes over:
# by then its products have cost about as much as forming the Gram.
KRYLOV_MAX_FRACTION = 0.25
# Rows per chunk when scoring: bounds the float32 copy of a float16/memory-mapped input (16 MB at
# d = 2048, reused from chunk to chunk).
SCORE_CHUNK_ROWS = 2048
# numpy dtypes accepted as they are; anything else (ints, object) is converted to float64 by sklearn.
_KEPT_FLOAT_DTYPES = [np.float64, np.float32, np.float16]


# --------------------------------------------------------------------------------------------------
# Eigenpairs of one class's second moment
# --------------------------------------------------------------------------------------------------


@dataclass
class ClassSpectrum:
    """Top eigenpairs of G_c = X_cᵀX_c, descending, and its trace (the total variance)."""

    eigenvalues: torch.Tensor  # (m,) float64, descending, all > rank tolerance
    eigenvectors: torch.Tensor  # (d, m) float64, orthonormal columns
    trace: float  # ‖X_c‖_F² in float64 = sum of all eigenvalues


def _rank_tolerance(trace: float, n: int, d: int) -> float:
    """Eigenvalues below this are float32 rounding noise of the Gram, i.e. zero.

    Accumulating X_cᵀX_c in float32 perturbs it by about ε₃₂·√n·trace (trace = ‖X_c‖_F²), so a
    rank-deficient class shows spurious eigenvalues of that size; genuine ones that small are
    unresolvable in float32 and carry a negligible share of the variance anyway.
    """
    return trace * float(torch.finfo(torch.float32).eps) * max(n, d) ** 0.5


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """torch's CPU thread count set to ``count`` within the block, the previous one restored after."""
    previous = torch.get_num_threads()
    if previous == count:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# CPU thread policy.  A fit or scoring call on the CPU runs on one thread, except the large products
# with the class data (``_large_products``), which get the caller's torch thread count back.  The rest
# (eigh, QR, reductions, copies and fills of a few MB) consists of short parallel regions that end in
# barriers; when other processes share the cores, each barrier waits for a descheduled thread.
# Measured on 2 cores with busy neighbours: eigh of 512x512 float64 0.12-0.2 s on 2 threads vs 0.04 s
# on 1, 1024x1024 1.5-8 s vs 0.25 s; QR of 512x300 0.18 s; zero-filling a 512x48 buffer 16 ms.  On
# idle cores those small operations gain little from a second thread; the products do.
# A fit with several classes goes further: each of the caller's threads fits classes of its own, every
# torch operation on one thread (no barriers at all), and the Krylov products are cache-blocked so that
# the two threads do not compete for memory bandwidth (``_cache_blocked_second_moment_times``).
# Measured on the paper MLP's 2048-unit fc3 (10 classes of ~6,000 rows, 2 cores): MASC fit + predict
# 1.1 s, against 2.3 s with one class at a time, 2-thread whole-matrix products and fresh buffers
# (docs/performance.md).  Scoring keeps the policy above.
_PRODUCT_THREADS: ContextVar[int | None] = ContextVar("latentgen_probe_product_threads", default=None)


def _class_workers(device: torch.device, classes: int) -> int:
    """How many classes a CPU fit works on at once: one per torch thread (see ``_cpu_thread_policy``)."""
    if device.type != "cpu" or _PRODUCT_THREADS.get() is not None:
        return 1
    return max(1, min(torch.get_num_threads(), classes))


@contextmanager
def _cpu_thread_policy(device: torch.device, parallel_classes: bool = False) -> Iterator[None]:
    """Within: one CPU thread, except inside ``_large_products``; the caller's count is restored after.

    With ``parallel_classes`` every product stays on one thread too: the caller's threads then each fit
    a class of their own (``_fit_classes_concurrently``).
    """
    if device.type != "cpu" or _PRODUCT_THREADS.get() is not None:
        yield
        return
    token = _PRODUCT_THREADS.set(1 if parallel_classes else torch.get_num_threads())
    try:
        with torch_threads(1):
            yield
    finally:
        _PRODUCT_THREADS.reset(token)


# Below this many floating-point operations a product stays on one thread: ~2 ms of one core, less
# than what a barrier stall costs on a shared machine (a 6,000x128 by 128x16 product took 16 ms on 2
# busy threads).
PARALLEL_PRODUCT_FLOPS = 2e8


@contextmanager
def _large_products(flops: float) -> Iterator[None]:
    """Inside a CPU thread policy: the caller's thread count for a product of ``flops`` operations."""
    threads = _PRODUCT_THREADS.get()
    if threads is None or flops < PARALLEL_PRODUCT_FLOPS:
        yield
        return
    with torch_threads(threads):
        yield


@contextmanager
def _single_threaded_on_cpu(device: torch.device) -> Iterator[None]:
    """One CPU thread for a LAPACK call, also when a helper is called outside a fit (see above)."""
    if device.type != "cpu":
        yield
        return
    with torch_threads(1):
        yield


def _descending_eigh(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """eigh of a symmetric float64 matrix, largest eigenvalue first."""
    with _single_threaded_on_cpu(gram.device):
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    return eigenvalues.flip(0), eigenvectors.flip(1)


def _drop_null(eigenvalues: torch.Tensor, vectors: torch.Tensor, trace: float, shape: tuple[int, int]):
    """Keep the eigenpairs above the rank tolerance (descending order is preserved)."""
    keep = eigenvalues > _rank_tolerance(trace, *shape)
    return eigenvalues[keep], vectors[:, keep]


def primal_spectrum(class_data: torch.Tensor, trace: float | None = None) -> ClassSpectrum:
    """Dense eigenpairs from the d×d Gram X_cᵀX_c (float32 products, float64 eigh)."""
    n, d = class_data.shape
    with _large_products(2.0 * n * d * d):
        gram = (class_data.T @ class_data).double()  # (d, d)
    trace = _frobenius_sq(class_data) if trace is None else trace
    eigenvalues, eigenvectors = _drop_null(*_descending_eigh(gram), trace, class_data.shape)
    return ClassSpectrum(eigenvalues, eigenvectors, trace)


def dual_spectrum(class_data: torch.Tensor, trace: float | None = None) -> ClassSpectrum:
    """The same eigenpairs from the n×n dual X_cX_cᵀ, cheaper when n_c < d.

    X_cX_cᵀu = λu gives X_cᵀX_c(X_cᵀu) = λ(X_cᵀu) and ‖X_cᵀu‖ = √λ, so v = X_cᵀu/√λ.
    """
    n, d = class_data.shape
    with _large_products(2.0 * n * n * d):
        dual_gram = (class_data @ class_data.T).double()  # (n, n)
    trace = _frobenius_sq(class_data) if trace is None else trace
    eigenvalues, left_vectors = _drop_null(*_descending_eigh(dual_gram), trace, class_data.shape)
    with _large_products(2.0 * n * d * left_vectors.shape[1]):
        mapped = (class_data.double().T @ left_vectors) / eigenvalues.sqrt()  # (d, m)
    return ClassSpectrum(eigenvalues, _reorthonormalized(mapped), trace)


def _reorthonormalized(vectors: torch.Tensor) -> torch.Tensor:
    """QR with the signs kept: the dual map's columns are orthonormal only to the float32 accuracy of
    the dual Gram (~1e-6); Gram-Schmidt order keeps span(v_1..v_j) for every j, so the subspaces don't move."""
    with _single_threaded_on_cpu(vectors.device):
        q, r = torch.linalg.qr(vectors)
    signs = torch.sign(torch.diagonal(r))
    return q * torch.where(signs == 0, torch.ones_like(signs), signs)


def dense_spectrum(class_data: torch.Tensor, trace: float | None = None) -> ClassSpectrum:
    """Primal or dual, whichever matrix is smaller (``trace``: ‖X_c‖_F² when the caller has it)."""
    n, d = class_data.shape
    return dual_spectrum(class_data, trace) if n < d else primal_spectrum(class_data, trace)


def _frobenius_sq(class_data: torch.Tensor) -> float:
    """‖X_c‖_F² = trace of G_c, from float32 row norms summed in float64.

    Measured on a 5,900x2048 class: relative error 2e-9 in 0.9 ms; a whole-tensor float32
    ``vector_norm`` or ``dot`` is off by 5e-5 to 5e-4 (enough to move the 99 % cut by one component)
    and a float64 upcast takes 41 ms.
    """
    return float(torch.linalg.vector_norm(class_data, dim=1).double().square().sum())


def _second_moment_times(class_data: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """G_c @ vectors = X_cᵀ(X_c vectors) without forming G_c: (d, b) float64 from float32 products."""
    basis = vectors.to(class_data.dtype)
    with _large_products(4.0 * class_data.numel() * basis.shape[1]):
        if class_data.device.type == "cpu" and torch.get_num_threads() == 1:
            return _cache_blocked_second_moment_times(class_data, basis).double()
        return (class_data.T @ (class_data @ basis)).double()


# Bytes of class rows per chunk in ``_cache_blocked_second_moment_times``: about one core's L2 cache.
PRODUCT_CHUNK_BYTES = 1 << 20


def _cache_blocked_second_moment_times(class_data: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Xᵀ(X B) on one CPU thread, reading X from memory once instead of twice.

    Both products are memory-bound (a 6,000x2048 float32 class is 49 MB, a block B 16 columns), so
    each chunk of rows is used for Xᵢᵀ(Xᵢ B) while it is still in cache.  Measured with two classes
    fitted at once on 2 cores: 21 ms per pair of products against 45 ms for two whole-matrix products.
    Row blocks (BᵀXᵢᵀ)Xᵢ are the orientation MKL's single-threaded kernels run fastest.
    """
    n, d = class_data.shape
    rows = max(16, PRODUCT_CHUNK_BYTES // (d * class_data.element_size()))
    basis_rows = basis.T.contiguous()  # (b, d)
    product = class_data.new_zeros((basis.shape[1], d))
    for start in range(0, n, rows):
        chunk = class_data[start : start + rows]
        product.addmm_(basis_rows @ chunk.T, chunk)
    return product.T


def _orthonormal_block(block: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Orthonormalize a (d, b) block against the (d, m) basis so far (twice, for stability), then QR."""
    for _ in range(2):
        block = block - previous @ (previous.T @ block)
    return torch.linalg.qr(block).Q


class _KrylovSpace:
    """An orthonormal basis Q (d, m) of a block Krylov space of G_c and its image G_c Q, float64.

    Both live in buffers preallocated for the largest space allowed, so growing copies nothing.
    """

    def __init__(self, class_data: torch.Tensor, capacity: int) -> None:
        d = class_data.shape[1]
        self.class_data = class_data
        self._basis = class_data.new_zeros((d, capacity), dtype=torch.float64)
        self._image = class_data.new_zeros((d, capacity), dtype=torch.float64)
        self._projected = class_data.new_zeros((capacity, capacity), dtype=torch.float64)  # QᵀGQ
        self.size = 0

    @property
    def basis(self) -> torch.Tensor:
        return self._basis[:, : self.size]

    @property
    def image(self) -> torch.Tensor:
        return self._image[:, : self.size]

    def add(self, block: torch.Tensor) -> None:
        """Append an orthonormal block (d, b) and its image G_c @ block (the one product with X_c)."""
        start, end = self.size, self.size + block.shape[1]
        self._basis[:, start:end] = block
        self._image[:, start:end] = _second_moment_times(self.class_data, block)
        self.size = end
        # QᵀGQ grows by the new block's rows and columns only: Qᵀ(G Q_new), mirrored, its diagonal
        # block symmetrized (it is symmetric up to rounding).
        cross = self.basis.T @ self._image[:, start:end]  # (end, b)
        self._projected[:end, start:end] = cross
        self._projected[start:end, :start] = cross[:start].T
        new = cross[start:end]
        self._projected[start:end, start:end] = (new + new.T) / 2

    def next_block(self, block_size: int) -> torch.Tensor:
        """G times the newest block, made orthogonal to the basis: the next Krylov block."""
        return _orthonormal_block(self.image[:, -block_size:], self.basis)

    def ritz_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Ritz values (m,) descending and coefficients S (m, m): Ritz vectors are Q S, G Q S = (GQ) S."""
        return _descending_eigh(self._projected[: self.size, : self.size])


def _subspace_residual(space: _KrylovSpace, kept: int, values, coefficients) -> tuple[float, torch.Tensor]:
    """‖G V - V Θ‖_F / (θ_k - θ_{k+1}) for the first ``kept`` Ritz pairs, and those Ritz vectors V (d, kept).

    By the Davis-Kahan sin Θ theorem this ratio bounds the sine of the angle between span(V) and the
    exact top-``kept`` eigenspace (θ_{k+1} ≤ λ_{k+1}, so the gap is a slight overestimate until the
    space has converged).  G V = (G Q) S is already known: no product with X_c is needed.
    """
    vectors = space.basis @ coefficients[:, :kept]
    residual = space.image @ coefficients[:, :kept] - vectors * values[:kept]
    gap = float(values[kept - 1] - values[kept])
    return float(torch.linalg.vector_norm(residual)) / max(gap, float(values[0]) * 1e-300), vectors


def _converged_ritz_pairs(space: _KrylovSpace, variance: float, trace: float, previous_bound: float):
    """(values, vectors, bound): the Ritz pairs ``variance`` needs when converged, else (None, None, bound)."""
    n, d = space.class_data.shape
    values, coefficients = _drop_null(*space.ritz_pairs(), trace, (n, d))
    kept = components_needed(values, trace, variance)
    if kept is None or not 0 < kept < values.numel():
        return None, None, previous_bound
    bound, vectors = _subspace_residual(space, kept, values, coefficients)
    stalled = bound > 0.5 * previous_bound
    if bound <= SUBSPACE_TOL or (stalled and bound <= SUBSPACE_FLOOR_TOL):
        return values[:kept], vectors, bound
    return None, None, bound


def _start_block(class_data: torch.Tensor, block_size: int) -> torch.Tensor:
    """An orthonormal (d, block_size) float64 start: a seeded Gaussian drawn on the CPU."""
    d = class_data.shape[1]
    start = torch.randn(d, block_size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with _single_threaded_on_cpu(start.device):
        return torch.linalg.qr(start).Q.to(class_data.device)


def _krylov_spectrum(class_data: torch.Tensor, variance: float, trace: float | None = None) -> ClassSpectrum | None:
    """Top eigenpairs by block Krylov + Rayleigh-Ritz; None when a dense eigh would be cheaper.

    Each step costs one product of X_c and X_cᵀ with a (d, 16) block; everything else works on
    (d, m) and (m, m) matrices (QᵀGQ grows by the new block's rows and columns) and runs
    single-threaded on the CPU (see ``_cpu_thread_policy``).
    The space grows until the subspace of the pairs needed for ``variance`` has converged: its sin Θ
    bound is below ``SUBSPACE_TOL``, or the residual stopped shrinking (the float32 products' noise
    floor, reached only when the gap is too small for float32 to resolve the subspace better, dense
    Gram included) with the bound below ``SUBSPACE_FLOOR_TOL``.  The space is capped at a quarter of
    min(n_c, d), past which the dense path costs less than more products.  Ω is a seeded Gaussian
    drawn on the CPU, so a fit is deterministic and does not depend on the device.
    """
    n, d = class_data.shape
    block_size = KRYLOV_BLOCK
    steps = max(int(min(n, d) * KRYLOV_MAX_FRACTION) // block_size, KRYLOV_FIRST_CHECK + 1)
    if steps * block_size > min(n, d):  # too small a problem for blocks of this size
        return None
    trace = _frobenius_sq(class_data) if trace is None else trace
    space = _KrylovSpace(class_data, steps * block_size)
    block = _start_block(class_data, block_size)
    bound = float("inf")
    for step in range(1, steps + 1):
        space.add(block)
        with _single_threaded_on_cpu(class_data.device):
            if step >= KRYLOV_FIRST_CHECK:
                values, vectors, bound = _converged_ritz_pairs(space, variance, trace, bound)
                if values is not None:
                    return ClassSpectrum(values, vectors, trace)
            block = space.next_block(block_size)
    return None


def components_needed(eigenvalues: torch.Tensor, trace: float, variance: float) -> int | None:
    """Fewest leading components whose explained-variance ratio exceeds ``variance``.

    ``eigenvalues`` are the non-zero ones known so far (descending).  ``variance >= 1`` means all of
    them.  Returns None when even all known eigenvalues do not reach the threshold, i.e. more are
    needed.  The ratio uses the trace (= sum of all eigenvalues), so a partial spectrum suffices.
    """
    count = int(eigenvalues.numel())
    if trace <= 0 or count == 0:
        return 0
    if variance >= 1.0:
        return count
    ratios = torch.cumsum(eigenvalues, 0) / trace
    exceeding = torch.nonzero(ratios > variance)
    if exceeding.numel() == 0:
        # Every non-zero eigenvalue is known when the ranks add up to the trace: keep them all.
        return count if float(ratios[-1]) >= 1.0 - 1e-6 else None
    return int(exceeding[0]) + 1


def class_spectrum(class_data: torch.Tensor, variance: float) -> ClassSpectrum:
    """Eigenpairs of X_cᵀX_c sufficient to keep ``variance`` (all non-zero ones on the dense path).

    ``class_data``: (n_c, d) float32 on the compute device.  Chooses the dense or the Krylov path;
    ``variance=0`` asks for the top eigenpair only (VeLPIC).
    """
    n, d = class_data.shape
    trace = _frobenius_sq(class_data)
    if trace == 0.0:  # all-zero activations: zero second moment, no eigenpairs
        empty = class_data.new_zeros((d, 0), dtype=torch.float64)
        return ClassSpectrum(empty.new_zeros(0), empty, 0.0)
    dense_limit = DENSE_LIMIT if variance > 0.0 else TOP_VECTOR_DENSE_LIMIT
    if min(n, d) > dense_limit and variance < 1.0:
        spectrum = _krylov_spectrum(class_data, variance, trace)
        if spectrum is not None:
            return spectrum
    return dense_spectrum(class_data, trace)


# --------------------------------------------------------------------------------------------------
# Input handling shared by both probes
# --------------------------------------------------------------------------------------------------


def _to_numpy_labels(y) -> np.ndarray:
    if isinstance(y, torch.Tensor):
        return y.detach().cpu().numpy()
    return y


def _compute_device(X, requested) -> torch.device:
    """The requested device, else the device of a tensor input, else the CPU."""
    if requested is not None:
        return torch.device(requested)
    if isinstance(X, torch.Tensor):
        return X.device
    return torch.device("cpu")


def _as_source_tensor(X) -> torch.Tensor:
    """The validated input as a tensor without copying: numpy (memory-mapped too) or a tensor as is."""
    return X if isinstance(X, torch.Tensor) else tensor_over(X)


class _Float32Rows:
    """Rows of the input (any float dtype, possibly over a memory map) as float32 on the compute device,
    written into two buffers that every call reuses.

    Fresh tensors of this size cost their page faults: for a 6,000x2048 float16 class from a memory map,
    gathering and widening into new tensors took 29 ms, into reused buffers 4 ms (2-core VM; a fit of the
    MLP's 2048-unit layers gathers ten such classes per probe).  Rows are gathered by torch in the
    input's dtype and widened by ``copy_`` (numpy fancy indexing plus ``astype`` took 60-65 ms).
    A returned tensor is a view of the buffer: it is valid until the next call.
    Raises ValueError for NaN or infinite values, checked here on float32 data rather than by
    scikit-learn, whose check falls back to a slow element-wise pass for float16 (the float16 sum of a
    large array overflows).
    """

    def __init__(self, source: torch.Tensor, device: torch.device, max_rows: int) -> None:
        self.source = source
        shape = (max_rows, source.shape[1])
        self._widened = torch.empty(shape, dtype=torch.float32, device=device)
        gathers_in_place = source.dtype == torch.float32 and source.device == self._widened.device
        self._staging = None if gathers_in_place else source.new_empty(shape)

    def __call__(self, rows: np.ndarray | slice) -> torch.Tensor:
        if isinstance(rows, slice):
            selected = self.source[rows]
            widened = self._widened[: selected.shape[0]]
            widened.copy_(selected)
        else:
            index = torch.as_tensor(rows, device=self.source.device)
            widened = self._widened[: len(rows)]
            if self._staging is None:
                torch.index_select(self.source, 0, index, out=widened)
            else:
                staged = self._staging[: len(rows)]
                torch.index_select(self.source, 0, index, out=staged)
                widened.copy_(staged)
        if not bool(torch.isfinite(widened.sum(dim=1)).all()):  # a NaN or inf anywhere makes its row sum so
            raise ValueError("Input X contains NaN or infinity (or values too large for float32).")
        return widened


class _TorchProbe(ClassifierMixin, BaseEstimator):
    """Shared validation, label handling and chunked scoring of every probe; subclasses fit.

    Subclasses provide ``fit`` and the scoring hooks ``_scoring_weights`` (fitted state as tensors on
    the compute device, built once per call) and ``_score_rows`` (float32 scores of one chunk of rows).
    """

    # -- validation --------------------------------------------------------------------------------

    def _check_tensor(self, X: torch.Tensor, reset: bool) -> torch.Tensor:
        """The checks sklearn's validate_data makes, on a tensor left on its device."""
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got a tensor of shape {tuple(X.shape)} instead.")
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"Found array with shape {tuple(X.shape)}; at least 1 sample and 1 feature are required.")
        if X.is_complex():
            raise ValueError("Complex data not supported")
        if not X.is_floating_point():
            X = X.to(torch.float32)
        if reset:
            self.n_features_in_ = int(X.shape[1])
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _validate_fit_input(self, X, y):
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y is None.")
        y = _to_numpy_labels(y)
        if isinstance(X, torch.Tensor):
            X = self._check_tensor(X, reset=True)
            y = column_or_1d(y, warn=True)
            if y.shape[0] != X.shape[0]:
                raise ValueError(f"Found input variables with inconsistent numbers of samples: [{X.shape[0]}, {y.shape[0]}]")
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        else:
            X, y = validate_data(self, X, y, dtype=_KEPT_FLOAT_DTYPES, ensure_all_finite=False)
        check_classification_targets(y)
        return X, y

    def _validate_predict_input(self, X):
        check_is_fitted(self)
        if isinstance(X, torch.Tensor):
            return self._check_tensor(X, reset=False)
        return validate_data(self, X, dtype=_KEPT_FLOAT_DTYPES, reset=False, ensure_all_finite=False)

    def _encode_labels(self, y: np.ndarray) -> np.ndarray:
        """Sets ``classes_`` (the sorted labels) and returns each row's index into it (int64)."""
        self.classes_, encoded = np.unique(y, return_inverse=True)
        return encoded.astype(np.int64, copy=False)

    def _class_rows(self, y: np.ndarray) -> list[np.ndarray]:
        """Sets ``classes_`` and returns the row indices of each class, in ``classes_`` order."""
        encoded = self._encode_labels(y)
        order = np.argsort(encoded, kind="stable")
        boundaries = np.cumsum(np.bincount(encoded, minlength=len(self.classes_)))[:-1]
        return np.split(order, boundaries)

    # -- scoring -----------------------------------------------------------------------------------

    def predict_scores(self, X) -> np.ndarray:
        """(n, K) class scores in ``classes_`` order; ``predict`` is their argmax (ties → lowest index)."""
        X = self._validate_predict_input(X)
        device = _compute_device(X, self.device)
        source = _as_source_tensor(X)
        weights = self._scoring_weights(device)
        with _cpu_thread_policy(device):
            chunk = _Float32Rows(source, device, max_rows=min(SCORE_CHUNK_ROWS, X.shape[0]))
            chunks = [
                self._score_rows(chunk(slice(start, start + SCORE_CHUNK_ROWS)), weights)
                for start in range(0, X.shape[0], SCORE_CHUNK_ROWS)
            ]
        return torch.cat(chunks).double().cpu().numpy()

    def decision_function(self, X) -> np.ndarray:
        """scikit-learn convention: (n, K) scores; for two classes the (n,) margin score₁ - score₀."""
        scores = self.predict_scores(X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def predict(self, X) -> np.ndarray:
        """The class with the highest score; ties go to the first of ``classes_``."""
        scores = self.predict_scores(X)
        return self.classes_[np.argmax(scores, axis=1)]

    # True when predict_training is plain prediction of the fitted samples (KNN leaves each one out instead).
    resubstitutes_training = True

    def predict_training(self, X, rows: np.ndarray | None = None) -> np.ndarray:
        """Predictions for the very samples ``X`` that ``fit`` was given (the training-split scores).

        ``rows`` (sorted indices into ``X``) predicts only those samples.  Resubstitution, i.e.
        ``predict(X[rows])``: a parametric probe depends on one sample only through class statistics
        of many.  ``KNN`` overrides it with leave-one-out, since a sample is its own nearest neighbour.
        """
        return self.predict(X if rows is None else X[torch.as_tensor(rows) if isinstance(X, torch.Tensor) else rows])

    def _scoring_weights(self, device: torch.device):
        raise NotImplementedError

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        raise NotImplementedError


class _ClassGeometryProbe(_TorchProbe):
    """A probe fitted class by class: ``_fit_class`` on each class's rows, ``_store`` of the results."""

    concurrent_classes = True  # False: classes one after another, in order (their products still threaded)

    def fit(self, X, y):
        """Fit one geometric object per class on its activations ``X`` (n, d); returns self."""
        X, y = self._validate_fit_input(X, y)
        device = _compute_device(X, self.device)
        source = _as_source_tensor(X)
        class_rows = self._class_rows(y)
        max_rows = max(len(rows) for rows in class_rows)
        workers = _class_workers(device, len(class_rows)) if self.concurrent_classes else 1
        with _cpu_thread_policy(device, parallel_classes=workers > 1):
            if workers > 1:
                per_class = self._fit_classes_concurrently(source, device, class_rows, max_rows, workers)
            else:
                class_data = _Float32Rows(source, device, max_rows)
                per_class = [self._fit_class(class_data(rows)) for rows in class_rows]
        self._store(per_class)
        return self

    def _fit_classes_concurrently(self, source, device, class_rows, max_rows, workers) -> list:
        """Classes fitted by ``workers`` threads at once, each with one CPU thread and its own buffers."""
        buffers = threading.local()

        def fit_one(rows: np.ndarray):
            if not hasattr(buffers, "class_data"):
                buffers.class_data = _Float32Rows(source, device, max_rows)
            return self._fit_class(buffers.class_data(rows))

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fit_one, class_rows))

    def _fit_class(self, class_data: torch.Tensor):
        raise NotImplementedError

    def _store(self, per_class: list) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------------
# MASC
# --------------------------------------------------------------------------------------------------


class MASC(_ClassGeometryProbe):
    """Minimum Angle Subspace Classifier (Ketha & Ramaswamy 2025; the paper's Algorithm 2).

    Parameters
    ----------
    variance : float in (0, 1]
        Each class keeps the fewest principal components of its augmented activations whose
        cumulative explained-variance ratio exceeds this (the original: > 0.99).  1.0 keeps every
        non-zero component.
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) the labels, sorted.
    components_ : list of K arrays (d, k_c), orthonormal bases of the class subspaces, leading first.
    n_components_ : (K,) int array, k_c per class (0 for a class whose activations are all zero).
    explained_variance_ratio_ : (K,) float array, the variance ratio the kept components explain.
    n_features_in_ : int.

    ``predict_scores`` returns cos θ_c = ‖P_c x‖/‖x‖ ∈ [0, 1] per class (0 for an all-zero x).
    """

    def __init__(self, variance: float = 0.99, device: str | torch.device | None = None) -> None:
        self.variance = variance
        self.device = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scikit-learn's generic accuracy check fits 2-feature, standardized (zero-mean) blobs.  A
        # subspace classifier needs d well above the number of classes: with d = 2, 3 classes, any class
        # whose blob is not a thin ray from the origin gets a 2-D subspace, i.e. the whole plane, and then
        # claims every point.  That is MASC's definition, not a defect, so its accuracy there is "poor".
        tags.classifier_tags.poor_score = True
        return tags

    def fit(self, X, y):
        """Fit the class subspaces from activations ``X`` (n, d) and labels ``y``; returns self."""
        if not 0.0 < float(self.variance) <= 1.0:
            raise ValueError(f"variance must be in (0, 1], got {self.variance!r}")
        return super().fit(X, y)

    def _fit_class(self, class_data: torch.Tensor) -> tuple[np.ndarray, float]:
        spectrum = class_spectrum(class_data, float(self.variance))
        kept = components_needed(spectrum.eigenvalues, spectrum.trace, float(self.variance))
        assert kept is not None, "a dense spectrum always reaches the threshold"
        explained = float(spectrum.eigenvalues[:kept].sum()) / spectrum.trace if kept else 0.0
        return spectrum.eigenvectors[:, :kept].cpu().numpy(), explained

    def _store(self, per_class: list[tuple[np.ndarray, float]]) -> None:
        self.components_ = [basis for basis, _ in per_class]
        self.n_components_ = np.array([basis.shape[1] for basis in self.components_], dtype=np.int64)
        self.explained_variance_ratio_ = np.array([ratio for _, ratio in per_class], dtype=np.float64)

    def _scoring_weights(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """All bases side by side (d, Σk_c) float32, and the class index of each column (Σk_c,)."""
        stacked = np.concatenate(self.components_, axis=1) if self.components_ else np.zeros((self.n_features_in_, 0))
        owner = np.repeat(np.arange(len(self.components_)), self.n_components_)
        return (
            torch.from_numpy(np.ascontiguousarray(stacked, dtype=np.float32)).to(device),
            torch.from_numpy(owner).to(device),
        )

    def _score_rows(self, rows: torch.Tensor, weights) -> torch.Tensor:
        """cos of the angle to each class subspace: sqrt(Σ_j ⟨x, p_j^c⟩²)/‖x‖, (n, K); 0 for x = 0."""
        stacked, owner = weights
        with _large_products(2.0 * rows.numel() * stacked.shape[1]):
            coordinates = rows @ stacked  # (n, Σk_c): coordinates in every class basis at once
        captured = rows.new_zeros((rows.shape[0], len(self.components_)))
        captured.index_add_(1, owner, coordinates.square())  # ‖P_c x‖² per class
        norm_sq = rows.square().sum(dim=1, keepdim=True)
        safe = torch.where(norm_sq > 0, norm_sq, torch.ones_like(norm_sq))
        # Rounding can put ‖P_c x‖² a hair above ‖x‖²; cosines are clamped to 1.
        return torch.where(norm_sq > 0, (captured / safe).clamp(max=1.0).sqrt(), torch.zeros_like(captured))


# --------------------------------------------------------------------------------------------------
# VeLPIC
# --------------------------------------------------------------------------------------------------


class VeLPIC(_ClassGeometryProbe):
    """Vector Linear Probe Intermediate-layer Classifier (the paper's Algorithm 1).

    Per class, the top eigenvector of X_cᵀX_c (= the first principal component of the augmented
    class data), negated when the class's mean projection on it is negative.

    Parameters
    ----------
    device : str, torch.device or None
        Where to compute; None uses the device of a tensor input, else the CPU.

    Attributes
    ----------
    classes_ : (K,) the labels, sorted.
    vectors_ : (K, d) float64, unit rows (a zero row for a class whose activations are all zero).
    explained_variance_ratio_ : (K,) the variance ratio each vector explains of its class.
    n_features_in_ : int.

    ``predict_scores`` returns the projections ⟨v_c, x⟩, i.e. the logits of a linear layer with weight
    ``vectors_`` and no bias (what ``latentgen.transfer.apply_velpic`` installs).
    """

    def __init__(self, device: str | torch.device | None = None) -> None:
        self.device = device

    def _fit_class(self, class_data: torch.Tensor) -> tuple[np.ndarray, float]:
        d = class_data.shape[1]
        # variance 0 asks for the single top component; the Krylov path then only needs it converged.
        spectrum = class_spectrum(class_data, variance=0.0)
        if spectrum.eigenvalues.numel() == 0:
            return np.zeros(d), 0.0
        top = spectrum.eigenvectors[:, 0]  # (d,)
        projections = class_data @ top.to(class_data.dtype)  # (n_c,) ⟨x_i, p⟩
        if float(projections.double().mean()) < 0:
            top = -top
        return top.cpu().numpy(), float(spectrum.eigenvalues[0]) / spectrum.trace

    def _store(self, per_class: list[tuple[np.ndarray, float]]) -> None:
        self.vectors_ = np.stack([vector for vector, _ in per_class])
        self.explained_variance_ratio_ = np.array([ratio for _, ratio in per_class], dtype=np.float64)

    def _scoring_weights(self, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(self.vectors_, dtype=np.float32)).to(device)  # (K, d)

    def _score_rows(self, rows: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # F.linear is the very operation of the transferred model's bias-free head (weights = the same
        # float32 (K, d) rows), so on equal activations the two agree bit for bit, near-ties included.
        with _large_products(2.0 * rows.numel() * weights.shape[0]):
            return torch.nn.functional.linear(rows, weights)  # (n, K) projections ⟨v_c, x⟩


# --------------------------------------------------------------------------------------------------
# The rest of the family (latentgen.probe_family), re-exported lazily: that module imports this one.
# --------------------------------------------------------------------------------------------------

_FAMILY_NAMES = ("KNN", "LDA", "NCM", "LogisticRegressionProbe", "PROBES", "ProbeSpec", "build_probe")


def __getattr__(name: str):
    if name in _FAMILY_NAMES:
        from latentgen import probe_family

        return getattr(probe_family, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

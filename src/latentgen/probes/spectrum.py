"""Eigenpairs of one class's uncentred second moment G_c = X_cᵀX_c: dense, dual or block Krylov.

MASC and VeLPIC (``latentgen.probes.paper``) call ``class_spectrum``; how it chooses a path and how precise
each is: the module docstring of ``latentgen.probes.paper`` and docs/performance.md, "Probes".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from latentgen.probes.cpu_threads import large_products, single_threaded_on_cpu

# min(n_c, d) up to which the full Gram (or dual Gram) is diagonalized; above it the Krylov path pays
# (docs/performance.md, "Measured choices in the code").
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
# The Krylov space may grow to this fraction of min(n_c, d) columns before the dense path takes over.
# Measured (2026-12-07, one thread, 2-core AMD EPYC VM, synthetic 6,000 x 2048 class): building 512 columns
# (0.25 of 2048) costs 1.3 s, 768 columns 2.7 s, the dense Gram + eigh 2.4-2.9 s; so a space that converges
# under the cap is cheaper than dense, and one that does not wastes at most about half a dense solve.
KRYLOV_MAX_FRACTION = 0.25
# The space needs about this many columns per component it must converge.  Measured (2026-12-07, one thread) on
# MLP-MNIST at 80 % (config/fidelity.yaml's run), fc4 and fc3 (2048 wide, ~6,000 rows per class): at epoch 4,
# classes needing 81-115 components converged at 256-336 columns (~3 per component, 0.8-1.2 s against 3.9-4.6 s
# dense); at epoch 10, classes needing 174-204 did not converge even at 1,024 columns (the sin Θ bound stalls at
# 0.17-0.28: the gaps near the cut shrink; 12-14 s, then dense).  A class whose needed components, estimated
# during the run (``_components_lower_bound``), times this exceed the cap goes to the dense path at once instead
# of at the cap: at width 2048 from 128 components, between the two (synthetic power-law spectra converge
# more easily: 203 components at 464 columns).  Memorized checkpoints need far more (fc4: ~400 at epoch 25).
KRYLOV_COLUMNS_PER_COMPONENT = 4.0
# ``class_spectrum``'s solver choices: "auto" (the above), "legacy" (the Krylov space grows to the cap
# whatever the class needs, then dense: the solver before issue 27; for benchmarks), "dense" (always dense).
SOLVERS = ("auto", "legacy", "dense")


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


# From this size a CPU eigh goes through scipy's LAPACK (OpenBLAS, divide and conquer) instead of torch's: one
# thread, 2048 x 2048 float64 (a memorized class's dense solve), 1.56 s against 2.12 s (2026-12-07,
# docs/performance.md, "Probes at a memorized checkpoint").  Both are float64 LAPACK syevd: the eigenpairs agree to
# float64 rounding, far below the float32 data's.
SCIPY_EIGH_FROM = 256


def _descending_eigh(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """eigh of a symmetric float64 matrix, largest eigenvalue first."""
    if gram.device.type == "cpu" and gram.shape[0] >= SCIPY_EIGH_FROM:
        from scipy.linalg import eigh

        from latentgen.probes.cpu_blas import blas_threads

        with blas_threads(1):
            values, vectors = eigh(gram.numpy(), driver="evd", check_finite=False)
        return torch.from_numpy(values[::-1].copy()), torch.from_numpy(vectors[:, ::-1].copy())
    with single_threaded_on_cpu(gram.device):
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    return eigenvalues.flip(0), eigenvectors.flip(1)


def _drop_null(eigenvalues: torch.Tensor, vectors: torch.Tensor, trace: float, shape: tuple[int, int]):
    """Keep the eigenpairs above the rank tolerance (descending order is preserved)."""
    keep = eigenvalues > _rank_tolerance(trace, *shape)
    return eigenvalues[keep], vectors[:, keep]


def primal_spectrum(class_data: torch.Tensor, trace: float | None = None) -> ClassSpectrum:
    """Dense eigenpairs from the d×d Gram X_cᵀX_c (float32 products, float64 eigh)."""
    n, d = class_data.shape
    with large_products(2.0 * n * d * d):
        gram = (class_data.T @ class_data).double()  # (d, d)
    trace = _frobenius_sq(class_data) if trace is None else trace
    eigenvalues, eigenvectors = _drop_null(*_descending_eigh(gram), trace, class_data.shape)
    return ClassSpectrum(eigenvalues, eigenvectors, trace)


def dual_spectrum(class_data: torch.Tensor, trace: float | None = None) -> ClassSpectrum:
    """The same eigenpairs from the n×n dual X_cX_cᵀ, cheaper when n_c < d.

    X_cX_cᵀu = λu gives X_cᵀX_c(X_cᵀu) = λ(X_cᵀu) and ‖X_cᵀu‖ = √λ, so v = X_cᵀu/√λ.
    """
    n, d = class_data.shape
    with large_products(2.0 * n * n * d):
        dual_gram = (class_data @ class_data.T).double()  # (n, n)
    trace = _frobenius_sq(class_data) if trace is None else trace
    eigenvalues, left_vectors = _drop_null(*_descending_eigh(dual_gram), trace, class_data.shape)
    with large_products(2.0 * n * d * left_vectors.shape[1]):
        mapped = (class_data.double().T @ left_vectors) / eigenvalues.sqrt()  # (d, m)
    return ClassSpectrum(eigenvalues, _reorthonormalized(mapped), trace)


def _reorthonormalized(vectors: torch.Tensor) -> torch.Tensor:
    """QR with the signs kept: the dual map's columns are orthonormal only to the float32 accuracy of
    the dual Gram (~1e-6); Gram-Schmidt order keeps span(v_1..v_j) for every j, so the subspaces don't move."""
    with single_threaded_on_cpu(vectors.device):
        q, r = torch.linalg.qr(vectors)
    signs = torch.sign(torch.diagonal(r))
    return q * torch.where(signs == 0, torch.ones_like(signs), signs)


def dense_spectrum(class_data: torch.Tensor, trace: float | None = None) -> ClassSpectrum:
    """Primal or dual, whichever matrix is smaller (``trace``: ‖X_c‖_F² when the caller has it)."""
    n, d = class_data.shape
    return dual_spectrum(class_data, trace) if n < d else primal_spectrum(class_data, trace)


def _frobenius_sq(class_data: torch.Tensor) -> float:
    """‖X_c‖_F² = trace of G_c, from float32 row norms summed in float64.

    A whole-tensor float32 ``vector_norm`` or ``dot`` is not accurate enough (it can move the 99 % cut
    by one component) and a float64 upcast is slow (docs/performance.md, "Measured choices in the code").
    """
    return float(torch.linalg.vector_norm(class_data, dim=1).double().square().sum())


def _second_moment_times(class_data: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """G_c @ vectors = X_cᵀ(X_c vectors) without forming G_c: (d, b) float64 from float32 products."""
    basis = vectors.to(class_data.dtype)
    with large_products(4.0 * class_data.numel() * basis.shape[1]):
        if class_data.device.type == "cpu" and torch.get_num_threads() == 1:
            return _cache_blocked_second_moment_times(class_data, basis).double()
        return (class_data.T @ (class_data @ basis)).double()


# Bytes of class rows per chunk in ``_cache_blocked_second_moment_times``: about one core's L2 cache.
PRODUCT_CHUNK_BYTES = 1 << 20


def _cache_blocked_second_moment_times(class_data: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Xᵀ(X B) on one CPU thread, reading X from memory once instead of twice.

    Both products are memory-bound (a 6,000x2048 float32 class is 49 MB, a block B 16 columns), so
    each chunk of rows is used for Xᵢᵀ(Xᵢ B) while it is still in cache (docs/performance.md, "Measured
    choices in the code").
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


def _components_lower_bound(values: torch.Tensor, trace: float, variance: float) -> float:
    """How many components ``variance`` needs at least, from the Ritz values of a space not yet converged.

    With the count known (the Ritz values already exceed ``variance``) that count.  Else, from the better
    converged top half (j = m/2 values, θ_j ≈ λ_j): every further eigenvalue is at most λ_j, so the variance
    still missing needs at least (variance·trace - Σ_{i≤j} θ_i)/θ_j more components.  Cheap (no product).
    """
    kept = components_needed(values, trace, variance)
    if kept is not None:
        return float(kept)
    top = max(1, int(values.numel()) // 2)
    if top > values.numel() or float(values[top - 1]) <= 0.0:
        return 0.0
    missing = variance * trace - float(values[:top].sum())
    return top + max(missing, 0.0) / float(values[top - 1])


def _converged_ritz_pairs(space: _KrylovSpace, variance: float, trace: float, previous_bound: float):
    """(values, vectors, bound, needed): the Ritz pairs ``variance`` needs when converged, else (None, None,
    bound, needed); ``needed`` is the lower bound on the components needed (``_components_lower_bound``)."""
    n, d = space.class_data.shape
    values, coefficients = _drop_null(*space.ritz_pairs(), trace, (n, d))
    needed = _components_lower_bound(values, trace, variance) if values.numel() else 0.0
    kept = components_needed(values, trace, variance)
    if kept is None or not 0 < kept < values.numel():
        return None, None, previous_bound, needed
    bound, vectors = _subspace_residual(space, kept, values, coefficients)
    stalled = bound > 0.5 * previous_bound
    if bound <= SUBSPACE_TOL or (stalled and bound <= SUBSPACE_FLOOR_TOL):
        return values[:kept], vectors, bound, needed
    return None, None, bound, needed


def _start_block(class_data: torch.Tensor, block_size: int) -> torch.Tensor:
    """An orthonormal (d, block_size) float64 start: a seeded Gaussian drawn on the CPU."""
    d = class_data.shape[1]
    start = torch.randn(d, block_size, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    with single_threaded_on_cpu(start.device):
        return torch.linalg.qr(start).Q.to(class_data.device)


def _krylov_spectrum(
    class_data: torch.Tensor, variance: float, trace: float | None = None, give_up_early: bool = True
) -> ClassSpectrum | None:
    """Top eigenpairs by block Krylov + Rayleigh-Ritz; None when a dense eigh would be cheaper.

    Each step costs one product of X_c and X_cᵀ with a (d, 16) block; everything else works on
    (d, m) and (m, m) matrices (QᵀGQ grows by the new block's rows and columns) and runs
    single-threaded on the CPU (see ``cpu_thread_policy``).
    The space grows until the subspace of the pairs needed for ``variance`` has converged: its sin Θ
    bound is below ``SUBSPACE_TOL``, or the residual stopped shrinking (the float32 products' noise
    floor, reached only when the gap is too small for float32 to resolve the subspace better, dense
    Gram included) with the bound below ``SUBSPACE_FLOOR_TOL``.  The space is capped at a quarter of
    min(n_c, d), past which the dense path costs less than more products; with ``give_up_early`` it returns
    None as soon as the components the class needs (a lower bound from the Ritz values) would take more
    columns than that cap (``KRYLOV_COLUMNS_PER_COMPONENT``).  Ω is a seeded Gaussian
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
        with single_threaded_on_cpu(class_data.device):
            if step >= KRYLOV_FIRST_CHECK:
                values, vectors, bound, needed = _converged_ritz_pairs(space, variance, trace, bound)
                if values is not None:
                    return ClassSpectrum(values, vectors, trace)
                if give_up_early and needed * KRYLOV_COLUMNS_PER_COMPONENT > steps * block_size:
                    return None  # it will not converge under the cap: dense now, not after the cap's products
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


def class_spectrum(class_data: torch.Tensor, variance: float, solver: str = "auto") -> ClassSpectrum:
    """Eigenpairs of X_cᵀX_c sufficient to keep ``variance`` (all non-zero ones on the dense path).

    ``class_data``: (n_c, d) float32 on the compute device.  Chooses the dense or the Krylov path from the
    class's size, width and the components it turns out to need (``SOLVERS``: "auto"; "legacy", the Krylov
    space to its cap whatever the class needs; "dense"); ``variance=0`` asks for the top eigenpair only (VeLPIC).
    """
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, not {solver!r}")
    n, d = class_data.shape
    trace = _frobenius_sq(class_data)
    if trace == 0.0:  # all-zero activations: zero second moment, no eigenpairs
        empty = class_data.new_zeros((d, 0), dtype=torch.float64)
        return ClassSpectrum(empty.new_zeros(0), empty, 0.0)
    dense_limit = DENSE_LIMIT if variance > 0.0 else TOP_VECTOR_DENSE_LIMIT
    if min(n, d) > dense_limit and variance < 1.0 and solver != "dense":
        spectrum = _krylov_spectrum(class_data, variance, trace, solver == "auto")
        if spectrum is not None:
            return spectrum
    return dense_spectrum(class_data, trace)

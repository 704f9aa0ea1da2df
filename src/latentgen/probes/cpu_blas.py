"""float32 products of CPU tensors through numpy's and scipy's OpenBLAS instead of torch's own GEMM.

Why: on the AMD EPYC CPUs of these machines numpy's OpenBLAS GEMM is faster than torch's CPU GEMM,
and scipy's ``ssyrk`` forms a Gram XᵀX computing one triangle only (docs/performance.md, "Measured
choices in the code").

The products run with the thread count the probes' CPU thread policy gives large products
(``latentgen.probes.cpu_threads.large_products``): OpenBLAS keeps its own thread pool, which torch's
``set_num_threads`` does not reach, so it is limited here (threadpoolctl, ~5 µs per call).
Tensors on other devices keep torch's products.  MASC and VeLPIC still use torch's products: moving
them would change their rounding, and with it the published scores (to do with a re-baseline).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from scipy.linalg import blas
from threadpoolctl import ThreadpoolController

from latentgen.probes.cpu_threads import PARALLEL_PRODUCT_FLOPS, PRODUCT_THREADS

_CONTROLLER: ThreadpoolController | None = None


@contextmanager
def blas_threads(count: int) -> Iterator[None]:
    """numpy's and scipy's BLAS limited to ``count`` threads within the block."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()  # inspecting the loaded libraries costs once per process
    with _CONTROLLER.limit(limits=max(1, int(count)), user_api="blas"):
        yield


def _threads_for(flops: float) -> int:
    """The threads the probes' policy gives a product of ``flops`` operations (``large_products``'
    rule); torch's own count outside a policy."""
    policy = PRODUCT_THREADS.get()
    if policy is None:
        return torch.get_num_threads()
    return policy if flops >= PARALLEL_PRODUCT_FLOPS else 1


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for float32 matrices (transposed views welcome: BLAS reads them in place)."""
    if a.device.type != "cpu":
        return a @ b
    with blas_threads(_threads_for(2.0 * a.shape[0] * a.shape[1] * b.shape[1])):
        return torch.from_numpy(a.numpy() @ b.numpy())


def gram_upper(rows: torch.Tensor) -> torch.Tensor:
    """rowsᵀ rows, (d, d) float32, in its upper triangle (the lower one is zero on the CPU), for C-contiguous
    float32 ``rows`` (n, d): one triangle computed.  Sums of these stay upper triangles: symmetrize once
    (``symmetric``) after summing, not once per term (two d² passes each, a second per class at d = 2048)."""
    if rows.device.type != "cpu":
        return torch.triu(rows.T @ rows)
    with blas_threads(_threads_for(float(rows.shape[0]) * rows.shape[1] ** 2)):
        # rows.numpy().T is (d, n) in Fortran order without a copy; ssyrk(trans=0) computes A Aᵀ into the
        # upper triangle of a zeroed result (tests/probes/test_cpu_blas.py checks that the lower one stays zero).
        upper = blas.ssyrk(1.0, np.ascontiguousarray(rows.numpy()).T, trans=0)
    return torch.from_numpy(upper)


def symmetric(upper: torch.Tensor) -> torch.Tensor:
    """The symmetric matrix whose upper triangle ``upper`` holds (its lower triangle zero), in place."""
    return upper.add_(torch.triu(upper, 1).T)


def gram(rows: torch.Tensor) -> torch.Tensor:
    """rowsᵀ rows, (d, d) float32, for C-contiguous float32 ``rows`` (n, d): one triangle computed."""
    return symmetric(gram_upper(rows))

"""The probes' CPU thread policy: one thread for everything but large products.

Used by ``latentgen.probes.paper`` (MASC, VeLPIC), ``latentgen.probes.spectrum`` (their eigen-solvers),
``latentgen.probes.family`` and ``latentgen.probes.cpu_blas``.  Measurements behind the rules:
docs/performance.md, "Probes".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch


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
# with the class data (``large_products``), which get the caller's torch thread count back.  The rest
# (eigh, QR, reductions, copies and fills of a few MB) consists of short parallel regions that end in
# barriers; when other processes share the cores, each barrier waits for a descheduled thread.  On
# idle cores those small operations gain little from a second thread; the products do.
# A fit with several classes goes further: each of the caller's threads fits classes of its own, every
# torch operation on one thread (no barriers at all), and the Krylov products are cache-blocked so that
# the two threads do not compete for memory bandwidth (``_cache_blocked_second_moment_times``).
# Scoring keeps the policy above.  Measurements: docs/performance.md, "Measured choices in the code".
PRODUCT_THREADS: ContextVar[int | None] = ContextVar("latentgen_probe_product_threads", default=None)


def class_workers(device: torch.device, classes: int) -> int:
    """How many classes a CPU fit works on at once: one per torch thread (see ``cpu_thread_policy``)."""
    if device.type != "cpu" or PRODUCT_THREADS.get() is not None:
        return 1
    return max(1, min(torch.get_num_threads(), classes))


@contextmanager
def cpu_thread_policy(device: torch.device, parallel_classes: bool = False) -> Iterator[None]:
    """Within: one CPU thread, except inside ``large_products``; the caller's count is restored after.

    With ``parallel_classes`` every product stays on one thread too: the caller's threads then each fit
    a class of their own (``_fit_classes_concurrently``).
    """
    if device.type != "cpu" or PRODUCT_THREADS.get() is not None:
        yield
        return
    token = PRODUCT_THREADS.set(1 if parallel_classes else torch.get_num_threads())
    try:
        with torch_threads(1):
            yield
    finally:
        PRODUCT_THREADS.reset(token)


# Below this many floating-point operations a product stays on one thread: a few ms of one core, less
# than what a barrier stall costs on a shared machine.
PARALLEL_PRODUCT_FLOPS = 2e8


@contextmanager
def large_products(flops: float) -> Iterator[None]:
    """Inside a CPU thread policy: the caller's thread count for a product of ``flops`` operations."""
    threads = PRODUCT_THREADS.get()
    if threads is None or flops < PARALLEL_PRODUCT_FLOPS:
        yield
        return
    with torch_threads(threads):
        yield


@contextmanager
def single_threaded_on_cpu(device: torch.device) -> Iterator[None]:
    """One CPU thread for a LAPACK call, also when a helper is called outside a fit (see above)."""
    if device.type != "cpu":
        yield
        return
    with torch_threads(1):
        yield

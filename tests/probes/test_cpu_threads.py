"""latentgen.probes.cpu_threads: one thread inside a fit, the caller's for large products, restored after."""

import torch

from latentgen.probes.cpu_threads import (
    PARALLEL_PRODUCT_FLOPS,
    PRODUCT_THREADS,
    class_workers,
    cpu_thread_policy,
    large_products,
    single_threaded_on_cpu,
    torch_threads,
)

CPU = torch.device("cpu")


def test_torch_threads_restores_the_count_also_after_an_error():
    before = torch.get_num_threads()
    try:
        with torch_threads(before + 1):
            assert torch.get_num_threads() == before + 1
            raise KeyError
    except KeyError:
        pass
    assert torch.get_num_threads() == before


def test_policy_one_thread_except_large_products():
    with torch_threads(2):
        with cpu_thread_policy(CPU):
            assert torch.get_num_threads() == 1 and PRODUCT_THREADS.get() == 2
            with large_products(PARALLEL_PRODUCT_FLOPS):
                assert torch.get_num_threads() == 2
            with large_products(PARALLEL_PRODUCT_FLOPS / 2):
                assert torch.get_num_threads() == 1
            with single_threaded_on_cpu(CPU):
                assert torch.get_num_threads() == 1
            with cpu_thread_policy(CPU):  # nested: the outer policy stays
                assert PRODUCT_THREADS.get() == 2
        assert torch.get_num_threads() == 2 and PRODUCT_THREADS.get() is None
        with cpu_thread_policy(CPU, parallel_classes=True):
            assert PRODUCT_THREADS.get() == 1
            with large_products(1e12):
                assert torch.get_num_threads() == 1, "classes fit in parallel: every product on one thread"


def test_class_workers():
    with torch_threads(2):
        assert class_workers(CPU, 10) == 2 and class_workers(CPU, 1) == 1
        assert class_workers(torch.device("meta"), 10) == 1
        with cpu_thread_policy(CPU):
            assert class_workers(CPU, 10) == 1, "inside a policy the classes go one at a time"

"""latentgen.probes.cpu_blas: OpenBLAS products equal torch's, on transposed views too, with the policy's threads."""

import numpy as np
import torch
from threadpoolctl import threadpool_info

from latentgen.probes import cpu_blas
from latentgen.probes.cpu_threads import cpu_thread_policy, torch_threads


def test_matmul_and_gram_equal_torch():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(300, 40, generator=generator)
    b = torch.randn(60, 40, generator=generator)
    torch.testing.assert_close(cpu_blas.matmul(a, b.T), a @ b.T, rtol=1e-5, atol=1e-4)
    gram = cpu_blas.gram(a)
    torch.testing.assert_close(gram, a.T @ a, rtol=1e-5, atol=1e-3)
    assert gram.dtype == torch.float32 and torch.equal(gram, gram.T), "both triangles filled"


def test_upper_grams_summed_then_made_symmetric_equal_summed_grams_exactly():
    """LDA sums the classes' upper triangles and fills the lower one once: the same numbers, bit for bit."""
    generator = torch.Generator().manual_seed(1)
    parts = [torch.randn(n, 30, generator=generator) for n in (7, 50, 12)]
    uppers = [cpu_blas.gram_upper(part) for part in parts]
    assert all(torch.equal(torch.tril(upper, -1), torch.zeros(30, 30)) for upper in uppers), "lower triangle zero"
    summed = uppers[0].double() + uppers[1].double() + uppers[2].double()
    full = [cpu_blas.gram(part).double() for part in parts]
    assert torch.equal(cpu_blas.symmetric(summed), full[0] + full[1] + full[2])


def test_blas_threads_and_the_policy():
    with cpu_blas.blas_threads(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    with torch_threads(2), cpu_thread_policy(torch.device("cpu")):
        assert cpu_blas._threads_for(1.0) == 1 and cpu_blas._threads_for(1e12) == 2
    assert cpu_blas._threads_for(1.0) == torch.get_num_threads()
    assert np.isfinite(cpu_blas.gram(torch.zeros(3, 2)).numpy()).all()

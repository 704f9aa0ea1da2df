"""latentgen.cpu_blas: OpenBLAS products equal torch's, on transposed views too, with the policy's threads."""

import numpy as np
import torch
from threadpoolctl import threadpool_info

from latentgen import cpu_blas
from latentgen.cpu_threads import cpu_thread_policy, torch_threads


def test_matmul_and_gram_equal_torch():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(300, 40, generator=generator)
    b = torch.randn(60, 40, generator=generator)
    torch.testing.assert_close(cpu_blas.matmul(a, b.T), a @ b.T, rtol=1e-5, atol=1e-4)
    gram = cpu_blas.gram(a)
    torch.testing.assert_close(gram, a.T @ a, rtol=1e-5, atol=1e-3)
    assert gram.dtype == torch.float32 and torch.equal(gram, gram.T), "both triangles filled"


def test_blas_threads_and_the_policy():
    with cpu_blas.blas_threads(1):
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
    with torch_threads(2), cpu_thread_policy(torch.device("cpu")):
        assert cpu_blas._threads_for(1.0) == 1 and cpu_blas._threads_for(1e12) == 2
    assert cpu_blas._threads_for(1.0) == torch.get_num_threads()
    assert np.isfinite(cpu_blas.gram(torch.zeros(3, 2)).numpy()).all()

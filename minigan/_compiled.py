"""The loops ``minigan.kernels`` compiles with Numba (imported only by it, on first use).

Each loop does, per element, the arithmetic of the plain NumPy form in the same order and the same dtype, so the
results are equal bit for bit. ``error_model="numpy"``: a division by zero gives inf/nan as in NumPy instead of
raising, which also lets LLVM vectorise the loop (Python's error model puts a branch before every division).
No ``fastmath``: it would reorder and fuse operations and so change the rounding.
"""

import numba
import numpy as np

_JIT = dict(cache=True, nogil=True, error_model="numpy")


@numba.njit(**_JIT)
def adam_serial(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size, weight_decay):
    for i in range(p.size):
        gi = g[i]
        if weight_decay != 0:
            gi = gi + weight_decay * p[i]
        mi = m[i] * beta1 + gi * one_minus_beta1  # m = beta1 m + (1 - beta1) g
        vi = v[i] * beta2 + (gi * gi) * one_minus_beta2  # v = beta2 v + (1 - beta2) g^2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (mi / (np.sqrt(vi) + eps_hat)) * step_size  # w -= step_size m / (sqrt(v) + eps_hat)


@numba.njit(parallel=True, **_JIT)
def adam_parallel(p, g, m, v, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_hat, step_size, weight_decay):
    for i in numba.prange(p.size):  # the same body as adam_serial, the elements split over the threads
        gi = g[i]
        if weight_decay != 0:
            gi = gi + weight_decay * p[i]
        mi = m[i] * beta1 + gi * one_minus_beta1
        vi = v[i] * beta2 + (gi * gi) * one_minus_beta2
        m[i] = mi
        v[i] = vi
        p[i] = p[i] - (mi / (np.sqrt(vi) + eps_hat)) * step_size

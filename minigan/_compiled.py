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


# ------------------------------------------------------------------------------------------ activations
# Arithmetic only, so they equal NumPy bit for bit. (tanh and exp stay in NumPy -- the sigmoid's exp runs between
# two of these passes -- since a compiled expf/tanhf need not round as NumPy's own SIMD versions do.) Each has a
# one-thread and a many-thread build, as Adam has.
#
# In place (out=x) each forward pass has its own one-array loop: given two arguments that are the same array, LLVM's
# vectoriser finds that they overlap and falls back to a scalar loop (2-10x slower: 48 against 23 us for leaky ReLU
# over 131,072 floats here, 193 against 18 us for the sigmoid's first pass).


def _leaky_relu_forward(x, y, slope):
    for i in numba.prange(x.size):  # y = max(x, slope x), as NumPy's maximum (NaN propagates)
        xi = x[i]
        si = xi * slope
        y[i] = xi if xi >= si else si


def _leaky_relu_forward_inplace(x, slope, one):
    # The same, written back into x. Times ``one`` (1 in x's dtype, an argument so the compiler cannot drop it):
    # exact for every value, and it makes each element a computed store. Otherwise LLVM sees that x >= 0 stores x[i]
    # back unchanged and emits a masked store of the negatives only (vmaskmovps), which is microcoded on AMD's Zen:
    # 66 us against 15 us for 131,072 floats here.
    for i in numba.prange(x.size):
        xi = x[i]
        si = xi * slope
        x[i] = (xi if xi >= si else si) * one


def _leaky_relu_backward(dy, y, one_minus_slope, slope, dx):
    # dx = dy ((1 - slope) [y > 0] + slope), the mask's two cases written out: 1 (1 - slope) + slope and
    # 0 (1 - slope) + slope = slope round exactly as NumPy's arithmetic on the 0/1 mask does
    one = one_minus_slope + slope
    for i in numba.prange(dy.size):
        dx[i] = (one if y[i] > 0 else slope) * dy[i]


def _sigmoid_split(x, y, positive):
    # before NumPy's exp: positive = x >= 0, y = -|x|
    for i in numba.prange(x.size):
        xi = x[i]
        positive[i] = xi >= 0
        y[i] = -abs(xi)


def _sigmoid_split_inplace(x, positive):
    for i in numba.prange(x.size):  # the same, written back into x
        xi = x[i]
        positive[i] = xi >= 0
        x[i] = -abs(xi)


def _sigmoid_finish(y, positive, one):
    # after it, y holds e = exp(-|x|): y = 1 / (1 + e) where x >= 0, e / (1 + e) elsewhere (NaN stays NaN)
    for i in numba.prange(y.size):
        e = y[i]
        y[i] = (one if positive[i] else e) / (e + one)


def _sigmoid_backward(dy, y, one, dx):
    # ``one`` is 1 in the arrays' dtype: a literal 1 would be an integer, and integer - float32 is float64 here
    for i in numba.prange(dy.size):  # dx = dy y (1 - y)
        yi = y[i]
        dx[i] = ((one - yi) * yi) * dy[i]


def _tanh_backward(dy, y, one, dx):
    for i in numba.prange(dy.size):  # dx = dy (1 - y^2)
        yi = y[i]
        dx[i] = (one - yi * yi) * dy[i]


def _move_towards(avg, live, rate):
    for i in numba.prange(avg.size):  # avg += rate (live - avg): step = live - avg; step *= rate; avg += step
        ai = avg[i]
        avg[i] = ai + (live[i] - ai) * rate


def _builds(fn):
    # prange runs as a plain range without parallel=True
    return numba.njit(**_JIT)(fn), numba.njit(parallel=True, **_JIT)(fn)


leaky_relu_forward = _builds(_leaky_relu_forward)
leaky_relu_forward_inplace = _builds(_leaky_relu_forward_inplace)
leaky_relu_backward = _builds(_leaky_relu_backward)
sigmoid_split = _builds(_sigmoid_split)
sigmoid_split_inplace = _builds(_sigmoid_split_inplace)
sigmoid_finish = _builds(_sigmoid_finish)
sigmoid_backward = _builds(_sigmoid_backward)
tanh_backward = _builds(_tanh_backward)
move_towards = _builds(_move_towards)  # the weight average's update (minigan.ema)

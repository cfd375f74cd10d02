"""Fused CPU kernels: the engine's hottest elementwise loops compiled by Numba, one pass over memory.

NumPy runs ``m *= beta1; m += (1 - beta1) * g; ...`` as separate passes, each reading and writing whole arrays, on
one core: Adam is twelve such passes per parameter array, and on the ``mlp`` GAN (2.9 M parameters) it took a
third of a training step. The loops in ``minigan/_compiled.py`` do the *same arithmetic in the same order* on each
element, once, vectorised (and, when asked, split over the cores: "Threads" below). Their results equal the plain
NumPy code bit for bit (no fast-math, no fused multiply-add); ``tests/test_kernels.py`` checks exactly that, so a
run resumed with or without Numba continues identically.

Read the formulas where they live: ``minigan.optim.Adam`` (docstring and ``_plain_update``) and
``minigan.functional`` (the activations' backward passes, the leaky ReLU and the sigmoid), ``minigan.ema`` (the
weight average's update); this module is only their fast form. Each function here returns None (or False) when it
cannot take its arrays, and the caller runs the plain form. It takes NumPy arrays on the CPU; CuPy arrays take the
plain path. Without Numba (or with ``MINIGAN_NO_NUMBA=1`` in the environment) ``available()`` is False and the plain
path is used everywhere.

Threads: one, unless ``set_threads(n)`` asks for more (up to Numba's pool, ``NUMBA_NUM_THREADS``, default all
cores); then arrays of at least ``PARALLEL_MIN`` elements are split over n threads. One is the default because it
was measured faster: these loops are memory-bound, and on this project's 2-core machine, where OpenBLAS's threads
hold the other core between matrix products, splitting Adam over both cores made it slower (2.0 M parameters right
after a matrix product: 3.1 ms on one thread, 3.9-4.2 ms on two) and the whole training step 2-6% slower
(benchmarks/speed/RESULTS.md). On a machine with many cores and memory channels, measure
``bench_step.py --kernel-threads n`` before raising it.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["available", "set_threads", "threads", "adam_update", "leaky_relu_forward", "leaky_relu_backward",
           "sigmoid_forward", "sigmoid_backward", "tanh_backward", "move_towards", "PARALLEL_MIN"]

PARALLEL_MIN = 1 << 16
_threads = 1  # set_threads; kept here because asking Numba (numba.get_num_threads) costs ~30 us a call
_compiled = None  # minigan._compiled, imported on first use (importing Numba takes ~0.3 s)
_failed = False


def _load():
    global _compiled, _failed
    if _compiled is None and not _failed:
        if os.environ.get("MINIGAN_NO_NUMBA"):
            _failed = True
        else:
            try:
                import numba

                if "NUMBA_THREADING_LAYER" not in os.environ:
                    # A pool whose idle threads sleep: OpenMP's spin while they wait, and on a small machine that
                    # takes the cores away from the BLAS threads of the next matrix product.
                    numba.config.THREADING_LAYER = "workqueue"
                from . import _compiled as compiled
            except ImportError:
                _failed = True
            else:
                _compiled = compiled
    return _compiled


def available() -> bool:
    """True when the compiled kernels are used (Numba importable and not disabled by MINIGAN_NO_NUMBA)."""
    return _load() is not None


def threads() -> int:
    """How many threads the kernels use (1 without Numba, and by default)."""
    return _threads if available() else 1


def set_threads(n: int) -> None:
    """Use ``n`` threads in the kernels (clipped to 1..NUMBA_NUM_THREADS, the pool's size). Numba's setting is per
    Python thread: call this in the thread that trains."""
    global _threads
    if available():
        numba = _compiled.numba
        _threads = max(1, min(int(n), numba.config.NUMBA_NUM_THREADS))
        numba.set_num_threads(_threads)


def _fits(*arrays) -> bool:
    """All plain NumPy arrays (not CuPy, not a subclass, not a list), C-contiguous, of one float32/float64 dtype."""
    if not all(type(a) is np.ndarray for a in arrays):
        return False
    dt = arrays[0].dtype
    if dt.kind != "f" or dt.itemsize not in (4, 8):
        return False
    return all(a.dtype == dt and a.flags.c_contiguous for a in arrays)


def adam_update(p, g, m, v, beta1, beta2, eps_hat, step_size, weight_decay) -> bool:
    """One Adam update of NumPy arrays in place, fused; returns False (and does nothing) when it can't take them.

    ``p``, ``g``, ``m``, ``v``: C-contiguous NumPy arrays of one float dtype and shape. ``eps_hat`` and ``step_size``
    are Adam's ``eps sqrt(1 - beta2^t)`` and ``lr sqrt(1 - beta2^t) / (1 - beta1^t)`` (see ``optim.Adam.step``).
    """
    if not available() or not _fits(p, g, m, v):
        return False
    kernel = _pick((_compiled.adam_serial, _compiled.adam_parallel), p.size)
    t = p.dtype.type  # each scalar rounded to the arrays' dtype, as NumPy does with a Python float
    kernel(p.reshape(-1), g.reshape(-1), m.reshape(-1), v.reshape(-1), t(beta1), t(1 - beta1), t(beta2),
           t(1 - beta2), t(eps_hat), t(step_size), t(weight_decay))
    return True


def _pick(builds, size):
    """The many-thread build for a large array when there are threads to use, else the one-thread build."""
    return builds[1] if _threads > 1 and size >= PARALLEL_MIN else builds[0]


def _takes_out(x, out) -> bool:
    """``x`` fits, and ``out`` is None, ``x`` itself, or a fitting array of x's shape that shares no memory with it
    (a partial overlap is left to NumPy, which handles it)."""
    if not _fits(x) or x.ndim == 0:
        return False
    return out is None or out is x or (_fits(x, out) and out.shape == x.shape and not np.may_share_memory(x, out))


def leaky_relu_forward(x, slope, out=None):
    """``y = max(x, slope x)`` (``F.leaky_relu_forward`` for 0 <= slope < 1) in one pass; ``out=x``: in place."""
    if not available() or not 0 <= slope < 1 or not _takes_out(x, out):
        return None
    t = x.dtype.type
    if out is x:
        _pick(_compiled.leaky_relu_forward_inplace, x.size)(x.reshape(-1), t(slope), t(1))
        return x
    y = np.empty_like(x) if out is None else out
    _pick(_compiled.leaky_relu_forward, x.size)(x.reshape(-1), y.reshape(-1), t(slope))
    return y


def leaky_relu_backward(dy, y, slope):
    """``dx = dy ((1 - slope) [y > 0] + slope)`` (``F.leaky_relu_backward``) in one pass."""
    if not available() or not _fits(dy, y):
        return None
    dx = np.empty_like(dy)
    t = dy.dtype.type
    _pick(_compiled.leaky_relu_backward, dy.size)(dy.reshape(-1), y.reshape(-1), t(1 - slope), t(slope),
                                                  dx.reshape(-1))
    return dx


def sigmoid_forward(x, out=None):
    """``y = sigmoid(x)`` as ``F.sigmoid_forward`` computes it, bit for bit: one compiled pass (``-|x|`` and the sign
    mask), NumPy's own ``exp`` in place, one compiled pass (``1 / (1 + e)`` or ``e / (1 + e)``), instead of seven
    NumPy passes around the exp. ``out=x``: in place."""
    if not available() or not _takes_out(x, out):
        return None
    y = np.empty_like(x) if out is None else out
    positive = np.empty(x.shape, dtype=np.bool_)  # (x.shape) taken before y (perhaps x itself) is overwritten
    flat_y, flat_positive = y.reshape(-1), positive.reshape(-1)
    if y is x:
        _pick(_compiled.sigmoid_split_inplace, x.size)(flat_y, flat_positive)
    else:
        _pick(_compiled.sigmoid_split, x.size)(x.reshape(-1), flat_y, flat_positive)
    np.exp(y, out=y)  # e = exp(-|x|), NumPy's rounding
    _pick(_compiled.sigmoid_finish, x.size)(flat_y, flat_positive, x.dtype.type(1))
    return y


def _backward_from_output(name, dy, y):
    """``dx`` from ``dy`` and the activation's output ``y`` with the compiled loop ``name``, or None."""
    if not available() or not _fits(dy, y):
        return None
    dx = np.empty_like(dy)
    _pick(getattr(_compiled, name), dy.size)(dy.reshape(-1), y.reshape(-1), dy.dtype.type(1), dx.reshape(-1))
    return dx


def sigmoid_backward(dy, y):
    """``dx = dy y (1 - y)`` (``F.sigmoid_backward``) in one pass."""
    return _backward_from_output("sigmoid_backward", dy, y)


def tanh_backward(dy, y):
    """``dx = dy (1 - y^2)`` (``F.tanh_backward``) in one pass."""
    return _backward_from_output("tanh_backward", dy, y)


def move_towards(avg, live, rate) -> bool:
    """``avg += rate (live - avg)`` in place (``minigan.ema._move_towards``) in one pass; False when it can't."""
    if not available() or not _fits(avg, live) or avg.shape != live.shape:
        return False
    _pick(_compiled.move_towards, avg.size)(avg.reshape(-1), live.reshape(-1), avg.dtype.type(rate))
    return True

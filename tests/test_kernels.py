"""The compiled CPU kernels (minigan.kernels) equal the plain NumPy form bit for bit, and are used where they apply.

Bit for bit, not "close": a checkpoint written by a run with Numba must resume identically without it, and the
GAN step's reference tests (test_fastpaths.py) then hold for both paths at once.
"""

import contextlib
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import kernels, nn, optim

from conftest import REPO, to

pytestmark = pytest.mark.skipif(not kernels.available(), reason="Numba not importable here: the plain path is all")


@contextlib.contextmanager
def parallel_builds(on: bool):
    """The many-thread builds for every array (2 threads, PARALLEL_MIN 0) when ``on``, else the one-thread builds."""
    saved = (kernels.threads(), kernels.PARALLEL_MIN)
    kernels.set_threads(2 if on else 1)
    kernels.PARALLEL_MIN = 0 if on else 1 << 40
    try:
        yield
    finally:
        kernels.set_threads(saved[0])
        kernels.PARALLEL_MIN = saved[1]


def run_adam(w0, grads, plain, parallel=None, **hyper):
    """Adam over ``grads`` from ``w0``; ``plain=True`` forces the NumPy path, ``parallel`` the kernel build."""
    p = nn.Param(w0.copy())
    opt = optim.Adam([p], **hyper)
    saved = (kernels._compiled, kernels._failed)
    try:
        if plain:
            kernels._compiled, kernels._failed = None, True
        with parallel_builds(bool(parallel)):
            for g in grads:
                p.grad = g
                opt.step()
    finally:
        kernels._compiled, kernels._failed = saved
    return p.data, opt.state[p]


@given(shape=st.sampled_from([(1,), (7,), (3, 5), (64, 33), (2, 3, 4, 5)]),
       dtype=st.sampled_from([np.float32, np.float64]),
       beta1=st.sampled_from([0.0, 0.5, 0.9]), beta2=st.sampled_from([0.9, 0.999]),
       lr=st.sampled_from([1e-4, 2e-4, 1e-2]), eps=st.sampled_from([1e-8, 1e-3]),
       weight_decay=st.sampled_from([0.0, 0.01]), parallel=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_adam_equals_the_plain_update_bit_for_bit(shape, dtype, beta1, beta2, lr, eps, weight_decay, parallel,
                                                        seed):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(shape).astype(dtype)
    # gradients over many scales, exact zeros included (m / (sqrt(v) + eps) with v = 0)
    grads = [(rng.standard_normal(shape) * 10.0 ** rng.integers(-8, 4)).astype(dtype) for _ in range(6)]
    grads[2][...] = 0
    hyper = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    w_fast, s_fast = run_adam(w0, grads, plain=False, parallel=parallel, **hyper)
    w_plain, s_plain = run_adam(w0, grads, plain=True, **hyper)
    assert w_fast.dtype == dtype and s_fast["exp_avg"].dtype == dtype
    np.testing.assert_array_equal(w_fast, w_plain)
    np.testing.assert_array_equal(s_fast["exp_avg"], s_plain["exp_avg"])
    np.testing.assert_array_equal(s_fast["exp_avg_sq"], s_plain["exp_avg_sq"])
    assert s_fast["step"] == s_plain["step"] == len(grads)


def test_fused_adam_runs_where_it_applies_and_only_there():
    a = np.ones(8, np.float32)
    args = (0.5, 0.999, 1e-8, 1e-3, 0.0)
    assert kernels.adam_update(a.copy(), a.copy(), a.copy(), a.copy(), *args)
    # not taken (and nothing written): a strided view, mixed dtypes, integers
    p = np.ones(16, np.float32)[::2]
    before = p.copy()
    assert not kernels.adam_update(p, a.copy(), a.copy(), a.copy(), *args)
    np.testing.assert_array_equal(p, before)
    assert not kernels.adam_update(a.copy(), a.astype(np.float64), a.copy(), a.copy(), *args)
    i = np.ones(8, np.int64)
    assert not kernels.adam_update(i, i, i, i, *args)


def test_cupy_arrays_take_the_plain_path(rng):
    """The kernel is for NumPy arrays only: a CuPy array (real, or the strict stand-in, which refuses implicit
    host copies) must go through _plain_update, and still give the plain result."""
    import cupy

    w0 = rng.standard_normal((5, 4))
    grads = [rng.standard_normal((5, 4)) for _ in range(3)]
    assert not kernels.adam_update(*(to(cupy, w0.copy()) for _ in range(4)), 0.5, 0.999, 1e-8, 1e-3, 0.0)
    p = nn.Param(to(cupy, w0.copy()))
    opt = optim.Adam([p], lr=1e-3)
    for g in grads:
        p.grad = to(cupy, g)
        opt.step()
    w_plain, _ = run_adam(w0, grads, plain=True, lr=1e-3)
    np.testing.assert_allclose(cupy.asnumpy(p.data), w_plain, rtol=1e-14, atol=1e-15)


def test_cupy_arrays_skip_every_activation_kernel(rng):
    """Each forward/backward kernel refuses device arrays (returns None), in place or not, and the layers then give
    the plain result on the device."""
    import cupy

    x = to(cupy, rng.standard_normal((6, 5)).astype(np.float32))
    assert kernels.sigmoid_forward(x) is None and kernels.sigmoid_forward(x, out=x) is None
    assert kernels.leaky_relu_forward(x, 0.2) is None and kernels.leaky_relu_forward(x, 0.2, out=x) is None
    assert kernels.leaky_relu_backward(x, x, 0.2) is None
    assert kernels.sigmoid_backward(x, x) is None and kernels.tanh_backward(x, x) is None
    host = cupy.asnumpy(x)
    y = nn.Sigmoid().forward_inplace(x.copy())
    assert type(y) is type(x)
    # equal on the stand-in (NumPy inside); a real GPU's exp may round differently in the last place
    np.testing.assert_allclose(cupy.asnumpy(y), _plain(lambda: nn.Sigmoid().forward(host)), rtol=1e-6)


def test_no_numba_switch_gives_the_same_training_run():
    """MINIGAN_NO_NUMBA=1 (the plain path) and the default path train the same GAN to the same bits."""
    code = (
        "import numpy as np, hashlib\n"
        "from minigan import kernels, models, optim\n"
        "from minigan.gan import GAN\n"
        "G, D = models.build_models('seed', 784, rng=0)\n"
        "gan = GAN(G, D, optim.Adam(G.params(), 2e-4, (0.5, 0.999)), optim.Adam(D.params(), 2e-4, (0.5, 0.999)),"
        " 100, rng=1)\n"
        "x = np.random.default_rng(2).random((32, 784), dtype=np.float32)\n"
        "for _ in range(3): gan.train_step(x)\n"
        "h = hashlib.sha256(b''.join(p.data.tobytes() for p in G.params() + D.params())).hexdigest()\n"
        "print(kernels.available(), h)\n"
    )
    out = {}
    for flag in ("", "1"):
        env = dict(os.environ, PYTHONPATH=str(REPO), MINIGAN_NO_NUMBA=flag)
        res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        out[flag] = res.stdout.split()
    assert out[""][0] == "True" and out["1"][0] == "False"
    assert out[""][1] == out["1"][1]


def test_one_thread_by_default_and_set_threads_clips_to_the_pool():
    """One thread unless asked (measured faster on a 2-core machine), and the pool's limits respected."""
    code = "from minigan import kernels; print(kernels.threads(), kernels._pick(('one', 'many'), 1 << 30))"
    res = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)),
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["1", "one"]
    before = kernels.threads()
    try:
        kernels.set_threads(10_000)
        assert 1 <= kernels.threads() <= os.cpu_count()
        assert kernels._compiled.numba.get_num_threads() == kernels.threads()
        if kernels.threads() > 1:
            assert kernels._pick(("one", "many"), kernels.PARALLEL_MIN) == "many"
            assert kernels._pick(("one", "many"), kernels.PARALLEL_MIN - 1) == "one"
        kernels.set_threads(0)
        assert kernels.threads() == 1 and kernels._pick(("one", "many"), 1 << 30) == "one"
    finally:
        kernels.set_threads(before)


# ------------------------------------------------------------------------------------ activations


def _plain(fn):
    """Run fn with the kernels switched off: the plain minigan.functional path."""
    saved = (kernels._compiled, kernels._failed)
    kernels._compiled, kernels._failed = None, True
    try:
        return fn()
    finally:
        kernels._compiled, kernels._failed = saved


ACTIVATIONS = [lambda: nn.LeakyReLU(0.2), lambda: nn.LeakyReLU(0.0), lambda: nn.LeakyReLU(0.01),
               lambda: nn.LeakyReLU(1.5), nn.Sigmoid, nn.Tanh, nn.ReLU]


@pytest.mark.parametrize("make", ACTIVATIONS)
@given(shape=st.sampled_from([(1,), (5, 3), (64, 257), (2, 3, 7, 7)]), dtype=st.sampled_from([np.float32, np.float64]),
       in_place=st.booleans(), parallel=st.booleans(), seed=st.integers(0, 2**16))
def test_fused_activations_equal_the_functional_form_bit_for_bit(make, shape, dtype, in_place, parallel, seed):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3)).astype(dtype)
    x.flat[:3] = [0.0, -0.0, 1e30][: x.size]  # zeros of both signs, and a huge value
    dy = rng.standard_normal(shape).astype(dtype)

    def run():
        layer = make()
        y = layer.forward_inplace(x.copy()) if in_place else layer.forward(x)
        y = y.copy()
        return y, layer.backward(dy.copy())

    with parallel_builds(parallel):
        y_fast, dx_fast = run()
    y_plain, dx_plain = _plain(run)
    assert y_fast.dtype == dx_fast.dtype == dtype
    np.testing.assert_array_equal(y_fast, y_plain)
    np.testing.assert_array_equal(dx_fast, dx_plain)
    # and the sign of every zero (array_equal treats -0.0 == 0.0)
    np.testing.assert_array_equal(np.signbit(y_fast), np.signbit(y_plain))
    np.testing.assert_array_equal(np.signbit(dx_fast), np.signbit(dx_plain))


def test_leaky_relu_kernel_propagates_nan_and_inf_as_numpy_does():
    x = np.array([np.nan, np.inf, -np.inf, -1.0, 2.0, -0.0, 0.0, -1e-45], np.float32)
    expected = np.maximum(x, x * np.float32(0.2))
    y = kernels.leaky_relu_forward(x, 0.2)
    in_place = x.copy()
    kernels.leaky_relu_forward(in_place, 0.2, out=in_place)
    for got in (y, in_place):
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("parallel", [False, True])
def test_sigmoid_kernel_handles_nan_inf_and_extremes_as_the_plain_form(parallel):
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, -1e4, -89.0, -88.0, 1e-8, 30.0, 1e4], np.float32)
    raise_on_warning = np.errstate(over="raise", divide="raise", invalid="raise")  # -|x|: exp never overflows
    with parallel_builds(parallel), raise_on_warning:
        y = kernels.sigmoid_forward(x)
        in_place = x.copy()
        assert kernels.sigmoid_forward(in_place, out=in_place) is in_place
    plain = _plain(lambda: nn.Sigmoid().forward(x))
    np.testing.assert_array_equal(y, plain)  # NaN where the plain form has NaN, 1 and 0 at +-inf
    np.testing.assert_array_equal(np.signbit(y), np.signbit(plain))
    np.testing.assert_array_equal(in_place, plain)


def test_sigmoid_kernel_runs_where_it_applies_and_only_there(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)
    assert kernels.sigmoid_forward(x) is not None
    assert kernels.sigmoid_forward(x[:, ::2]) is None  # not contiguous: the plain path
    assert kernels.sigmoid_forward(x.astype(np.float16)) is None
    assert kernels.sigmoid_forward(x, out=np.empty((5, 4), np.float32)) is None  # an out of another shape
    assert kernels.sigmoid_forward(np.float32(1.0)) is None  # 0-d
    layer = nn.Sigmoid()
    y = layer.forward(x)
    assert layer._cache is y and y is not x  # its own output is the cache the backward pass reads
    np.testing.assert_array_equal(y, _plain(lambda: nn.Sigmoid().forward(x)))


@pytest.mark.parametrize("kernel", [kernels.sigmoid_forward,
                                    lambda x, out=None: kernels.leaky_relu_forward(x, 0.2, out)])
def test_forward_kernels_write_in_place_into_x_itself_and_leave_overlaps_to_numpy(kernel, rng):
    """``out=x`` runs the one-array loop (two arguments that are one array would not vectorise) and returns x; an
    ``out`` that partly overlaps x is refused, so NumPy's ufuncs, which handle overlap, compute it."""
    x = rng.standard_normal(64).astype(np.float32)
    inplace = x.copy()
    assert kernel(inplace, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, kernel(x))
    buffer = rng.standard_normal(65).astype(np.float32)
    assert kernel(buffer[:64], out=buffer[1:]) is None  # shifted by one element
    assert kernel(x, out=np.empty(64, np.float32)) is not None  # a separate out is fine


def test_fused_activation_leaves_dy_and_y_alone(rng):
    layer = nn.LeakyReLU(0.2)
    y = layer.forward(rng.standard_normal((8, 9)).astype(np.float32)).copy()
    dy = rng.standard_normal((8, 9)).astype(np.float32)
    before = dy.copy()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(dy, before)
    assert dx is not dy


# ------------------------------------------------------------------------------------ the weight average


@given(shape=st.sampled_from([(1,), (7, 3), (300, 257), (2, 3, 4, 5)]), dtype=st.sampled_from([np.float32, np.float64]),
       rate=st.sampled_from([1.0, 0.5, 1e-3, 1.0000000000000002e-3, 0.3333333333333333]), parallel=st.booleans(),
       seed=st.integers(0, 2**16))
def test_fused_weight_average_equals_the_plain_update_bit_for_bit(shape, dtype, rate, parallel, seed):
    """``ema._move_towards`` with the kernel equals both plain forms (whole array, and block by block for arrays
    larger than ema.BLOCK), the live weights untouched."""
    from minigan import ema

    rng = np.random.default_rng(seed)
    avg0 = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 3)).astype(dtype)
    live = rng.standard_normal(shape).astype(dtype)
    live_before = live.copy()

    def run():
        avg = avg0.copy()
        ema._move_towards(avg, live, rate)
        return avg

    with parallel_builds(parallel):
        fast = run()
    plain = _plain(run)
    np.testing.assert_array_equal(fast, plain)
    assert fast.dtype == dtype
    np.testing.assert_array_equal(live, live_before)
    # the whole-array formula, as written in the docstring (the blockwise form must agree with it too)
    whole = avg0.copy()
    whole += (live - avg0) * dtype(rate)
    np.testing.assert_array_equal(fast, whole)


def test_fused_weight_average_refuses_what_it_cannot_take():
    a = np.ones(8, np.float32)
    assert not kernels.move_towards(a, np.ones(8, np.float64), 0.1)  # mixed dtypes
    assert not kernels.move_towards(a, np.ones(16, np.float32)[::2], 0.1)  # strided
    assert not kernels.move_towards(a, np.ones((2, 4), np.float32), 0.1)  # another shape
    np.testing.assert_array_equal(a, 1.0)
    assert kernels.move_towards(a, np.zeros(8, np.float32), 0.25)
    np.testing.assert_array_equal(a, 0.75)

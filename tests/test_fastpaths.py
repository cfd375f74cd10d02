"""Fast paths equal the plain formulas they replace.

Each op that was rewritten for speed (in-place buffers, masks as arithmetic instead of ``where``, folded bias
corrections, cached module walks) is checked here against the textbook form, written out the obvious way, and a
whole GAN step is checked against a plain reference step. Where the two orders of rounding differ, the tolerance
says by how much; everything else is bit for bit.
"""

import copy
import math
import os
import platform
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import functional as F
from minigan import models, nn, optim
from minigan.backend import to_numpy
from minigan.gan import GAN
from minigan.testing import assert_train_step_matches_reference, plain_adam_update, plain_sigmoid

from conftest import REPO, to
from strategies import matrices, seeds

EXTREMES = np.array([[-1e4, -1e3, -120.0, -89.0, -88.0, -30.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 30.0, 89.0, 1e3, 1e4]])


# ------------------------------------------------------------------------------------ the plain formulas


def plain_leaky_backward(dy, y, slope):
    return np.where(y > 0, dy, dy * slope)


def plain_adam(w, grads, lr, betas, eps, weight_decay=0.0):
    """Adam exactly as written in the paper (with PyTorch's weight decay), step by step, in float64."""
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        w, m, v = plain_adam_update(w, g, m, v, t, lr, betas, eps, weight_decay)
    return w, m, v


# ------------------------------------------------------------------------------------ activations


@pytest.mark.parametrize("dtype, rtol", [(np.float32, 3e-7), (np.float64, 1e-15)])
def test_sigmoid_equals_the_stable_textbook_form(xp, dtype, rtol, rng):
    x = np.concatenate([EXTREMES, rng.standard_normal((1, 200)) * 10], axis=1).astype(dtype)
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")  # the expected overflow of exp(-x) must stay silent (underflow is exact)
        y, cache = F.sigmoid_forward(to(xp, x))
    assert y.dtype == dtype and cache is y
    expected = plain_sigmoid(x.astype(np.float64))
    # relative accuracy wherever the result is a normal number; below that, both are ~0
    tiny = np.finfo(dtype).tiny
    normal = expected > tiny
    np.testing.assert_allclose(to_numpy(y)[normal], expected[normal], rtol=rtol)
    assert np.all(np.abs(to_numpy(y)[~normal]) <= tiny)
    assert to_numpy(y)[0, 0] == 0.0 and to_numpy(y)[0, EXTREMES.shape[1] - 1] == 1.0  # saturated exactly


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_equals_the_where_form_bit_for_bit(xp, dtype, rng):
    """The numerator max(e, [x >= 0]) is where(x >= 0, 1, e) exactly, infinities and NaN included."""
    x = np.concatenate([EXTREMES, [[-104.0, -103.0, 104.0, np.inf, -np.inf, np.nan]],
                        rng.standard_normal((1, 300)) * 10], axis=1).astype(dtype)
    e = np.exp(-np.abs(x))
    with np.errstate(invalid="ignore"):
        expected = np.where(x >= 0, 1, e).astype(dtype) / (e + 1)
        y, _ = F.sigmoid_forward(to(xp, x.copy()))
    np.testing.assert_array_equal(to_numpy(y), expected)


def test_sigmoid_leaves_its_input_alone(xp):
    x = to(xp, np.array([[-3.0, 0.5, 2.0]], np.float32))
    before = to_numpy(x).copy()
    F.sigmoid_forward(x)
    np.testing.assert_array_equal(to_numpy(x), before)


@given(y=matrices(elements=st.floats(0, 1)), seed=seeds)
def test_sigmoid_backward_equals_dy_y_one_minus_y(y, seed):
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    np.testing.assert_allclose(F.sigmoid_backward(dy, y), dy * y * (1 - y), rtol=1e-15, atol=1e-300)


@given(y=matrices(elements=st.floats(-1, 1)), seed=seeds)
def test_tanh_backward_equals_dy_one_minus_y_squared_bit_for_bit(y, seed):
    dy = np.random.default_rng(seed).standard_normal(y.shape)
    np.testing.assert_array_equal(F.tanh_backward(dy, y), dy * (1 - y * y))


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.1, 0.2, 0.3, 0.5, 0.9, 0.99])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_leaky_relu_backward_equals_where_bit_for_bit(xp, slope, dtype, rng):
    x = rng.standard_normal((16, 33)).astype(dtype)
    x[0, :5] = 0.0  # the kink: the subgradient at 0 is slope (y > 0 is false)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y, cache = F.leaky_relu_forward(to(xp, x), slope)
    dx = F.leaky_relu_backward(to(xp, dy), cache)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(to_numpy(dx), plain_leaky_backward(dy, to_numpy(y), dtype(slope)))


def test_leaky_relu_backward_does_not_touch_dy():
    dy = np.ones((2, 3), np.float32)
    _, cache = F.leaky_relu_forward(np.array([[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]], np.float32))
    F.leaky_relu_backward(dy, cache)
    np.testing.assert_array_equal(dy, np.ones((2, 3), np.float32))


ACTIVATIONS = [
    ("relu", F.relu_forward, F.relu_backward),
    ("leaky 0.2", lambda x, out=None: F.leaky_relu_forward(x, 0.2, out=out), F.leaky_relu_backward),
    ("leaky 1.5", lambda x, out=None: F.leaky_relu_forward(x, 1.5, out=out), F.leaky_relu_backward),
    ("sigmoid", F.sigmoid_forward, F.sigmoid_backward),
    ("tanh", F.tanh_forward, F.tanh_backward),
]


@pytest.mark.parametrize("name, forward, backward", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation_in_place_equals_the_fresh_buffer_form(xp, name, forward, backward, rng):
    x = rng.standard_normal((9, 13)).astype(np.float32) * 4
    dy = rng.standard_normal(x.shape).astype(np.float32)
    y, cache = forward(to(xp, x))
    buffer = to(xp, x.copy())
    y_inplace, cache_inplace = forward(buffer, out=buffer)
    assert y_inplace is buffer  # written into x itself, no new array
    np.testing.assert_array_equal(to_numpy(y_inplace), to_numpy(y))
    np.testing.assert_array_equal(to_numpy(backward(to(xp, dy), cache_inplace)), to_numpy(backward(to(xp, dy), cache)))
    other = to(xp, np.empty_like(x))
    assert forward(to(xp, x), out=other)[0] is other


@pytest.mark.parametrize("arch", ["seed", "mlp"])
def test_sequential_in_place_activations_equal_layer_by_layer_calls(arch, rng):
    """Sequential lets an activation overwrite the Dense output before it; chaining the layers by hand (each
    writing a fresh array) must give the same output, input gradient and parameter gradients."""
    G, D = models.build_models(arch, 784, rng=0)
    for model, width in ((G, models.NOISE_DIM[arch]), (D, 784)):
        x = rng.standard_normal((5, width)).astype(np.float32)
        x_before = x.copy()
        dy = rng.standard_normal((5, model.output_shape((5, width))[1])).astype(np.float32)
        y = model.forward(x)
        dx = model.backward(dy)
        grads = [p.grad.copy() for p in model.params()]
        model.zero_grad()
        h = x
        for layer in model:
            h = layer.forward(h)
        g = dy
        for layer in reversed(list(model)):
            g = layer.backward(g)
        np.testing.assert_array_equal(x, x_before)  # the caller's input is never overwritten
        np.testing.assert_array_equal(y, h)
        np.testing.assert_array_equal(dx, g)
        for a, p in zip(grads, model.params()):
            np.testing.assert_array_equal(a, p.grad)


def test_only_dense_outputs_are_handed_over():
    """An activation's output is its own cache: the next layer must never overwrite it."""
    assert nn.Dense(2, 3).keeps_output is False
    assert all(m.keeps_output for m in (nn.ReLU(), nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh(), nn.Sequential()))
    seq = nn.Sequential(nn.Dense(3, 4, rng=0), nn.Tanh(), nn.Sigmoid())
    x = np.ones((2, 3), np.float32)
    y = seq.forward(x)
    t = seq[1]._cache
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-t)), rtol=1e-6)  # the tanh output survived the sigmoid after it


# ------------------------------------------------------------------------------------ Dense


@given(rows=st.integers(1, 300), features=st.integers(1, 1100), dtype=st.sampled_from([np.float32, np.float64]),
       dy_scale=st.integers(-30, 30), w_scale=st.integers(-30, 30), seed=seeds)
def test_dense_with_one_output_gives_dx_bit_for_bit_equal_to_the_product(rows, features, dtype, dy_scale, w_scale,
                                                                         seed):
    """D's last layer computes ``dx = dy @ W.T`` as a broadcast multiply (an outer product): the same values as the
    GEMM at any scale, products that overflow or underflow included. Only the sign of an exact zero may differ (the
    GEMM adds the product to a +0 accumulator), and no later step can tell -0 from +0: they add, multiply, compare
    and average alike."""
    rng = np.random.default_rng(seed)
    layer = nn.Dense(features, 1, rng=seed, dtype=dtype)
    layer.W.data[...] = rng.standard_normal((features, 1)) * 10.0 ** w_scale
    x = rng.standard_normal((rows, features)).astype(dtype)
    dy = (rng.standard_normal((rows, 1)) * 10.0 ** dy_scale).astype(dtype)
    layer.forward(x)
    with np.errstate(over="ignore", under="ignore"):
        dx = layer.backward(dy)
        product = dy @ layer.W.data.T  # (rows, features), the plain formula
    assert dx.dtype == dtype and dx.shape == (rows, features)
    np.testing.assert_array_equal(dx, product)  # value for value (inf and -inf included); -0.0 == 0.0
    np.testing.assert_array_equal(layer.W.grad, x.T @ dy)


def test_dense_with_one_output_on_every_backend_equals_the_functional_form(backend_name, xp, rng):
    layer = nn.Dense(7, 1, rng=1, dtype=np.float64).to(backend_name)
    x, dy = to(xp, rng.standard_normal((5, 7))), to(xp, rng.standard_normal((5, 1)))
    layer.forward(x)
    dx = layer.backward(dy)
    dx_plain, dW, db = F.dense_backward(dy, (x, layer.W.data))
    assert type(dx) is type(x)
    np.testing.assert_array_equal(to_numpy(dx), to_numpy(dx_plain))
    np.testing.assert_array_equal(to_numpy(layer.W.grad), to_numpy(dW))
    np.testing.assert_array_equal(to_numpy(layer.b.grad), to_numpy(db))


# ------------------------------------------------------------------------------------ Adam


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_adam_equals_the_paper_form(xp, weight_decay, rng):
    w0 = rng.standard_normal((7, 5))
    grads = [rng.standard_normal(w0.shape) * 10.0 ** rng.integers(-4, 2) for _ in range(12)]
    lr, betas, eps = 2e-4, (0.5, 0.999), 1e-8
    p = nn.Param(to(xp, w0.copy()))
    opt = optim.Adam([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    for g in grads:
        p.grad = to(xp, g)
        opt.step()
    w, m, v = plain_adam(w0, grads, lr, betas, eps, weight_decay)
    np.testing.assert_allclose(to_numpy(p.data), w, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(to_numpy(opt.state[p]["exp_avg"]), m, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(to_numpy(opt.state[p]["exp_avg_sq"]), v, rtol=1e-13, atol=1e-300)


def test_adam_float32_stays_float32_and_close_to_float64(rng):
    w0 = rng.standard_normal((64, 9)).astype(np.float32)
    grads = [rng.standard_normal(w0.shape).astype(np.float32) for _ in range(20)]
    p = nn.Param(w0.copy())
    opt = optim.Adam([p], lr=1e-3, betas=(0.5, 0.999))
    for g in grads:
        p.grad = g
        opt.step()
    w, _, _ = plain_adam(w0.astype(np.float64), grads, 1e-3, (0.5, 0.999), 1e-8)
    assert p.data.dtype == np.float32 and opt.state[p]["exp_avg"].dtype == np.float32
    np.testing.assert_allclose(p.data, w, rtol=0, atol=1e-6)  # 20 steps of at most 1e-3: error far below a step


def test_adam_step_allocates_no_new_state_arrays():
    p = nn.Param(np.zeros(4, np.float32))
    opt = optim.Adam([p])
    p.grad = np.ones(4, np.float32)
    opt.step()
    arrays = {k: id(v) for k, v in opt.state[p].items() if hasattr(v, "shape")}
    data = p.data
    opt.step()
    assert arrays == {k: id(v) for k, v in opt.state[p].items() if hasattr(v, "shape")}
    assert p.data is data  # updated in place


# ------------------------------------------------------------------------------------ the whole step


@pytest.mark.parametrize("arch", ["seed", "mlp"])
def test_train_step_equals_a_plain_reference_step(arch):
    """Three minigan steps against the same three steps written out in plain NumPy (minigan.testing.PlainGAN:
    where/exp, the textbook L_D and L_G, the paper's Adam), in float64."""
    n, lr, betas, eps = 6, 1e-3, (0.5, 0.999), 1e-8
    G, D = models.build_models(arch, 784, rng=3)
    G.to(dtype=np.float64), D.to(dtype=np.float64)
    gan = GAN(G, D, optim.Adam(G.params(), lr, betas, eps), optim.Adam(D.params(), lr, betas, eps),
              models.NOISE_DIM[arch], rng=11)
    assert_train_step_matches_reference(gan, np.random.default_rng(5).random((3, n, 784)))


def test_stacked_d_input_reuses_one_buffer_and_equals_concatenate(rng):
    G, D = models.build_models("seed", 784, rng=0)
    gan = GAN(G, D, optim.Adam(G.params()), optim.Adam(D.params()), 100, rng=1)
    a, b = (rng.random((4, 784), dtype=np.float32) for _ in range(2))
    first = gan._stack(a, b)
    np.testing.assert_array_equal(first, np.concatenate([a, b]))
    second = gan._stack(b, a)  # the next step: same buffer, new contents
    assert second is first
    np.testing.assert_array_equal(second, np.concatenate([b, a]))
    smaller = gan._stack(a[:3], b[:3])  # another batch size: a buffer of its own shape
    assert smaller.shape == (6, 784)
    np.testing.assert_array_equal(smaller, np.concatenate([a[:3], b[:3]]))
    assert gan._stack(a.astype(np.float64), b.astype(np.float64)).dtype == np.float64


def test_each_step_holds_the_gradients_it_dropped_until_the_next_step(rng):
    """GAN._zero_grad keeps the set of gradients it drops for one more step (so glibc does not hand the memory back
    and take it again); the new gradients are new arrays, and the set held before is let go."""
    G, D = models.build_models("seed", 784, rng=0)
    gan = GAN(G, D, optim.Adam(G.params()), optim.Adam(D.params()), 100, rng=1)
    x = rng.random((8, 784), dtype=np.float32)
    gan.train_step(x)
    first = {who: [p.grad for p in m.params()] for who, m in (("G", G), ("D", D))}
    gan.train_step(x)
    for who, m in (("G", G), ("D", D)):
        assert all(h is f for h, f in zip(gan._held_grads[who], first[who], strict=True))
        assert all(p.grad is not None and all(p.grad is not f for f in first[who]) for p in m.params())
    gan.train_step(x)
    assert not any(h is f for who in first for h in gan._held_grads[who] for f in first[who])


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="the page faults come from glibc's heap trimming")
def test_seed_gan_at_batch_256_does_not_fault_pages_every_step():
    """Without the held gradients the seed GAN at batch 256, alone in a process, takes 1,000-1,500 minor page faults
    a step (a third of its time): glibc trims the heap's top and grows it again every step."""
    code = (
        "import resource, numpy as np\n"
        "from minigan import models, optim\n"
        "from minigan.gan import GAN\n"
        "G, D = models.build_models('seed', 784, rng=0)\n"
        "gan = GAN(G, D, optim.Adam(G.params(), 2e-4, (0.5, 0.999)), optim.Adam(D.params(), 2e-4, (0.5, 0.999)),"
        " 100, rng=1)\n"
        "x = np.random.default_rng(2).random((256, 784), dtype=np.float32)\n"
        "for _ in range(10): gan.train_step(x)\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(20): gan.train_step(x)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert float(res.stdout.split()[-1]) < 100, res.stdout


def test_step_on_a_copy_with_replaced_models_leaves_the_original_alone():
    """The step lists G's and D's parameters once; a copy of the GAN with new G and D must use its own
    (as minigan.gradcheck does), and D's requires_grad flags come back as they were."""
    G, D = models.build_models("seed", 784, rng=0)
    gan = GAN(G, D, optim.Adam(G.params()), optim.Adam(D.params()), 100, rng=1)
    real = np.random.default_rng(2).random((4, 784), dtype=np.float32)
    gan.train_step(real)  # lists the original models
    clone = copy.copy(gan)
    clone.G, clone.D = copy.deepcopy(G), copy.deepcopy(D)
    clone.D.params()[0].requires_grad = False  # a user-frozen layer stays frozen
    for model in (G, D, clone.G, clone.D):
        model.zero_grad()
    clone.discriminator_gradients(real, clone.sample_noise(4))
    clone.generator_gradients(clone.sample_noise(4))
    assert all(p.grad is None for p in G.params() + D.params())  # the original was not touched
    assert clone.G.params()[0].grad is not None and clone.D.params()[1].grad is not None
    assert clone.D.params()[0].grad is None  # frozen by the user: never computed
    assert [p.requires_grad for p in clone.D.params()] == [False, True, True, True]
    assert all(p.requires_grad for p in D.params())
    assert all(m._cache is None for m in clone.G.modules() if not isinstance(m, nn.Sequential))


def test_train_step_reports_finite_python_floats_in_float32():
    G, D = models.build_models("mlp", 784, rng=0)
    gan = GAN(G, D, optim.Adam(G.params()), optim.Adam(D.params()), 100, rng=1)
    stats = gan.train_step(np.random.default_rng(2).random((8, 784), dtype=np.float32) * 2 - 1)
    assert all(isinstance(v, float) and math.isfinite(v) for v in stats.values())
    assert all(p.data.dtype == np.float32 for p in G.params() + D.params())

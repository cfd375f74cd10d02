"""The pure ops of minigan.functional: gradients against finite differences, known values, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import functional as F
from minigan.backend import to_numpy
from minigan.gradcheck import check_function

from conftest import to
from strategies import matrices, seeds, sizes

ACTIVATIONS = [
    (F.relu_forward, F.relu_backward),
    (F.leaky_relu_forward, F.leaky_relu_backward),
    (F.sigmoid_forward, F.sigmoid_backward),
    (F.tanh_forward, F.tanh_backward),
]


@given(n=sizes, fan_in=sizes, fan_out=sizes, seed=seeds)
def test_dense_gradients(xp, n, fan_in, fan_out, seed):
    r = np.random.default_rng(seed)
    x, W, b = (to(xp, r.standard_normal(s)) for s in [(n, fan_in), (fan_in, fan_out), (fan_out,)])
    result = check_function(F.dense_forward, F.dense_backward, [x, W, b])
    assert [t.name for t in result.tensors] == ["dx", "dW", "db"]
    assert all(t.checked == t.total for t in result.tensors)


@pytest.mark.parametrize("pair", ACTIVATIONS, ids=lambda p: p[0].__name__)
@given(x=matrices())
def test_activation_gradients(xp, pair, x):
    result = check_function(*pair, [to(xp, x)])
    # hypothesis hits exact zeros: those elements are reported as kinks, never failed
    assert result.ok and result.tensors[0].checked + result.tensors[0].kinks == x.size


@given(x=matrices(), slope=st.floats(0.01, 0.5))
def test_leaky_relu_gradient_any_slope(xp, x, slope):
    check_function(lambda x: F.leaky_relu_forward(x, slope), F.leaky_relu_backward, [to(xp, x)], names=["dx"])


def _labels(r, shape):
    return (r.random(shape) < 0.5).astype(np.float64)


@given(z=matrices(), seed=seeds)
def test_bce_with_logits_gradient(xp, z, seed):
    y = _labels(np.random.default_rng(seed), z.shape)
    check_function(F.bce_with_logits_forward, F.bce_with_logits_backward, [to(xp, z), to(xp, y)], wrt=[0])


@given(z=matrices(elements=st.floats(0.05, 0.95)), seed=seeds)
def test_bce_gradient(xp, z, seed):
    y = _labels(np.random.default_rng(seed), z.shape)
    check_function(F.bce_forward, F.bce_backward, [to(xp, z), to(xp, y)], wrt=[0])


@given(pred=matrices(), seed=seeds)
def test_mse_gradient(xp, pred, seed):
    target = np.random.default_rng(seed).standard_normal(pred.shape)
    check_function(F.mse_forward, F.mse_backward, [to(xp, pred), to(xp, target)], wrt=[0])


@given(logits=matrices(cols=st.integers(2, 8)), seed=seeds)
def test_softmax_cross_entropy_gradient(xp, logits, seed):
    labels = np.random.default_rng(seed).integers(0, logits.shape[1], size=logits.shape[0])
    check_function(F.softmax_cross_entropy_forward, F.softmax_cross_entropy_backward,
                   [to(xp, logits), to(xp, labels)], wrt=[0])


# ------------------------------------------------------------------------------------------- known values


def test_dense_forward_is_x_at_W_plus_b(xp, rng):
    x, W, b = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal(2)
    y, _ = F.dense_forward(to(xp, x), to(xp, W), to(xp, b))
    np.testing.assert_allclose(_host(y), x @ W + b, rtol=1e-12)


def _host(a):
    from minigan.backend import to_numpy

    return to_numpy(a)


def test_known_activation_values(xp):
    x = to(xp, np.array([[-2.0, 0.0, 3.0]]))
    assert _host(F.relu_forward(x)[0]).tolist() == [[0.0, 0.0, 3.0]]
    assert _host(F.leaky_relu_forward(x, 0.2)[0]).tolist() == [[-0.4, 0.0, 3.0]]
    np.testing.assert_allclose(_host(F.sigmoid_forward(x)[0]), 1 / (1 + np.exp([[2.0, 0.0, -3.0]])))
    np.testing.assert_allclose(_host(F.tanh_forward(x)[0]), np.tanh([[-2.0, 0.0, 3.0]]))


def test_softmax_cross_entropy_known_values(xp):
    # equal logits: the loss is log(C) whatever the label
    loss, _ = F.softmax_cross_entropy_forward(to(xp, np.zeros((3, 4))), to(xp, np.array([0, 1, 3])))
    assert float(loss) == pytest.approx(np.log(4))
    # huge logits stay finite: the right class at +1000 costs ~0, the wrong one ~1000
    logits = to(xp, np.array([[1000.0, 0.0], [1000.0, 0.0]]))
    loss, _ = F.softmax_cross_entropy_forward(logits, to(xp, np.array([0, 1])))
    assert float(loss) == pytest.approx(500.0)


def test_mse_known_value(xp):
    loss, _ = F.mse_forward(to(xp, np.array([[1.0, 2.0]])), to(xp, np.array([[0.0, 4.0]])))
    assert float(loss) == pytest.approx((1 + 4) / 2)


# ------------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("pair", ACTIVATIONS, ids=lambda p: p[0].__name__)
def test_activations_keep_float32(xp, pair, rng):
    x = to(xp, rng.standard_normal((5, 4)).astype(np.float32))
    y, cache = pair[0](x)
    dx = pair[1](to(xp, np.ones((5, 4), np.float32)), cache)
    assert y.dtype == np.float32 and dx.dtype == np.float32


def test_dense_and_losses_keep_float32(xp, rng):
    f32 = lambda *s: to(xp, rng.standard_normal(s).astype(np.float32))  # noqa: E731
    y, cache = F.dense_forward(f32(4, 3), f32(3, 2), f32(2))
    assert y.dtype == np.float32 and all(g.dtype == np.float32 for g in F.dense_backward(f32(4, 2), cache))
    # a float64 target must not promote a float32 loss
    for fwd, bwd in [(F.bce_with_logits_forward, F.bce_with_logits_backward), (F.mse_forward, F.mse_backward)]:
        loss, cache = fwd(f32(4, 1), to(xp, np.ones((4, 1))))
        assert loss.dtype == np.float32 and loss.shape == () and bwd(1.0, cache).dtype == np.float32
    loss, cache = F.softmax_cross_entropy_forward(f32(4, 3), to(xp, np.array([0, 1, 2, 0])))
    assert loss.dtype == np.float32 and F.softmax_cross_entropy_backward(1.0, cache).dtype == np.float32


def test_loss_target_shape_mismatch_is_explained(xp):
    with pytest.raises(ValueError, match=r"target has shape \(4,\).*\(4, 1\)"):
        F.bce_with_logits_forward(to(xp, np.zeros((4, 1))), to(xp, np.zeros(4)))
    with pytest.raises(ValueError, match="labels must be integers"):
        F.softmax_cross_entropy_forward(to(xp, np.zeros((2, 3))), to(xp, np.zeros(2)))


def _batchnorm(x, gamma, beta):
    y, cache, _, _ = F.batchnorm_forward(x, gamma, beta)
    return y, cache


@given(n=st.integers(min_value=2, max_value=8), f=sizes, seed=seeds,
       scale=st.floats(min_value=0.1, max_value=10.0), shift=st.floats(min_value=-5.0, max_value=5.0))
def test_batchnorm_gradients(xp, n, f, seed, scale, shift):
    """Every row's output depends on every row of the batch (through mean and variance): the full Jacobian is
    checked, at any scale and offset of the input."""
    r = np.random.default_rng(seed)
    x = to(xp, shift + scale * r.standard_normal((n, f)))
    gamma, beta = to(xp, r.standard_normal(f)), to(xp, r.standard_normal(f))
    result = check_function(_batchnorm, F.batchnorm_backward, [x, gamma, beta])
    assert all(t.checked == t.total for t in result.tensors)


def test_batchnorm_known_values(xp):
    x = to(xp, np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0], [7.0, 7.0]]))  # column means 4, 10; vars 5, 4.5
    y, _, mu, var = F.batchnorm_forward(x, to(xp, np.array([2.0, 1.0])), to(xp, np.array([0.5, 0.0])), eps=0.0)
    np.testing.assert_allclose(to_numpy(mu), [4.0, 10.0])
    np.testing.assert_allclose(to_numpy(var), [5.0, 4.5])
    expected = np.array([[2 * -3 / np.sqrt(5) + 0.5, 0], [2 * -1 / np.sqrt(5) + 0.5, 0],
                         [2 * 1 / np.sqrt(5) + 0.5, 3 / np.sqrt(4.5)], [2 * 3 / np.sqrt(5) + 0.5, -3 / np.sqrt(4.5)]])
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-12)
    # dx is orthogonal to the constant and to xhat per column: shifting or scaling the batch changes nothing
    _, cache, _, _ = F.batchnorm_forward(x, to(xp, np.ones(2)), to(xp, np.zeros(2)), eps=0.0)
    dx, _, _ = F.batchnorm_backward(to(xp, np.random.default_rng(0).standard_normal((4, 2))), cache)
    np.testing.assert_allclose(to_numpy(dx.sum(axis=0)), 0, atol=1e-12)
    np.testing.assert_allclose(to_numpy((dx * cache[0]).sum(axis=0)), 0, atol=1e-12)

"""The pure ops of minigan.functional: gradients against finite differences, known values, dtypes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import functional as F, nn
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


@given(n=st.integers(min_value=2, max_value=8), f=sizes, seed=seeds,
       scale=st.floats(min_value=0.1, max_value=10.0), shift=st.floats(min_value=-5.0, max_value=5.0))
def test_batchnorm_gradients(xp, n, f, seed, scale, shift):
    """Every row's output depends on every row of the batch (through mean and variance): the full Jacobian is
    checked, at any scale and offset of the input."""
    r = np.random.default_rng(seed)
    x = to(xp, shift + scale * r.standard_normal((n, f)))
    gamma, beta = to(xp, r.standard_normal(f)), to(xp, r.standard_normal(f))
    result = check_function(F.batchnorm_forward, F.batchnorm_backward, [x, gamma, beta])
    assert all(t.checked == t.total for t in result.tensors)


def test_batchnorm_known_values(xp):
    x = to(xp, np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 13.0], [7.0, 7.0]]))  # column means 4, 10; vars 5, 4.5
    y, (_, _, _, mu, var) = F.batchnorm_forward(x, to(xp, np.array([2.0, 1.0])), to(xp, np.array([0.5, 0.0])), eps=0.0)
    np.testing.assert_allclose(to_numpy(mu), [4.0, 10.0])
    np.testing.assert_allclose(to_numpy(var), [5.0, 4.5])
    expected = np.array([[2 * -3 / np.sqrt(5) + 0.5, 0], [2 * -1 / np.sqrt(5) + 0.5, 0],
                         [2 * 1 / np.sqrt(5) + 0.5, 3 / np.sqrt(4.5)], [2 * 3 / np.sqrt(5) + 0.5, -3 / np.sqrt(4.5)]])
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-12)
    # dx is orthogonal to the constant and to xhat per column: shifting or scaling the batch changes nothing
    _, cache = F.batchnorm_forward(x, to(xp, np.ones(2)), to(xp, np.zeros(2)), eps=0.0)
    dx, _, _ = F.batchnorm_backward(to(xp, np.random.default_rng(0).standard_normal((4, 2))), cache)
    np.testing.assert_allclose(to_numpy(dx.sum(axis=0)), 0, atol=1e-12)
    np.testing.assert_allclose(to_numpy((dx * cache[0]).sum(axis=0)), 0, atol=1e-12)


def test_batchnorm_forward_keeps_the_out_cache_contract(rng):
    """Every functional op returns (out, cache); batch norm once returned four values."""
    x, gamma, beta = rng.standard_normal((5, 3)), np.ones(3), np.zeros(3)
    result = F.batchnorm_forward(x, gamma, beta)
    assert len(result) == 2
    y, cache = result
    np.testing.assert_allclose(cache[3], x.mean(axis=0))  # mu and var ride in the cache for the running statistics
    np.testing.assert_allclose(cache[4], x.var(axis=0))


@pytest.mark.parametrize("slope", [-0.2, -1.0, float("nan"), float("inf")])
def test_leaky_relu_refuses_a_slope_whose_output_mask_would_be_wrong(slope):
    """The backward pass takes its mask from y > 0, which is x > 0 only for slope >= 0: a negative slope used to get
    a silently wrong gradient."""
    with pytest.raises(ValueError, match="slope must be a finite number >= 0"):
        F.leaky_relu_forward(np.ones((2, 2)), slope)
    with pytest.raises(ValueError, match="slope must be a finite number >= 0"):
        nn.LeakyReLU(slope)
    with pytest.raises(TypeError, match="slope must be a number"):
        nn.LeakyReLU("steep")


@pytest.mark.parametrize("slope", [0.0, 1.0, 1.5])
def test_leaky_relu_gradient_at_the_slope_edges(slope, rng):
    check_function(lambda x: F.leaky_relu_forward(x, slope), F.leaky_relu_backward, [rng.standard_normal((4, 3))])


@pytest.mark.parametrize("name", ["bce_with_logits", "bce", "mse"])
def test_losses_refuse_an_empty_batch_by_name(name):
    """An empty batch used to give ZeroDivisionError (backward) or NaN with a warning (forward)."""
    forward, backward = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
    empty = np.zeros((0, 1))
    with pytest.raises(ValueError, match=f"{name}: empty batch"):
        forward(empty, empty)
    cache = (empty, empty) if name != "mse" else empty
    with pytest.raises(ValueError, match=f"{name}: empty batch"):
        backward(1.0, cache)

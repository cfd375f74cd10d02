"""Loss modules: gradients, numerical stability for huge logits, agreement with the naive forms."""

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigan import functional as F
from minigan import losses
from minigan.backend import to_numpy
from minigan.gradcheck import check_loss

from conftest import to
from strategies import matrices, seeds


@given(z=matrices(), seed=seeds)
def test_loss_module_gradients(xp, z, seed):
    r = np.random.default_rng(seed)
    y = (r.random(z.shape) < 0.5).astype(np.float64)
    check_loss(losses.BCEWithLogits(), to(xp, z), to(xp, y))
    check_loss(losses.MSE(), to(xp, z), to(xp, r.standard_normal(z.shape)))
    check_loss(losses.BCE(), to(xp, 1 / (1 + np.exp(-np.clip(z, -2, 2)))), to(xp, y))
    if z.shape[1] >= 2:
        labels = r.integers(0, z.shape[1], size=z.shape[0])
        check_loss(losses.SoftmaxCrossEntropy(), to(xp, z), to(xp, labels))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_and_sigmoid_are_finite_and_silent_for_huge_logits(xp, dtype):
    z = to(xp, np.array([[-1e4], [-1e3], [-100.0], [-20.0], [0.0], [20.0], [100.0], [1e3], [1e4]], dtype))
    # underflow of exp(-|z|) to 0 is exact enough and silent by default; overflow, 0/0 and log(0) are not
    for target in (0.0, 1.0):
        y = to(xp, np.full(z.shape, target, dtype))
        with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
            warnings.simplefilter("error")
            loss_fn = losses.BCEWithLogits()
            loss = loss_fn.forward(z, y)
            dz = loss_fn.backward()
            s, _ = F.sigmoid_forward(z)
        assert loss.dtype == dtype and dz.dtype == dtype and s.dtype == dtype
        assert np.isfinite(to_numpy(loss)) and np.isfinite(to_numpy(dz)).all() and np.isfinite(to_numpy(s)).all()
        # per-element closed form: softplus(z) - y z, whose big terms are |z| on the wrong side
        expected = np.mean(np.logaddexp(0, to_numpy(z).astype(np.float64)) - target * to_numpy(z))
        assert float(loss) == pytest.approx(expected, rel=1e-6)


@given(z=matrices(elements=st.floats(-1e4, 1e4)))
def test_sigmoid_is_symmetric(xp, z):
    s_pos, _ = F.sigmoid_forward(to(xp, z))
    s_neg, _ = F.sigmoid_forward(to(xp, -z))
    np.testing.assert_allclose(to_numpy(s_neg), 1 - to_numpy(s_pos), atol=1e-15)


@given(z=matrices(elements=st.floats(-10, 10)), seed=seeds)
def test_bce_with_logits_equals_naive_form_where_that_is_accurate(xp, z, seed):
    y = np.random.default_rng(seed).random(z.shape)  # soft targets too
    p = 1 / (1 + np.exp(-z))
    naive = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    stable, _ = F.bce_with_logits_forward(to(xp, z), to(xp, y))
    assert float(stable) == pytest.approx(naive, rel=1e-9, abs=1e-12)
    naive_module, _ = F.bce_forward(to(xp, p), to(xp, y))
    assert float(naive_module) == pytest.approx(naive, rel=1e-9, abs=1e-12)


def test_naive_bce_breaks_where_the_logit_form_does_not():
    """Why bce_with_logits exists: a float32 sigmoid saturates to exactly 1 at z = 20."""
    z = np.array([[20.0]], np.float32)
    p, _ = F.sigmoid_forward(z)
    assert p[0, 0] == 1.0
    with np.errstate(divide="ignore"):
        naive, _ = F.bce_forward(p, np.zeros_like(p))
    assert np.isinf(naive)
    stable, _ = F.bce_with_logits_forward(z, np.zeros_like(z))
    assert float(stable) == pytest.approx(20.0, rel=1e-6)


def test_loss_backward_without_forward_is_an_error():
    with pytest.raises(RuntimeError, match="BCEWithLogits: backward\\(\\) called without a matching forward"):
        losses.BCEWithLogits().backward()


def test_loss_backward_scales_by_dloss(rng):
    z, y = rng.standard_normal((4, 1)), np.ones((4, 1))
    loss = losses.BCEWithLogits()
    loss.forward(z, y)
    g1 = loss.backward()
    loss.forward(z, y)
    np.testing.assert_allclose(loss.backward(0.5), 0.5 * g1)

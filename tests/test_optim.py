"""Optimizers: hand-computed steps, weight decay, state round trips, dtype, frozen parameters."""

import numpy as np
import pytest

from minigan import nn, optim
from minigan.backend import to_numpy

from conftest import to


def _param(xp, values, dtype=np.float64):
    return nn.Param(to(xp, np.array(values, dtype)), "w")


def test_adam_two_steps_by_hand(xp):
    w = _param(xp, [1.0, -2.0])
    opt = optim.Adam([w], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    w.grad = to(xp, np.array([0.5, -1.0]))
    opt.step()
    # t=1: m = 0.1 g, v = 0.001 g^2 -> m_hat = g, v_hat = g^2 -> step = lr * g / (|g| + eps) = 0.1 sign(g)
    w1 = [1.0 - 0.1 * 0.5 / (0.5 + 1e-8), -2.0 + 0.1 * 1.0 / (1.0 + 1e-8)]
    np.testing.assert_allclose(to_numpy(w.data), w1, rtol=1e-14)
    w.grad = to(xp, np.array([1.0, 0.0]))
    opt.step()
    # t=2, first element: m = 0.9*0.05 + 0.1*1 = 0.145, v = 0.999*0.00025 + 0.001*1 = 0.00124975
    m, v = 0.145, 0.00124975
    step0 = 0.1 / (1 - 0.9**2) * m / (np.sqrt(v) / np.sqrt(1 - 0.999**2) + 1e-8)
    # second element: m = 0.9*(-0.1) = -0.09, v = 0.999*0.001 = 0.000999
    step1 = 0.1 / (1 - 0.9**2) * -0.09 / (np.sqrt(0.000999) / np.sqrt(1 - 0.999**2) + 1e-8)
    np.testing.assert_allclose(to_numpy(w.data), [w1[0] - step0, w1[1] - step1], rtol=1e-12)


def test_sgd_momentum_and_nesterov_by_hand(xp):
    w = _param(xp, [1.0])
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    for expected in (0.95, 0.855):  # buf = 0.5, then 0.9 * 0.5 + 0.5 = 0.95
        w.grad = to(xp, np.array([0.5]))
        opt.step()
        assert float(w.data[0]) == pytest.approx(expected)
    w = _param(xp, [1.0])
    opt = optim.SGD([w], lr=0.1, momentum=0.9, nesterov=True)
    w.grad = to(xp, np.array([0.5]))
    opt.step()  # g + mu * buf = 0.5 + 0.45
    assert float(w.data[0]) == pytest.approx(1 - 0.1 * 0.95)


def test_weight_decay_adds_l2_gradient(xp):
    w = _param(xp, [2.0])
    w.grad = to(xp, np.array([0.0]))
    optim.SGD([w], lr=0.1, weight_decay=0.5).step()
    assert float(w.data[0]) == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps, lr=1e-2), lambda ps: optim.SGD(ps, lr=1e-2, momentum=0.9)])
def test_state_dict_round_trip_continues_identically(make, rng):
    def run(opt, params, steps, start):
        for k in range(start, start + steps):
            for p in params:
                p.grad = np.random.default_rng(k).standard_normal(p.shape).astype(np.float32)
            opt.step()

    a = [nn.Param(rng.standard_normal((3, 2)).astype(np.float32), "W"), nn.Param(np.zeros(2, np.float32), "b")]
    b = [nn.Param(p.data.copy(), p.name) for p in a]
    opt_a = make(a)
    run(opt_a, a, 3, 0)
    state = opt_a.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    for p, q in zip(a, b):
        q.data = p.data.copy()
    opt_b = make(b)
    opt_b.load_state_dict(state)
    run(opt_a, a, 2, 3)
    run(opt_b, b, 2, 3)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_checks_shapes(rng):
    p = nn.Param(np.zeros((2, 2), np.float32), "W")
    opt = optim.Adam([p])
    p.grad = np.ones((2, 2), np.float32)
    opt.step()
    state = opt.state_dict()
    other = optim.Adam([nn.Param(np.zeros((3, 2), np.float32), "W")])
    with pytest.raises(ValueError, match=r"'0.exp_avg' has shape \(2, 2\), parameter 'W' has \(3, 2\)"):
        other.load_state_dict(state)


def test_step_keeps_float32_and_skips_params_without_grad(xp):
    w, frozen = _param(xp, [1.0, 2.0], np.float32), _param(xp, [3.0], np.float32)
    w.grad = to(xp, np.array([0.1, 0.2], np.float32))
    opt = optim.Adam([w, frozen])
    opt.step()
    assert w.data.dtype == np.float32 and float(frozen.data[0]) == 3.0
    assert opt.state[w]["exp_avg"].dtype == np.float32 and frozen not in opt.state
    opt.zero_grad()
    assert w.grad is None


def test_adam_minimizes_a_quadratic():
    w = nn.Param(np.array([5.0, -3.0]), "w")
    opt = optim.Adam([w], lr=0.1)
    for _ in range(500):
        w.grad = 2 * (w.data - np.array([1.0, 2.0]))
        opt.step()
    np.testing.assert_allclose(w.data, [1.0, 2.0], atol=1e-3)


def test_bad_hyperparameters_are_refused():
    p = [nn.Param(np.zeros(1), "w")]
    with pytest.raises(ValueError, match="Adam: need lr > 0"):
        optim.Adam(p, lr=-1)
    with pytest.raises(ValueError, match="nesterov=True needs momentum"):
        optim.SGD(p, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)

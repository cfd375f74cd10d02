"""docs/derivations.md says what it checks: its worked numbers and closed forms, against the engine.

Each test names the section of the page it keeps honest. A formula changed in the code but not on the page (or the
other way round) fails here. The last tests check the links: every docstring's ``Derivation: docs/derivations.md#x``
points at an anchor the page has, and every section is linked from the code.
"""

import pathlib
import re
import warnings

import numpy as np
import pytest

from minigan import functional as F
from minigan import gan, nn, optim
from minigan.nn import Param

ROOT = pathlib.Path(__file__).parents[1]
DOC = ROOT / "docs" / "derivations.md"
ANCHORS = ["dense", "activations", "bce-from-logits", "bce-on-probabilities", "mse", "softmax-cross-entropy",
           "batch-norm", "conv2d", "conv-transpose2d", "batchnorm2d", "gan-losses", "generator-gradient-through-d", "pacgan", "sgd", "adam"]


def sigmoid64(z):
    return 1 / (1 + np.exp(-np.asarray(z, dtype=np.float64)))


# ---------------------------------------------------------------------------------------- #dense
def test_dense_index_notation_equals_the_matrix_form(rng):
    """The element-by-element sums of the derivation, written as loops, give the code's three products."""
    x, W, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    y, cache = F.dense_forward(x, W, b)
    dy = rng.standard_normal(y.shape)
    dx, dW, db = F.dense_backward(dy, cache)
    N, I = x.shape
    O = W.shape[1]
    assert np.allclose(dW, [[sum(dy[n, j] * x[n, i] for n in range(N)) for j in range(O)] for i in range(I)])
    assert np.allclose(dx, [[sum(dy[n, j] * W[i, j] for j in range(O)) for i in range(I)] for n in range(N)])
    assert np.allclose(db, [sum(dy[n, j] for n in range(N)) for j in range(O)])


def test_dense_sanity_check_with_all_ones_upstream(rng):
    x = rng.standard_normal((5, 3))
    y, cache = F.dense_forward(x, rng.standard_normal((3, 2)), np.zeros(2))
    _, dW, db = F.dense_backward(np.ones_like(y), cache)
    assert np.array_equal(db, [5.0, 5.0])  # db_j = N
    assert np.allclose(dW, np.repeat(x.sum(axis=0)[:, None], 2, axis=1))  # each column: the inputs summed


# ---------------------------------------------------------------------------------------- #activations
def test_activation_derivatives_from_the_output():
    x = np.linspace(-4, 4, 41)
    one = np.ones_like(x)
    s, cache = F.sigmoid_forward(x)
    assert np.allclose(F.sigmoid_backward(one, cache), np.exp(-x) / (1 + np.exp(-x)) ** 2)  # sigma' = y(1 - y)
    t, cache = F.tanh_forward(x)
    assert np.allclose(F.tanh_backward(one, cache), 1 / np.cosh(x) ** 2)  # tanh' = 1 - y^2
    assert np.allclose(t, 2 * sigmoid64(2 * x) - 1)  # tanh is a rescaled sigmoid
    assert F.sigmoid_backward(np.ones(1), F.sigmoid_forward(np.zeros(1))[1])[0] == 0.25  # the largest sigmoid'
    assert np.all(F.sigmoid_backward(one, cache=s) <= 0.25)


def test_kink_convention_and_what_a_central_difference_sees_there():
    zero, one, eps = np.zeros(1), np.ones(1), 1e-6
    assert F.relu_backward(one, F.relu_forward(zero)[1])[0] == 0.0  # ReLU'(0) := 0, the left slope
    assert F.leaky_relu_backward(one, F.leaky_relu_forward(zero, slope=0.2)[1])[0] == pytest.approx(0.2)
    relu = lambda v: F.relu_forward(np.array([v]))[0][0]
    leaky = lambda v: F.leaky_relu_forward(np.array([v]), slope=0.2)[0][0]
    assert (relu(eps) - relu(-eps)) / (2 * eps) == pytest.approx(0.5)  # neither slope: their average
    assert (leaky(eps) - leaky(-eps)) / (2 * eps) == pytest.approx(0.6)  # (1 + a) / 2


# ---------------------------------------------------------------------------------------- #bce-from-logits
def test_bce_from_logits_is_softplus_minus_yz_and_its_gradient_is_p_minus_y():
    z = np.linspace(-30, 30, 61)
    for y in (0.0, 0.3, 1.0):
        target = np.full_like(z, y)
        p = sigmoid64(z)
        textbook = -(y * np.log(p) + (1 - y) * np.log(sigmoid64(-z)))  # 1 - sigma(z) = sigma(-z), exactly
        loss, cache = F.bce_with_logits_forward(z, target)
        assert loss == pytest.approx(textbook.mean(), rel=1e-12)
        assert np.allclose(F.bce_with_logits_backward(1.0, cache), (p - y) / z.size, rtol=1e-12, atol=0)


def test_bce_from_logits_averages_over_every_element_not_only_rows(rng):
    z, y = rng.standard_normal((4, 3)), rng.random((4, 3))
    _, cache = F.bce_with_logits_forward(z, y)
    assert np.allclose(F.bce_with_logits_backward(1.0, cache), (sigmoid64(z) - y) / 12)  # n = 12 elements


def test_bce_worked_example():
    loss, cache = F.bce_with_logits_forward(np.array([2.0]), np.array([1.0]))
    assert round(float(loss), 6) == 0.126928
    assert round(float(F.bce_with_logits_backward(1.0, cache)[0]), 6) == -0.119203


def test_float32_sigmoid_thresholds_quoted_on_the_page():
    """sigma(z) is exactly 1.0 from z ~ 16.6, 0 below ~ -104, and exp(-z) overflows below -88.72."""
    s = lambda v: F.sigmoid_forward(np.array([v], dtype=np.float32))[0][0]
    assert s(16.5) < 1 and s(16.7) == 1  # 1 + exp(-z) rounds to 1 once exp(-z) < 2**-24
    assert -np.log(2.0**-24) == pytest.approx(16.6, abs=0.05)
    assert s(-103) > 0 and s(-104.5) == 0
    assert np.log(np.finfo(np.float32).max) == pytest.approx(88.72, abs=0.005)
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            np.exp(np.float32(88.8))
        np.exp(np.float32(88.7))


def test_naive_bce_breaks_at_logit_40_and_the_logits_form_does_not():
    z = np.full(1, 40.0, dtype=np.float32)
    p, _ = F.sigmoid_forward(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0) and 0 * inf, which is the point
        assert np.isposinf(F.bce_forward(p, np.zeros(1, np.float32))[0])  # a fake at logit 40: inf
        assert np.isnan(F.bce_forward(p, np.ones(1, np.float32))[0])  # a real at logit 40: 0 * -inf = nan
        assert np.isposinf(F.bce_forward(F.sigmoid_forward(np.full(1, 17, np.float32))[0], np.zeros(1, np.float32))[0])
    assert F.bce_with_logits_forward(z, np.zeros(1, np.float32))[0] == 40.0
    assert F.bce_with_logits_forward(z, np.ones(1, np.float32))[0] == 0.0


# ---------------------------------------------------------------------------------------- #bce-on-probabilities
def test_naive_bce_gradient_times_sigmoid_slope_is_p_minus_y():
    p, y = np.array([0.3, 0.6, 0.9]), np.array([1.0, 0.0, 1.0])
    _, cache = F.bce_forward(p, y)
    dp = F.bce_backward(1.0, cache)
    assert np.allclose(dp * p * (1 - p), (p - y) / p.size)
    assert dp[0] * 0.3 * 0.7 * 3 == pytest.approx(-0.7)  # the page's example
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        saturated = F.bce_backward(1.0, (np.ones(1, np.float32), np.ones(1, np.float32)))
    assert np.isnan(saturated[0])  # (p - y) / (p (1 - p)) = 0 / 0


# ---------------------------------------------------------------------------------------- #mse
def test_mse_worked_example():
    loss, cache = F.mse_forward(np.array([1.0, 3.0]), np.array([0.0, 0.0]))
    assert loss == 5.0
    assert np.array_equal(F.mse_backward(1.0, cache), [1.0, 3.0])


# ---------------------------------------------------------------------------------------- #softmax-cross-entropy
def test_softmax_cross_entropy_worked_example_and_zero_row_sums(rng):
    loss, cache = F.softmax_cross_entropy_forward(np.array([[1.0, 2.0, 3.0]]), np.array([2]))
    assert round(float(loss), 6) == 0.407606
    assert np.allclose(np.log(np.exp([1, 2, 3]).sum()) - 3, loss)
    assert np.round(F.softmax_cross_entropy_backward(1.0, cache), 6).tolist() == [[0.090031, 0.244728, -0.334759]]
    z = rng.standard_normal((6, 4)) * 50  # large logits: the log-sum-exp shift keeps it finite
    loss, cache = F.softmax_cross_entropy_forward(z, rng.integers(0, 4, 6))
    dz = F.softmax_cross_entropy_backward(1.0, cache)
    assert np.isfinite(loss) and np.allclose(dz.sum(axis=1), 0)
    probs, labels = cache
    assert np.allclose(dz, (probs - np.eye(4)[labels]) / 6)  # (softmax - onehot) / N, N = 6 rows


def test_two_class_softmax_is_bce_from_logits(rng):
    z, labels = rng.standard_normal((8, 2)), rng.integers(0, 2, 8)
    soft, _ = F.softmax_cross_entropy_forward(z, labels)
    bce, _ = F.bce_with_logits_forward(z[:, 1] - z[:, 0], labels.astype(float))
    assert soft == pytest.approx(bce, rel=1e-12)


# ---------------------------------------------------------------------------------------- #batch-norm
def test_batchnorm_dx_is_the_chain_rule_sum_over_the_batch(rng):
    """The page's Jacobian d xhat_n / d x_j = s/N (N [n=j] - 1 - xhat_n xhat_j), summed against gamma dy."""
    N, Fdim = 5, 3
    x, gamma, beta, dy = (rng.standard_normal((N, Fdim)), rng.standard_normal(Fdim), rng.standard_normal(Fdim),
                          rng.standard_normal((N, Fdim)))
    _, cache = F.batchnorm_forward(x, gamma, beta, eps=1e-5)
    dx, _, _ = F.batchnorm_backward(dy, cache)
    xhat, _, s = cache[:3]
    for f in range(Fdim):
        jac = s[f] / N * (N * np.eye(N) - 1 - np.outer(xhat[:, f], xhat[:, f]))  # [n, j]
        assert np.allclose(dx[:, f], jac.T @ (gamma[f] * dy[:, f]))


def test_batchnorm_dx_is_orthogonal_to_shift_and_with_eps_0_to_scale(rng):
    x, gamma, beta, dy = rng.standard_normal((6, 4)), rng.standard_normal(4), rng.standard_normal(4), \
        rng.standard_normal((6, 4))
    _, cache = F.batchnorm_forward(x, gamma, beta, eps=1e-5)
    dx, _, _ = F.batchnorm_backward(dy, cache)
    assert np.allclose(dx.sum(axis=0), 0, atol=1e-12)
    _, cache = F.batchnorm_forward(x, gamma, beta, eps=0.0)
    dx, _, _ = F.batchnorm_backward(dy, cache)
    assert np.allclose((dx * cache[0]).sum(axis=0), 0, atol=1e-12)


def test_batchnorm_eval_mode_is_a_per_element_affine_map(rng):
    bn = nn.BatchNorm1d(3, dtype=np.float64)
    bn.running_mean, bn.running_var = rng.standard_normal(3), rng.random(3) + 0.5
    bn.gamma.data = rng.standard_normal(3)
    bn.eval()
    bn.forward(rng.standard_normal((4, 3)))
    dy = rng.standard_normal((4, 3))
    assert np.allclose(bn.backward(dy), dy * bn.gamma.data / np.sqrt(bn.running_var + bn.eps))


# ---------------------------------------------------------------------------------------- #conv2d
def test_conv2d_is_the_page_sum_and_its_weight_gradient_the_input_correlated_with_dy(rng):
    x, W, b = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    S, P = 2, 1
    y, cache = F.conv2d_forward(x, W, b, stride=S, padding=P)
    assert y.shape == (2, 3, (5 + 2 - 3) // 2 + 1, (4 + 2 - 2) // 2 + 1)
    xt = np.pad(x, ((0, 0), (0, 0), (P, P), (P, P)))
    n, o, p, q = 1, 2, 1, 0
    assert y[n, o, p, q] == pytest.approx(b[o] + (W[o] * xt[n, :, S * p:S * p + 3, S * q:S * q + 2]).sum())
    dy = rng.standard_normal(y.shape)
    _, dW, db = F.conv2d_backward(dy, cache)
    c, i, j = 1, 2, 0
    expected = sum(dy[n, o, p, q] * xt[n, c, S * p + i, S * q + j]
                   for n in range(2) for p in range(y.shape[2]) for q in range(y.shape[3]))
    assert dW[o, c, i, j] == pytest.approx(expected)
    assert np.allclose(db, dy.sum(axis=(0, 2, 3)))


def test_col2im_of_ones_counts_the_windows_covering_each_pixel():
    def coverage(size, k, s):
        cols = np.ones((k * k, ((size - k) // s + 1) ** 2))
        return F.col2im(cols, (1, 1, size, size), k, s)[0, 0]

    assert coverage(3, 2, 1).tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    assert (coverage(4, 2, 2) == 1).all()  # the windows tile the image
    skipped = coverage(7, 1, 3)  # stride > kernel: pixels no window sees get no gradient
    assert skipped[::3, ::3].sum() == 9 and skipped.sum() == 9


def test_28_k5_s2_p2_gives_14_floor_drops_the_rest():
    assert F.conv_output_size(28, 5, 2, 2) == 14 and F.conv_output_size(28, 4, 2, 1) == 14


# ---------------------------------------------------------------------------------------- #conv-transpose2d
def test_transposed_conv_is_the_adjoint_of_conv(rng):
    W = rng.standard_normal((3, 2, 4, 4))  # conv2d(2 -> 3) weights; conv_transpose2d(3 -> 2) reads the same array
    u = rng.standard_normal((2, 2, 14, 14))
    conv_u, _ = F.conv2d_forward(u, W, stride=2, padding=1)  # (2, 3, 7, 7)
    v = rng.standard_normal(conv_u.shape)
    tv, _ = F.conv_transpose2d_forward(v, W, stride=2, padding=1)  # (2, 2, 14, 14)
    assert tv.shape == u.shape
    assert (conv_u * v).sum() == pytest.approx((u * tv).sum(), rel=1e-12)


def test_transposed_conv_output_sizes_quoted_on_the_page():
    assert F.conv_transpose_output_size(7, 4, 2, 1) == 14 and F.conv_transpose_output_size(14, 4, 2, 1) == 28
    assert F.conv_transpose_output_size(14, 5, 2, 2) == 27 and F.conv_transpose_output_size(14, 5, 2, 2, 1) == 28
    for size in (14, 15):  # both map back to 7: output_padding chooses
        assert F.conv_output_size(size, 4, 2, 1) == 7


def test_checkerboard_coverage_k3_s2_uneven_and_k4_s2_uniform():
    ones = np.ones((1, 1, 6, 6))
    k3, _ = F.conv_transpose2d_forward(ones, np.ones((1, 1, 3, 3)), stride=2)
    k4, _ = F.conv_transpose2d_forward(ones, np.ones((1, 1, 4, 4)), stride=2)
    assert k3[0, 0, 2, 2:8].tolist() == [4, 2, 4, 2, 4, 2]  # rows and columns alternate 2, 1: 4, 2, 1 in 2-D
    assert k3[0, 0, 3, 2:8].tolist() == [2, 1, 2, 1, 2, 1]
    assert (k4[0, 0, 2:-2, 2:-2] == 4).all()  # every interior pixel under 2 x 2 windows


# ---------------------------------------------------------------------------------------- #batchnorm2d
def test_batchnorm2d_is_batch_norm_with_pixels_as_rows(rng):
    x, dy = rng.standard_normal((3, 2, 4, 5)), rng.standard_normal((3, 2, 4, 5))
    gamma, beta = rng.standard_normal(2), rng.standard_normal(2)
    y, cache = F.batchnorm2d_forward(x, gamma, beta)
    dx, dgamma, dbeta = F.batchnorm2d_backward(dy, cache)
    rows = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, 2)  # noqa: E731  (N*H*W, C)
    M = 3 * 4 * 5
    mu, v = rows(x).mean(axis=0), rows(x).var(axis=0)
    s = 1 / np.sqrt(v + 1e-5)
    xhat = (rows(x) - mu) * s
    assert np.allclose(rows(y), gamma * xhat + beta)
    assert np.allclose(dbeta, rows(dy).sum(axis=0)) and np.allclose(dgamma, (rows(dy) * xhat).sum(axis=0))
    assert np.allclose(rows(dx), gamma * s / M * (M * rows(dy) - dbeta - xhat * dgamma))
    assert np.allclose(dx.sum(axis=(0, 2, 3)), 0, atol=1e-12)  # shifting a channel changes nothing


# ---------------------------------------------------------------------------------------- #gan-losses
def test_discriminator_loss_is_the_textbook_formula_and_its_logit_gradient_is_p_minus_t_over_n(rng):
    n = 4
    logits = rng.standard_normal((2 * n, 1)) * 3
    targets = np.r_[np.ones((n, 1)), np.zeros((n, 1))]
    loss, dlogits = gan.discriminator_loss(logits, targets)
    D = sigmoid64(logits)
    assert loss == pytest.approx(-np.log(D[:n]).mean() - np.log(1 - D[n:]).mean(), rel=1e-12)
    assert np.allclose(dlogits[:n], (D[:n] - 1) / n) and np.allclose(dlogits[n:], D[n:] / n)
    at_chance, _ = gan.discriminator_loss(np.zeros((2 * n, 1)), targets)
    assert at_chance == pytest.approx(2 * np.log(2))


def test_generator_losses_and_their_gradients_at_the_logit(rng):
    n = 5
    logits = rng.standard_normal((n, 1)) * 3
    D = sigmoid64(logits)
    loss, grad = gan.generator_loss(logits, "minimax")
    assert loss == pytest.approx(np.log(1 - D).mean(), rel=1e-12) and np.allclose(grad, -D / n)
    loss, grad = gan.generator_loss(logits, "nonsaturating")
    assert loss == pytest.approx(-np.log(D).mean(), rel=1e-12) and np.allclose(grad, (D - 1) / n)


def test_minimax_saturates_where_non_saturating_does_not():
    logit = np.array([[np.log(0.01 / 0.99)]])
    assert logit[0, 0] == pytest.approx(-4.595, abs=5e-4)
    _, minimax = gan.generator_loss(logit, "minimax")
    _, nonsat = gan.generator_loss(logit, "nonsaturating")
    assert minimax[0, 0] == pytest.approx(-0.01) and nonsat[0, 0] == pytest.approx(-0.99)
    _, minimax = gan.generator_loss(np.zeros((1, 1)), "minimax")
    _, nonsat = gan.generator_loss(np.zeros((1, 1)), "nonsaturating")
    assert minimax[0, 0] == nonsat[0, 0] == -0.5  # equal at D(G(z)) = 1/2


# ---------------------------------------------------------------------------------------- #generator-gradient-through-d
def test_generator_gradient_is_the_chain_rule_through_a_frozen_d(rng):
    """GAN.generator_gradients hands G exactly the page's dx = ((dl W2^T) * lrelu'(a1)) W1^T, and leaves D's grads."""
    d, noise_dim, n, slope = 3, 2, 6, 0.2
    G = nn.Sequential(nn.Dense(noise_dim, d, rng=rng, dtype=np.float64))
    D = nn.Sequential(nn.Dense(d, 5, rng=rng, dtype=np.float64), nn.LeakyReLU(slope),
                      nn.Dense(5, 1, rng=rng, dtype=np.float64))
    model = gan.GAN(G, D, optim.SGD(G.params(), lr=0.1), optim.SGD(D.params(), lr=0.1), noise_dim, rng=rng)
    z = rng.standard_normal((n, noise_dim))
    model.generator_gradients(z)
    assert all(p.grad is None for p in D.params()) and all(p.requires_grad for p in D.params())

    W1, b1, W2, b2 = (p.data for p in D.params())
    g = z @ G[0].W.data + G[0].b.data
    a1 = g @ W1 + b1
    logits = np.where(a1 > 0, a1, slope * a1) @ W2 + b2
    dl = (sigmoid64(logits) - 1) / n  # non-saturating
    dg = ((dl @ W2.T) * np.where(a1 > 0, 1.0, slope)) @ W1.T
    assert np.allclose(G[0].W.grad, z.T @ dg) and np.allclose(G[0].b.grad, dg.sum(axis=0))


# ---------------------------------------------------------------------------------------- #pacgan
def test_pack_is_the_index_map_of_the_page_and_its_backward_the_inverse_reshape(rng):
    N, d, m = 6, 2, 3
    x = rng.standard_normal((N, d))
    P = gan.pack(x, m)
    assert P.shape == (N // m, m * d)
    for k in range(N // m):
        for j in range(m):
            for i in range(d):
                assert P[k, j * d + i] == x[k * m + j, i]
    assert np.array_equal(P.reshape(x.shape), x) and gan.pack(x, 1) is x


# ---------------------------------------------------------------------------------------- #sgd
@pytest.mark.parametrize("nesterov, expected", [(False, [0.9, 0.72]), (True, [0.81, 0.5751])])
def test_sgd_worked_example(nesterov, expected):
    p = Param(np.array([1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=nesterov)
    seen = []
    for _ in range(2):
        p.grad = p.data.copy()  # L = w^2 / 2, so g = w
        opt.step()
        seen.append(p.data[0])
    assert seen == pytest.approx(expected, rel=1e-12)


def test_nesterov_equals_sutskevers_look_ahead_form(rng):
    """The reparametrisation on the page: PyTorch-form w_t equals theta_t - lr mu v_t of the look-ahead form."""
    A = rng.standard_normal((3, 3))
    A = A @ A.T + np.eye(3)  # L = w^T A w / 2, gradient A w
    lr, mu = 0.05, 0.9
    p = Param(rng.standard_normal(3))
    theta, v = p.data.copy(), np.zeros(3)
    opt = optim.SGD([p], lr=lr, momentum=mu, nesterov=True)
    for _ in range(10):
        p.grad = A @ p.data
        opt.step()
        v = mu * v + A @ (theta - lr * mu * v)
        theta = theta - lr * v
        assert np.allclose(p.data, theta - lr * mu * v)


# ---------------------------------------------------------------------------------------- #adam
def test_adam_worked_first_two_steps():
    p = Param(np.array([1.0]))
    opt = optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    p.grad = np.array([0.5])
    opt.step()
    assert p.data[0] == pytest.approx(0.900000002, abs=1e-12)
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.05) and opt.state[p]["exp_avg_sq"][0] == pytest.approx(2.5e-4)
    p.grad = np.array([-0.25])
    opt.step()
    assert opt.state[p]["exp_avg"][0] == pytest.approx(0.02)
    assert opt.state[p]["exp_avg_sq"][0] == pytest.approx(3.1225e-4)
    assert 0.900000002 - p.data[0] == pytest.approx(0.026634, abs=5e-7)
    assert p.data[0] == pytest.approx(0.873366, abs=5e-7)


def test_adam_first_step_is_lr_whatever_the_gradient_scale_and_3_16_lr_without_correction():
    for g in (1e-4, 1.0, 1e4):
        p = Param(np.array([0.0]))
        opt = optim.Adam([p], lr=0.1, eps=1e-12)
        p.grad = np.array([g])
        opt.step()
        assert p.data[0] == pytest.approx(-0.1, rel=1e-6)
    assert 0.1 / np.sqrt(0.001) == pytest.approx(3.16, abs=0.005)


def test_bias_corrected_average_of_a_constant_is_that_constant():
    """E[m_t] = (1 - beta^t) E[g]: with a constant gradient, m_t / (1 - beta1^t) is exactly g at every step."""
    p = Param(np.array([0.0]))
    opt = optim.Adam([p], lr=1e-3)
    for t in range(1, 6):
        p.grad = np.array([0.7])
        opt.step()
        assert opt.state[p]["exp_avg"][0] / (1 - 0.9**t) == pytest.approx(0.7, rel=1e-12)
        assert opt.state[p]["exp_avg_sq"][0] / (1 - 0.999**t) == pytest.approx(0.49, rel=1e-12)


# ------------------------------------------------------------------------------------------------ the links
def test_the_page_has_every_anchor_once_before_a_heading():
    text = DOC.read_text()
    for anchor in ANCHORS:
        assert text.count(f'<a id="{anchor}"></a>') == 1, anchor
        assert re.search(rf'<a id="{anchor}"></a>\n## ', text), f"#{anchor} is not right before a heading"
        assert f"(#{anchor})" in text, f"the contents line does not link #{anchor}"


def test_docstring_links_point_at_anchors_and_every_section_is_linked():
    links = []
    for path in (ROOT / "minigan").glob("*.py"):
        links += re.findall(r"Derivation: docs/derivations\.md#([\w-]+)", path.read_text())
    assert links, "no docstring links to docs/derivations.md"
    assert set(links) <= set(ANCHORS), f"links to missing anchors: {set(links) - set(ANCHORS)}"
    assert set(ANCHORS) <= set(links), f"sections no docstring links to: {set(ANCHORS) - set(links)}"

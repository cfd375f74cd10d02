"""Convolutions, transposed convolutions, 2-D batch norm, reshapes: the engine against plain references.

The references live here, not in the engine: a convolution written as the four nested loops of its definition, a
transposed convolution as the scatter loop of its definition, and im2col/col2im as one gather and one
``np.add.at`` scatter over explicit index arrays (slow, obviously right). The engine's im2col + GEMM and its fast
col2im (one strided slice add per kernel offset) must agree with them on hypothesis-drawn shapes, strides and
paddings, and every backward pass must pass the gradient checker in float64.
"""

import copy
import io
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from minigan import functional as F
from minigan import nn
from minigan.backend import to_device, to_numpy
from minigan.gradcheck import check_function, check_module

from conftest import to
from strategies import seeds

# ------------------------------------------------------------------------------------------------ references


def pad(x, ph, pw):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_loop(x, W, b, stride, padding):
    """``y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] xpad[n, c, sh p + i, sw q + j]``, literally."""
    (sh, sw), (ph, pw) = stride, padding
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = W.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    xpad = pad(x, ph, pw)
    y = np.zeros((n, c_out, oh, ow))
    for b_ in range(n):
        for o in range(c_out):
            for p in range(oh):
                for q in range(ow):
                    total = 0.0 if b is None else b[o]
                    for c in range(c_in):
                        for i in range(kh):
                            for j in range(kw):
                                total += W[o, c, i, j] * xpad[b_, c, sh * p + i, sw * q + j]
                    y[b_, o, p, q] = total
    return y


def conv_transpose2d_loop(x, W, b, stride, padding, output_padding):
    """Each input pixel scatters ``x[n, c, h, w] * W[c, o]`` into the output window at ``(sh h, sw w)`` of the
    uncropped output; then ``padding`` rows and columns are cropped from each side, as PyTorch defines it."""
    (sh, sw), (ph, pw), (qh, qw) = stride, padding, output_padding
    n, c_in, h, w = x.shape
    _, c_out, kh, kw = W.shape
    oh, ow = (h - 1) * sh - 2 * ph + kh + qh, (w - 1) * sw - 2 * pw + kw + qw
    full = np.zeros((n, c_out, max(oh + 2 * ph, (h - 1) * sh + kh), max(ow + 2 * pw, (w - 1) * sw + kw)))
    for b_ in range(n):
        for c in range(c_in):
            for p in range(h):
                for q in range(w):
                    for o in range(c_out):
                        for i in range(kh):
                            for j in range(kw):
                                full[b_, o, sh * p + i, sw * q + j] += x[b_, c, p, q] * W[c, o, i, j]
    y = full[:, :, ph:ph + oh, pw:pw + ow]
    return y if b is None else y + b.reshape(1, -1, 1, 1)


def patch_indices(x_shape, kernel, stride, padding):
    """Index arrays ``(n, c, row, col)`` into the padded input for every entry of im2col's (C, kH, kW, OH, OW, N):
    its rows are kernel taps (c, i, j), its columns output positions (oh, ow, n)."""
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    c_, i_, j_, p_, q_, n_ = np.indices((c, kh, kw, oh, ow, n), sparse=True)
    return (n_, c_, sh * p_ + i_, sw * q_ + j_), (c * kh * kw, oh * ow * n)


def im2col_gather(x, kernel, stride, padding):
    index, shape = patch_indices(x.shape, kernel, stride, padding)
    return pad(x, *padding)[index].reshape(shape)


def col2im_add_at(cols, x_shape, kernel, stride, padding):
    """The plain scatter: ``np.add.at`` adds every entry to its pixel, repeated indices included."""
    index, _ = patch_indices(x_shape, kernel, stride, padding)
    n, c, h, w = x_shape
    (ph, pw) = padding
    xpad = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    np.add.at(xpad, index, cols.reshape(np.broadcast_shapes(*(a.shape for a in index))))
    return xpad[:, :, ph:ph + h, pw:pw + w]


# ------------------------------------------------------------------------------------------------ geometry


@dataclass(frozen=True)
class Geometry:
    n: int
    c_in: int
    c_out: int
    size: tuple  # input (H, W)
    kernel: tuple
    stride: tuple
    padding: tuple
    output_padding: tuple = (0, 0)

    def conv_fits(self):
        return all(s + 2 * p >= k for s, p, k in zip(self.size, self.padding, self.kernel))

    def transpose_fits(self):
        return all((s - 1) * st_ - 2 * p + k + q >= 1
                   for s, st_, p, k, q in zip(self.size, self.stride, self.padding, self.kernel, self.output_padding))


pairs = lambda lo, hi: st.tuples(st.integers(lo, hi), st.integers(lo, hi))  # noqa: E731


@st.composite
def geometries(draw, transposed=False):
    """Batches of 1-3, 1-3 channels, kernels 1-4 (1x1 included), strides 1-4 (larger than the kernel included),
    paddings 0-2, odd and even sizes, square or not; only shapes where the output is not empty."""
    kernel, stride, padding = draw(pairs(1, 4)), draw(pairs(1, 4)), draw(pairs(0, 2))
    output_padding = tuple(draw(st.integers(0, s - 1)) for s in stride) if transposed else (0, 0)
    g = Geometry(draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(pairs(1, 7)),
                 kernel, stride, padding, output_padding)
    assume(g.transpose_fits() if transposed else g.conv_fits())
    return g


DCGAN_DOWN = Geometry(2, 2, 3, (8, 8), (4, 4), (2, 2), (1, 1))  # the DCGAN discriminator's layer, small
ONE_BY_ONE = Geometry(1, 3, 2, (5, 5), (1, 1), (1, 1), (0, 0))
STRIDE_OVER_KERNEL = Geometry(2, 1, 2, (7, 9), (2, 2), (3, 3), (0, 0))  # skips pixels
ODD_MIXED = Geometry(1, 2, 1, (7, 4), (3, 2), (2, 1), (2, 0), (1, 0))


def _arrays(g, r, transposed=False):
    x = r.standard_normal((g.n, g.c_in, *g.size))
    W = r.standard_normal((g.c_in, g.c_out, *g.kernel) if transposed else (g.c_out, g.c_in, *g.kernel))
    return x, W, r.standard_normal(g.c_out)


# ------------------------------------------------------------------------------------------------ forward passes


@given(g=geometries(), seed=seeds)
@example(g=DCGAN_DOWN, seed=0)  # DCGAN layer
@example(g=ONE_BY_ONE, seed=0)  # 1x1 kernel
@example(g=STRIDE_OVER_KERNEL, seed=0)  # stride > kernel
@example(g=ODD_MIXED, seed=0)  # odd, non-square
def test_conv2d_forward_equals_the_loop(xp, g, seed):
    x, W, b = _arrays(g, np.random.default_rng(seed))
    y, _ = F.conv2d_forward(to(xp, x), to(xp, W), to(xp, b), g.stride, g.padding)
    expected = conv2d_loop(x, W, b, g.stride, g.padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-10, atol=1e-12)


@given(g=geometries(transposed=True), seed=seeds)
@example(g=Geometry(2, 3, 2, (7, 7), (4, 4), (2, 2), (1, 1)), seed=0)  # DCGAN generator layer
@example(g=Geometry(1, 2, 2, (3, 3), (1, 1), (3, 3), (0, 0), (2, 2)), seed=0)  # 1x1, stride > kernel
@example(g=ODD_MIXED, seed=0)  # odd, non-square, output padding
def test_conv_transpose2d_forward_equals_the_loop(xp, g, seed):
    x, W, b = _arrays(g, np.random.default_rng(seed), transposed=True)
    y, _ = F.conv_transpose2d_forward(to(xp, x), to(xp, W), to(xp, b), g.stride, g.padding, g.output_padding)
    expected = conv_transpose2d_loop(x, W, b, g.stride, g.padding, g.output_padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(to_numpy(y), expected, rtol=1e-10, atol=1e-12)


@given(g=geometries(), seed=seeds)
@example(g=DCGAN_DOWN, seed=0)  # overlapping windows
@example(g=STRIDE_OVER_KERNEL, seed=0)  # gaps between windows
def test_im2col_and_fast_col2im_equal_the_gather_and_add_at_scatter(xp, g, seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((g.n, g.c_in, *g.size))
    cols = F.im2col(to(xp, x), g.kernel, g.stride, g.padding)
    np.testing.assert_array_equal(to_numpy(cols), im2col_gather(x, g.kernel, g.stride, g.padding))
    dcols = r.standard_normal(cols.shape)
    fast = F.col2im(to(xp, dcols), x.shape, g.kernel, g.stride, g.padding)
    np.testing.assert_allclose(to_numpy(fast), col2im_add_at(dcols, x.shape, g.kernel, g.stride, g.padding),
                               rtol=1e-12, atol=1e-12)
    # col2im is im2col's adjoint: <im2col(x), dcols> == <x, col2im(dcols)>
    assert float((cols * to(xp, dcols)).sum()) == pytest.approx(float((to(xp, x) * fast).sum()), rel=1e-10)


def test_a_col2im_that_assigns_instead_of_adding_is_caught():
    """The reference test can fail: overwriting (``=``) instead of accumulating (``+=``) loses overlaps."""
    g = DCGAN_DOWN
    x_shape = (g.n, g.c_in, *g.size)
    dcols = np.ones((g.c_in * 16, g.n * 16))
    wrong = np.zeros((g.c_in, 10, 10, g.n))
    for i in range(4):
        for j in range(4):
            wrong[:, i:i + 8:2, j:j + 8:2] = dcols.reshape(g.c_in, 4, 4, 4, 4, g.n)[:, i, j]
    wrong = wrong[:, 1:9, 1:9].transpose(3, 0, 1, 2)
    right = col2im_add_at(dcols, x_shape, g.kernel, g.stride, g.padding)
    assert right.max() == 4 and not np.allclose(wrong, right)  # an interior pixel sits under 4 windows
    np.testing.assert_array_equal(F.col2im(dcols, x_shape, g.kernel, g.stride, g.padding), right)


# ------------------------------------------------------------------------------------------------ the adjoint identity


@given(g=geometries(transposed=True), seed=seeds)
@example(g=Geometry(2, 3, 2, (7, 7), (4, 4), (2, 2), (1, 1)), seed=0)
def test_conv_transpose2d_is_conv2ds_input_gradient(xp, g, seed):
    """A transposed convolution is conv2d's backward pass run forward: with the same W (conv2d reads it as
    (C_out_conv, C_in_conv) = (C_in, C_out)), conv_transpose2d(v) == conv2d_backward(v)'s dx, and
    <conv2d(u), v> == <u, conv_transpose2d(v)>."""
    r = np.random.default_rng(seed)
    v, W, _ = (to(xp, a) for a in _arrays(g, r, transposed=True))  # v: (N, C_in, H, W), the conv's output side
    y, _ = F.conv_transpose2d_forward(v, W, None, g.stride, g.padding, g.output_padding)
    u = to(xp, r.standard_normal(y.shape))  # an input of the size conv2d maps back to v's size
    conv_u, cache = F.conv2d_forward(u, W, None, g.stride, g.padding)
    assert conv_u.shape == v.shape
    dx, _, _ = F.conv2d_backward(v, cache)
    np.testing.assert_allclose(to_numpy(y), to_numpy(dx), rtol=1e-12, atol=1e-12)
    assert float((conv_u * v).sum()) == pytest.approx(float((u * y).sum()), rel=1e-10, abs=1e-10)
    # and the other way round: conv_transpose2d's input gradient is conv2d's forward
    _, cache_t = F.conv_transpose2d_forward(v, W, None, g.stride, g.padding, g.output_padding)
    dv, _, _ = F.conv_transpose2d_backward(u, cache_t)
    np.testing.assert_allclose(to_numpy(dv), to_numpy(conv_u), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------ gradient checks


@settings(max_examples=12)
@given(g=geometries(), seed=seeds, bias=st.booleans())
@example(g=DCGAN_DOWN, seed=0, bias=True)
@example(g=STRIDE_OVER_KERNEL, seed=0, bias=True)
def test_conv2d_gradients(xp, g, seed, bias):
    x, W, b = (to(xp, a) for a in _arrays(g, np.random.default_rng(seed)))
    forward = lambda x, W, b=None: F.conv2d_forward(x, W, b, g.stride, g.padding)  # noqa: E731
    inputs = [x, W, b] if bias else [x, W]
    backward = F.conv2d_backward if bias else (lambda dy, cache: F.conv2d_backward(dy, cache)[:2])
    result = check_function(forward, backward, inputs, max_elements=64)
    assert [t.name for t in result.tensors] == ["dx", "dW", "db"][:len(inputs)]


@settings(max_examples=12)
@given(g=geometries(transposed=True), seed=seeds)
@example(g=Geometry(2, 3, 2, (4, 4), (4, 4), (2, 2), (1, 1)), seed=0)
@example(g=ODD_MIXED, seed=0)
def test_conv_transpose2d_gradients(xp, g, seed):
    x, W, b = (to(xp, a) for a in _arrays(g, np.random.default_rng(seed), transposed=True))
    forward = lambda x, W, b: F.conv_transpose2d_forward(x, W, b, g.stride, g.padding, g.output_padding)  # noqa
    check_function(forward, F.conv_transpose2d_backward, [x, W, b], max_elements=64)


@settings(max_examples=12)
@given(n=st.integers(1, 3), c=st.integers(1, 3), size=pairs(1, 4), seed=seeds, training=st.booleans(),
       scale=st.floats(0.1, 10.0), shift=st.floats(-5.0, 5.0))
def test_batchnorm2d_gradients(xp, n, c, size, seed, training, scale, shift):
    """Training mode couples every pixel of a channel across the batch: the full Jacobian is checked."""
    assume(not training or n * size[0] * size[1] >= 2)
    r = np.random.default_rng(seed)
    x = to(xp, shift + scale * r.standard_normal((n, c, *size)))
    gamma, beta = to(xp, r.standard_normal(c)), to(xp, r.standard_normal(c))
    stats = () if training else (to(xp, r.standard_normal(c)), to(xp, r.uniform(0.5, 2.0, c)))
    forward = lambda x, gamma, beta: F.batchnorm2d_forward(x, gamma, beta, 1e-5, *stats)  # noqa: E731
    result = check_function(forward, F.batchnorm2d_backward, [x, gamma, beta], max_elements=64)
    assert [t.name for t in result.tensors] == ["dx", "dgamma", "dbeta"]


def test_reshape_and_flatten_gradients(xp, rng):
    x = to(xp, rng.standard_normal((2, 3, 2, 2)))
    check_function(F.flatten_forward, F.flatten_backward, [x])
    check_function(lambda x: F.reshape_forward(x, (2, -1)), F.reshape_backward, [x])


# ------------------------------------------------------------------------------------------------ batchnorm2d


def test_batchnorm2d_is_batchnorm1d_on_pixels_as_rows(backend_name, rng):
    """BatchNorm2d == BatchNorm1d applied to the (N*H*W, C) rows of the image batch, in both modes: outputs,
    running statistics and every gradient."""
    x = (3 + 2 * rng.standard_normal((4, 3, 5, 2))).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    rows = lambda a: a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])  # noqa: E731  (N*H*W, C)
    bn2, bn1 = nn.BatchNorm2d(3, momentum=0.3), nn.BatchNorm1d(3, momentum=0.3)
    for bn in (bn2, bn1):
        bn.gamma.data = np.array([0.5, -1.0, 2.0], np.float32)
        bn.beta.data = np.array([0.1, 0.0, -0.3], np.float32)
        bn.to(backend_name)
    for mode in ("train", "train", "eval"):
        bn2.train(mode == "train"), bn1.train(mode == "train")
        y2 = bn2.forward(to_device(x, backend_name))
        y1 = bn1.forward(to_device(rows(x), backend_name))
        np.testing.assert_allclose(rows(to_numpy(y2)), to_numpy(y1), rtol=1e-5, atol=1e-5)
        dx2 = bn2.backward(to_device(dy, backend_name))
        dx1 = bn1.backward(to_device(rows(dy), backend_name))
        np.testing.assert_allclose(rows(to_numpy(dx2)), to_numpy(dx1), rtol=1e-4, atol=1e-5)
        for name in ("running_mean", "running_var"):
            np.testing.assert_allclose(to_numpy(getattr(bn2, name)), to_numpy(getattr(bn1, name)), rtol=1e-5)
    for p2, p1 in zip(bn2.params(), bn1.params()):
        np.testing.assert_allclose(to_numpy(p2.grad), to_numpy(p1.grad), rtol=1e-4, atol=1e-4)


def test_batchnorm2d_modes_and_running_statistics(rng):
    bn = nn.BatchNorm2d(2, momentum=0.25)
    x = (5 + 2 * rng.standard_normal((8, 2, 3, 3))).astype(np.float32)
    y = bn.forward(x)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # per channel over N, H, W
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.running_mean, 0.25 * x.mean(axis=(0, 2, 3)), rtol=1e-5)
    m = 8 * 3 * 3
    np.testing.assert_allclose(bn.running_var, 0.75 + 0.25 * x.var(axis=(0, 2, 3)) * m / (m - 1), rtol=1e-5)
    assert y.dtype == bn.running_mean.dtype == bn.running_var.dtype == np.float32
    bn.eval()  # running statistics; nothing updated; each image independent of the others
    before = bn.running_var.copy()
    one = bn.forward(x[:1])
    expected = (x[:1] - bn.running_mean.reshape(1, 2, 1, 1)) / np.sqrt(bn.running_var.reshape(1, 2, 1, 1) + bn.eps)
    np.testing.assert_allclose(one, expected, rtol=1e-5)
    np.testing.assert_array_equal(bn.running_var, before)
    np.testing.assert_allclose(bn.forward(x)[:1], one, rtol=1e-6)
    bn.train()
    bn.forward(x[:1, :, :1, :2])  # N*H*W = 2 is enough for a variance
    with pytest.raises(ValueError, match=r"layer.*BatchNorm2d\(2\).*at least 2 values per channel"):
        nn.Sequential(bn).forward(x[:1, :, :1, :1])


# ------------------------------------------------------------------------------------------------ modules


def _randomize(model, r):
    """Random biases and batch-norm affine parameters, so no check sits at a kink or a symmetry."""
    for p in model.params():
        if p.name in ("b", "beta", "gamma"):
            p.data = r.standard_normal(p.shape).astype(p.data.dtype)
    return model


def tiny_generator(r, z_dim=3):
    """The DCGAN generator's pattern at toy size: Dense -> (C, 2, 2) maps -> transposed convs with batch norm
    (no bias before a batch norm) -> tanh; 2x2 -> 4x4 -> 7x7."""
    return nn.Sequential(
        nn.Dense(z_dim, 4 * 2 * 2, rng=r, bias=False), nn.Reshape((4, 2, 2)), nn.BatchNorm2d(4), nn.ReLU(),
        nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1, bias=False, rng=r), nn.BatchNorm2d(3), nn.ReLU(),
        nn.ConvTranspose2d(3, 1, 3, stride=2, padding=1, rng=r), nn.Tanh(),
    )


def tiny_discriminator(r):
    """The DCGAN discriminator's pattern: strided convolutions and LeakyReLU, flatten, one logit; 7x7 -> 4x4 -> 2x2."""
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, stride=2, padding=1, rng=r), nn.LeakyReLU(0.2),
        nn.Conv2d(3, 4, 4, stride=2, padding=1, bias=False, rng=r), nn.BatchNorm2d(4), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Dense(4 * 2 * 2, 1, rng=r),
    )


@settings(max_examples=8)
@given(g=geometries(), seed=seeds, bias=st.booleans())
def test_conv2d_module_gradients(backend_name, g, seed, bias):
    r = np.random.default_rng(seed)
    layer = _randomize(nn.Conv2d(g.c_in, g.c_out, g.kernel, g.stride, g.padding, bias=bias, rng=r), r)
    x = to_device(r.standard_normal((g.n, g.c_in, *g.size)), backend_name)
    result = check_module(layer.to(backend_name), x, max_elements=64)
    assert [t.name for t in result.tensors] == ["dx", "dW", "db"][:3 if bias else 2]


@settings(max_examples=8)
@given(g=geometries(transposed=True), seed=seeds)
def test_conv_transpose2d_module_gradients(backend_name, g, seed):
    r = np.random.default_rng(seed)
    layer = nn.ConvTranspose2d(g.c_in, g.c_out, g.kernel, g.stride, g.padding, g.output_padding, rng=r)
    x = to_device(r.standard_normal((g.n, g.c_in, *g.size)), backend_name)
    check_module(_randomize(layer, r).to(backend_name), x, max_elements=64)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_batchnorm2d_module_gradients(backend_name, training, rng):
    bn = _randomize(nn.BatchNorm2d(3), rng)
    bn.running_mean = rng.standard_normal(3).astype(np.float32)
    bn.running_var = rng.uniform(0.5, 2, 3).astype(np.float32)
    bn.to(backend_name).train(training)
    check_module(bn, to_device(2 + 3 * rng.standard_normal((2, 3, 3, 2)), backend_name))


@pytest.mark.parametrize("which", ["generator", "discriminator", "D(G(z))"])
def test_tiny_dcgan_networks_gradients(backend_name, which, rng):
    """Whole networks, every layer kind chained (views, in-place activations on conv outputs, reshapes); D(G(z))
    is the path of the generator's gradient, through the discriminator into G's transposed convolutions."""
    if which == "D(G(z))":
        net = nn.Sequential(*tiny_generator(rng), *tiny_discriminator(rng))
    else:
        net = tiny_generator(rng) if which == "generator" else tiny_discriminator(rng)
    x = rng.standard_normal((3, 1, 7, 7)) if which == "discriminator" else rng.standard_normal((3, 3))
    result = check_module(_randomize(net, rng).to(backend_name), to_device(x, backend_name), max_elements=48)
    assert len(result.tensors) == 1 + len(net.params())


def test_gan_train_step_runs_on_image_networks_unchanged(rng):
    """GAN.train_step stacks real and fake images and backpropagates through D into G: nothing in it assumes flat
    data (without packing or instance noise)."""
    from minigan import optim
    from minigan.gan import GAN

    g, d = tiny_generator(rng), tiny_discriminator(rng)
    gan = GAN(g, d, optim.Adam(g.params(), lr=1e-3), optim.Adam(d.params(), lr=1e-3), noise_dim=3, rng=1)
    before = [p.data.copy() for p in g.params() + d.params()]
    real = np.tanh(rng.standard_normal((8, 1, 7, 7))).astype(np.float32)
    stats = gan.train_step(real)
    assert all(np.isfinite(v) for v in stats.values())
    assert all(not np.array_equal(p.data, b) for p, b in zip(g.params() + d.params(), before))
    assert gan.generate(4).shape == (4, 1, 7, 7)


@pytest.mark.parametrize("kind", ["conv", "transposed"])
def test_module_fast_backward_equals_functional_and_skips_unneeded_work(kind, rng):
    if kind == "conv":
        layer, fwd, bwd = nn.Conv2d(2, 3, 4, stride=2, padding=1, rng=rng), F.conv2d_forward, F.conv2d_backward
        x = rng.standard_normal((2, 2, 6, 6)).astype(np.float32)
    else:
        layer = nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, output_padding=1, rng=rng)
        fwd, bwd = F.conv_transpose2d_forward, F.conv_transpose2d_backward
        x = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    y = layer.forward(x)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    extra = (layer.output_padding,) if kind == "transposed" else ()
    ref_dx, ref_dW, ref_db = bwd(dy, fwd(x, layer.W.data, layer.b.data, layer.stride, layer.padding, *extra)[1])
    np.testing.assert_array_equal(dx, ref_dx)
    np.testing.assert_array_equal(layer.W.grad, ref_dW)
    np.testing.assert_array_equal(layer.b.grad, ref_db)
    assert dx.dtype == layer.W.grad.dtype == layer.b.grad.dtype == np.float32
    # gradients accumulate until zero_grad
    layer.forward(x)
    assert layer.backward(dy, need_input_grad=False) is None
    np.testing.assert_allclose(layer.W.grad, 2 * ref_dW, rtol=1e-6)
    layer.zero_grad()
    assert layer.W.grad is None and layer.b.grad is None
    # frozen: dx still returned, parameter gradients left alone
    layer.requires_grad_(False)
    layer.forward(x)
    np.testing.assert_array_equal(layer.backward(dy), ref_dx)
    assert layer.W.grad is None and layer.b.grad is None


def test_float32_in_float32_out_everywhere(rng):
    g, d = tiny_generator(rng), tiny_discriminator(rng)
    fake = g.forward(rng.standard_normal((4, 3)).astype(np.float32))
    logits = d.forward(fake)
    dfake = d.backward(np.ones_like(logits))
    dz = g.backward(dfake)
    assert fake.shape == (4, 1, 7, 7) and logits.shape == (4, 1)
    assert fake.dtype == logits.dtype == dfake.dtype == dz.dtype == np.float32
    assert all(p.grad.dtype == p.data.dtype == np.float32 for p in g.params() + d.params())
    assert all(b.dtype == np.float32 for _, b in g.named_buffers())


@pytest.mark.parametrize("module, shape, expected", [
    (nn.Conv2d(1, 64, 4, stride=2, padding=1), (64, 1, 28, 28), (64, 64, 14, 14)),  # DCGAN D: 28 -> 14
    (nn.Conv2d(64, 128, 4, stride=2, padding=1), (64, 64, 14, 14), (64, 128, 7, 7)),  # 14 -> 7
    (nn.Conv2d(1, 8, 5, stride=2, padding=2), (2, 1, 28, 28), (2, 8, 14, 14)),  # floor: 27/2 + 1
    (nn.Conv2d(3, 8, (3, 5), stride=(1, 2), padding=(1, 0)), (2, 3, 9, 9), (2, 8, 9, 3)),
    (nn.Conv2d(2, 2, 1, stride=3), (1, 2, 7, 7), (1, 2, 3, 3)),  # 1x1, stride > kernel
    (nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1), (64, 128, 7, 7), (64, 64, 14, 14)),  # DCGAN G
    (nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1), (64, 64, 14, 14), (64, 1, 28, 28)),
    (nn.ConvTranspose2d(8, 1, 5, stride=2, padding=2, output_padding=1), (2, 8, 14, 14), (2, 1, 28, 28)),
    (nn.ConvTranspose2d(8, 4, 3), (2, 8, 5, 5), (2, 4, 7, 7)),
    (nn.Reshape((128, 7, 7)), (64, 6272), (64, 128, 7, 7)),
    (nn.Reshape((2, -1)), (3, 2, 3, 4), (3, 2, 12)),
    (nn.Flatten(), (64, 128, 7, 7), (64, 6272)),
    (nn.BatchNorm2d(3), (2, 3, 4, 5), (2, 3, 4, 5)),
], ids=repr)
def test_output_shapes_follow_pytorch(module, shape, expected):
    assert module.output_shape(shape) == expected
    if np.prod(shape) <= 64 * 64 * 14 * 14:
        assert module.forward(np.zeros(shape, np.float32)).shape == expected


def test_pytorch_default_init_and_dcgan_init():
    conv = nn.Conv2d(16, 32, 3, rng=0)
    bound = 1 / np.sqrt(16 * 9)  # PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * k * k
    assert conv.W.shape == (32, 16, 3, 3) and conv.b.shape == (32,)
    assert np.abs(conv.W.data).max() <= bound and conv.W.data.std() == pytest.approx(bound / np.sqrt(3), rel=0.05)
    assert np.abs(conv.b.data).max() <= bound and conv.b.data.any()
    tconv = nn.ConvTranspose2d(32, 16, 4, rng=0)  # fan_in read from the weight's 2nd axis: out_channels * k * k
    assert tconv.W.shape == (32, 16, 4, 4) and np.abs(tconv.W.data).max() <= 1 / np.sqrt(16 * 16)
    assert tconv.W.data.std() == pytest.approx(1 / np.sqrt(16 * 16 * 3), rel=0.05)
    np.testing.assert_array_equal(nn.Conv2d(16, 32, 3, rng=0).W.data, conv.W.data)  # seeded
    dcgan = nn.ConvTranspose2d(64, 32, 4, init="normal", rng=1)
    assert dcgan.W.data.std() == pytest.approx(0.02, rel=0.05) and not dcgan.b.data.any()
    assert nn.Conv2d(2, 3, 3, bias=False).b is None and len(nn.Conv2d(2, 3, 3, bias=False).params()) == 1
    with pytest.raises(ValueError, match="unknown init"):
        nn.Conv2d(2, 2, 3, init="glorot")


def test_state_dict_round_trip_and_backends(backend_name, rng):
    g = tiny_generator(rng)
    g.forward(rng.standard_normal((4, 3)).astype(np.float32))  # moves the running statistics
    state = g.state_dict()
    assert sorted(state) == ["0.W", "2.beta", "2.gamma", "2.running_mean", "2.running_var", "4.W", "5.beta",
                             "5.gamma", "5.running_mean", "5.running_var", "7.W", "7.b"]
    assert state["4.W"].shape == (4, 3, 4, 4) and state["7.b"].shape == (1,)
    twin = tiny_generator(np.random.default_rng(99)).to(backend_name)
    twin.load_state_dict(state)
    z = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(to_numpy(twin.eval().forward(to_device(z, backend_name))), g.eval().forward(z),
                               rtol=1e-5, atol=1e-6)
    bad = dict(state, **{"4.W": np.zeros((3, 4, 4, 4), np.float32)})
    with pytest.raises(ValueError, match=r"'4.W': saved shape \(3, 4, 4, 4\) does not match the model's "
                                         r"\(4, 3, 4, 4\)"):
        twin.load_state_dict(bad)
    moved = copy.deepcopy(g).to(backend_name).to("numpy")
    np.testing.assert_array_equal(moved[2].running_var, g[2].running_var)


def test_summary_shows_image_shapes(rng):
    out = io.StringIO()
    tiny_generator(rng).summary(batch_size=2, file=out)
    text = out.getvalue()
    assert "1: Reshape((4, 2, 2))" in text and "(2, 4, 2, 2)" in text
    assert "ConvTranspose2d(4->3, k=4, s=2, p=1, bias=False)" in text and "(2, 3, 4, 4)" in text
    assert "(2, 1, 7, 7)" in text and f"total params: {tiny_generator(rng).num_params():,}" in text
    # A discriminator starts with a convolution: summary() only knows flat inputs (it reads the first Dense's
    # in_features), so the shapes are unknown ("?"), but layers and counts are listed.
    out = io.StringIO()
    d = tiny_discriminator(rng)
    d.summary(file=out)
    text = out.getvalue()
    assert "0: Conv2d(1->3, k=3, s=2, p=1)" in text and " ? " in text and f"total params: {d.num_params():,}" in text


# ------------------------------------------------------------------------------------------------ bad input


def test_wrong_channel_count_names_layer_expected_and_received(rng):
    d = tiny_discriminator(rng)
    with pytest.raises(ValueError, match=r"layer 0 Conv2d\(1->3, k=3, s=2, p=1\): expected input of shape "
                                         r"\(batch, 1, height, width\) with 1 channel\(s\), got \(2, 3, 7, 7\)"):
        d.forward(np.zeros((2, 3, 7, 7), np.float32))
    with pytest.raises(ValueError, match=r"layer 3 BatchNorm2d\(4\): expected input of shape \(batch, 4, height, "
                                         r"width\) with 4 channel\(s\), got \(2, 5, 2, 2\)"):
        d[3].forward(np.zeros((2, 5, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"ConvTranspose2d\(4->3.*expected input of shape \(batch, 4, height, "
                                         r"width\).*got \(1, 3, 2, 2\)"):
        tiny_generator(rng)[4].forward(np.zeros((1, 3, 2, 2), np.float32))


def test_input_that_is_not_4d_is_explained(rng):
    with pytest.raises(ValueError, match=r"layer 0 Conv2d\(1->3.*expected a 4-D input of shape \(batch, 1, height, "
                                         r"width\), got \(8, 784\).*nn.Reshape"):
        tiny_discriminator(rng).forward(np.zeros((8, 784), np.float32))
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected a 4-D input.*got \(8, 3\)"):
        nn.BatchNorm2d(3).forward(np.zeros((8, 3), np.float32))


def test_spatial_size_that_does_not_fit_is_explained(rng):
    conv = nn.Sequential(nn.Conv2d(1, 2, 5, stride=2, padding=1, rng=rng))
    with pytest.raises(ValueError, match=r"layer 0 Conv2d\(1->2, k=5, s=2, p=1\): input of shape \(2, 1, 2, 6\) is "
                                         r"too small: a 5x5 kernel does not fit in 2x6 padded by \(1, 1\) "
                                         r"\(need height >= 3 and width >= 3\)"):
        conv.forward(np.zeros((2, 1, 2, 6), np.float32))
    with pytest.raises(ValueError, match="too small"):
        conv.output_shape((2, 1, 2, 6))
    tconv = nn.ConvTranspose2d(1, 1, 1, stride=1, padding=1)
    with pytest.raises(ValueError, match=r"input of shape \(1, 1, 1, 1\) gives an empty output \(-1x-1\)"):
        tconv.forward(np.zeros((1, 1, 1, 1), np.float32))
    with pytest.raises(ValueError, match="output_padding must be >= 0 and smaller than stride"):
        nn.ConvTranspose2d(1, 1, 4, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        F.conv_transpose2d_forward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)), stride=1, output_padding=1)
    with pytest.raises(ValueError, match=r"need kernel_size >= 1, stride >= 1"):
        nn.Conv2d(1, 1, 3, stride=0)
    with pytest.raises(TypeError, match=r"kernel_size must be an int or a pair of ints, got 2.5"):
        nn.Conv2d(1, 1, 2.5)
    assert nn.Conv2d(1, 1, np.int64(3), stride=(np.int32(2), 1)).stride == (2, 1)  # NumPy integers are integers


def test_reshape_mismatch_dtype_and_backend_mixes_are_explained(rng):
    with pytest.raises(ValueError, match=r"layer 1 Reshape\(\(4, 2, 2\)\): cannot reshape input of shape \(2, 15\) "
                                         r"\(15 values per example\) to \(batch, 4, 2, 2\)"):
        nn.Sequential(nn.Dense(3, 15, rng=rng), nn.Reshape((4, 2, 2))).forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="at most one -1"):
        nn.Reshape((-1, -1))
    with pytest.raises(TypeError, match=r"float64 differs from the weights' float32.*model.to\(dtype='float64'\)"):
        nn.Conv2d(1, 1, 3).forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(TypeError, match="input dtype float16 differs") as refused:  # a dtype minigan refuses ...
        nn.Conv2d(1, 1, 3).forward(np.zeros((1, 1, 3, 3), np.float16))
    assert "model.to" not in str(refused.value)  # ... is never offered as the model's way out
    with pytest.raises(ValueError, match=r"conv2d: expected input of shape \(N, 2, H, W\)"):
        F.conv2d_forward(np.zeros((1, 3, 4, 4)), np.zeros((1, 2, 3, 3)))


def test_gpu_conv_layers_match_numpy_twins(backend_name, rng):
    if backend_name != "cupy":
        pytest.skip("parity is a CuPy-vs-NumPy test")
    for host in (tiny_generator(np.random.default_rng(1)), tiny_discriminator(np.random.default_rng(2))):
        device = copy.deepcopy(host).to("cupy")
        x = rng.standard_normal((6, 3) if host[0].__class__ is nn.Dense else (6, 1, 7, 7)).astype(np.float32)
        y_host, y_dev = host.forward(x), device.forward(to_device(x, "cupy"))
        np.testing.assert_allclose(to_numpy(y_dev), y_host, rtol=1e-4, atol=1e-5)
        dy = rng.standard_normal(y_host.shape).astype(np.float32)
        dx_host, dx_dev = host.backward(dy), device.backward(to_device(dy, "cupy"))
        np.testing.assert_allclose(to_numpy(dx_dev), dx_host, rtol=1e-3, atol=1e-4)
        for p, q in zip(host.params(), device.params()):
            np.testing.assert_allclose(to_numpy(q.grad), p.grad, rtol=1e-3, atol=1e-4)

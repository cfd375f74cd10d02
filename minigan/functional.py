"""Pure math: every op of minigan as a forward/backward pair of stateless functions.

Each op ``name`` has

* ``name_forward(inputs...) -> (out, cache)``: the result and whatever the backward pass needs;
* ``name_backward(dout, cache) -> grads``: the gradient of a scalar loss with respect to each differentiable
  input, given ``dout`` = d(loss)/d(out).

Nothing is stored between calls: the cache goes back to the caller, so two forward passes can never overwrite each
other's activations. These are the functions a student implements and a gradient check tests most easily
(``minigan.gradcheck.check_function``). The stateful wrappers in ``minigan.nn`` and ``minigan.losses`` call them.

Conventions: a batch of ``N`` examples is a 2-D array ``(N, features)``; weights are laid out ``W: (in, out)`` so a
dense layer is ``y = x @ W + b``. Everything is written with operators and array methods, so the same code runs on
NumPy and on CuPy; dtypes are preserved (float32 in, float32 out).
"""

from __future__ import annotations

import math
import numbers

from . import validate as V
from .backend import xp_of

# --------------------------------------------------------------------------------------------------- layers


def dense_forward(x, W, b=None):
    """Affine map ``y = x @ W + b``.

    Shapes: x ``(N, in)``, W ``(in, out)``, b ``(out,)`` or None; y ``(N, out)``. cache = ``(x, W)``.

    Derivation: docs/derivations.md#dense
    """
    if (getattr(x, "dtype", None) not in V.FLOAT_DTYPES or x.dtype != W.dtype or x.ndim != 2 or W.ndim != 2
            or x.shape[1] != W.shape[0] or type(x) is not type(W) or (b is not None and b.shape != W.shape[1:])):
        _check_dense(x, W, b)  # says what is wrong, or returns for a harmless case (a NumPy subclass)
    y = x @ W  # (N, out)
    if b is not None:
        y += b  # broadcast over the batch; in place, no temporary
    return y, (x, W)


def _check_dense(x, W, b):
    """The slow path of dense_forward's guard: say exactly what is wrong (or nothing, for a NumPy subclass)."""
    V.float_array("dense_forward", "x", x, ndim=2)
    V.float_array("dense_forward", "W", W, ndim=2)
    V.shape("dense_forward", "x", x, (None, W.shape[0]), f"W {tuple(W.shape)} takes {W.shape[0]} input features")
    V.same_backend("dense_forward", x=x, W=W, b=b)
    if x.dtype != W.dtype:
        raise TypeError(f"dense_forward: x has dtype {x.dtype} but W has {W.dtype}; minigan never promotes silently, "
                        f"convert one of them (x.astype(W.dtype))")
    if b is not None:
        V.shape("dense_forward", "b", b, (W.shape[1],))


def dense_backward(dy, cache):
    """Gradients of the affine map, from ``dy = dL/dy`` ``(N, out)``:

    ``dx = dy @ W.T`` ``(N, in)``, ``dW = x.T @ dy`` ``(in, out)``, ``db = sum_n dy[n]`` ``(out,)``.

    Each row of the batch adds its outer product ``x[n]^T dy[n]`` to dW, which is why dW is one GEMM over the batch.

    Derivation: docs/derivations.md#dense
    """
    x, W = cache
    dx = dy @ W.T  # (N, in)
    dW = x.T @ dy  # (in, out)
    db = dy.sum(axis=0)  # (out,)
    return dx, dW, db


def batchnorm_forward(x, gamma, beta, eps=1e-5):
    """Batch normalisation with the batch's own statistics (Ioffe & Szegedy, 2015), per feature:

    ``mu = mean_n x``, ``var = mean_n (x - mu)^2`` (biased), ``xhat = (x - mu) / sqrt(var + eps)``,
    ``y = gamma * xhat + beta``.

    Shapes: x ``(N, F)`` with N >= 2, gamma and beta ``(F,)``; y ``(N, F)``. Returns ``(y, cache)`` like every op;
    cache = ``(xhat, gamma, inv_std, mu, var)``: the backward pass needs the first three, and ``nn.BatchNorm1d``
    reads the batch statistics ``mu`` and ``var`` (``cache[3]``, ``cache[4]``) for its running averages.

    Derivation: docs/derivations.md#batch-norm
    """
    _check_batchnorm(x, gamma, beta)
    mu = x.mean(axis=0)  # (F,)
    centred = x - mu  # (N, F)
    var = (centred * centred).mean(axis=0)  # (F,) biased: the normalisation uses the batch as it is
    inv_std = 1.0 / xp_of(x).sqrt(var + eps)  # (F,)
    xhat = centred * inv_std  # (N, F)
    y = xhat * gamma + beta  # (N, F)
    return y, (xhat, gamma, inv_std, mu, var)


def _check_batchnorm(x, gamma, beta):
    V.float_array("batchnorm_forward", "x", x, ndim=2)
    if x.shape[0] < 2:
        raise ValueError(f"batchnorm_forward: x must have at least 2 rows to have a variance, got shape {x.shape}")
    for name, a in (("gamma", gamma), ("beta", beta)):
        V.float_array("batchnorm_forward", name, a)
        V.shape("batchnorm_forward", name, a, (x.shape[1],))
    V.same_backend("batchnorm_forward", x=x, gamma=gamma, beta=beta)


def batchnorm_backward(dy, cache):
    """Gradients of batch normalisation from ``dy`` ``(N, F)``; returns ``(dx, dgamma, dbeta)``:

    ``dbeta = sum_n dy``, ``dgamma = sum_n dy * xhat``, and, because mu and var depend on every row,
    ``dx = gamma * inv_std / N * (N * dy - dbeta - xhat * dgamma)`` -- each row's gradient loses the batch mean of
    ``dy`` and the part of ``dy`` along ``xhat``.

    Derivation: docs/derivations.md#batch-norm
    """
    xhat, gamma, inv_std, _, _ = cache  # mu and var are for the running statistics only
    n = dy.shape[0]
    dbeta = dy.sum(axis=0)  # (F,)
    dgamma = (dy * xhat).sum(axis=0)  # (F,)
    dx = (gamma * inv_std / n) * (n * dy - dbeta - xhat * dgamma)  # (N, F)
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------------- activations


def relu_forward(x, out=None):
    """``y = max(x, 0)``, elementwise. cache = y (its sign is the mask the backward pass needs).

    Like every activation here, ``out`` names the array to write y into; ``out=x`` overwrites x, the in-place form
    ``Sequential`` uses on a pre-activation that nobody else holds (it saves a buffer per layer).

    Derivation: docs/derivations.md#activations
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("relu_forward", "x", x, ndim=-1)
    y = xp_of(x).maximum(x, 0, out=out)  # same shape and dtype as x
    return y, y


def relu_backward(dy, cache):
    """``dx = dy * [y > 0]``. At exactly 0 the subgradient 0 is used (the convention of every framework).

    Derivation: docs/derivations.md#activations
    """
    y = cache
    return dy * (y > 0)


def leaky_relu_forward(x, slope=0.2, out=None):
    """``y = x`` where ``x > 0``, else ``slope * x`` (Maas et al., 2013). cache = ``(y, slope)``.

    ``slope`` must be a finite number >= 0 (ValueError otherwise): the backward pass takes its mask from the
    output, ``y > 0``, which is exactly ``x > 0`` only for a non-negative slope; keeping y instead of x is what lets
    the forward run in place (``out=x``). (A negative slope would make ``y > 0`` where ``x < 0``: a wrong gradient.)
    For ``0 <= slope < 1`` the result equals ``max(x, slope * x)``, which needs one temporary instead of a mask.
    ``out``: where to write y (``out=x``: in place), as for ``relu_forward``.

    Derivation: docs/derivations.md#activations
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("leaky_relu_forward", "x", x, ndim=-1)
    check_leaky_slope(slope)
    xp = xp_of(x)
    if 0 <= slope < 1:
        scaled = x * slope  # (N, F)
        y = xp.maximum(x, scaled, out=scaled if out is None else out)
    else:
        y = xp.where(x > 0, x, x * slope)
        if out is not None:
            out[...] = y
            y = out
    return y, (y, slope)


def check_leaky_slope(slope) -> float:
    """``slope`` as a float; a ValueError unless it is a finite number >= 0 (see ``leaky_relu_forward``)."""
    if isinstance(slope, bool) or not isinstance(slope, numbers.Real):  # "0.2" or True is a slip, not a slope
        raise TypeError(f"leaky_relu: slope must be a number, got {type(slope).__name__} {slope!r}")
    value = float(slope)
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"leaky_relu: slope must be a finite number >= 0, got {slope!r}. The backward pass reads "
                         "its mask from the output (y > 0), which equals x > 0 only for a non-negative slope.")
    return value


def leaky_relu_backward(dy, cache):
    """``dx = dy`` where ``x > 0``, else ``slope * dy``. ``y > 0`` exactly where ``x > 0`` (for slope > 0).

    Written as ``dx = dy * (slope + (1 - slope) [y > 0])``: the factor is exactly 1 or ``slope``, and arithmetic on
    a 0/1 mask runs ~15x faster on the CPU than ``where(y > 0, dy, slope * dy)``, whose per-element branch on a
    random mask is mispredicted half the time.

    Derivation: docs/derivations.md#activations
    """
    y, slope = cache
    factor = (y > 0).astype(dy.dtype)  # (N, F): 1 where x > 0, else 0
    factor *= 1 - slope
    factor += slope  # 1 where x > 0, else slope
    factor *= dy  # dx, computed in the factor's buffer
    return factor


def sigmoid_forward(x, out=None):
    """Logistic function ``y = 1 / (1 + exp(-x))``, computed without overflow.

    With ``e = exp(-|x|)`` (always in (0, 1], so it cannot overflow): ``y = 1 / (1 + e)`` for ``x >= 0`` and
    ``y = e / (1 + e)`` for ``x < 0``. The naive form overflows ``exp(-x)`` for x below about -89 in float32.
    cache = y. ``out``: where to write y (``out=x``: in place), as for ``relu_forward``.

    Derivation: docs/derivations.md#activations
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("sigmoid_forward", "x", x, ndim=-1)
    xp = xp_of(x)
    positive = x >= 0  # (N, F) mask, taken before an in-place write can change x
    y = xp.abs(x, out=out)  # (N, F), same dtype as x; the steps below reuse this buffer
    xp.negative(y, out=y)
    xp.exp(y, out=y)  # e = exp(-|x|)
    denominator = y + 1  # 1 + e
    # numerator: 1 where x >= 0, e elsewhere. Since 0 <= e <= 1, that is max(e, 1) where x >= 0 and max(e, 0)
    # elsewhere: max(e, mask) with the mask read as 0/1. Exactly equal to where(x >= 0, 1, e), and ~20x faster
    # on the CPU than a masked write, whose per-element branch on a random mask is mispredicted half the time.
    xp.maximum(y, positive, out=y)
    y /= denominator
    return y, y


def sigmoid_backward(dy, cache):
    """``dx = dy * y * (1 - y)``, since ``sigmoid'(x) = sigmoid(x) (1 - sigmoid(x))``.

    Derivation: docs/derivations.md#activations
    """
    y = cache
    dx = 1 - y  # (N, F), then reused in place
    dx *= y
    dx *= dy
    return dx


def tanh_forward(x, out=None):
    """``y = tanh(x)``. cache = y. ``out``: where to write y (``out=x``: in place), as for ``relu_forward``.

    Derivation: docs/derivations.md#activations
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("tanh_forward", "x", x, ndim=-1)
    y = xp_of(x).tanh(x, out=out)
    return y, y


def tanh_backward(dy, cache):
    """``dx = dy * (1 - y^2)``, since ``tanh'(x) = 1 - tanh(x)^2``.

    Derivation: docs/derivations.md#activations
    """
    y = cache
    dx = y * y  # (N, F), then reused in place
    xp_of(dy).subtract(1, dx, out=dx)
    dx *= dy
    return dx


# --------------------------------------------------------------------------------------------------- losses
# Every loss is the MEAN over all elements and returns a 0-d array of the prediction's dtype. Its backward takes
# ``dloss`` (a Python float, 1.0 when the loss is the end of the graph) and returns dL/dpred only: targets are data.


def _count(name, pred) -> int:
    """The number of elements a loss averages over; a ValueError for an empty batch (a mean of nothing)."""
    if pred.size == 0:
        raise ValueError(f"{name}: empty batch (prediction of shape {tuple(pred.shape)}); a loss is a mean over the "
                         "batch and needs at least one element. Check the batch size and the data loader.")
    return pred.size


def _check_target(name, pred, target, pred_name="pred"):
    """Same shape as pred, and the same dtype (a float64 target would silently promote a float32 loss)."""
    V.float_array(name, pred_name, pred, nonempty=True)
    if not hasattr(target, "shape"):
        raise TypeError(f"{name}: target must be an array shaped like {pred_name} {tuple(pred.shape)}, got "
                        f"{type(target).__name__}")
    V.same_backend(name, **{pred_name: pred, "target": target})
    _count(name, pred)
    if tuple(target.shape) != tuple(pred.shape):
        raise ValueError(
            f"{name}: target has shape {tuple(target.shape)} but the prediction has shape {tuple(pred.shape)}; "
            "they must match element for element (e.g. labels of shape (N, 1) for logits of shape (N, 1))"
        )
    return target.astype(pred.dtype, copy=False)


def softplus(x):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``.

    Derivation: docs/derivations.md#bce-from-logits
    """
    xp = xp_of(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def bce_with_logits_forward(z, y):
    """Binary cross-entropy on logits: ``L = mean(-y log s(z) - (1 - y) log(1 - s(z)))`` with s the sigmoid.

    Using ``-log s(z) = softplus(-z)`` and ``-log(1 - s(z)) = softplus(z)``, each term is
    ``softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|))``: finite, and warning-free, for any logit.
    Shapes: z and y ``(N, ...)``, equal; L is 0-d. cache = ``(z, y)``.

    Derivation: docs/derivations.md#bce-from-logits
    """
    y = _check_target("bce_with_logits", z, y, "z")
    loss = (softplus(z) - y * z).mean()
    return xp_of(z).asarray(loss, dtype=z.dtype), (z, y)


def bce_with_logits_backward(dloss, cache):
    """``dL/dz = dloss * (s(z) - y) / n`` with n the number of elements: the famous "prediction minus target".

    Derivation: docs/derivations.md#bce-from-logits
    """
    z, y = cache
    n = _count("bce_with_logits", z)
    p, _ = sigmoid_forward(z)
    return (p - y) * (dloss / n)


def bce_forward(p, y):
    """Binary cross-entropy on probabilities: ``L = -mean(y log p + (1 - y) log(1 - p))``.

    Kept for teaching: this is the UNSTABLE form. A sigmoid that saturates to exactly 0 or 1 (float32 does so for
    |logit| > ~17) makes ``log`` return -inf and the gradient divide by zero. Use ``bce_with_logits`` in real code.
    cache = ``(p, y)``.

    Derivation: docs/derivations.md#bce-on-probabilities
    """
    xp = xp_of(p)
    y = _check_target("bce", p, y, "p")
    loss = -(y * xp.log(p) + (1 - y) * xp.log(1 - p)).mean()
    return xp.asarray(loss, dtype=p.dtype), (p, y)


def bce_backward(dloss, cache):
    """``dL/dp = dloss * (p - y) / (p (1 - p)) / n``; infinite where p reaches 0 or 1 (see ``bce_forward``).

    Derivation: docs/derivations.md#bce-on-probabilities
    """
    p, y = cache
    return (p - y) / (p * (1 - p)) * (dloss / _count("bce", p))


def mse_forward(pred, target):
    """Mean squared error ``L = mean((pred - target)^2)`` over all elements. cache = ``pred - target``.

    Derivation: docs/derivations.md#mse
    """
    target = _check_target("mse", pred, target)
    diff = pred - target  # same shape as pred
    return xp_of(pred).asarray((diff * diff).mean(), dtype=pred.dtype), diff


def mse_backward(dloss, cache):
    """``dL/dpred = dloss * 2 (pred - target) / n``.

    Derivation: docs/derivations.md#mse
    """
    diff = cache
    return diff * (2 * dloss / _count("mse", diff))


def softmax_cross_entropy_forward(logits, labels):
    """Softmax cross-entropy with integer class labels: ``L = mean_n(logsumexp(z_n) - z_n[label_n])``.

    ``logsumexp`` is computed as ``m + log(sum(exp(z - m)))`` with ``m = max(z)``, so no exp can overflow.
    Shapes: logits ``(N, C)``, labels ``(N,)`` integers in ``[0, C)``; L is 0-d. cache = ``(probs, labels)``.

    Derivation: docs/derivations.md#softmax-cross-entropy
    """
    V.float_array("softmax_cross_entropy", "logits", logits, ndim=2, nonempty=True)
    V.same_backend("softmax_cross_entropy", logits=logits, labels=labels)
    xp = xp_of(logits)
    _count("softmax_cross_entropy", logits)
    if labels.shape != (logits.shape[0],) or labels.dtype.kind not in "iu":
        raise ValueError(
            f"softmax_cross_entropy: labels must be integers of shape ({logits.shape[0]},), got "
            f"{labels.dtype} of shape {tuple(labels.shape)}"
        )
    low, high = int(labels.min()), int(labels.max())  # one host read each: a bad label would index out of range
    if low < 0 or high >= logits.shape[1]:
        raise ValueError(f"softmax_cross_entropy: labels must be class indices in [0, {logits.shape[1]}) for "
                         f"{logits.shape[1]} logits per row, got values from {low} to {high}")
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), max 0 per row
    exp = xp.exp(shifted)  # (N, C)
    sum_exp = exp.sum(axis=1, keepdims=True)  # (N, 1)
    rows = xp.arange(logits.shape[0])
    log_probs_true = shifted[rows, labels] - xp.log(sum_exp[:, 0])  # (N,)
    loss = xp.asarray(-log_probs_true.mean(), dtype=logits.dtype)
    return loss, (exp / sum_exp, labels)


def softmax_cross_entropy_backward(dloss, cache):
    """``dL/dz = dloss * (softmax(z) - onehot(label)) / N``.

    Derivation: docs/derivations.md#softmax-cross-entropy
    """
    probs, labels = cache
    xp = xp_of(probs)
    dz = probs.copy()  # (N, C)
    dz[xp.arange(probs.shape[0]), labels] -= 1
    dz *= dloss / probs.shape[0]
    return dz


# ============================================================================================== convolutions
# Images are NCHW arrays, (batch, channels, height, width), and every formula and argument name follows PyTorch's
# ``conv2d`` / ``conv_transpose2d`` so the two can be read side by side.
#
# Both convolutions are one matrix product between the weights and an "im2col" matrix whose columns are the image
# patches the kernel sees.
#
# Memory order. The GEMM writes a (C, H*W*N) matrix: channels first and the batch LAST, the (C, H, W, N) order of
# Krizhevsky's cuda-convnet. The user always sees an NCHW array (``out.shape == (N, C, H, W)``), but it is a
# transposed *view* of that buffer, so no copy is made; and when such an array comes back (as the next layer's
# input, or as ``dout``), im2col and ``to_channel_matrix`` read it in the order it is stored, again without a
# transposing copy. The batch goes last because im2col and col2im copy strided slices: with N innermost, each slice
# is a run of N contiguous numbers (64 at batch 64), not a run of OW (7 to 14) pixels, and NumPy's per-run overhead
# is paid 5-10x less often (col2im measured ~3x faster than with (C, N, H, W)).


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a convolution, PyTorch's formula:
    ``floor((size + 2 padding - kernel) / stride) + 1``.

    Positions the last stride step does not reach are dropped, as in PyTorch (k5 s2 p2 maps 28 to 14). Less than 1
    means the kernel does not fit in the padded input.
    """
    return (size + 2 * padding - kernel_size) // stride + 1


def conv_transpose_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                               output_padding: int = 0) -> int:
    """Output height (or width) of a transposed convolution, PyTorch's formula:
    ``(size - 1) stride - 2 padding + kernel + output_padding``.

    With ``output_padding = 0`` it is the smallest input size that a convolution with the same kernel, stride and
    padding maps back to ``size``; ``output_padding < stride`` picks among the ``stride`` sizes that all do.
    """
    return (size - 1) * stride - 2 * padding + kernel_size + output_padding


def _pair(value, name):
    """``k`` or ``(kh, kw)`` -> ``(kh, kw)`` as Python ints, as PyTorch accepts both."""
    try:  # __index__ accepts Python and NumPy integers, and refuses 2.5
        pair = (value.__index__(),) * 2 if not hasattr(value, "__len__") else tuple(v.__index__() for v in value)
    except (AttributeError, TypeError):
        pair = ()
    if len(pair) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return pair


def to_channel_matrix(x):
    """x ``(N, C, H, W)`` as the ``(C, H*W*N)`` matrix the convolution GEMMs use (column order h, w, n).

    A free view when x is stored in (C, H, W, N) order, as every convolution output here is; a copy otherwise.
    """
    return x.transpose(1, 2, 3, 0).reshape(x.shape[1], -1)


def from_channel_matrix(m, n, h, w):
    """The inverse of ``to_channel_matrix``: ``(C, H*W*N)`` -> an ``(N, C, H, W)`` view, no copy."""
    return m.reshape(m.shape[0], h, w, n).transpose(3, 0, 1, 2)


def im2col(x, kernel_size, stride=1, padding=0):
    """Unfold the image patches a kernel sees into the columns of a matrix.

    x ``(N, C, H, W)`` -> cols ``(C * kH * kW, OH * OW * N)`` with ``OH = conv_output_size(H, kH, stride, padding)``:
    column ``(oh, ow, n)`` holds the patch under the kernel placed at output position ``(oh, ow)`` of image n, row
    ``(c, i, j)`` is kernel tap ``(i, j)`` of channel c, so that ``W.reshape(C_out, -1) @ cols`` is the convolution
    (as a ``(C_out, OH*OW*N)`` matrix, see ``from_channel_matrix``).

    One strided copy per kernel offset ``(i, j)``: the input pixels that tap (i, j) sees at every output position are
    the slice ``[i : i + stride*OH : stride, j : j + stride*OW : stride]`` of the padded image's rows and columns,
    of shape (C, OH, OW, N) in the (C, H, W, N) order used here; kH * kW slice copies replace N * OH * OW patch
    copies.

    Derivation: docs/derivations.md#conv2d
    """
    xp = xp_of(x)
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    n, c, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    if oh < 1 or ow < 1:
        raise ValueError(f"im2col: a {kh}x{kw} kernel does not fit in a {h}x{w} input padded by {padding}")
    xc = x.transpose(1, 2, 3, 0)  # (C, H, W, N): a view, contiguous when x came out of a minigan conv
    if ph or pw:
        xpad = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)  # (C, Hp, Wp, N)
        xpad[:, ph:ph + h, pw:pw + w] = xc
    else:
        xpad = xc
    cols = xp.empty((c, kh, kw, oh, ow, n), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = xpad[:, i:i + sh * oh:sh, j:j + sw * ow:sw]  # (C, OH, OW, N)
    return cols.reshape(c * kh * kw, oh * ow * n)


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of ``im2col``: add every column's patch back to where it came from.

    cols ``(C * kH * kW, OH * OW * N)`` -> x ``(N, C, H, W)``, ``x_shape = (N, C, H, W)``. A pixel covered by several
    patches (overlapping kernels, stride < kernel) receives the sum of their entries, which is exactly what the
    chain rule asks of im2col's backward pass: ``<im2col(x), cols> == <x, col2im(cols)>`` for all x and cols.

    Fast: one strided slice add per kernel offset (kH * kW adds of (C, OH, OW, N) blocks). Within one offset the
    slice's positions are distinct, so a plain ``+=`` is exact; no ``np.add.at`` (an unbuffered scatter, tens of
    times slower) is needed. The result is an NCHW view of a (C, H, W, N) buffer (see the section comment).

    Derivation: docs/derivations.md#conv2d
    """
    xp = xp_of(cols)
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    n, c, h, w = x_shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = cols.reshape(c, kh, kw, oh, ow, n)
    xpad = xp.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=cols.dtype)  # (C, Hp, Wp, N)
    for i in range(kh):
        for j in range(kw):
            xpad[:, i:i + sh * oh:sh, j:j + sw * ow:sw] += cols[:, i, j]  # (C, OH, OW, N)
    return xpad[:, ph:ph + h, pw:pw + w].transpose(3, 0, 1, 2)  # (N, C, H, W) view


def conv2d_forward(x, W, b=None, stride=1, padding=0):
    """2-D convolution (cross-correlation, as in every framework), PyTorch's ``conv2d``:

    ``y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, stride*p + i, stride*q + j]``

    with xpad the input zero-padded by ``padding`` on each side. Shapes: x ``(N, C_in, H, W)``, W
    ``(C_out, C_in, kH, kW)``, b ``(C_out,)`` or None; y ``(N, C_out, OH, OW)`` with
    ``OH = floor((H + 2 padding - kH) / stride) + 1`` (``conv_output_size``). ``stride`` and ``padding``: an int or
    an (h, w) pair.

    As one GEMM: ``y = W.reshape(C_out, C_in*kH*kW) @ im2col(x)``, a ``(C_out, OH*OW*N)`` product.
    cache = ``(cols, W, x.shape, stride, padding)``.

    Derivation: docs/derivations.md#conv2d
    """
    c_out, c_in, kh, kw = W.shape
    if x.ndim != 4 or x.shape[1] != c_in:
        raise ValueError(f"conv2d: expected input of shape (N, {c_in}, H, W) for weights of shape "
                         f"{tuple(W.shape)}, got {tuple(x.shape)}")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    n, _, h, w = x.shape
    oh, ow = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    cols = im2col(x, (kh, kw), (sh, sw), (ph, pw))  # (C_in*kH*kW, OH*OW*N)
    y = W.reshape(c_out, -1) @ cols  # (C_out, OH*OW*N): the one GEMM
    if b is not None:
        y += b.reshape(c_out, 1)  # broadcast over every position, in place
    y = from_channel_matrix(y, n, oh, ow)  # (N, C_out, OH, OW) view
    return y, (cols, W, tuple(x.shape), (sh, sw), (ph, pw))


def conv2d_backward(dy, cache):
    """Gradients of ``conv2d`` from ``dy`` ``(N, C_out, OH, OW)``; returns ``(dx, dW, db)``.

    With ``dY = dy`` arranged as ``(C_out, OH*OW*N)`` and ``cols = im2col(x)``, the forward pass is the dense
    layer ``Y = Wm @ cols``, so (as for ``dense_backward``): ``dW = dY @ cols.T`` ``(C_out, C_in*kH*kW)``,
    ``dcols = Wm.T @ dY``, ``dx = col2im(dcols)`` ``(N, C_in, H, W)`` (each input pixel sums the gradients of every
    patch it was copied into), ``db = sum_{n, p, q} dy`` ``(C_out,)``.

    Derivation: docs/derivations.md#conv2d
    """
    cols, W, x_shape, stride, padding = cache
    c_out = W.shape[0]
    dy2 = to_channel_matrix(dy)  # (C_out, OH*OW*N)
    db = dy2.sum(axis=1)  # (C_out,)
    dW = (dy2 @ cols.T).reshape(W.shape)  # (C_out, C_in, kH, kW)
    dcols = W.reshape(c_out, -1).T @ dy2  # (C_in*kH*kW, OH*OW*N)
    dx = col2im(dcols, x_shape, W.shape[2:], stride, padding)  # (N, C_in, H, W)
    return dx, dW, db


def conv_transpose2d_forward(x, W, b=None, stride=1, padding=0, output_padding=0):
    """Transposed convolution, PyTorch's ``conv_transpose2d``: the backward pass of ``conv2d`` with respect to its
    input, run forward.

    ``W`` ``(C_in, C_out, kH, kW)`` is PyTorch's layout, and the very array a ``conv2d`` from C_out down to C_in
    channels would use: this op maps that convolution's output space back to its input space. Where a convolution
    gathers a window into one pixel, the transposed one *scatters*: every input pixel ``x[n, c, h, w]`` adds
    ``x[n, c, h, w] * W[c]`` into the output window whose corner is ``(stride*h - padding, stride*w - padding)``,
    and overlapping windows add up:

    ``y[n, o, stride*h + i - padding, stride*w + j - padding] += sum_c x[n, c, h, w] * W[c, o, i, j]``, plus ``b[o]``.

    Shapes: x ``(N, C_in, H, W)``, W ``(C_in, C_out, kH, kW)``, b ``(C_out,)`` or None; y ``(N, C_out, OH, OW)`` with
    ``OH = (H - 1) stride - 2 padding + kH + output_padding`` (``conv_transpose_output_size``); ``output_padding``
    (< stride) adds rows and columns at the bottom and right that only the bias reaches.

    As one GEMM and a col2im: ``cols = W.reshape(C_in, C_out*kH*kW).T @ X`` with X the input as ``(C_in, H*W*N)``,
    then ``y = col2im(cols)``. That is line for line ``conv2d_backward``'s dx. The adjoint identity
    ``<conv2d(u, W), v> == <u, conv_transpose2d(v, W)>`` (no bias) holds for all u and v.
    cache = ``(x, W, stride, padding)``.

    Derivation: docs/derivations.md#conv-transpose2d
    """
    c_in, c_out, kh, kw = W.shape
    if x.ndim != 4 or x.shape[1] != c_in:
        raise ValueError(f"conv_transpose2d: expected input of shape (N, {c_in}, H, W) for weights of shape "
                         f"{tuple(W.shape)}, got {tuple(x.shape)}")
    n, _, h, w = x.shape
    (sh, sw), (ph, pw), (qh, qw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(output_padding,
                                                                                              "output_padding")
    if not (0 <= qh < sh and 0 <= qw < sw):
        raise ValueError(f"conv_transpose2d: output_padding must be smaller than stride, got output_padding="
                         f"{output_padding}, stride={stride}")
    oh = conv_transpose_output_size(h, kh, sh, ph, qh)
    ow = conv_transpose_output_size(w, kw, sw, pw, qw)
    if oh < 1 or ow < 1:
        raise ValueError(f"conv_transpose2d: output size {oh}x{ow} < 1 for a {h}x{w} input, kernel {kh}x{kw}, "
                         f"stride {stride}, padding {padding}")
    x2 = to_channel_matrix(x)  # (C_in, H*W*N)
    cols = W.reshape(c_in, -1).T @ x2  # (C_out*kH*kW, H*W*N): the one GEMM
    y = col2im(cols, (n, c_out, oh, ow), (kh, kw), (sh, sw), (ph, pw))  # (N, C_out, OH, OW) view
    if b is not None:
        y += b.reshape(1, c_out, 1, 1)
    return y, (x, W, (sh, sw), (ph, pw))


def conv_transpose2d_backward(dy, cache):
    """Gradients of ``conv_transpose2d`` from ``dy`` ``(N, C_out, OH, OW)``; returns ``(dx, dW, db)``.

    The forward pass is ``y = col2im(Wm.T @ X)``; col2im's adjoint is im2col, so with ``dcols = im2col(dy)``
    ``(C_out*kH*kW, H*W*N)``: ``dX = Wm @ dcols`` (a plain ``conv2d`` of dy with the same W: the backward of a
    transposed convolution is a convolution), ``dW = X @ dcols.T`` reshaped to ``(C_in, C_out, kH, kW)``,
    ``db = sum_{n, p, q} dy``.

    Derivation: docs/derivations.md#conv-transpose2d
    """
    x, W, stride, padding = cache
    c_in, c_out, kh, kw = W.shape
    n, _, h, w = x.shape
    dcols = im2col(dy, (kh, kw), stride, padding)  # (C_out*kH*kW, H*W*N); rows output_padding added are unread
    x2 = to_channel_matrix(x)  # (C_in, H*W*N)
    dx = from_channel_matrix(W.reshape(c_in, -1) @ dcols, n, h, w)  # (N, C_in, H, W) view
    dW = (x2 @ dcols.T).reshape(W.shape)  # (C_in, C_out, kH, kW)
    db = dy.sum(axis=(0, 2, 3))  # (C_out,)
    return dx, dW, db


def batchnorm2d_forward(x, gamma, beta, eps=1e-5, running_mean=None, running_var=None):
    """Batch normalisation of each channel of an image batch over N, H and W (Ioffe & Szegedy, 2015, sec. 3.2):
    ``nn.BatchNorm2d``'s math. It is batch norm of ``(N*H*W, C)`` rows, one feature per channel.

    Training mode (``running_mean`` and ``running_var`` None): with ``M = N*H*W`` values per channel,
    ``mu = mean x``, ``var = mean (x - mu)^2`` (biased), ``xhat = (x - mu) / sqrt(var + eps)``,
    ``y = gamma * xhat + beta``, each statistic per channel. Eval mode (both given): the same with ``mu``, ``var``
    replaced by the running averages, so y is an affine function of x, element by element.

    Shapes: x ``(N, C, H, W)`` (``N*H*W >= 2`` in training mode), gamma, beta, running stats ``(C,)``; y like x.
    Returns ``(y, cache)``; cache = ``(xhat, gamma, inv_std, mu, var, training)``: ``mu`` and ``var`` are the
    batch statistics (training mode; ``nn.BatchNorm2d`` reads them for its running averages) or None.

    Derivation: docs/derivations.md#batchnorm2d
    """
    c = x.shape[1]
    training = running_mean is None and running_var is None
    if training:
        mu = x.mean(axis=(0, 2, 3))  # (C,)
        centred = x - mu.reshape(1, c, 1, 1)  # (N, C, H, W)
        var = (centred * centred).mean(axis=(0, 2, 3))  # (C,) biased
    else:
        mu, var = running_mean, running_var
        centred = x - mu.reshape(1, c, 1, 1)  # (N, C, H, W)
    inv_std = 1.0 / xp_of(x).sqrt(var + eps)  # (C,)
    xhat = centred
    xhat *= inv_std.reshape(1, c, 1, 1)  # (N, C, H, W), in the buffer of `centred`
    y = xhat * gamma.reshape(1, c, 1, 1)  # (N, C, H, W)
    y += beta.reshape(1, c, 1, 1)
    stats = (mu, var) if training else (None, None)
    return y, (xhat, gamma, inv_std, *stats, training)


def batchnorm2d_backward(dy, cache):
    """Gradients of ``batchnorm2d`` from ``dy`` ``(N, C, H, W)``; returns ``(dx, dgamma, dbeta)``.

    Sums run over every axis but the channel (``M = N*H*W`` values): ``dbeta = sum dy``, ``dgamma = sum dy * xhat``;
    training mode: ``dx = gamma * inv_std / M * (M * dy - dbeta - xhat * dgamma)`` (batch norm's formula with M rows);
    eval mode: ``dx = dy * gamma * inv_std``.

    Derivation: docs/derivations.md#batchnorm2d
    """
    xhat, gamma, inv_std, _, _, training = cache
    c = dy.shape[1]
    m = dy.size // c  # N*H*W values per channel
    dbeta = dy.sum(axis=(0, 2, 3))  # (C,)
    dgamma = (dy * xhat).sum(axis=(0, 2, 3))  # (C,)
    scale = (gamma * inv_std).reshape(1, c, 1, 1)  # (1, C, 1, 1)
    if not training:
        return dy * scale, dgamma, dbeta
    dx = xhat * (-dgamma / m).reshape(1, c, 1, 1)  # (N, C, H, W)
    dx += dy
    dx -= (dbeta / m).reshape(1, c, 1, 1)
    dx *= scale  # gamma * inv_std * (dy - dbeta/M - xhat * dgamma/M)
    return dx, dgamma, dbeta


def reshape_forward(x, shape):
    """``y = x.reshape(N, *shape)``: keep the batch axis, regroup the rest (e.g. ``(N, 128*7*7)`` ->
    ``(N, 128, 7, 7)``); ``shape`` may hold one -1. cache = x's shape. A view when x's memory order allows.
    """
    return x.reshape(x.shape[0], *shape), tuple(x.shape)


def reshape_backward(dy, cache):
    """``dx = dy.reshape(x.shape)``: a reshape moves no value, so the gradient moves back unchanged."""
    return dy.reshape(cache)


def flatten_forward(x):
    """``y = x.reshape(N, -1)``: ``(N, C, H, W)`` -> ``(N, C*H*W)``, in C order (PyTorch's ``flatten(1)``)."""
    return reshape_forward(x, (-1,))


def flatten_backward(dy, cache):
    """``dx = dy.reshape(x.shape)``."""
    return reshape_backward(dy, cache)

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

from . import validate as V
from .backend import xp_of

# --------------------------------------------------------------------------------------------------- layers


def dense_forward(x, W, b=None):
    """Affine map ``y = x @ W + b``.

    Shapes: x ``(N, in)``, W ``(in, out)``, b ``(out,)`` or None; y ``(N, out)``. cache = ``(x, W)``.
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

    Shapes: x ``(N, F)`` with N >= 2, gamma and beta ``(F,)``; y ``(N, F)``. cache = ``(xhat, gamma, inv_std)``;
    ``mu`` and ``var`` are returned too (``(y, cache, mu, var)``) for the running averages ``nn.BatchNorm1d`` keeps.
    """
    _check_batchnorm(x, gamma, beta)
    mu = x.mean(axis=0)  # (F,)
    centred = x - mu  # (N, F)
    var = (centred * centred).mean(axis=0)  # (F,) biased: the normalisation uses the batch as it is
    inv_std = 1.0 / xp_of(x).sqrt(var + eps)  # (F,)
    xhat = centred * inv_std  # (N, F)
    y = xhat * gamma + beta  # (N, F)
    return y, (xhat, gamma, inv_std), mu, var


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
    """
    xhat, gamma, inv_std = cache
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
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("relu_forward", "x", x, ndim=-1)
    y = xp_of(x).maximum(x, 0, out=out)  # same shape and dtype as x
    return y, y


def relu_backward(dy, cache):
    """``dx = dy * [y > 0]``. At exactly 0 the subgradient 0 is used (the convention of every framework)."""
    y = cache
    return dy * (y > 0)


def leaky_relu_forward(x, slope=0.2, out=None):
    """``y = x`` where ``x > 0``, else ``slope * x`` (Maas et al., 2013). cache = ``(y, slope)``.

    For ``0 <= slope < 1`` this equals ``max(x, slope * x)``, which needs one temporary instead of a mask.
    ``out``: where to write y (``out=x``: in place), as for ``relu_forward``.
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("leaky_relu_forward", "x", x, ndim=-1)
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


def leaky_relu_backward(dy, cache):
    """``dx = dy`` where ``x > 0``, else ``slope * dy``. ``y > 0`` exactly where ``x > 0`` (for slope > 0).

    Written as ``dx = dy * (slope + (1 - slope) [y > 0])``: the factor is exactly 1 or ``slope``, and arithmetic on
    a 0/1 mask runs ~15x faster on the CPU than ``where(y > 0, dy, slope * dy)``, whose per-element branch on a
    random mask is mispredicted half the time.
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
    """
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("sigmoid_forward", "x", x, ndim=-1)
    xp = xp_of(x)
    positive = x >= 0  # (N, F) mask, taken before an in-place write can change x
    y = xp.abs(x, out=out)  # (N, F), same dtype as x; the steps below reuse this buffer
    xp.negative(y, out=y)
    xp.exp(y, out=y)  # e = exp(-|x|)
    denominator = y + 1  # 1 + e
    xp.copyto(y, 1, where=positive)  # numerator: 1 where x >= 0, e elsewhere
    y /= denominator
    return y, y


def sigmoid_backward(dy, cache):
    """``dx = dy * y * (1 - y)``, since ``sigmoid'(x) = sigmoid(x) (1 - sigmoid(x))``."""
    y = cache
    dx = 1 - y  # (N, F), then reused in place
    dx *= y
    dx *= dy
    return dx


def tanh_forward(x, out=None):
    """``y = tanh(x)``. cache = y. ``out``: where to write y (``out=x``: in place), as for ``relu_forward``."""
    if getattr(x, "dtype", None) not in V.FLOAT_DTYPES or not x.ndim:
        V.float_array("tanh_forward", "x", x, ndim=-1)
    y = xp_of(x).tanh(x, out=out)
    return y, y


def tanh_backward(dy, cache):
    """``dx = dy * (1 - y^2)``, since ``tanh'(x) = 1 - tanh(x)^2``."""
    y = cache
    dx = y * y  # (N, F), then reused in place
    xp_of(dy).subtract(1, dx, out=dx)
    dx *= dy
    return dx


# --------------------------------------------------------------------------------------------------- losses
# Every loss is the MEAN over all elements and returns a 0-d array of the prediction's dtype. Its backward takes
# ``dloss`` (a Python float, 1.0 when the loss is the end of the graph) and returns dL/dpred only: targets are data.


def _check_target(name, pred, target, pred_name="pred"):
    """Same shape as pred, and the same dtype (a float64 target would silently promote a float32 loss)."""
    V.float_array(name, pred_name, pred, nonempty=True)
    if not hasattr(target, "shape"):
        raise TypeError(f"{name}: target must be an array shaped like {pred_name} {tuple(pred.shape)}, got "
                        f"{type(target).__name__}")
    V.same_backend(name, **{pred_name: pred, "target": target})
    if tuple(target.shape) != tuple(pred.shape):
        raise ValueError(
            f"{name}: target has shape {tuple(target.shape)} but the prediction has shape {tuple(pred.shape)}; "
            "they must match element for element (e.g. labels of shape (N, 1) for logits of shape (N, 1))"
        )
    return target.astype(pred.dtype, copy=False)


def softplus(x):
    """``log(1 + exp(x))`` without overflow: ``max(x, 0) + log1p(exp(-|x|))``."""
    xp = xp_of(x)
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def bce_with_logits_forward(z, y):
    """Binary cross-entropy on logits: ``L = mean(-y log s(z) - (1 - y) log(1 - s(z)))`` with s the sigmoid.

    Using ``-log s(z) = softplus(-z)`` and ``-log(1 - s(z)) = softplus(z)``, each term is
    ``softplus(z) - y z = max(z, 0) - y z + log1p(exp(-|z|))``: finite, and warning-free, for any logit.
    Shapes: z and y ``(N, ...)``, equal; L is 0-d. cache = ``(z, y)``.
    """
    y = _check_target("bce_with_logits", z, y, "z")
    loss = (softplus(z) - y * z).mean()
    return xp_of(z).asarray(loss, dtype=z.dtype), (z, y)


def bce_with_logits_backward(dloss, cache):
    """``dL/dz = dloss * (s(z) - y) / n`` with n the number of elements: the famous "prediction minus target"."""
    z, y = cache
    p, _ = sigmoid_forward(z)
    return (p - y) * (dloss / z.size)


def bce_forward(p, y):
    """Binary cross-entropy on probabilities: ``L = -mean(y log p + (1 - y) log(1 - p))``.

    Kept for teaching: this is the UNSTABLE form. A sigmoid that saturates to exactly 0 or 1 (float32 does so for
    |logit| > ~17) makes ``log`` return -inf and the gradient divide by zero. Use ``bce_with_logits`` in real code.
    cache = ``(p, y)``.
    """
    xp = xp_of(p)
    y = _check_target("bce", p, y, "p")
    loss = -(y * xp.log(p) + (1 - y) * xp.log(1 - p)).mean()
    return xp.asarray(loss, dtype=p.dtype), (p, y)


def bce_backward(dloss, cache):
    """``dL/dp = dloss * (p - y) / (p (1 - p)) / n``; infinite where p reaches 0 or 1 (see ``bce_forward``)."""
    p, y = cache
    return (p - y) / (p * (1 - p)) * (dloss / p.size)


def mse_forward(pred, target):
    """Mean squared error ``L = mean((pred - target)^2)`` over all elements. cache = ``pred - target``."""
    target = _check_target("mse", pred, target)
    diff = pred - target  # same shape as pred
    return xp_of(pred).asarray((diff * diff).mean(), dtype=pred.dtype), diff


def mse_backward(dloss, cache):
    """``dL/dpred = dloss * 2 (pred - target) / n``."""
    diff = cache
    return diff * (2 * dloss / diff.size)


def softmax_cross_entropy_forward(logits, labels):
    """Softmax cross-entropy with integer class labels: ``L = mean_n(logsumexp(z_n) - z_n[label_n])``.

    ``logsumexp`` is computed as ``m + log(sum(exp(z - m)))`` with ``m = max(z)``, so no exp can overflow.
    Shapes: logits ``(N, C)``, labels ``(N,)`` integers in ``[0, C)``; L is 0-d. cache = ``(probs, labels)``.
    """
    V.float_array("softmax_cross_entropy", "logits", logits, ndim=2, nonempty=True)
    V.same_backend("softmax_cross_entropy", logits=logits, labels=labels)
    xp = xp_of(logits)
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
    """``dL/dz = dloss * (softmax(z) - onehot(label)) / N``."""
    probs, labels = cache
    xp = xp_of(probs)
    dz = probs.copy()  # (N, C)
    dz[xp.arange(probs.shape[0]), labels] -= 1
    dz *= dloss / probs.shape[0]
    return dz

# %% [markdown]
# # Assignment 2 -- losses: forward and backward
#
# Every loss is the MEAN over all elements and returns a 0-d array (or NumPy scalar) of the prediction's dtype.
# Its backward takes ``dloss`` (a Python float, 1.0 when the loss ends the graph) and the cache, and returns
# ``dL/dpred`` only: targets are data. Never modify an argument in place.
# Self-check: ``minigan assign check a2 a2_losses.py``. Lessons: ``tutorials/03_stable_bce.py``,
# ``tutorials/04_gradient_checking.py``.

# %%
import numpy as np


# %%
def bce_with_logits_forward(z, y):
    """Binary cross-entropy on logits, finite for ANY logit: ``L = mean(softplus(z) - y * z)``.

    This equals ``mean(-y log s(z) - (1 - y) log(1 - s(z)))`` with s the sigmoid, but never takes the log of 0.
    ``softplus(z) = log(1 + exp(z)) = max(z, 0) + log1p(exp(-|z|))``.
    Shapes: z and y equal, e.g. ``(N, 1)``; L is 0-d. cache = ``(z, y)``.
    """
    ### BEGIN SOLUTION
    softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    loss = np.asarray((softplus - y * z).mean(), dtype=z.dtype)
    return loss, (z, y)
    ### END SOLUTION


def bce_with_logits_backward(dloss, cache):
    """Gradient of the mean BCE on logits, ``dL/dz``, scaled by the upstream ``dloss`` (lesson 3).

    cache = ``(z, y)``; returns dz, z's shape.
    """
    ### BEGIN SOLUTION
    z, y = cache
    e = np.exp(-np.abs(z))
    s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))  # sigmoid(z), no overflow
    return (s - y) * (dloss / z.size)
    ### END SOLUTION


# %%
def bce_forward(p, y):
    """Naive binary cross-entropy on probabilities: ``L = -mean(y log p + (1 - y) log(1 - p))``.

    p in (0, 1) and y of the same shape; L is 0-d. cache = ``(p, y)``.
    """
    ### BEGIN SOLUTION
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()
    return np.asarray(loss, dtype=p.dtype), (p, y)
    ### END SOLUTION


def bce_backward(dloss, cache):
    """Gradient of the naive BCE, ``dL/dp``, scaled by ``dloss``; cache = ``(p, y)``; returns dp, p's shape."""
    ### BEGIN SOLUTION
    p, y = cache
    return (p - y) / (p * (1 - p)) * (dloss / p.size)
    ### END SOLUTION


def bce_question():
    """Written question (graded by hand): why does ``bce_forward(sigmoid(z), y)`` fail for a logit z = 40 with
    target y = 0, while ``bce_with_logits_forward(z, y)`` does not? Return your answer as a string."""
    ### BEGIN SOLUTION
    return ("In float64 sigmoid(40) rounds to exactly 1.0, so log(1 - p) = log(0) = -inf and the loss is inf; "
            "its gradient divides by p (1 - p) = 0. Working from the logit, -log(1 - s(z)) = softplus(z) = "
            "max(z, 0) + log1p(exp(-|z|)) never forms 1 - s(z), so it stays finite (40 here).")
    ### END SOLUTION


# %%
def mse_forward(pred, target):
    """Mean squared error ``L = mean((pred - target)**2)`` over all elements; cache = ``pred - target``."""
    ### BEGIN SOLUTION
    diff = pred - target
    return np.asarray((diff * diff).mean(), dtype=pred.dtype), diff
    ### END SOLUTION


def mse_backward(dloss, cache):
    """Gradient of the MSE, ``dL/dpred``, scaled by ``dloss``; cache = ``pred - target``; returns pred's shape."""
    ### BEGIN SOLUTION
    return cache * (2 * dloss / cache.size)
    ### END SOLUTION


# %%
def softmax_cross_entropy_forward(logits, labels):
    """Softmax cross-entropy ``L = mean_n(logsumexp(z_n) - z_n[label_n])`` with integer labels.

    Subtract each row's max before ``exp`` so nothing overflows. Shapes: logits ``(N, C)``, labels ``(N,)``
    integers in ``[0, C)``; L is 0-d. cache = ``(probs, labels)`` with probs = softmax(logits) ``(N, C)``.
    """
    ### BEGIN SOLUTION
    shifted = logits - logits.max(axis=1, keepdims=True)  # (N, C), each row's max is 0
    exp = np.exp(shifted)
    sum_exp = exp.sum(axis=1, keepdims=True)  # (N, 1)
    rows = np.arange(logits.shape[0])
    log_probs_true = shifted[rows, labels] - np.log(sum_exp[:, 0])  # (N,)
    return np.asarray(-log_probs_true.mean(), dtype=logits.dtype), (exp / sum_exp, labels)
    ### END SOLUTION


def softmax_cross_entropy_backward(dloss, cache):
    """Gradient ``dL/dz`` ``(N, C)``, scaled by ``dloss``; cache = ``(probs, labels)`` (docs/derivations.md)."""
    ### BEGIN SOLUTION
    probs, labels = cache
    dz = probs.copy()  # (N, C); never edit the cache itself
    dz[np.arange(probs.shape[0]), labels] -= 1
    return dz * (dloss / probs.shape[0])
    ### END SOLUTION

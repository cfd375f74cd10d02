# %% [markdown]
# # Assignment 1 -- layers: forward and backward passes by hand
#
# Implement each function below. Every ``name_forward(...)`` returns ``(out, cache)``; every
# ``name_backward(dout, cache)`` returns the gradient of the loss with respect to each differentiable input,
# given ``dout = dL/dout``. The cache is what the forward pass hands to the backward pass: keep exactly what the
# docstring says, because the grader feeds the *documented* cache to your backward pass.
#
# Rules the grader checks: NumPy only, float64 in gives float64 out (float32 gives float32), never modify an
# argument (inputs, ``dout`` or the cache) in place, and return exactly what the docstring says.
# Self-check: ``minigan assign check a1 a1_layers.py``. Lessons: ``tutorials/01_dense_layer.py``,
# ``tutorials/02_activations.py``, ``tutorials/04_gradient_checking.py``.

# %%
import numpy as np


# %%
def dense_forward(x, W, b=None):
    """Affine map ``y = x @ W + b``.

    Shapes: x ``(N, in)``, W ``(in, out)``, b ``(out,)`` or None; returns y ``(N, out)`` and cache = ``(x, W)``.
    """
    ### BEGIN SOLUTION
    y = x @ W  # (N, out)
    if b is not None:
        y = y + b  # broadcast over the batch
    return y, (x, W)
    ### END SOLUTION


def dense_backward(dy, cache):
    """Gradients of the affine map: returns ``(dx, dW, db)`` from ``dy = dL/dy`` ``(N, out)``.

    cache = ``(x, W)`` from ``dense_forward``. Each gradient has its tensor's shape: dx ``(N, in)``, dW
    ``(in, out)``, db ``(out,)``. Derive them with the chain rule (lesson 1; docs/derivations.md#dense).
    """
    ### BEGIN SOLUTION
    x, W = cache
    dx = dy @ W.T  # (N, in)
    dW = x.T @ dy  # (in, out): every example adds its outer product x[n]^T dy[n]
    db = dy.sum(axis=0)  # (out,)
    return dx, dW, db
    ### END SOLUTION


# %%
def relu_forward(x, out=None):
    """ReLU ``y = max(x, 0)`` elementwise; returns y (x's shape and dtype) and cache = y.

    ``out``: optional array to write y into (the grader never passes it; you may ignore it).
    """
    ### BEGIN SOLUTION
    y = np.maximum(x, 0, out=out)
    return y, y
    ### END SOLUTION


def relu_backward(dy, cache):
    """ReLU's gradient dx (dy's shape) from ``dy`` and cache = y; at exactly 0 use the subgradient 0 (lesson 2)."""
    ### BEGIN SOLUTION
    mask = cache > 0  # where the unit was active
    return dy * mask
    ### END SOLUTION


# %%
def leaky_relu_forward(x, slope=0.2, out=None):
    """Leaky ReLU ``y = x`` where ``x > 0``, else ``slope * x``; returns y and cache = ``(y, slope)``.

    ``0 <= slope < 1``. ``out``: optional array to write y into (the grader never passes it).
    """
    ### BEGIN SOLUTION
    y = np.where(x > 0, x, slope * x)
    if out is not None:
        out[...] = y
        y = out
    return y, (y, slope)
    ### END SOLUTION


def leaky_relu_backward(dy, cache):
    """Leaky ReLU's gradient dx (dy's shape) from ``dy`` and cache = ``(y, slope)`` (lesson 2)."""
    ### BEGIN SOLUTION
    y, slope = cache
    return np.where(y > 0, dy, slope * dy)
    ### END SOLUTION


# %%
def sigmoid_forward(x, out=None):
    """Logistic sigmoid ``y = 1 / (1 + exp(-x))`` without overflow; returns y and cache = y (the OUTPUT).

    Hint: ``exp(-|x|)`` never overflows. ``out``: optional array to write y into (the grader never passes it).
    """
    ### BEGIN SOLUTION
    e = np.exp(-np.abs(x))  # in (0, 1]
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    if out is not None:
        out[...] = y
        y = out
    return y, y
    ### END SOLUTION


def sigmoid_backward(dy, cache):
    """Sigmoid's gradient dx (dy's shape) from ``dy`` and cache = y, the sigmoid's OUTPUT (lesson 2)."""
    ### BEGIN SOLUTION
    y = cache
    return dy * y * (1 - y)
    ### END SOLUTION


# %%
def tanh_forward(x, out=None):
    """``y = tanh(x)`` elementwise; returns y and cache = y (the OUTPUT).

    ``out``: optional array to write y into (the grader never passes it).
    """
    ### BEGIN SOLUTION
    y = np.tanh(x, out=out)
    return y, y
    ### END SOLUTION


def tanh_backward(dy, cache):
    """Tanh's gradient dx (dy's shape) from ``dy`` and cache = y, tanh's OUTPUT (lesson 2)."""
    ### BEGIN SOLUTION
    y = cache
    return dy * (1 - y * y)
    ### END SOLUTION

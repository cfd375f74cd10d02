"""Loss modules: ``forward(pred, target)`` returns the mean loss as a 0-d array; ``backward()`` returns dL/dpred.

Each wraps a pair from ``minigan.functional`` and keeps the cache of its last forward, which ``backward`` consumes
(a second ``backward`` without a new ``forward`` is an error). ``backward(dloss=1.0)`` scales the gradient, for a
loss that is one term of a weighted sum.

Which one for a GAN? ``BCEWithLogits`` on the discriminator's raw scores. ``BCE`` on probabilities is here to
show why it is *not* used: it breaks down once the sigmoid saturates.
"""

from __future__ import annotations

from . import functional as F


class Loss:
    """Base class: a functional forward/backward pair plus the cache between them."""

    _forward = None
    _backward = None

    def __init__(self):
        self._cache = None

    def forward(self, pred, target):
        loss, self._cache = type(self)._forward(pred, target)
        return loss  # 0-d array, pred's dtype

    __call__ = forward

    def backward(self, dloss: float = 1.0):
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}: backward() called without a matching forward(pred, target); call forward "
                "first (each forward feeds exactly one backward)."
            )
        return type(self)._backward(dloss, cache)  # same shape as pred

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BCEWithLogits(Loss):
    """``L = mean(softplus(z) - y z)`` on logits z; ``dL/dz = (sigmoid(z) - y) / n``. Finite for any logit.

    Derivation: docs/derivations.md#bce-from-logits
    """

    _forward = staticmethod(F.bce_with_logits_forward)
    _backward = staticmethod(F.bce_with_logits_backward)


class BCE(Loss):
    """``L = -mean(y log p + (1 - y) log(1 - p))`` on probabilities p. Unstable at p = 0 or 1: for teaching.

    Derivation: docs/derivations.md#bce-on-probabilities
    """

    _forward = staticmethod(F.bce_forward)
    _backward = staticmethod(F.bce_backward)


class MSE(Loss):
    """``L = mean((pred - target)^2)``; ``dL/dpred = 2 (pred - target) / n``.

    Derivation: docs/derivations.md#mse
    """

    _forward = staticmethod(F.mse_forward)
    _backward = staticmethod(F.mse_backward)


class SoftmaxCrossEntropy(Loss):
    """``L = mean(logsumexp(z) - z[label])`` for logits (N, C) and integer labels (N,); ``dz = (softmax - onehot) / N``.

    Derivation: docs/derivations.md#softmax-cross-entropy
    """

    _forward = staticmethod(F.softmax_cross_entropy_forward)
    _backward = staticmethod(F.softmax_cross_entropy_backward)

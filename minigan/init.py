"""Weight initializers, drawn on the host from a seeded ``numpy.random.Generator``.

A model is always built on the CPU from a seed and moved afterwards (``model.to("cupy")``), so a CPU and a GPU copy
of a model start from identical weights. Each function returns a NumPy array of shape ``(fan_in, fan_out)``.
"""

from __future__ import annotations

import numpy as np


def as_rng(rng) -> np.random.Generator:
    """Accept a Generator, an int seed, or None (fresh OS entropy: not reproducible)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def glorot_uniform(rng, fan_in, fan_out, dtype=np.float32):
    """Glorot & Bengio (2010): ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``, keeping the variance of
    activations and of gradients roughly equal across layers for tanh/sigmoid networks."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return as_rng(rng).uniform(-limit, limit, size=(fan_in, fan_out)).astype(dtype)


def he_normal(rng, fan_in, fan_out, dtype=np.float32):
    """He et al. (2015): ``N(0, 2 / fan_in)``, which keeps activation variance constant through ReLU layers."""
    std = np.sqrt(2.0 / fan_in)
    return (as_rng(rng).standard_normal((fan_in, fan_out)) * std).astype(dtype)


def normal(rng, fan_in, fan_out, dtype=np.float32, std=0.02):
    """``N(0, std^2)`` with std 0.02: the DCGAN recipe (Radford et al., 2016)."""
    return (as_rng(rng).standard_normal((fan_in, fan_out)) * std).astype(dtype)


INITIALIZERS = {"glorot": glorot_uniform, "he": he_normal, "normal": normal}

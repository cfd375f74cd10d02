"""The architectures ``minigan train --arch`` knows, built on the host from one seeded Generator.

* ``seed``: the classic first GAN of many tutorials. G 100->256->784 (ReLU, sigmoid output in [0, 1]);
  D 784->256->1 (LeakyReLU 0.2).
* ``mlp`` (default for images): G 100->256->512->1024->784 (LeakyReLU 0.2, tanh output in [-1, 1]);
  D 784->512->256->1 (LeakyReLU 0.2).
* ``toy`` (default for 2-D data): G noise->4x128->2 (ReLU, linear output); D 2->3x128->1 (LeakyReLU 0.2). Narrower
  than ``pacgan`` on purpose: at 128 units it reaches the grid's 25 modes and sharper ones than at 256, in under
  half the time per step (benchmarks/quality/RESULTS.md).
* ``pacgan``: the architecture of PacGAN's 2-D experiments: G 2->4x400->2 (Dense without bias, BatchNorm1d, ReLU in
  each hidden layer, as the paper's); D (2*pack)->3x200->1 (LeakyReLU 0.2, where the paper uses 5-piece maxout).

The discriminator always ends in a single logit (no sigmoid): the loss is computed stably from logits.
"""

from __future__ import annotations

from .init import as_rng
from .nn import BatchNorm1d, Dense, LeakyReLU, ReLU, Sequential, Sigmoid, Tanh

ARCHS = ("mlp", "seed", "toy", "pacgan")
#: the data scale each architecture's generator produces ("tanh": [-1, 1], "sigmoid": [0, 1], None: unbounded)
OUTPUT_SCALE = {"mlp": "tanh", "seed": "sigmoid", "toy": None, "pacgan": None}
NOISE_DIM = {"mlp": 100, "seed": 100, "toy": 8, "pacgan": 2}


def mlp(widths, hidden, out=None, rng=None, init="glorot", batchnorm: bool = False):
    """``Dense [-> BatchNorm1d] -> hidden() -> ... -> Dense [-> out()]`` through the given layer widths.

    A Dense followed by batch norm has no bias (DCGAN practice): batch norm subtracts the batch mean, so such a
    bias does nothing and its true gradient is exactly 0 -- float32 rounding leaves ~1e-8 there, and Adam, which
    divides by the gradient's own scale, would turn that noise into full-size steps. BatchNorm1d's beta is the shift.
    """
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        hidden_layer = i < len(widths) - 2
        layers.append(Dense(a, b, rng=rng, init=init, bias=not (batchnorm and hidden_layer)))
        if hidden_layer:
            if batchnorm:
                layers.append(BatchNorm1d(b))
            layers.append(hidden())
    if out is not None:
        layers.append(out())
    return Sequential(*layers)


def build_models(arch: str, data_dim: int, rng=None, noise_dim: int | None = None, pack: int = 1):
    """``(generator, discriminator)`` for an architecture name; see the module docstring."""
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}: choose one of {', '.join(ARCHS)}")
    rng = as_rng(rng)
    nz = NOISE_DIM[arch] if noise_dim is None else int(noise_dim)
    leaky = lambda: LeakyReLU(0.2)  # noqa: E731
    d_in = data_dim * pack
    if arch == "seed":
        G = mlp([nz, 256, data_dim], ReLU, Sigmoid, rng)
        D = mlp([d_in, 256, 1], leaky, None, rng)
    elif arch == "mlp":
        G = mlp([nz, 256, 512, 1024, data_dim], leaky, Tanh, rng)
        D = mlp([d_in, 512, 256, 1], leaky, None, rng)
    elif arch == "toy":
        G = mlp([nz, 128, 128, 128, 128, data_dim], ReLU, None, rng, init="he")
        D = mlp([d_in, 128, 128, 128, 1], leaky, None, rng, init="he")
    else:  # pacgan
        G = mlp([nz, 400, 400, 400, 400, data_dim], ReLU, None, rng, init="he", batchnorm=True)
        D = mlp([d_in, 200, 200, 200, 1], leaky, None, rng, init="he")
    return G, D

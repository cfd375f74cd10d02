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
* ``dcgan`` (images): a DCGAN (Radford et al., 2016) sized for a 2-core machine, widths 64 and 32 in G, 32 and 64
  in D; see ``dcgan``.

Every model takes and returns *flat* rows, ``(N, d)``: the datasets, the sampling, the pictures and the metrics
never see another shape. A convolutional model turns rows into images and back inside itself (``Reshape`` first in
D, ``Flatten`` last in G), the one place the image shape is known.

The discriminator always ends in a single logit (no sigmoid): the loss is computed stably from logits.
"""

from __future__ import annotations

from .init import as_rng
from .nn import (BatchNorm1d, BatchNorm2d, Conv2d, ConvTranspose2d, Dense, Flatten, LeakyReLU, ReLU, Reshape,
                 Sequential, Sigmoid, Tanh)

ARCHS = ("mlp", "seed", "toy", "pacgan", "dcgan")
#: the data scale each architecture's generator produces ("tanh": [-1, 1], "sigmoid": [0, 1], None: unbounded)
OUTPUT_SCALE = {"mlp": "tanh", "seed": "sigmoid", "toy": None, "pacgan": None, "dcgan": "tanh"}
NOISE_DIM = {"mlp": 100, "seed": 100, "toy": 8, "pacgan": 2, "dcgan": 100}


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


def image_side(data_dim: int, arch: str = "dcgan") -> int:
    """The side s of the square images whose flat rows have ``data_dim = s * s`` values; s must be a multiple of 4
    (two stride-2 layers halve it twice)."""
    side = int(round(data_dim ** 0.5))
    if side * side != data_dim or side % 4:
        raise ValueError(f"--arch {arch} needs square one-channel images with a side divisible by 4 (e.g. 28x28 = "
                         f"784 values per row), got rows of {data_dim} values; use --arch mlp for this data")
    return side


def dcgan(noise_dim: int, data_dim: int, rng=None, pack: int = 1, widths=(32, 64)):
    """A DCGAN (Radford et al., 2016) for one-channel s x s images (s = 28 for MNIST), flat rows in and out.

    With ``widths = (a, b)`` (default 32, 64) and ``q = s / 4`` (7 for MNIST)::

        G: z (N, noise_dim) -> Dense(noise_dim -> b*q*q, no bias) -> BatchNorm1d -> ReLU -> Reshape (b, q, q)
           -> ConvTranspose2d(b -> a, k4 s2 p1, no bias) -> BatchNorm2d -> ReLU          (N, a, 2q, 2q)
           -> ConvTranspose2d(a -> 1, k4 s2 p1) -> Tanh -> Flatten                        (N, s*s)
        D: x (N/m, m*s*s) -> Reshape (m, s, s) -> Conv2d(m -> a, k4 s2 p1) -> LeakyReLU 0.2   (N/m, a, 2q, 2q)
           -> Conv2d(a -> b, k4 s2 p1) -> LeakyReLU 0.2 -> Flatten -> Dense(b*q*q -> 1)       (N/m, 1) logits

    The paper's recipe where it applies: strided convolutions instead of pooling, batch norm in G (no bias before
    it: batch norm removes the mean, so a bias there does nothing), ReLU in G and tanh at its output, LeakyReLU 0.2
    in D, weights from N(0, 0.02^2). D has no batch norm (the paper's is optional): the GAN step judges real and
    fake rows as one stacked batch (one GEMM per layer), and batch norm over that mix would let each half's
    statistics leak into D's verdict on the other; without it each row's logit depends on that row alone.

    PacGAN packing (``pack = m``) stacks m consecutive images along D's input channels, as Lin et al. (2018) do
    for images: a packed flat row ``(m*s*s,)`` reshapes to exactly ``(m, s, s)``.
    """
    a, b = widths
    side = image_side(data_dim)
    q = side // 4
    normal = dict(rng=rng, init="normal")
    G = Sequential(
        Dense(noise_dim, b * q * q, bias=False, **normal), BatchNorm1d(b * q * q), ReLU(), Reshape((b, q, q)),
        ConvTranspose2d(b, a, 4, stride=2, padding=1, bias=False, **normal), BatchNorm2d(a), ReLU(),
        ConvTranspose2d(a, 1, 4, stride=2, padding=1, **normal), Tanh(), Flatten())
    D = Sequential(
        Reshape((pack, side, side)),
        Conv2d(pack, a, 4, stride=2, padding=1, **normal), LeakyReLU(0.2),
        Conv2d(a, b, 4, stride=2, padding=1, **normal), LeakyReLU(0.2),
        Flatten(), Dense(b * q * q, 1, **normal))
    return G, D


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
    elif arch == "dcgan":
        G, D = dcgan(nz, data_dim, rng, pack)
    else:  # pacgan
        G = mlp([nz, 400, 400, 400, 400, data_dim], ReLU, None, rng, init="he", batchnorm=True)
        D = mlp([d_in, 200, 200, 200, 1], leaky, None, rng, init="he")
    return G, D

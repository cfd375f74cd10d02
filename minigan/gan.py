"""The GAN training step (Goodfellow et al., 2014), written out so each gradient can be followed by hand.

The discriminator D outputs a *logit* ``D_logit(x)``; ``D(x) = sigmoid(D_logit(x))`` is its belief that x is real.

**D step.** A real batch x and a fake batch ``G(z)`` (used as plain data: no gradient flows into G) go through D
as one batch (one GEMM per layer instead of two), and D descends

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]

which is binary cross-entropy from logits with target 1 for real and 0 for fake, summed over the two halves.

**G step.** Fresh noise z, then ``G(z)`` through D. G descends, by default, the *non-saturating* loss

    L_G = -E_z[log D(G(z))]                  ("nonsaturating", Goodfellow et al. 2014, section 3)

whose gradient is strong exactly when D confidently rejects the fakes -- early in training. The *minimax* form
``L_G = E_z[log(1 - D(G(z)))]`` ("minimax") is the game as written in the paper; its gradient vanishes when
``D(G(z)) -> 0``, which is why G stalls with it. Backward runs through D with D's parameters frozen (their
gradients are never computed) to get ``dL_G/dG(z)``, then through G.

Every gradient here can be checked end to end: ``minigan.gradcheck.check_gan_step``.
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from . import validate as V
from .backend import backend_of, to_device, to_numpy, xp_of
from .init import as_rng
from .nn import Reshape

GENERATOR_LOSSES = ("nonsaturating", "minimax")


# ---------------------------------------------------------------------------------------------- the losses


def discriminator_loss(logits, targets):
    """``L_D`` from logits of a batch that stacks real and fake halves of equal size, and its gradient.

    The BCE mean over the stacked batch is the *average* of the two halves' means; ``L_D`` is their *sum*, so it
    is twice that mean (and so is its gradient). ``targets`` is 1 (or ``1 - smoothing``) for real, 0 for fake.

    Derivation: docs/derivations.md#gan-losses
    """
    mean_bce, cache = F.bce_with_logits_forward(logits, targets)
    return 2 * mean_bce, F.bce_with_logits_backward(2.0, cache)


def generator_loss(logits_fake, kind: str = "nonsaturating"):
    """``L_G`` and ``dL_G/dlogits`` for D's logits on a fake batch.

    * nonsaturating: ``-mean(log D(G(z)))`` = BCE with target 1;
    * minimax: ``mean(log(1 - D(G(z))))`` = minus the BCE with target 0.

    Derivation: docs/derivations.md#gan-losses
    """
    xp = xp_of(logits_fake)
    if kind == "nonsaturating":
        loss, cache = F.bce_with_logits_forward(logits_fake, xp.ones_like(logits_fake))
        return loss, F.bce_with_logits_backward(1.0, cache)
    if kind == "minimax":
        loss, cache = F.bce_with_logits_forward(logits_fake, xp.zeros_like(logits_fake))
        return -loss, F.bce_with_logits_backward(-1.0, cache)
    raise ValueError(f"unknown generator loss {kind!r}: choose one of {', '.join(GENERATOR_LOSSES)}")


def _check_players(G, D, g_optimizer, d_optimizer) -> None:
    """Two modules, and each optimizer built on exactly its own model's parameters."""
    for name, model in (("generator", G), ("discriminator", D)):
        if not hasattr(model, "params") or not hasattr(model, "backward"):
            raise TypeError(f"GAN: {name} must be a minigan Module, got {type(model).__name__}")
    for name, opt, model, who in (("g_optimizer", g_optimizer, G, "generator"),
                                  ("d_optimizer", d_optimizer, D, "discriminator")):
        if {id(p) for p in getattr(opt, "params", ())} != {id(p) for p in model.params()}:
            raise ValueError(f"GAN: {name} must be built on {who}.params() (the same Param objects), but its "
                             f"parameters differ: were the optimizers swapped, or the {who} changed after its "
                             f"optimizer was built? Build it as e.g. optim.Adam({who}.params(), ...)")


def _check_stepped(optimizer, name: str) -> None:
    """After a backward pass every trainable parameter of the optimizer has a gradient, unless the model was changed
    (a layer replaced) after the optimizer was built: its old parameters no longer take part."""
    for p in optimizer.params:
        if p.grad is None and p.requires_grad:
            raise RuntimeError(f"GAN.train_step: {name} parameter '{p.name}' {p.shape} got no gradient: the model no "
                               f"longer uses it. Was a layer replaced after the optimizer was built? Build the "
                               "optimizers (and the GAN) again from the changed models' params().")


def pack(x, m: int):
    """PacGAN packing (Lin et al., 2018): ``(N, d) -> (N/m, m*d)``, m consecutive samples judged as one.

    Images ``(N, C, H, W)`` pack along the channels, ``-> (N/m, m*C, H, W)``, as the paper does for its image
    experiments: the same C-order regrouping of the same memory, so it is a view in both cases.

    Derivation: docs/derivations.md#pacgan
    """
    return x if m == 1 else x.reshape(x.shape[0] // m, m * x.shape[1], *x.shape[2:])


# ------------------------------------------------------------------------------------------------ the model


class GAN:
    """A generator, a discriminator (outputting logits), their optimizers, and the training step.

    Parameters
    ----------
    generator, discriminator : Module
        ``G: (N, noise_dim) -> (N, d)``; ``D: (N / pack, pack * d) -> (N / pack, 1)`` logits. Or, for
        convolutional models that work on images: ``G: (N, noise_dim) -> (N, C, H, W)`` and
        ``D: (N / pack, pack * C, H, W) -> (N / pack, 1)`` (packing stacks images along the channels).
    g_optimizer, d_optimizer : Optimizer
        Built on ``generator.params()`` and ``discriminator.params()``.
    noise_dim : int
        Size of z; z ~ N(0, I), drawn from ``rng`` on the host (so NumPy and CuPy runs see the same noise).
    loss : "nonsaturating" | "minimax"
        The generator's loss (see the module docstring).
    d_steps : int
        Discriminator updates per generator update (each on its own real batch).
    label_smoothing : float
        One-sided label smoothing (Salimans et al., 2016): real targets ``1 - s``, fake targets stay 0. Keeps D
        from growing over-confident logits; helps when D wins too quickly.
    instance_noise : float
        Standard deviation of Gaussian noise added to every input D sees, real and fake (Sønderby et al., 2017):
        blurs the two distributions so they overlap and D's gradient stays informative.
    pack : int
        PacGAN packing degree m: D judges m samples at once, which penalises mode collapse.
    """

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, noise_dim: int,
                 loss: str = "nonsaturating", rng=None, d_steps: int = 1, label_smoothing: float = 0.0,
                 instance_noise: float = 0.0, pack: int = 1):
        if loss not in GENERATOR_LOSSES:
            raise ValueError(f"unknown generator loss {loss!r}: choose one of {', '.join(GENERATOR_LOSSES)}")
        _check_players(generator, discriminator, g_optimizer, d_optimizer)
        self.G, self.D = generator, discriminator
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.noise_dim, self.loss = V.integer("GAN", "noise_dim", noise_dim), loss
        self.rng = as_rng(rng)
        self.d_steps = V.integer("GAN", "d_steps", d_steps)
        self.label_smoothing = V.real("GAN", "label_smoothing", label_smoothing, low=0, high=1, high_open=True)
        self.instance_noise = V.real("GAN", "instance_noise", instance_noise, low=0)
        self.pack = V.integer("GAN", "pack", pack)
        self._targets = {}  # (n, dtype, backend) -> stacked D targets, built once

    def _walk(self, model):
        """``(model, params, modules)`` for G or D, listed once and reused while ``self.G`` / ``self.D`` is the same
        object. Like the optimizers, the step assumes a model's layers do not change after the GAN is built.

        Walking the module tree costs ~0.03 ms; done six times a step, that is a few percent of a small model's step.
        """
        key = "_walked_G" if model is self.G else "_walked_D"
        walked = getattr(self, key, None)
        if walked is None or walked[0] is not model:  # first use, or G / D was replaced (e.g. on a copy)
            walked = (model, model.params(), list(model.modules()))
            setattr(self, key, walked)
        return walked

    def _params(self, model):
        return self._walk(model)[1]

    # ------------------------------------------------------------------ sampling
    @property
    def backend(self) -> str:
        return backend_of(self._params(self.G)[0].data)

    @property
    def dtype(self):
        return self._params(self.G)[0].data.dtype

    def sample_noise(self, n: int):
        """z ~ N(0, I) of shape ``(n, noise_dim)``, G's dtype, on G's backend."""
        z = self.rng.standard_normal((n, self.noise_dim), dtype=np.float32).astype(self.dtype, copy=False)
        return z if self.backend == "numpy" else to_device(z, self.backend)

    def generate(self, n: int | None = None, z=None):
        """G(z) for given noise, or for n fresh draws. Nothing is kept for a backward pass."""
        z = self.sample_noise(n) if z is None else z
        x = self.G.forward(z)
        for m in self._walk(self.G)[2]:
            m._cache = None  # sampling only: drop the activations
        return x

    def _instance_noise(self, rows: int, shape: tuple):
        """Gaussian instance noise of shape ``(rows, *shape)``, ``shape`` one example's (None when switched off)."""
        if not self.instance_noise:
            return None
        eps = self.rng.standard_normal((rows, *shape), dtype=np.float32) * np.float32(self.instance_noise)
        eps = eps.astype(self.dtype, copy=False)
        return eps if self.backend == "numpy" else to_device(eps, self.backend)

    def _stacked_targets(self, n: int, x):
        """Targets for ``n`` packed real rows then ``n`` packed fake rows: ``1 - smoothing`` and 0."""
        key = (n, x.dtype.str, backend_of(x), self.label_smoothing)
        if key not in self._targets:
            t = np.zeros((2 * n, 1), dtype=x.dtype)
            t[:n] = 1.0 - self.label_smoothing
            self._targets[key] = t if backend_of(x) == "numpy" else to_device(t, backend_of(x))
        return self._targets[key]

    def _zero_grad(self, model) -> None:
        """Drop ``model``'s gradients (every ``Param.grad`` becomes None) before its backward pass.

        The dropped arrays are kept until the next call for the same model, then let go. Freed all at once, a set of
        gradients leaves megabytes free at the top of glibc's heap, which glibc hands back to the OS and must take
        again moments later: for the seed GAN at batch 256, 1,000-1,500 page faults a step in a process of its own
        (a third of its step time). Held one step longer, the heap keeps its size. Nothing reads them; the cost is
        one set of gradients' memory (8 MB for the mlp GAN).
        """
        params = self._params(model)
        held = self.__dict__.setdefault("_held_grads", {})
        held["G" if model is self.G else "D"] = [p.grad for p in params]  # frees the set held before
        for p in params:
            p.zero_grad()

    def _stack(self, real, fake):
        """``concatenate([real, fake])``, written into a buffer kept for the next step of the same shape.

        D only reads it until its backward pass, inside the same call, so reusing it is safe; a fresh 2N-row array
        every step costs page faults (glibc gives large freed blocks back to the OS and takes them again).
        """
        xp = xp_of(real, fake)
        shape = (real.shape[0] + fake.shape[0], *real.shape[1:])
        buf = getattr(self, "_stack_buffer", None)
        if buf is None or tuple(buf.shape) != shape or buf.dtype != real.dtype or type(buf) is not type(real):
            buf = self._stack_buffer = xp.empty(shape, dtype=real.dtype)
        return xp.concatenate([real, fake], out=buf)

    # ------------------------------------------------------------------ gradients (no optimizer step)
    def discriminator_gradients(self, real, z, noise=None):
        """Forward/backward of ``L_D``; adds ``dL_D/dtheta_D`` into D's grads. Returns 0-d arrays.

        ``real``: ``(N, d)`` data; ``z``: ``(N, noise_dim)``; ``noise``: optional ``(2N, d)`` instance noise.

        Derivation: docs/derivations.md#gan-losses
        """
        fake = self.generate(z=z)  # (N, d): data for D; G is not differentiated here
        xp = xp_of(real, fake)
        x = self._stack(pack(real, self.pack), pack(fake, self.pack))  # (2N/m, m*d): one pass through D
        if noise is not None:
            x += pack(noise, self.pack)  # packing commutes with stacking: rows stay aligned
        logits = self.D.forward(x)  # (2N/m, 1)
        n = logits.shape[0] // 2
        loss, dlogits = discriminator_loss(logits, self._stacked_targets(n, logits))
        self.D.backward(dlogits, need_input_grad=False)  # D's input is data: no dx needed
        probs, _ = F.sigmoid_forward(logits)
        return {"d_loss": loss, "d_real": probs[:n].mean(), "d_fake": probs[n:].mean()}

    def generator_gradients(self, z, noise=None):
        """Forward/backward of ``L_G`` through a frozen D; adds ``dL_G/dtheta_G`` into G's grads.

        Derivation: docs/derivations.md#generator-gradient-through-d
        """
        fake = self.G.forward(z)  # (N, d), cache kept for G's backward
        x = pack(fake, self.pack)  # (N/m, m*d)
        if noise is not None:
            x = x + pack(noise, self.pack)
        d_params = self._params(self.D)
        frozen = [p.requires_grad for p in d_params]
        for p in d_params:
            p.requires_grad = False  # D's parameter gradients are not wanted: skip computing them
        try:
            logits = self.D.forward(x)  # (N/m, 1)
            loss, dlogits = generator_loss(logits, self.loss)
            dx = self.D.backward(dlogits)  # (N/m, m*d): how G's samples should move
        finally:
            for p, flag in zip(d_params, frozen):
                p.requires_grad = flag
        self.G.backward(dx.reshape(fake.shape), need_input_grad=False)  # z needs no gradient
        return {"g_loss": loss}

    def _check_real(self, real) -> None:
        """A real batch: an (N, d) array of the models' dtype, on their backend, with d the features D expects."""
        where = "GAN.train_step"
        if not hasattr(real, "shape") or not hasattr(real, "dtype"):
            raise TypeError(f"{where}: real_batches must be an (N, d) array or a list of d_steps such arrays, got "
                            f"a {type(real).__name__} inside")
        if real.dtype != self.dtype:
            raise TypeError(f"{where}: real_batches have dtype {real.dtype}, expected {self.dtype} (the models' "
                            f"dtype); convert with .astype('{self.dtype}')")
        # (N, d) vectors, or (N, C, H, W) images for convolutional nets (packed along the channels)
        if len(real.shape) not in (2, 4):
            raise ValueError(f"{where}: real_batches must be (N, d) rows or (N, C, H, W) images, got shape "
                             f"{tuple(real.shape)}")
        V.same_backend(where, real_batches=real, discriminator=self._params(self.D)[0].data)
        layers = self._walk(self.D)[2]
        first = next((m for m in layers if hasattr(m, "in_features") or hasattr(m, "in_channels")
                      or isinstance(m, Reshape)), None)
        d_in = getattr(first, "in_features", None)  # a convolutional D checks its own input's channels
        if isinstance(first, Reshape) and -1 not in first.shape:  # rows that D turns into images (--arch dcgan)
            d_in = int(np.prod(first.shape))
        c_in = getattr(first, "in_channels", None)  # a convolutional D: images with pack x C = c_in channels
        if c_in is not None and (len(real.shape) != 4 or real.shape[1] * self.pack != c_in):
            raise ValueError(f"{where}: real_batches must be (N, {c_in // self.pack}, H, W) images (the "
                             f"discriminator's first layer {first!r} takes {c_in} channel(s) = pack {self.pack} x "
                             f"{c_in // self.pack}), got shape {tuple(real.shape)}")
        if d_in is not None and (len(real.shape) != 2 or real.shape[1] * self.pack != d_in):
            raise ValueError(f"{where}: real_batches must be (N, {d_in // self.pack}) (the discriminator takes "
                             f"{d_in} features = pack {self.pack} x {d_in // self.pack}), got shape "
                             f"{tuple(real.shape)}")

    # ------------------------------------------------------------------ the step
    def train_step(self, real_batches, to_host: bool = True) -> dict:
        """One generator update after ``d_steps`` discriminator updates.

        ``real_batches``: one ``(N, d)`` (or ``(N, C, H, W)``) array, or a sequence of ``d_steps`` of them.
        Returns ``d_loss``, ``g_loss``, ``d_real`` (mean D(x)) and ``d_fake`` (mean D(G(z))), as Python floats --
        or, with ``to_host=False``, as 0-d arrays left on the device so a GPU step never waits for the host.
        """
        batches = [real_batches] if hasattr(real_batches, "shape") else list(real_batches)
        if len(batches) != self.d_steps:
            raise ValueError(f"train_step needs {self.d_steps} real batch(es) (d_steps), got {len(batches)}")
        for i, real in enumerate(batches):
            self._check_real(real)
            n = real.shape[0]
            if n == 0:
                raise ValueError(f"train_step: real_batches[{i}] is empty (shape {tuple(real.shape)}); each real "
                                 "batch needs at least one row (pack rows with --pack)")
            if n % self.pack:
                raise ValueError(f"batch size {n} is not a multiple of pack={self.pack}")
            z = self.sample_noise(n)
            noise = self._instance_noise(2 * n, tuple(real.shape[1:]))
            self._zero_grad(self.D)
            stats = self.discriminator_gradients(real, z, noise)
            _check_stepped(self.d_optimizer, "d_optimizer")
            self.d_optimizer.step()
        n = batches[-1].shape[0]
        z = self.sample_noise(n)
        noise = self._instance_noise(n, tuple(batches[-1].shape[1:]))
        self._zero_grad(self.G)
        stats.update(self.generator_gradients(z, noise))
        _check_stepped(self.g_optimizer, "g_optimizer")
        self.g_optimizer.step()
        return {k: float(to_numpy(v)) for k, v in stats.items()} if to_host else stats

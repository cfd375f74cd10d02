"""Stateful building blocks: ``Param``, ``Module`` and the layers a GAN is made of.

A module wraps a forward/backward pair from ``minigan.functional``. It keeps the cache of its *last* forward
pass, and ``backward`` consumes it: calling ``backward`` twice, or without a forward, is an error rather than a
silent reuse of stale activations.

* ``forward(x)`` returns ``y``; ``module(x)`` is the same call.
* ``backward(dy)`` returns ``dx = dL/dx`` -- always, even when the module's own parameters are frozen (the
  generator's gradient flows through a frozen discriminator) -- and *adds* ``dL/dparam`` into each trainable
  ``Param.grad``. Gradients accumulate until ``zero_grad()``. ``backward(dy, need_input_grad=False)`` skips the
  ``dx`` product and returns None: the discriminator step does not need a gradient for the data.
* ``params()``, ``named_params()``, ``zero_grad()``, ``to(backend, dtype=...)``, ``train()``/``eval()``,
  ``state_dict()``/``load_state_dict()``, ``summary()``.
"""

from __future__ import annotations

import sys

import numpy as np

from . import functional as F
from . import kernels
from . import validate as V
from .backend import backend_of, to_device, to_numpy, xp_of
from .init import INITIALIZERS, as_rng


class Param:
    """A trainable array: ``.data`` (the values), ``.grad`` (dL/data, or None), ``.name``.

    ``grad`` is None until a backward pass writes it, and again after ``zero_grad()``: the first backward stores
    its gradient, later ones add to it. ``requires_grad = False`` freezes the parameter: backward passes leave
    its ``grad`` alone and skip the work of computing it.
    """

    def __init__(self, data, name: str = "param"):
        self.data = data
        self.grad = None
        self.name = name
        self.requires_grad = True

    @property
    def shape(self):
        return tuple(self.data.shape)

    def accumulate(self, grad) -> None:
        """``self.grad += grad`` (``grad`` is stored as is, without a copy, when there was none)."""
        if self.grad is None:
            self.grad = grad
        else:
            self.grad += grad

    def zero_grad(self) -> None:
        self.grad = None

    def __repr__(self) -> str:
        return f"Param({self.name!r}, shape={self.shape}, dtype={self.data.dtype}, backend={backend_of(self.data)})"


class Module:
    """Base class. Subclasses implement ``forward`` and ``backward``; parameters and child modules are found by
    looking at the instance's attributes (in the order they were set), so no registration is needed."""

    #: attribute names of non-trainable arrays (e.g. running statistics) that ``to`` and ``state_dict`` carry
    buffer_names: tuple[str, ...] = ()
    #: False when ``forward`` returns a new array that the module itself does not keep (Dense): ``Sequential``
    #: may then let the next layer overwrite it (``forward_inplace``). True, the safe default, otherwise.
    keeps_output: bool = True

    def __init__(self):
        self.training = True
        self.name = ""  # set by a container ("0", "1", ...) so errors can say which layer failed
        self._cache = None

    # ------------------------------------------------------------------ forward / backward
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy, need_input_grad: bool = True):
        raise NotImplementedError

    def forward_inplace(self, x):
        """``forward(x)``, allowed to overwrite x: the caller made x and hands it over. Activations write their
        output into x instead of a new buffer; other modules ignore the permission."""
        return self.forward(x)

    def __call__(self, x):
        return self.forward(x)

    def _save_cache(self, cache) -> None:
        self._cache = cache

    def _check_dy(self, dy, shape, dtype) -> None:
        """``dy`` must look like this module's last output: same shape, dtype and backend."""
        is_array = hasattr(dy, "dtype") and hasattr(dy, "shape")  # (NumPy reads a None dtype as float64: test first)
        if not is_array or dy.dtype != dtype or tuple(dy.shape) != tuple(shape):
            got = f"{dy.dtype} of shape {tuple(dy.shape)}" if is_array else type(dy).__name__
            error = TypeError if not is_array or dy.dtype != dtype else ValueError
            raise error(f"{self.label}: backward(dy) expects dy shaped like the forward's output, {dtype} of shape "
                        f"{tuple(shape)}, got {got}")

    def _pop_cache(self):
        """Hand the last forward's cache to backward, exactly once."""
        cache, self._cache = self._cache, None
        if cache is None:
            raise RuntimeError(
                f"{self.label}: backward() called without a matching forward(). Each forward(x) stores the "
                "activations that exactly one backward(dy) uses; call forward again before the next backward."
            )
        return cache

    @property
    def label(self) -> str:
        """How errors name this module, e.g. ``layer 0 Dense(784->256)``."""
        return f"layer {self.name} {self!r}" if self.name else repr(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # ------------------------------------------------------------------ parameters and children
    def named_children(self):
        """``(name, child)`` for each direct sub-module: its attribute name (``"enc"``), or ``"attr.i"`` for the
        i-th module of a list or tuple attribute. ``Sequential`` names its layers ``"0"``, ``"1"``, ...

        These names build the keys of ``state_dict`` (``"enc.W"``), so two children can never share a key.
        """
        for attr, value in vars(self).items():
            if isinstance(value, Module):
                yield attr, value
            elif isinstance(value, (list, tuple)):
                yield from ((f"{attr}.{i}", v) for i, v in enumerate(value) if isinstance(v, Module))

    def children(self):
        """Direct sub-modules, in attribute order (lists and tuples of modules included)."""
        for _, child in self.named_children():
            yield child

    def named_modules(self, prefix: str = ""):
        """``(qualified name, module)`` for this module (name ``""``) and every descendant (``"enc"``, ``"0"``)."""
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def _named_params_all(self, prefix: str):
        for attr, value in vars(self).items():
            if isinstance(value, Param):
                yield prefix + attr, value
        for name, child in self.named_children():
            yield from child._named_params_all(f"{prefix}{name}.")

    def named_params(self, prefix: str = ""):
        """``(qualified name, Param)`` pairs, e.g. ``("0.W", Param)`` or ``("enc.W", Param)``: the path of attribute
        names that leads to the parameter. The names key ``state_dict``.

        A parameter reached twice (one module used in two places: shared weights) is listed once, under its first
        name, so an optimizer never updates it twice.
        """
        seen = set()
        for name, p in self._named_params_all(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def params(self) -> list[Param]:
        return [p for _, p in self.named_params()]

    def grad_norms(self) -> dict[str, float]:
        """The L2 norm of each parameter's gradient, keyed like ``state_dict`` (``"2.W"``); parameters without a
        gradient (frozen, or before any backward) are left out.

        A diagnosis readout: read it after a backward pass (after ``GAN.train_step``, D's are from its last update
        and G's from its own) to see which layer's gradient vanishes (a saturated minimax G) or explodes.
        """
        return {name: float(to_numpy(xp_of(p.grad).sqrt((p.grad * p.grad).sum())))
                for name, p in self.named_params() if p.grad is not None}

    def num_params(self) -> int:
        return sum(int(np.prod(p.shape)) for p in self.params())

    def zero_grad(self) -> None:
        for p in self.params():
            p.zero_grad()

    def requires_grad_(self, flag: bool = True) -> "Module":
        """Freeze (False) or unfreeze (True) every parameter; backward still returns dx."""
        for p in self.params():
            p.requires_grad = flag
        return self

    def modules(self):
        """This module and all its descendants, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    # ------------------------------------------------------------------ modes, devices, dtypes
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, backend: str | None = None, dtype=None) -> "Module":
        """Move parameters (and buffers) to ``"numpy"``/``"cupy"`` and/or cast them to ``dtype``, in place.

        Gradients and caches are dropped. Create optimizers *after* moving a model: their state lives with the
        parameters. Returns self, so ``model = build(...).to("cupy")`` reads naturally.
        """

        if dtype is not None:
            dtype = V.float_dtype(f"{type(self).__name__}.to", "dtype", dtype)

        def move(a):
            if backend is not None:
                a = to_device(a, backend)
            return a.astype(dtype, copy=False) if dtype is not None else a

        for m in self.modules():
            m._cache = None
            for value in vars(m).values():
                if isinstance(value, Param):
                    value.data = move(value.data)
                    value.grad = None
            for name in m.buffer_names:
                setattr(m, name, move(getattr(m, name)))
        return self

    @property
    def dtype(self):
        ps = self.params()
        return ps[0].data.dtype if ps else None

    # ------------------------------------------------------------------ saving
    def named_buffers(self, prefix: str = ""):
        """``(qualified name, array)`` for every buffer (``"0.running_mean"``), named like ``named_params``."""
        for path, module in self.named_modules():
            for attr in module.buffer_names:
                yield prefix + (f"{path}.{attr}" if path else attr), getattr(module, attr)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter and buffer values as host NumPy arrays keyed by qualified name (``np.savez``-ready)."""
        state = {}
        for name, value in [(n, p.data) for n, p in self.named_params()] + list(self.named_buffers()):
            if name in state:  # only possible with names set by hand (setattr); never drop a value silently
                raise ValueError(f"{type(self).__name__}: two entries are both named {name!r}; rename one of the "
                                 "attributes so every parameter and buffer has its own key")
            state[name] = to_numpy(value).copy()
        return state

    def load_state_dict(self, state) -> None:
        """Copy values from ``state`` (as made by ``state_dict``); every name and shape must match.

        Raises ValueError naming the missing and the unexpected keys (a checkpoint of another architecture, or of
        an older minigan whose keys collided), or the first entry whose shape differs; nothing is changed then.
        """
        own = dict(self.named_params())
        buffers = dict(self.named_buffers())
        expected = set(own) | set(buffers)
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"state does not fit {type(self).__name__}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
                " (was it saved from a different architecture?)"
            )
        loaded = {name: _loaded_like(state[name], current, name)
                  for name, current in [(n, p.data) for n, p in own.items()] + list(buffers.items())}
        for name, p in own.items():
            p.data = loaded[name]
            p.grad = None
        for name in buffers:
            owner, attr = self._owner_of(name)
            setattr(owner, attr, loaded[name])

    def _owner_of(self, qualified: str):
        """The module that holds parameter or buffer ``qualified`` (e.g. ``"2.running_mean"``) and the attribute."""
        path, _, attr = qualified.rpartition(".")
        for name, module in self.named_modules():
            if name == path:
                return module, attr
        raise KeyError(f"{type(self).__name__} has no sub-module {path!r} (for {qualified!r})")

    # ------------------------------------------------------------------ description
    def summary(self, batch_size: int = 1, file=None) -> None:
        """Print each layer with its output shape and parameter count, and the totals."""
        file = sys.stdout if file is None else file
        rows = [("layer", "output shape", "params")]
        layers = list(self) if isinstance(self, Sequential) else [self]
        in_features = _first_in_features(self)
        shape = (batch_size, in_features) if in_features is not None else None
        for i, layer in enumerate(layers):
            shape = layer.output_shape(shape) if shape is not None else None
            count = layer.num_params()
            rows.append((f"{layer.name or i}: {layer!r}", str(shape) if shape else "?", f"{count:,}"))
        total = self.num_params()
        trainable = sum(int(np.prod(p.shape)) for p in self.params() if p.requires_grad)
        width = [max(len(r[k]) for r in rows) for k in range(3)]
        lines = [f"{a:<{width[0]}}  {b:<{width[1]}}  {c:>{width[2]}}" for a, b, c in rows]
        rule = "-" * len(lines[0])
        lines.insert(1, rule)
        lines += [rule, f"total params: {total:,} (trainable {trainable:,})"]
        print("\n".join(lines), file=file)

    def output_shape(self, input_shape):
        """Shape of the output for an input of ``input_shape`` (elementwise layers keep it)."""
        return input_shape


def _loaded_like(value, current, name):
    value = np.array(to_numpy(value), dtype=current.dtype)  # a copy: the model must not share the caller's arrays
    if tuple(value.shape) != tuple(current.shape):
        raise ValueError(f"'{name}': saved shape {tuple(value.shape)} does not match the model's {tuple(current.shape)}")
    return to_device(value, backend_of(current))


def _first_in_features(module):
    """The flat input size the model's first sized layer takes: a Dense's in_features, or the size of a Reshape that
    turns rows into images (a convolutional discriminator); None when unknown (e.g. a Conv2d first)."""
    for m in module.modules():
        if isinstance(m, Dense):
            return m.in_features
        if isinstance(m, Reshape) and -1 not in m.shape:
            return int(np.prod(m.shape))
        if isinstance(m, _Conv):
            return None
    return None


# ====================================================================================================== layers


class Dense(Module):
    """Fully connected layer ``y = x @ W + b``.

    Shapes: x ``(N, in_features)``, W ``(in_features, out_features)``, b ``(out_features,)``, y ``(N, out_features)``.
    Backward: ``dx = dy @ W.T``, ``dW += x.T @ dy``, ``db += dy.sum(axis=0)``.

    ``init`` is ``"glorot"`` (Glorot uniform, default), ``"he"`` (He normal, for ReLU stacks) or ``"normal"``
    (N(0, 0.02^2), the DCGAN recipe); weights are drawn on the host from ``rng`` (a Generator or an int seed).

    Derivation: docs/derivations.md#dense
    """

    keeps_output = False  # y = x @ W + b is a new array; the cache holds x and W

    def __init__(self, in_features: int, out_features: int, rng=None, init: str = "glorot", bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        if init not in INITIALIZERS:
            raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITIALIZERS)}")
        self.in_features = V.integer("Dense", "in_features", in_features)
        self.out_features = V.integer("Dense", "out_features", out_features)
        dtype = V.float_dtype("Dense", "dtype", dtype)
        self.W = Param(INITIALIZERS[init](as_rng(rng), self.in_features, self.out_features, dtype=dtype), "W")
        self.b = Param(np.zeros(self.out_features, dtype=dtype), "b") if bias else None

    def __repr__(self) -> str:
        return f"Dense({self.in_features}->{self.out_features})"

    def output_shape(self, input_shape):
        return (input_shape[0], self.out_features)

    def _check_input(self, x) -> None:
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) != 2 or shape[1] != self.in_features:
            raise ValueError(
                f"{self.label}: expected input of shape (batch, {self.in_features}), got {shape}. "
                "Flatten images to (batch, features) first, e.g. x.reshape(len(x), -1)."
            )
        if shape[0] == 0:
            raise ValueError(f"{self.label}: empty batch (input of shape {shape}); pass at least one row")
        if x.dtype != self.W.data.dtype:
            raise TypeError(
                f"{self.label}: input dtype {x.dtype} differs from the weights' {self.W.data.dtype}; minigan never "
                f"promotes silently. Convert the input (x.astype('{self.W.data.dtype}')) or the model "
                f"(model.to(dtype='{x.dtype}'))."
            )
        if type(x) is not type(self.W.data):
            V.same_backend(self.label, x=x, W=self.W.data)  # a clear TypeError for NumPy/CuPy mixes

    def forward(self, x):
        self._check_input(x)
        y, cache = F.dense_forward(x, self.W.data, None if self.b is None else self.b.data)
        self._save_cache(cache)
        return y  # (N, out_features)

    def backward(self, dy, need_input_grad: bool = True):
        # The same three products as F.dense_backward, each skipped when nobody needs it (tested equal).
        x, W = self._pop_cache()
        self._check_dy(dy, (x.shape[0], W.shape[1]), W.dtype)
        if self.W.requires_grad:
            self.W.accumulate(x.T @ dy)  # (in, out)
        if self.b is not None and self.b.requires_grad:
            self.b.accumulate(dy.sum(axis=0))  # (out,)
        if not need_input_grad:
            return None
        if W.shape[1] == 1:
            # One output (D's logit): dy @ W.T is the outer product (N, 1) x (1, in). A broadcast multiply gives the
            # same values (tested; an exact zero may come out as -0.0) ~4x faster than a GEMM of inner dimension 1.
            return dy * W.T  # (N, in)
        return dy @ W.T  # (N, in)


class _BatchNorm(Module):
    """What BatchNorm1d and BatchNorm2d share: gamma and beta, the running statistics kept as buffers, and their
    update ``running = (1 - momentum) * running + momentum * batch`` (the variance unbiased: ``var * m / (m - 1)``
    for m values per feature)."""

    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        where = type(self).__name__
        self.num_features = V.integer(where, "num_features", num_features)
        self.momentum = V.real(where, "momentum", momentum, low=0, high=1, low_open=True)
        self.eps = V.real(where, "eps", eps, low=0, low_open=True)
        dtype = V.float_dtype(where, "dtype", dtype)
        self.gamma = Param(np.ones(self.num_features, dtype=dtype), "gamma")
        self.beta = Param(np.zeros(self.num_features, dtype=dtype), "beta")
        self.running_mean = np.zeros(self.num_features, dtype=dtype)  # (F,)
        self.running_var = np.ones(self.num_features, dtype=dtype)  # (F,)

    def _track(self, mu, var, m: int) -> None:
        """Fold one training batch's mean and (biased) variance, over m values per feature, into the buffers."""
        r = self.momentum
        self.running_mean = (1 - r) * self.running_mean + r * mu  # (F,)
        self.running_var = (1 - r) * self.running_var + r * (var * (m / (m - 1)))  # (F,) unbiased


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of each feature (Ioffe & Szegedy, 2015), the layer DCGAN-style generators put after
    each hidden Dense.

    Training mode normalises with the batch's statistics: ``xhat = (x - mean_n x) / sqrt(var_n x + eps)``,
    ``y = gamma * xhat + beta``; backward (``F.batchnorm_backward``):
    ``dx = gamma / (N sqrt(var + eps)) * (N dy - sum_n dy - xhat * sum_n (dy * xhat))``, ``dgamma = sum_n dy * xhat``,
    ``dbeta = sum_n dy``. It also updates the buffers ``running_mean`` and ``running_var`` (unbiased) as
    ``r <- (1 - momentum) r + momentum * batch value``.

    Eval mode (``module.eval()``, used for sampling and evaluation) normalises with the running statistics
    instead, so each sample depends on its own noise only: ``y = gamma * (x - running_mean) / sqrt(running_var +
    eps) + beta`` and ``dx = dy * gamma / sqrt(running_var + eps)``.

    Shapes: x ``(N, F)`` (N >= 2 in training mode), gamma and beta ``(F,)``.

    Put it after a Dense *without* bias (``Dense(..., bias=False)``, as DCGAN does): the normalisation subtracts
    the batch mean, so a bias before it changes nothing, its true gradient is exactly 0, and Adam turns the float32
    rounding noise left in that gradient into full-size steps. ``beta`` is the layer's shift.

    Derivation: docs/derivations.md#batch-norm
    """

    def __repr__(self) -> str:
        return f"BatchNorm1d({self.num_features})"

    def forward(self, x):
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) != 2 or shape[1] != self.num_features:
            raise ValueError(f"{self.label}: expected input of shape (batch, {self.num_features}), got {shape}")
        if x.dtype != self.gamma.data.dtype:
            dtype = self.gamma.data.dtype
            raise TypeError(f"{self.label}: input dtype {x.dtype} differs from the parameters' {dtype}; minigan never "
                            f"promotes silently. Convert the input (x.astype('{dtype}'))")
        if type(x) is not type(self.gamma.data):
            V.same_backend(self.label, x=x, gamma=self.gamma.data)  # a clear TypeError for NumPy/CuPy mixes
        if shape[0] == 0:
            raise ValueError(f"{self.label}: empty batch (input of shape {shape}); pass at least one row")
        if not self.training:
            inv_std = 1.0 / xp_of(x).sqrt(self.running_var + self.eps)  # (F,)
            xhat = (x - self.running_mean) * inv_std  # (N, F)
            self._save_cache(("eval", xhat, inv_std))
            return xhat * self.gamma.data + self.beta.data  # (N, F)
        if shape[0] < 2:
            raise ValueError(f"{self.label}: a training-mode batch needs at least 2 rows to have a variance, got "
                             f"{shape[0]}; sample in eval mode (module.eval()) or use a larger batch")
        y, cache = F.batchnorm_forward(x, self.gamma.data, self.beta.data, self.eps)
        self._track(cache[3], cache[4], shape[0])  # the batch's mean and variance, (F,) each
        self._save_cache(("train", cache))
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        xhat = cache[1] if cache[0] == "eval" else cache[1][0]
        self._check_dy(dy, xhat.shape, xhat.dtype)
        if cache[0] == "eval":
            _, xhat, inv_std = cache
            dx = dy * (self.gamma.data * inv_std) if need_input_grad else None  # (N, F)
            dgamma, dbeta = (dy * xhat).sum(axis=0), dy.sum(axis=0)  # (F,)
        else:
            dx, dgamma, dbeta = F.batchnorm_backward(dy, cache[1])
            dx = dx if need_input_grad else None
        if self.gamma.requires_grad:
            self.gamma.accumulate(dgamma)
        if self.beta.requires_grad:
            self.beta.accumulate(dbeta)
        return dx


class _Elementwise(Module):
    """An activation ``y = f(x)`` applied elementwise; no parameters. Subclasses name their functional pair."""

    _forward = staticmethod(lambda x, out=None: (x, None))
    _backward = staticmethod(lambda dy, cache: dy)
    # minigan.kernels functions, or None: (x, out) -> y, equal to _forward's y bit for bit (only for activations
    # whose cache is their output y), and (dy, y) -> dx, equal to _backward's dx; each returns None when it can't
    _fast_forward = None
    _fast_backward = None

    def forward(self, x):
        return self._run_forward(x, None)

    def forward_inplace(self, x):
        return self._run_forward(x, x)

    def _run_forward(self, x, out):
        fast = type(self)._fast_forward
        y = None if fast is None else fast(x, out)  # the fused CPU form (its cache is y), when it can take x
        y, cache = type(self)._forward(x, out=out) if y is None else (y, y)
        self._save_cache(cache)
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        self._check_dy(dy, cache.shape, cache.dtype)  # the cache is y
        if not need_input_grad:
            return None
        fast = type(self)._fast_backward
        dx = None if fast is None else fast(dy, cache)  # the fused CPU form, when it can take the arrays
        return type(self)._backward(dy, cache) if dx is None else dx


class ReLU(_Elementwise):
    """``y = max(x, 0)``; ``dx = dy * [x > 0]``.

    Derivation: docs/derivations.md#activations
    """

    _forward = staticmethod(F.relu_forward)
    _backward = staticmethod(F.relu_backward)


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + exp(-x))`` (overflow-free); ``dx = dy * y (1 - y)``.

    Derivation: docs/derivations.md#activations
    """

    _forward = staticmethod(F.sigmoid_forward)
    _backward = staticmethod(F.sigmoid_backward)
    _fast_forward = staticmethod(kernels.sigmoid_forward)
    _fast_backward = staticmethod(kernels.sigmoid_backward)


class Tanh(_Elementwise):
    """``y = tanh(x)``; ``dx = dy * (1 - y^2)``.

    Derivation: docs/derivations.md#activations
    """

    _forward = staticmethod(F.tanh_forward)
    _backward = staticmethod(F.tanh_backward)
    _fast_backward = staticmethod(kernels.tanh_backward)


class LeakyReLU(Module):
    """``y = x`` for ``x > 0`` else ``slope * x``; ``dx = dy`` for ``x > 0`` else ``slope * dy``.

    ``slope`` must be a finite number >= 0 (0.2 by default, as in DCGAN's discriminator): the backward pass reads
    its mask from the output, which is right only for a non-negative slope (see ``F.leaky_relu_forward``).

    Derivation: docs/derivations.md#activations
    """

    def __init__(self, slope: float = 0.2):
        super().__init__()
        self.slope = F.check_leaky_slope(slope)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope:g})"

    def forward(self, x):
        return self._forward(x, out=None)

    def forward_inplace(self, x):
        return self._forward(x, out=x)

    def _forward(self, x, out):
        y = kernels.leaky_relu_forward(x, self.slope, out=out)  # the fused CPU form, when it can take x
        if y is None:
            y, _ = F.leaky_relu_forward(x, self.slope, out=out)
        self._save_cache((y, self.slope))  # F.leaky_relu_forward's cache
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        self._check_dy(dy, cache[0].shape, cache[0].dtype)  # cache = (y, slope)
        if not need_input_grad:
            return None
        dx = kernels.leaky_relu_backward(dy, *cache)  # the fused CPU form, when it can take the arrays
        return F.leaky_relu_backward(dy, cache) if dx is None else dx


class Sequential(Module):
    """Modules applied in order: ``forward`` chains them, ``backward`` runs them in reverse.

    Layers are named "0", "1", ... so errors and ``state_dict`` keys say which one is meant (``"2.W"``).
    """

    def __init__(self, *layers: Module):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
            layer.name = str(i)
        self.layers = list(layers)

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(repr(m) for m in self.layers) + ")"

    def named_children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def __iter__(self):
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def forward(self, x):
        handed_over = False  # may the next layer overwrite x? Never the caller's input
        for layer in self.layers:
            # A Dense output feeds only the next layer: its activation may be computed in that buffer (one
            # allocation fewer per layer; fewer page faults when big temporaries come and go every step).
            x = layer.forward_inplace(x) if handed_over else layer.forward(x)
            handed_over = not layer.keeps_output
        return x

    def backward(self, dy, need_input_grad: bool = True):
        for i in range(len(self.layers) - 1, -1, -1):
            dy = self.layers[i].backward(dy, need_input_grad=need_input_grad or i > 0)
        return dy

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape


# ====================================================================================================== images
# Convolutional layers, with PyTorch's argument names, weight layouts and output-size formulas. Images are NCHW:
# (batch, channels, height, width).


def _conv_weights(rng, shape, init, bias, dtype):
    """Weights of ``shape`` and a bias of ``shape[1]`` or ``shape[0]`` entries (see the callers), drawn from ``rng``.

    ``"pytorch"``: PyTorch's default for ``nn.Conv2d``/``nn.ConvTranspose2d`` (``kaiming_uniform_(a=sqrt(5))``),
    i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the weights and the bias alike, with ``fan_in = shape[1] * kH
    * kW`` computed from the weight array as PyTorch does (``in_channels * k * k`` for a convolution,
    ``out_channels * k * k`` for a transposed one). ``"normal"``: ``N(0, 0.02^2)`` weights and a zero bias, the DCGAN
    recipe (Radford et al., 2016).
    """
    rng = as_rng(rng)
    fan_in = shape[1] * shape[2] * shape[3]
    if init == "pytorch":
        bound = 1.0 / np.sqrt(fan_in)
        W = rng.uniform(-bound, bound, size=shape).astype(dtype)
        b = rng.uniform(-bound, bound, size=bias).astype(dtype) if bias else None
    elif init == "normal":
        W = (rng.standard_normal(shape) * 0.02).astype(dtype)
        b = np.zeros(bias, dtype=dtype) if bias else None
    else:
        raise ValueError(f"unknown init {init!r} for a convolution: choose 'pytorch' or 'normal'")
    return W, b


def _check_image(module, x, channels):
    """A 4-D input with ``channels`` channels, of the module's dtype and backend; else an error naming the layer."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4:
        raise ValueError(
            f"{module.label}: expected a 4-D input of shape (batch, {channels}, height, width), got {shape}. "
            "Images are NCHW; turn a flat batch into images with nn.Reshape((channels, height, width)) first."
        )
    if shape[1] != channels:
        raise ValueError(f"{module.label}: expected input of shape (batch, {channels}, height, width) with "
                         f"{channels} channel(s), got {shape} with {shape[1]}")
    params = module.params()
    if params and x.dtype != params[0].data.dtype:
        # the model can follow the input only to the other dtype minigan computes in (float32 <-> float64)
        or_model = f" or the model (model.to(dtype='{x.dtype}'))" if x.dtype in V.FLOAT_DTYPES else ""
        raise TypeError(
            f"{module.label}: input dtype {x.dtype} differs from the weights' {params[0].data.dtype}; minigan never "
            f"promotes silently. Convert the input (x.astype('{params[0].data.dtype}')){or_model}."
        )
    if params:
        xp_of(x, params[0].data)  # raises a clear TypeError for NumPy/CuPy mixes
    return shape


class _Conv(Module):
    """What Conv2d and ConvTranspose2d share: their geometry arguments and parameters, and the output shape from
    ``_output_size`` (each has its own formula)."""

    def _init_geometry(self, in_channels, out_channels, kernel_size, stride, padding, weight_shape, bias, rng,
                       init, dtype):
        """Channels, kernel, stride and padding checked and stored; W of ``weight_shape(in, out, (kH, kW))``."""
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = F._pair(kernel_size, "kernel_size")
        self.stride, self.padding = F._pair(stride, "stride"), F._pair(padding, "padding")
        if min(self.kernel_size) < 1 or min(self.stride) < 1 or min(self.padding) < 0:
            raise ValueError(f"{type(self).__name__}: need kernel_size >= 1, stride >= 1, padding >= 0, got "
                             f"kernel_size={kernel_size}, stride={stride}, padding={padding}")
        shape = weight_shape(self.in_channels, self.out_channels, self.kernel_size)
        W, b = _conv_weights(rng, shape, init, self.out_channels if bias else 0, dtype)
        self.W = Param(W, "W")
        self.b = Param(b, "b") if bias else None

    def output_shape(self, input_shape):
        if len(input_shape) != 4:
            return None  # unknown: summary() guesses a flat input from the first Dense it finds; forward() explains
        n, _, h, w = input_shape
        return (n, self.out_channels, *self._output_size(h, w, input_shape))


class Conv2d(_Conv):
    """2-D convolution (PyTorch's ``nn.Conv2d``): ``y[n, o] = b[o] + sum_c W[o, c] (*) x[n, c]`` with stride and
    zero padding, computed as one GEMM on ``im2col(x)`` (``F.conv2d_forward``).

    Shapes: x ``(N, in_channels, H, W)``, W ``(out_channels, in_channels, kH, kW)``, b ``(out_channels,)``, y
    ``(N, out_channels, OH, OW)`` with ``OH = floor((H + 2 padding - kH) / stride) + 1``. ``kernel_size``, ``stride``
    and ``padding`` are ints or (h, w) pairs. Backward: ``dW += dY @ cols.T``, ``db += sum dy``,
    ``dx = col2im(W.T @ dY)`` (``F.conv2d_backward``).

    ``init``: ``"pytorch"`` (default; PyTorch's ``U(+-1/sqrt(in_channels*kH*kW))`` for W and b) or ``"normal"``
    (``N(0, 0.02^2)``, zero bias: the DCGAN recipe). Weights are drawn on the host from ``rng``.

    Derivation: docs/derivations.md#conv2d
    """

    keeps_output = False  # y is a new array; the cache holds the patches and W, not y

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, bias: bool = True,
                 rng=None, init: str = "pytorch", dtype=np.float32):
        super().__init__()
        self._init_geometry(in_channels, out_channels, kernel_size, stride, padding,
                            lambda i, o, k: (o, i, *k), bias, rng, init, dtype)  # W (C_out, C_in, kH, kW)

    def __repr__(self) -> str:
        return (f"Conv2d({self.in_channels}->{self.out_channels}, k={_show(self.kernel_size)}, "
                f"s={_show(self.stride)}, p={_show(self.padding)}{'' if self.b is not None else ', bias=False'})")

    def _output_size(self, h, w, shape):
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = F.conv_output_size(h, kh, sh, ph), F.conv_output_size(w, kw, sw, pw)
        if oh < 1 or ow < 1:
            raise ValueError(
                f"{self.label}: input of shape {tuple(shape)} is too small: a {kh}x{kw} kernel does not fit in "
                f"{h}x{w} padded by {self.padding} (need height >= {kh - 2 * ph} and width >= {kw - 2 * pw})"
            )
        return oh, ow

    def forward(self, x):
        shape = _check_image(self, x, self.in_channels)
        self._output_size(shape[2], shape[3], shape)
        y, cache = F.conv2d_forward(x, self.W.data, None if self.b is None else self.b.data, self.stride,
                                    self.padding)
        self._save_cache(cache)
        return y  # (N, out_channels, OH, OW)

    def backward(self, dy, need_input_grad: bool = True):
        # F.conv2d_backward's products, each skipped when nobody needs it (tested equal)
        cols, W, x_shape, stride, padding = self._pop_cache()
        dy2 = F.to_channel_matrix(dy)  # (C_out, OH*OW*N)
        if self.W.requires_grad:
            self.W.accumulate((dy2 @ cols.T).reshape(W.shape))  # (C_out, C_in, kH, kW)
        if self.b is not None and self.b.requires_grad:
            self.b.accumulate(dy2.sum(axis=1))  # (C_out,)
        if not need_input_grad:
            return None
        dcols = W.reshape(self.out_channels, -1).T @ dy2  # (C_in*kH*kW, OH*OW*N)
        return F.col2im(dcols, x_shape, self.kernel_size, stride, padding)  # (N, C_in, H, W)


class ConvTranspose2d(_Conv):
    """Transposed convolution (PyTorch's ``nn.ConvTranspose2d``): the input gradient of a ``Conv2d(out_channels ->
    in_channels)`` with the same kernel, stride and padding, used as a layer that upsamples
    (``F.conv_transpose2d_forward``).

    Shapes: x ``(N, in_channels, H, W)``, W ``(in_channels, out_channels, kH, kW)`` (PyTorch's layout), b
    ``(out_channels,)``, y ``(N, out_channels, OH, OW)`` with ``OH = (H - 1) stride - 2 padding + kH +
    output_padding``; ``output_padding < stride``. Backward: ``dcols = im2col(dy)``, ``dx = W @ dcols`` (a
    convolution), ``dW += X @ dcols.T``, ``db += sum dy`` (``F.conv_transpose2d_backward``).

    ``init``: ``"pytorch"`` (default; PyTorch's ``U(+-1/sqrt(out_channels*kH*kW))``: its fan-in is read from the
    weight array's second axis) or ``"normal"`` (``N(0, 0.02^2)``, zero bias: DCGAN).

    Derivation: docs/derivations.md#conv-transpose2d
    """

    keeps_output = False  # y is a new array; the cache holds x and W

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, output_padding=0,
                 bias: bool = True, rng=None, init: str = "pytorch", dtype=np.float32):
        super().__init__()
        self._init_geometry(in_channels, out_channels, kernel_size, stride, padding,
                            lambda i, o, k: (i, o, *k), bias, rng, init, dtype)  # W (C_in, C_out, kH, kW)
        self.output_padding = F._pair(output_padding, "output_padding")
        if not all(0 <= q < s for q, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"ConvTranspose2d: output_padding must be >= 0 and smaller than stride, got "
                             f"output_padding={output_padding}, stride={stride}")

    def __repr__(self) -> str:
        extra = f", op={_show(self.output_padding)}" if any(self.output_padding) else ""
        return (f"ConvTranspose2d({self.in_channels}->{self.out_channels}, k={_show(self.kernel_size)}, "
                f"s={_show(self.stride)}, p={_show(self.padding)}{extra}"
                f"{'' if self.b is not None else ', bias=False'})")

    def _output_size(self, h, w, shape):
        (kh, kw), (sh, sw), (ph, pw), (qh, qw) = self.kernel_size, self.stride, self.padding, self.output_padding
        oh = F.conv_transpose_output_size(h, kh, sh, ph, qh)
        ow = F.conv_transpose_output_size(w, kw, sw, pw, qw)
        if oh < 1 or ow < 1:
            raise ValueError(f"{self.label}: input of shape {tuple(shape)} gives an empty output ({oh}x{ow}): "
                             f"padding {self.padding} crops more than the kernel adds")
        return oh, ow

    def forward(self, x):
        shape = _check_image(self, x, self.in_channels)
        self._output_size(shape[2], shape[3], shape)
        y, cache = F.conv_transpose2d_forward(x, self.W.data, None if self.b is None else self.b.data, self.stride,
                                              self.padding, self.output_padding)
        self._save_cache(cache)
        return y  # (N, out_channels, OH, OW)

    def backward(self, dy, need_input_grad: bool = True):
        # F.conv_transpose2d_backward's products, each skipped when nobody needs it (tested equal)
        x, W, stride, padding = self._pop_cache()
        n, _, h, w = x.shape
        if self.b is not None and self.b.requires_grad:
            self.b.accumulate(dy.sum(axis=(0, 2, 3)))  # (C_out,)
        if not (need_input_grad or self.W.requires_grad):
            return None
        dcols = F.im2col(dy, self.kernel_size, stride, padding)  # (C_out*kH*kW, H*W*N)
        if self.W.requires_grad:
            x2 = F.to_channel_matrix(x)  # (C_in, H*W*N)
            self.W.accumulate((x2 @ dcols.T).reshape(W.shape))  # (C_in, C_out, kH, kW)
        if not need_input_grad:
            return None
        dx = W.reshape(self.in_channels, -1) @ dcols  # (C_in, H*W*N)
        return F.from_channel_matrix(dx, n, h, w)  # (N, C_in, H, W)


def _show(pair):
    """``(4, 4)`` -> ``"4"``, ``(3, 5)`` -> ``"(3, 5)"``, for reprs."""
    return str(pair[0]) if pair[0] == pair[1] else str(tuple(pair))


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of each channel over the batch and every pixel (PyTorch's ``nn.BatchNorm2d``): the
    layer DCGAN puts after each hidden (transposed) convolution.

    The math is ``BatchNorm1d``'s with ``M = N*H*W`` rows per channel (``F.batchnorm2d_forward``): training mode
    normalises with the batch's per-channel statistics and updates the buffers ``running_mean`` and ``running_var``
    (unbiased, ``var * M / (M - 1)``) as ``r <- (1 - momentum) r + momentum * batch value``; eval mode normalises with
    the running statistics. Shapes: x ``(N, num_features, H, W)`` (``N*H*W >= 2`` in training mode); gamma, beta
    and the buffers ``(num_features,)``.

    Derivation: docs/derivations.md#batchnorm2d
    """

    keeps_output = False  # y is a new array; the cache holds xhat

    def __repr__(self) -> str:
        return f"BatchNorm2d({self.num_features})"

    def forward(self, x):
        shape = _check_image(self, x, self.num_features)
        if not self.training:
            y, cache = F.batchnorm2d_forward(x, self.gamma.data, self.beta.data, self.eps, self.running_mean,
                                             self.running_var)
            self._save_cache(cache)
            return y
        m = shape[0] * shape[2] * shape[3]
        if m < 2:
            raise ValueError(f"{self.label}: a training-mode batch needs at least 2 values per channel (N*H*W >= 2) "
                             f"to have a variance, got input of shape {shape}; use eval mode (module.eval()) or a "
                             "larger batch")
        y, cache = F.batchnorm2d_forward(x, self.gamma.data, self.beta.data, self.eps)
        self._track(cache[3], cache[4], m)  # the batch's per-channel mean and variance, (C,) each
        self._save_cache(cache)
        return y  # (N, C, H, W)

    def backward(self, dy, need_input_grad: bool = True):
        dx, dgamma, dbeta = F.batchnorm2d_backward(dy, self._pop_cache())
        if self.gamma.requires_grad:
            self.gamma.accumulate(dgamma)
        if self.beta.requires_grad:
            self.beta.accumulate(dbeta)
        return dx if need_input_grad else None


class Reshape(Module):
    """``y = x.reshape(N, *shape)``: regroup each example's values, keeping the batch axis, e.g. a Dense output
    ``(N, 128*7*7)`` into feature maps ``Reshape((128, 7, 7))``. ``dx = dy.reshape(x.shape)``.

    ``shape`` excludes the batch axis and may hold one -1 (inferred), as in NumPy.
    """

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)
        if sum(s == -1 for s in self.shape) > 1 or any(s < 1 and s != -1 for s in self.shape):
            raise ValueError(f"Reshape: shape must hold positive sizes and at most one -1, got {shape}")

    def __repr__(self) -> str:
        return f"Reshape({self.shape})"

    def output_shape(self, input_shape):
        size = int(np.prod(input_shape[1:]))
        known = int(np.prod([s for s in self.shape if s != -1]))
        if (size % known if -1 in self.shape else size != known):
            raise ValueError(f"{self.label}: cannot reshape input of shape {tuple(input_shape)} ({size} values per "
                             f"example) to (batch, {', '.join(map(str, self.shape))})")
        return (input_shape[0], *(size // known if s == -1 else s for s in self.shape))

    def forward(self, x):
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) < 1:
            raise ValueError(f"{self.label}: expected a batch (batch, ...), got shape {shape}")
        self.output_shape(shape)
        y, cache = F.reshape_forward(x, self.shape)
        self._save_cache(cache)
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        return F.reshape_backward(dy, cache) if need_input_grad else None


class Flatten(Module):
    """``y = x.reshape(N, -1)``: ``(N, C, H, W)`` -> ``(N, C*H*W)``, the step from a convolutional trunk to a Dense
    head (PyTorch's ``nn.Flatten()``). ``dx = dy.reshape(x.shape)``."""

    def output_shape(self, input_shape):
        return (input_shape[0], int(np.prod(input_shape[1:])))

    def forward(self, x):
        shape = tuple(getattr(x, "shape", ()))
        if len(shape) < 1:
            raise ValueError(f"{self.label}: expected a batch (batch, ...), got shape {shape}")
        y, cache = F.flatten_forward(x)
        self._save_cache(cache)
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        return F.flatten_backward(dy, cache) if need_input_grad else None

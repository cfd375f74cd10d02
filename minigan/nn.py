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
    def children(self):
        """Direct sub-modules, in attribute order (lists and tuples of modules included)."""
        for value in vars(self).values():
            if isinstance(value, Module):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (v for v in value if isinstance(v, Module))

    def named_params(self, prefix: str = ""):
        """``(qualified name, Param)`` pairs, e.g. ``("0.W", Param)``; the names key ``state_dict``."""
        for value in vars(self).values():
            if isinstance(value, Param):
                yield prefix + value.name, value
        for child in self.children():
            yield from child.named_params(f"{prefix}{child.name}." if child.name else prefix)

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
        for name in self.buffer_names:
            yield prefix + name, getattr(self, name)
        for child in self.children():
            yield from child.named_buffers(f"{prefix}{child.name}." if child.name else prefix)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter and buffer values as host NumPy arrays keyed by qualified name (``np.savez``-ready)."""
        state = {name: to_numpy(p.data).copy() for name, p in self.named_params()}
        state.update({name: to_numpy(b).copy() for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state) -> None:
        """Copy values from ``state`` (as made by ``state_dict``); every name and shape must match."""
        own = dict(self.named_params())
        buffers = dict(self.named_buffers())
        expected = set(own) | set(buffers)
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise ValueError(
                f"state does not fit {type(self).__name__}: missing {sorted(missing)}, unexpected {sorted(unexpected)}"
                " (was it saved from a different architecture?)"
            )
        for name, p in own.items():
            p.data = _loaded_like(state[name], p.data, name)
            p.grad = None
        for name, value in buffers.items():
            owner, attr = self._owner_of(name)
            setattr(owner, attr, _loaded_like(state[name], value, name))

    def _owner_of(self, qualified: str):
        """The module that holds buffer ``qualified`` (e.g. ``"2.running_mean"``) and the attribute name."""
        *path, attr = qualified.split(".")
        module = self
        for part in path:
            module = next(c for c in module.children() if c.name == part)
        return module, attr

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
    for m in module.modules():
        if isinstance(m, Dense):
            return m.in_features
    return None


# ====================================================================================================== layers


class Dense(Module):
    """Fully connected layer ``y = x @ W + b``.

    Shapes: x ``(N, in_features)``, W ``(in_features, out_features)``, b ``(out_features,)``, y ``(N, out_features)``.
    Backward: ``dx = dy @ W.T``, ``dW += x.T @ dy``, ``db += dy.sum(axis=0)``.

    ``init`` is ``"glorot"`` (Glorot uniform, default), ``"he"`` (He normal, for ReLU stacks) or ``"normal"``
    (N(0, 0.02^2), the DCGAN recipe); weights are drawn on the host from ``rng`` (a Generator or an int seed).
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
        return dy @ W.T if need_input_grad else None  # (N, in)


class BatchNorm1d(Module):
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
    """

    buffer_names = ("running_mean", "running_var")

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.num_features = V.integer("BatchNorm1d", "num_features", num_features)
        self.momentum = V.real("BatchNorm1d", "momentum", momentum, low=0, high=1, low_open=True)
        self.eps = V.real("BatchNorm1d", "eps", eps, low=0, low_open=True)
        dtype = V.float_dtype("BatchNorm1d", "dtype", dtype)
        self.gamma = Param(np.ones(self.num_features, dtype=dtype), "gamma")
        self.beta = Param(np.zeros(self.num_features, dtype=dtype), "beta")
        self.running_mean = np.zeros(self.num_features, dtype=dtype)
        self.running_var = np.ones(self.num_features, dtype=dtype)

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
        if not self.training:
            inv_std = 1.0 / xp_of(x).sqrt(self.running_var + self.eps)  # (F,)
            xhat = (x - self.running_mean) * inv_std  # (N, F)
            self._save_cache(("eval", xhat, inv_std))
            return xhat * self.gamma.data + self.beta.data  # (N, F)
        if shape[0] < 2:
            raise ValueError(f"{self.label}: a training-mode batch needs at least 2 rows to have a variance, got "
                             f"{shape[0]}; sample in eval mode (module.eval()) or use a larger batch")
        y, cache, mu, var = F.batchnorm_forward(x, self.gamma.data, self.beta.data, self.eps)
        m, n = self.momentum, shape[0]
        self.running_mean = (1 - m) * self.running_mean + m * mu  # (F,)
        self.running_var = (1 - m) * self.running_var + m * (var * (n / (n - 1)))  # (F,) unbiased
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

    def forward(self, x):
        y, cache = type(self)._forward(x)
        self._save_cache(cache)
        return y

    def forward_inplace(self, x):
        y, cache = type(self)._forward(x, out=x)
        self._save_cache(cache)
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        self._check_dy(dy, cache.shape, cache.dtype)  # the cache is y
        return type(self)._backward(dy, cache) if need_input_grad else None


class ReLU(_Elementwise):
    """``y = max(x, 0)``; ``dx = dy * [x > 0]``."""

    _forward = staticmethod(F.relu_forward)
    _backward = staticmethod(F.relu_backward)


class Sigmoid(_Elementwise):
    """``y = 1 / (1 + exp(-x))`` (overflow-free); ``dx = dy * y (1 - y)``."""

    _forward = staticmethod(F.sigmoid_forward)
    _backward = staticmethod(F.sigmoid_backward)


class Tanh(_Elementwise):
    """``y = tanh(x)``; ``dx = dy * (1 - y^2)``."""

    _forward = staticmethod(F.tanh_forward)
    _backward = staticmethod(F.tanh_backward)


class LeakyReLU(Module):
    """``y = x`` for ``x > 0`` else ``slope * x``; ``dx = dy`` for ``x > 0`` else ``slope * dy``."""

    def __init__(self, slope: float = 0.2):
        super().__init__()
        self.slope = float(slope)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.slope:g})"

    def forward(self, x):
        y, cache = F.leaky_relu_forward(x, self.slope)
        self._save_cache(cache)
        return y

    def forward_inplace(self, x):
        y, cache = F.leaky_relu_forward(x, self.slope, out=x)
        self._save_cache(cache)
        return y

    def backward(self, dy, need_input_grad: bool = True):
        cache = self._pop_cache()
        self._check_dy(dy, cache[0].shape, cache[0].dtype)  # cache = (y, slope)
        return F.leaky_relu_backward(dy, cache) if need_input_grad else None


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

"""Optimizers: SGD (with momentum and Nesterov) and Adam, updating ``Param.data`` in place.

State (momentum buffers, Adam moments) is keyed by the ``Param`` object and created lazily, on the parameter's own
backend, the first time that parameter has a gradient. ``state_dict()`` flattens it into a dict of plain arrays
(keys like ``"3.exp_avg"`` for the 4th parameter), so a checkpoint is an ``.npz`` that loads without pickle.
A parameter whose ``grad`` is None (frozen, or not reached by backward) is skipped, as in PyTorch.
"""

from __future__ import annotations

import math

import numpy as np

from . import kernels
from . import validate as V
from .backend import backend_of, to_device, to_numpy, xp_of


class Optimizer:
    """Base class: the parameter list, ``zero_grad``, and array-only state (de)serialisation."""

    hyper_names: tuple[str, ...] = ()
    slot_names: tuple[str, ...] = ()  # per-parameter state arrays saved in state_dict

    def __init__(self, params, **hyper):
        where = type(self).__name__
        if not hasattr(params, "__iter__") or hasattr(params, "params"):
            raise TypeError(f"{where}: params must be a list of Param, e.g. model.params(), got "
                            f"{type(params).__name__}")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{where} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not (hasattr(p, "data") and hasattr(p, "grad") and hasattr(p, "requires_grad")):
                raise TypeError(f"{where}: params[{i}] is a {type(p).__name__}, not a Param; pass model.params()")
        self.state = {}  # Param -> dict of arrays
        for name, value in hyper.items():
            setattr(self, name, value)

    def zero_grad(self) -> None:
        for p in self.params:
            p.zero_grad()

    def _check_grad(self, p):
        if type(p.grad) is not type(p.data):
            V.same_backend(type(self).__name__, **{f"gradient of '{p.name}'": p.grad, f"'{p.name}'": p.data})
        if p.grad.shape != p.data.shape or p.grad.dtype != p.data.dtype:
            raise ValueError(
                f"{type(self).__name__}: gradient of '{p.name}' has shape {tuple(p.grad.shape)} / {p.grad.dtype}, "
                f"but the parameter is {tuple(p.data.shape)} / {p.data.dtype}"
            )

    def _check_state(self, p, state, slot) -> None:
        """The state was made for the parameter as it is now: not before ``model.to(...)`` moved or cast it."""
        buf = state[slot]
        if buf.dtype != p.data.dtype or type(buf) is not type(p.data):
            raise RuntimeError(
                f"{type(self).__name__}: parameter '{p.name}' is now {p.data.dtype} on {backend_of(p.data)}, but its "
                f"{slot} was made for {buf.dtype} on {backend_of(buf)}: the model was moved or cast (model.to) after "
                "this optimizer had stepped. Build the optimizer after model.to(...), or carry the state over with "
                "opt.load_state_dict(old.state_dict())."
            )

    def state_dict(self) -> dict[str, np.ndarray]:
        """Hyperparameters and per-parameter state as host NumPy arrays."""
        out = {name: np.asarray(getattr(self, name), dtype=np.float64) for name in self.hyper_names}
        for i, p in enumerate(self.params):
            for slot, value in self.state.get(p, {}).items():
                if slot in self.slot_names:
                    out[f"{i}.{slot}"] = to_numpy(value).copy()
        return out

    def load_state_dict(self, state) -> None:
        """Restore what ``state_dict`` saved; shapes must match this optimizer's parameters."""
        for name in self.hyper_names:
            if name not in state:
                raise ValueError(f"{type(self).__name__} state is missing '{name}' (saved by another optimizer?)")
            value = np.asarray(state[name])
            setattr(self, name, tuple(value.tolist()) if value.ndim else value.item())
        self.state = {}
        for key, value in state.items():
            if key in self.hyper_names:
                continue
            index, _, slot = key.partition(".")
            if not index.isdigit() or int(index) >= len(self.params) or slot not in self.slot_names:
                raise ValueError(f"{type(self).__name__} state has unexpected entry '{key}'")
            p = self.params[int(index)]
            value = np.asarray(value)
            if slot != "step" and value.shape != p.shape:
                raise ValueError(f"optimizer state '{key}' has shape {value.shape}, parameter '{p.name}' has {p.shape}")
            if slot == "step":
                self.state.setdefault(p, {})[slot] = int(value)
            else:
                self.state.setdefault(p, {})[slot] = to_device(value.astype(p.data.dtype), backend_of(p.data))


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's formulation.

    With ``g = grad + weight_decay * w``: plain ``w -= lr * g``; with momentum ``mu``, a buffer
    ``buf = mu * buf + g`` (``buf = g`` at the first step) and ``w -= lr * buf``; with Nesterov,
    ``w -= lr * (g + mu * buf)``.

    Derivation: docs/derivations.md#sgd
    """

    hyper_names = ("lr", "momentum", "weight_decay")
    slot_names = ("momentum_buffer",)

    def __init__(self, params, lr: float, momentum: float = 0.0, nesterov: bool = False, weight_decay: float = 0.0):
        lr = V.real("SGD", "lr", lr, low=0, low_open=True)
        momentum = V.real("SGD", "momentum", momentum, low=0)
        weight_decay = V.real("SGD", "weight_decay", weight_decay, low=0)
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        super().__init__(params, lr=float(lr), momentum=float(momentum), weight_decay=float(weight_decay))
        self.nesterov = bool(nesterov)

    def step(self) -> None:
        for p in self.params:
            if p.grad is None:
                continue
            self._check_grad(p)
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                state = self.state.setdefault(p, {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    self._check_state(p, state, "momentum_buffer")
                    buf *= self.momentum
                    buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            p.data -= self.lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, PyTorch's formulation.

    With ``g = grad + weight_decay * w`` and step count t::

        m = beta1 m + (1 - beta1) g            v = beta2 v + (1 - beta2) g^2
        w -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    On the CPU the update is one fused pass over each parameter's memory (``minigan.kernels``, compiled by Numba,
    equal bit for bit to the plain form); elsewhere (CuPy, or without Numba) it is ``_plain_update``: the formula
    above in array operations, in place, allocating nothing.

    Derivation: docs/derivations.md#adam
    """

    hyper_names = ("lr", "betas", "eps", "weight_decay")
    slot_names = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        lr = V.real("Adam", "lr", lr, low=0, low_open=True)
        if isinstance(betas, (str, bytes)) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"Adam: betas must be a pair (beta1, beta2), e.g. (0.9, 0.999), got {betas!r}")
        beta1 = V.real("Adam", "betas[0]", betas[0], low=0, high=1, high_open=True)
        beta2 = V.real("Adam", "betas[1]", betas[1], low=0, high=1, high_open=True)
        eps = V.real("Adam", "eps", eps, low=0, low_open=True)
        weight_decay = V.real("Adam", "weight_decay", weight_decay, low=0)
        super().__init__(params, lr=float(lr), betas=(float(beta1), float(beta2)), eps=float(eps),
                         weight_decay=float(weight_decay))

    def step(self) -> None:
        beta1, beta2 = self.betas
        for p in self.params:
            if p.grad is None:
                continue
            self._check_grad(p)
            xp = xp_of(p.data, p.grad)
            state = self.state.setdefault(p, {})
            if "exp_avg" in state:
                self._check_state(p, state, "exp_avg")
            else:
                state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
            state["step"] += 1
            t = state["step"]
            # Both bias corrections folded into scalars (one pass fewer than dividing sqrt(v) by sqrt(c2)):
            # lr / c1 * m / (sqrt(v) / sqrt(c2) + eps) = (lr sqrt(c2) / c1) * m / (sqrt(v) + eps sqrt(c2))
            sqrt_c2 = math.sqrt(1 - beta2**t)
            eps_hat, step_size = self.eps * sqrt_c2, self.lr * sqrt_c2 / (1 - beta1**t)
            m, v = state["exp_avg"], state["exp_avg_sq"]
            # On the CPU, one fused pass over memory (the same arithmetic, bit for bit: minigan.kernels)
            if not kernels.adam_update(p.data, p.grad, m, v, beta1, beta2, eps_hat, step_size, self.weight_decay):
                self._plain_update(p, state, xp, eps_hat, step_size)

    def _plain_update(self, p, state, xp, eps_hat, step_size) -> None:
        """The update in NumPy/CuPy operations, in place through one scratch array, so it allocates nothing:
        twelve passes over memory per parameter array."""
        beta1, beta2 = self.betas
        g = p.grad
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if "scratch" not in state:
            state["scratch"] = xp.empty_like(p.data)
        m, v, s = state["exp_avg"], state["exp_avg_sq"], state["scratch"]
        m *= beta1
        xp.multiply(g, 1 - beta1, out=s)
        m += s  # m = beta1 m + (1 - beta1) g
        v *= beta2
        xp.multiply(g, g, out=s)
        s *= 1 - beta2
        v += s  # v = beta2 v + (1 - beta2) g^2
        xp.sqrt(v, out=s)
        s += eps_hat
        xp.divide(m, s, out=s)
        s *= step_size
        p.data -= s  # w -= step_size * m / (sqrt(v) + eps_hat)

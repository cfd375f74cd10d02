"""The bad-input contract of docs/contracts.md, swept.

``CONTRACT`` below mirrors the doc's table row for row (``test_doc_and_sweep_list_the_same_rows`` keeps them equal):
each row is an entry point, a kind of bad input, what it must get, and the cases that try it. Hypothesis draws the
shapes and values of each case. An error row passes only when the exception has the promised type AND its message
names the argument and what was expected (every pattern of the row is found in it): an unrelated exception (a
ZeroDivisionError, "too many values to unpack", an IndexError from deep inside) fails it, and so does an error
from some other check, because its message names something else. A "correct result" case compares with the same
call on a plain contiguous, writable copy; a "propagates" case requires the NaN/inf to reach the output.

Rows that depend on fixes made on branch ``contracts`` (issue 12, items 1-6) are marked xfail(strict=False); the
integrator removes ``CONTRACTS_BRANCH`` marks after merging it.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigan import checkpoint, cli, data, gradcheck, losses, nn, optim
from minigan import functional as F
from minigan.checkpoint import CheckpointError
from minigan.gan import GAN

DOC = Path(__file__).resolve().parent.parent / "docs" / "contracts.md"
CONTRACTS_BRANCH = pytest.mark.xfail(reason="fixed on branch contracts", strict=False)


# ------------------------------------------------------------------------------------------------ what a row expects


class Raises:
    """The call raises ``error`` (or a subclass) and every regex of ``names`` is found in the message."""

    def __init__(self, error, *names):
        self.error, self.names = error, names

    def verify(self, outcome):
        kind, value = outcome
        assert kind == "raised", f"expected {self.error.__name__}, but the call returned {value!r}"
        assert isinstance(value, self.error), f"expected {self.error.__name__}, got {type(value).__name__}: {value}"
        message = str(value)
        for pattern in self.names:
            assert re.search(pattern, message), f"{type(value).__name__} message lacks {pattern!r}: {message}"


class Correct:
    """The call returns; the case itself asserts that the result is the right one."""

    def verify(self, outcome):
        kind, value = outcome
        if kind == "raised":
            raise value


class Propagates:
    """The call returns, and a NaN or infinity of the input shows in what it returned (never a finite number)."""

    def verify(self, outcome):
        kind, value = outcome
        if kind == "raised":
            raise value
        outputs = value if isinstance(value, tuple) else (value,)
        assert any(not np.all(np.isfinite(np.asarray(v, dtype=np.float64))) for v in outputs), \
            f"a non-finite input gave an all-finite result {value!r}"


CORRECT, PROPAGATES = Correct(), Propagates()


@dataclass
class Row:
    entry: str
    bad: str
    expect: object
    cases: dict = field(default_factory=dict)  # member name -> case(draw) -> value
    xfail: tuple = ()  # member names fixed on branch contracts
    examples: int = 8  # hypothesis examples per case; 0: run once, the case draws nothing


# ------------------------------------------------------------------------------------------------ drawing inputs


class Draw:
    """Small random inputs drawn through hypothesis (shapes 1-5, seeded values)."""

    def __init__(self, data):
        self.data = data
        self.rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed") if data else 0)

    def int(self, lo, hi, label=None):
        return self.data.draw(st.integers(lo, hi), label=label) if self.data else lo

    def pick(self, options, label=None):
        return self.data.draw(st.sampled_from(options), label=label) if self.data else options[0]

    def array(self, shape, dtype=np.float32):
        return self.rng.standard_normal(shape).astype(dtype)

    def batch(self, n=None, f=None, dtype=np.float32):
        n = self.int(1, 5, "rows") if n is None else n
        f = self.int(1, 5, "features") if f is None else f
        return self.array((n, f), dtype)

    def awkward(self, a):
        """``a``'s values as a non-contiguous view (transposed, strided or Fortran-ordered) or as a read-only array."""
        how = self.pick(["transposed", "strided", "fortran", "readonly"], "layout")
        if how == "transposed":
            out = np.ascontiguousarray(a.T).T
        elif how == "strided":
            big = np.zeros((a.shape[0], 2 * a.shape[1]) + a.shape[2:], a.dtype)
            big[:, ::2] = a
            out = big[:, ::2]
        elif how == "fortran":
            out = np.asfortranarray(a)
        else:
            out = a.copy()
            out.flags.writeable = False
        assert np.array_equal(out, a)
        return out

    def bad_dtype(self, a):
        return a.astype(self.pick([np.int64, np.int32, np.float16, np.uint8], "dtype"))

    def nonfinite(self, a):
        a = a.copy()
        a.flat[self.int(0, a.size - 1, "where")] = self.pick([np.nan, np.inf, -np.inf], "value")
        return a


class DeviceArray:
    """A stand-in for a CuPy array, just enough to show that an entry point spots a NumPy/CuPy mix before it
    computes: ``minigan.backend`` takes it for CuPy (its type's module starts with "cupy"), and, as CuPy does, it
    refuses implicit conversion to NumPy. ``.get()`` is the explicit copy to the host."""

    __module__ = "cupy.contract_probe"

    def __init__(self, a):
        self._a = np.asarray(a)
        self.shape, self.dtype, self.ndim, self.size = self._a.shape, self._a.dtype, self._a.ndim, self._a.size

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed (DeviceArray)")

    def get(self):
        return self._a.copy()


def naming(name, call):
    """``call()``; an exception it raises must name ``name`` (the argument this case made wrong), not just any one."""
    try:
        return call()
    except Exception as err:
        assert re.search(rf"(?<![\w.]){re.escape(name)}(?![\w\[])", str(err)), f"{name!r} not named in: {err}"
        raise


def same_as_contiguous(fn, *arrays):
    """fn on the arrays as given equals fn on plain contiguous writable copies; the inputs are left unchanged."""
    before = [np.array(a) for a in arrays]
    got = fn(*arrays)
    want = fn(*[np.ascontiguousarray(a).copy() for a in before])
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-6)
    for a, b in zip(arrays, before):
        assert np.array_equal(a, b, equal_nan=True), "the input was modified"


# ------------------------------------------------------------------------------------------------ small models


def dense(d, n_in=None, n_out=None):
    return nn.Dense(n_in or d.int(1, 5, "in"), n_out or d.int(1, 4, "out"), rng=0)


def tiny_gan(pack=1, d_steps=1, seed=0):
    rng = np.random.default_rng(seed)
    G = nn.Sequential(nn.Dense(2, 4, rng=rng), nn.ReLU(), nn.Dense(4, 3, rng=rng))
    D = nn.Sequential(nn.Dense(3 * pack, 4, rng=rng), nn.LeakyReLU(0.2), nn.Dense(4, 1, rng=rng))
    return GAN(G, D, optim.Adam(G.params(), 1e-3), optim.Adam(D.params(), 1e-3), noise_dim=2,
               rng=np.random.default_rng(seed + 1), pack=pack, d_steps=d_steps)


def stepped(model, opt, x):
    model.zero_grad()
    y = model.forward(x)
    model.backward(np.ones_like(y))
    opt.step()


ACTIVATIONS = {
    "F.relu_forward": lambda x: F.relu_forward(x)[0],
    "F.leaky_relu_forward": lambda x: F.leaky_relu_forward(x, 0.2)[0],
    "F.sigmoid_forward": lambda x: F.sigmoid_forward(x)[0],
    "F.tanh_forward": lambda x: F.tanh_forward(x)[0],
    "nn.ReLU": lambda x: nn.ReLU().forward(x),
    "nn.LeakyReLU": lambda x: nn.LeakyReLU(0.2).forward(x),
    "nn.Sigmoid": lambda x: nn.Sigmoid().forward(x),
    "nn.Tanh": lambda x: nn.Tanh().forward(x),
}
# (forward(pred, target) -> loss, name the prediction has in messages, targets in [0, 1]?)
LOSSES = {
    "F.bce_with_logits_forward": (lambda p, t: F.bce_with_logits_forward(p, t)[0], "z"),
    "F.bce_forward": (lambda p, t: F.bce_forward(p, t)[0], "p"),
    "F.mse_forward": (lambda p, t: F.mse_forward(p, t)[0], "pred"),
    "losses.BCEWithLogits": (lambda p, t: losses.BCEWithLogits().forward(p, t), "z"),
    "losses.BCE": (lambda p, t: losses.BCE().forward(p, t), "p"),
    "losses.MSE": (lambda p, t: losses.MSE().forward(p, t), "pred"),
}
SOFTMAX = {"F.softmax_cross_entropy_forward": lambda z, y: F.softmax_cross_entropy_forward(z, y)[0],
           "losses.SoftmaxCrossEntropy": lambda z, y: losses.SoftmaxCrossEntropy().forward(z, y)}


def probs(d, shape):
    return (1 / (1 + np.exp(-d.array(shape)))).astype(np.float32)  # in (0, 1): BCE on probabilities stays finite


def loss_cases(make):
    """One case per loss: ``make(d, forward, pred_name, bce_on_probs)``."""
    return {name: (lambda d, f=f, n=n, name=name: make(d, f, n, name.endswith("BCE") or name == "F.bce_forward"))
            for name, (f, n) in LOSSES.items()}


def pred_for(d, on_probs, shape):
    return probs(d, shape) if on_probs else d.array(shape)


# ------------------------------------------------------------------------------------------------ the cases


def _activation_nan(d, f):
    """NaN stays NaN where it was; an inf elsewhere goes to the function's limit (relu(-inf) = 0, tanh(inf) = 1)."""
    x = d.batch(n=d.int(2, 5))
    x.flat[0], x.flat[-1] = np.nan, d.pick([np.inf, -np.inf])
    y = f(x)
    assert np.isnan(y.flat[0]) and not np.isnan(y.flat[-1])
    return y


def _dense_shape(d):
    x, W = d.batch(), d.array((3, 2))
    how = d.pick(["rank1", "rank3", "features", "bias"])
    if how == "rank1":
        return F.dense_forward(x[0], W)
    if how == "rank3":
        return F.dense_forward(x[None], W)
    if how == "features":
        return F.dense_forward(d.batch(f=4), W)
    return F.dense_forward(d.batch(f=3), W, d.array((3,)))


def _dense_dtype(d):
    W = d.array((3, 2))
    if d.pick(["bad", "mismatch"]) == "bad":
        return F.dense_forward(d.bad_dtype(d.batch(f=3)), W)
    return F.dense_forward(d.batch(f=3, dtype=np.float64), W)


def _dense_empty(d):
    x, W, b = d.batch(n=0, f=3), d.array((3, 2)), d.array((2,))
    y, cache = F.dense_forward(x, W, b)
    dx, dW, db = F.dense_backward(np.zeros_like(y), cache)
    assert y.shape == (0, 2) and dx.shape == (0, 3) and not dW.any() and not db.any()


def _bn(x, gamma=None, beta=None):
    f = x.shape[-1] if x.ndim else 1
    return F.batchnorm_forward(x, np.ones(f, np.float32) if gamma is None else gamma,
                               np.zeros(f, np.float32) if beta is None else beta)


def _bn_shape(d):
    x = d.batch(n=d.int(2, 5), f=3)
    how = d.pick(["rank1", "rank3", "gamma"])
    if how == "rank1":
        return _bn(x[0])
    if how == "rank3":
        return _bn(x[None])
    return _bn(x, gamma=np.ones(4, np.float32))


def _loss_shape(d, f, name, on_probs):
    pred = pred_for(d, on_probs, (d.int(1, 5), 1))
    return f(pred, np.ones((pred.shape[0] + 1, 1), np.float32))


def _loss_dtype(d, f, name, on_probs):
    return f(d.bad_dtype(pred_for(d, on_probs, (4, 1)) * 3), np.ones((4, 1), np.float32))


def _loss_int_target(d, f, name, on_probs):
    pred = pred_for(d, on_probs, (d.int(1, 5), 2))
    target = d.rng.integers(0, 2, pred.shape).astype(d.pick([np.int64, np.uint8, np.bool_]))
    got = f(pred, target)
    assert got.dtype == pred.dtype
    np.testing.assert_allclose(got, f(pred, target.astype(np.float32)), rtol=1e-6)


def _loss_nan(d, f, name, on_probs):
    pred = pred_for(d, on_probs, (d.int(1, 5), 2))
    pred.flat[0] = np.nan
    with np.errstate(invalid="ignore"):
        return f(pred, np.ones_like(pred))


def _loss_empty(d, f, name, on_probs):
    return f(np.zeros((0, 1), np.float32), np.zeros((0, 1), np.float32))


def _loss_awkward(d, f, name, on_probs):
    pred = pred_for(d, on_probs, (d.int(1, 5), 3))
    same_as_contiguous(f, d.awkward(pred), d.awkward(np.ones_like(pred)))


def _loss_mixed(d, f, name, on_probs):
    pred = pred_for(d, on_probs, (3, 1))
    return f(pred, DeviceArray(np.ones_like(pred)))


def _loss_target_type(d, f, name, on_probs):
    return f(pred_for(d, on_probs, (2, 1)), d.pick([1.0, [[1.0], [0.0]], None]))


def _softmax_shape(d, f):
    n, c = d.int(1, 5), d.int(2, 4)
    how = d.pick(["logits", "labels_shape", "labels_float"])
    if how == "logits":
        return f(d.array((n,)), np.zeros(n, np.int64))
    if how == "labels_shape":
        return f(d.array((n, c)), np.zeros((n, 1), np.int64))
    return f(d.array((n, c)), np.zeros(n, np.float32))


def _softmax_range(d, f):
    n, c = d.int(1, 5), d.int(2, 4)
    labels = np.zeros(n, np.int64)
    labels[d.int(0, n - 1)] = d.pick([c, c + 3, -1])
    return f(d.array((n, c)), labels)


def _module_cases(kind):
    """``{module: case}`` for Dense, BatchNorm1d and an activation: a module, an input for it, its output."""
    def build(d, name):
        if name == "nn.Dense":
            return dense(d, 3, 2), d.batch(n=d.int(2, 5), f=3)
        if name == "nn.BatchNorm1d":
            return nn.BatchNorm1d(3), d.batch(n=d.int(2, 5), f=3)
        return nn.Sequential(nn.Dense(3, 2, rng=0), nn.Tanh()), d.batch(n=d.int(2, 5), f=3)
    return {name: (lambda d, name=name: kind(d, *build(d, name))) for name in ("nn.Dense", "nn.BatchNorm1d",
                                                                              "nn.Sequential")}


def _dy_wrong(d, module, x):
    y = module.forward(x)
    how = d.pick(["shape", "dtype"])
    dy = np.ones((y.shape[0] + 1,) + y.shape[1:], y.dtype) if how == "shape" else np.ones_like(y, np.float64)
    return module.backward(dy)


def _backward_twice(d, module, x):
    y = module.forward(x)
    module.backward(np.ones_like(y))
    return module.backward(np.ones_like(y))


def _module_awkward(d, module, x):
    def run(x):
        m = __import__("copy").deepcopy(module)
        y = m.forward(x)
        return y, m.backward(np.ones_like(y))
    same_as_contiguous(run, d.awkward(x))


def _load_state(d, how):
    model = nn.Sequential(nn.Dense(3, 2, rng=0), nn.BatchNorm1d(2))
    state = model.state_dict()
    if how == "missing":
        state.pop("0.W")
    elif how == "unexpected":
        state["9.W"] = np.zeros(1, np.float32)
    elif how == "shape":
        state["0.W"] = np.zeros((2, 3), np.float32)
    return model.load_state_dict(state)


def _load_state_ok(d):
    model = nn.Sequential(nn.Dense(3, 2, rng=0), nn.BatchNorm1d(2))
    state = {k: v * 2 for k, v in model.state_dict().items()}
    how = d.pick(["readonly", "device", "float64", "int"])
    given = {}
    for k, v in state.items():
        if how == "readonly":
            v = v.copy()
            v.flags.writeable = False
        elif how == "device":
            v = DeviceArray(v)
        elif how == "float64":
            v = v.astype(np.float64)
        else:
            v = np.round(v).astype(np.int64)
            state[k] = v.astype(np.float32)
        given[k] = v
    model.load_state_dict(given)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, state[k].astype(np.float32))
    for p in model.params():  # copies: writable, and not the caller's arrays
        assert p.data.flags.writeable and p.data.dtype == np.float32
    opt = optim.Adam(model.params(), 1e-3)
    stepped(model, opt, d.batch(n=3, f=3))


def _optimizer_params(d):
    model = nn.Sequential(dense(d, 3, 2))
    what = d.pick(["module", "arrays", "empty"])
    opt = d.pick([optim.SGD, optim.Adam])
    given = {"module": model, "arrays": [p.data for p in model.params()], "empty": []}[what]
    return opt(given, lr=0.1)


def _optimizer_hyper(d):
    params = nn.Dense(2, 2, rng=0).params()
    cls, name, value = d.pick([(optim.SGD, "lr", "0.1"), (optim.SGD, "lr", None), (optim.SGD, "momentum", "0.9"),
                               (optim.Adam, "lr", True), (optim.Adam, "betas", 0.9), (optim.Adam, "betas", (0.9,)),
                               (optim.Adam, "eps", "1e-8"), (optim.Adam, "weight_decay", [0.1])])
    kwargs = {"lr": 0.1, name: value}
    return naming(name, lambda: cls(params, **kwargs))


def _optimizer_range(d):
    params = nn.Dense(2, 2, rng=0).params()
    cls, name, value = d.pick([(optim.SGD, "lr", 0.0), (optim.SGD, "lr", float("nan")), (optim.SGD, "momentum", -1),
                               (optim.Adam, "lr", float("inf")), (optim.Adam, "betas[0]", 1.0),
                               (optim.Adam, "betas[1]", -0.1), (optim.Adam, "eps", 0.0),
                               (optim.Adam, "weight_decay", -1.0)])
    kwargs = {"lr": 0.1}
    if name.startswith("betas"):
        kwargs["betas"] = (value, 0.999) if name == "betas[0]" else (0.9, value)
    else:
        kwargs[name] = value
    return naming(name, lambda: cls(params, **kwargs))


def _optimizer_bad_grad(d):
    model = dense(d, 3, 2)
    opt = d.pick([optim.SGD, optim.Adam])(model.params(), lr=0.1)
    model.W.grad = (np.zeros((2, 3), np.float32) if d.pick(["shape", "dtype"]) == "shape"
                    else np.zeros((3, 2), np.float64))
    return opt.step()


def _optimizer_nan_grad(d):
    model = dense(d, 3, 2)
    opt = d.pick([optim.SGD, optim.Adam])(model.params(), lr=0.1)
    model.W.grad = d.nonfinite(np.zeros((3, 2), np.float32))
    opt.step()
    return model.W.data


def _optimizer_device_grad(d):
    model = dense(d, 3, 2)
    opt = d.pick([optim.SGD, optim.Adam])(model.params(), lr=0.1)
    model.W.grad = DeviceArray(np.zeros((3, 2), np.float32))
    return opt.step()


def _optimizer_moved(d):
    model = nn.Sequential(dense(d, 3, 2))
    opt = d.pick([lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.Adam(p, lr=0.1)])(model.params())
    stepped(model, opt, d.batch(n=2, f=3))
    model.to(dtype=np.float64)
    return stepped(model, opt, d.batch(n=2, f=3, dtype=np.float64))


def _optimizer_load_state(d):
    model = dense(d, 3, 2)
    opt = optim.Adam(model.params(), 1e-3)
    stepped(model, opt, d.batch(n=2, f=3))
    state = opt.state_dict()
    how = d.pick(["missing", "unexpected", "shape"])
    if how == "missing":
        state.pop("lr")
    elif how == "unexpected":
        state["7.exp_avg"] = np.zeros((3, 2), np.float32)
    else:
        state["0.exp_avg"] = np.zeros((2, 3), np.float32)
    return optim.Adam(model.params(), 1e-3).load_state_dict(state)


def _gan_hyper(d):
    name, value = d.pick([("noise_dim", "2"), ("noise_dim", 0), ("d_steps", 1.5), ("d_steps", 0), ("pack", "2"),
                          ("pack", 0), ("label_smoothing", "0.1"), ("label_smoothing", 1.0),
                          ("instance_noise", -0.1), ("instance_noise", None)])
    g = tiny_gan()
    kwargs = dict(noise_dim=2, **{name: value})
    return naming(name, lambda: GAN(g.G, g.D, g.g_optimizer, g.d_optimizer, **kwargs))


def _gan_optimizers(d):
    g = tiny_gan()
    how = d.pick(["swapped", "other model", "not a module"])
    if how == "swapped":
        return GAN(g.G, g.D, g.d_optimizer, g.g_optimizer, noise_dim=2)
    if how == "other model":
        other = tiny_gan(seed=5)
        return GAN(g.G, g.D, g.g_optimizer, other.d_optimizer, noise_dim=2)
    return GAN(g.G, g.D.params(), g.g_optimizer, g.d_optimizer, noise_dim=2)


def _gan_real_shape(d):
    pack = d.pick([1, 2])
    g = tiny_gan(pack=pack)
    how = d.pick(["rank1", "rank3", "features", "not an array", "count", "pack"])
    n = 2 * d.int(1, 3)
    if how == "rank1":
        return g.train_step(d.array((n * 3,)))
    if how == "rank3":
        return g.train_step(d.array((n, 3, 1)))
    if how == "features":
        return g.train_step(d.batch(n=n, f=d.pick([2, 4, 6])))
    if how == "not an array":
        return g.train_step([d.batch(n=n, f=3).tolist()])
    if how == "count":
        return g.train_step([d.batch(n=n, f=3), d.batch(n=n, f=3)])
    g = tiny_gan(pack=2)
    return g.train_step(d.batch(n=3, f=3))


def _gan_awkward(d):
    real = d.batch(n=2 * d.int(1, 3), f=3)
    awkward = d.awkward(real)
    pack = d.pick([1, 2])

    def step(x):
        g = tiny_gan(pack=pack)
        stats = g.train_step(x)
        return tuple(stats.values()) + tuple(p.data for p in g.G.params() + g.D.params())
    same_as_contiguous(step, awkward)


def _gan_replaced(d):
    g = tiny_gan()
    g.train_step(d.batch(n=4, f=3))
    which = d.pick(["G", "D"])
    model = g.G if which == "G" else g.D
    first = model.layers[0]
    model.layers[0] = nn.Dense(first.in_features, first.out_features, rng=1)
    model.layers[0].name = "0"
    return g.train_step(d.batch(n=4, f=3))


def _diverging_run(tmp_path):
    """``minigan train``'s loop on data with a NaN in it."""
    from minigan import train as T

    run = T.Run(T.TrainConfig(dataset="ring8", steps=3, batch_size=8, log_every=100, sample_every=100), tmp_path,
                progress=False)
    run.dataset.batch = lambda step, n: np.full((n, 2), np.nan, np.float32)
    return run.train()


GRADCHECK = {
    "check_function": lambda x, **kw: gradcheck.check_function(F.tanh_forward, F.tanh_backward, [x], **kw),
    "check_module": lambda x, **kw: gradcheck.check_module(nn.Sequential(nn.Dense(x.shape[1], 2, rng=0),
                                                                         nn.Tanh()), x, **kw),
    "check_loss": lambda x, **kw: gradcheck.check_loss(losses.MSE(), x, np.zeros(x.shape, np.float64), **kw),
    "check_gan_step": lambda x, **kw: gradcheck.check_gan_step(tiny_gan(), x, **kw),  # x is (N, 3): D's data
}


def _gc_input(d):
    return d.batch(n=d.int(2, 4), f=3, dtype=np.float64)


def _gc_settings(d, fn):
    name, value = d.pick([("eps", 0.0), ("eps", "1e-6"), ("atol", -1.0), ("rtol", None), ("max_elements", 0),
                          ("max_elements", 2.5)])
    return naming(name, lambda: fn(_gc_input(d), **{name: value}))


def _gc_cast(d, fn, name):
    x = np.round(_gc_input(d) * 2)
    # check_function treats integer inputs as labels (not differentiated), so it is tried with float16 only
    dtypes = [np.float16, np.float32] if name == "check_function" else [np.int64, np.float16, np.float32]
    got = fn(x.astype(d.pick(dtypes)), max_elements=8)
    want = fn(x, max_elements=8)
    assert got.ok and want.ok and [t.max_abs_error for t in got.tensors] == pytest.approx(
        [t.max_abs_error for t in want.tensors], abs=1e-9)


def _gc_awkward(d, fn, readonly):
    x = _gc_input(d)
    if readonly:
        y = x.copy()
        y.flags.writeable = False
    else:
        y = np.asfortranarray(x) if d.pick(["fortran", "transposed"]) == "fortran" else np.ascontiguousarray(x.T).T
    result = fn(y, max_elements=8)
    assert result.ok and np.array_equal(y, x)


def _dataset_ints(d):
    how = d.pick(["seed str", "seed negative", "step float", "step negative", "batch_size str", "batch_size 0",
                  "n float"])
    if how == "seed str":
        return data.get_dataset("ring8", seed="1")
    if how == "seed negative":
        return data.get_dataset("moons", seed=-1)
    ds = data.get_dataset(d.pick(["ring8", "digits"]))
    if how == "step float":
        return ds.batch(1.5, 8)
    if how == "step negative":
        return ds.batch(-1, 8)
    if how == "batch_size str":
        return ds.batch(0, "8")
    if how == "batch_size 0":
        return ds.batch(0, 0)
    return ds.real_samples(2.5)


# ------------------------------------------------------------------------------------------------ checkpoints, CLI


def _tiny_checkpoint(path, config=None):
    g = tiny_gan()
    checkpoint.save_checkpoint(path, G=g.G, D=g.D, g_optimizer=g.g_optimizer, d_optimizer=g.d_optimizer, step=3,
                               rng=np.random.default_rng(0), config=config or {"dataset": "ring8"})
    return path


def _rewrite(path, change):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(path, **arrays)
    return path


def _ckpt_missing(tmp):
    (tmp / "empty_folder").mkdir()
    return checkpoint.load_checkpoint(tmp / "empty_folder")


def _ckpt_corrupt(tmp, how):
    path = _tiny_checkpoint(tmp / "c.npz")
    raw = path.read_bytes()
    if how == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif how == "not a zip":
        path.write_bytes(b"this is not a checkpoint" * 10)
    else:  # flip bytes inside the first stored array: the zip's CRC no longer matches
        with zipfile.ZipFile(path) as z:
            info = z.infolist()[0]
        start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 64
        path.write_bytes(raw[:start] + bytes(b ^ 0xFF for b in raw[start:start + 8]) + raw[start + 8:])
    return checkpoint.load_checkpoint(path)


def _ckpt_pickle(tmp):
    path = _tiny_checkpoint(tmp / "p.npz")
    _rewrite(path, lambda a: a.__setitem__("G/0.W", np.array([{"payload": 1}], dtype=object)))
    return checkpoint.load_checkpoint(path)


def _ckpt_keys(tmp, how):
    path = _tiny_checkpoint(tmp / "k.npz")
    if how == "missing step":
        _rewrite(path, lambda a: a.pop("step"))
    elif how == "config not json":
        _rewrite(path, lambda a: a.__setitem__("config", np.frombuffer(b"{not json", np.uint8)))
    elif how == "config a list":
        _rewrite(path, lambda a: a.__setitem__("config", np.frombuffer(b"[1, 2]", np.uint8)))
    elif how == "step an array":
        _rewrite(path, lambda a: a.__setitem__("step", np.arange(3)))
    else:
        _rewrite(path, lambda a: a.__setitem__("rng/noise", np.zeros(4, np.uint64)))
    return checkpoint.load_checkpoint(path)


def _ckpt_wrong_model(tmp, how):
    from dataclasses import asdict

    from minigan import evaluate, train as T

    run = tmp / "run"
    config = dict(asdict(T.TrainConfig(dataset="ring8", arch="toy", steps=5, batch_size=8, noise_dim=2, pack=1)),
                  data_dim=2, data_kind="2d", data_scale=None)
    _tiny_checkpoint(run / T.CHECKPOINT, config)  # tiny weights, though the config says "toy"
    if how == "sample":
        return evaluate.load_generator(run)
    return T.resume(run, progress=False)


def _a_file(tmp):
    (tmp / "f").write_text("a file, not a folder")
    return tmp / "f"


def _cli(argv, capsys):
    code = cli.main(argv)
    err = capsys.readouterr().err
    return code, err


# ------------------------------------------------------------------------------------------------ the table

E = Raises
NAN = r"NaN|nan|inf"
CONTRACT = [
    # functional ops
    Row("`F.dense_forward`", "wrong rank or shape", E(ValueError, r"\b(x|b)\b", r"must have shape \(")),
    Row("`F.dense_forward`", "integer or float16 input, x and W of different dtypes",
        E(TypeError, r"\bx\b", r"float32 or float64|W has")),
    Row("`F.dense_forward`", "NaN or inf in x", PROPAGATES),
    Row("`F.dense_forward`", "empty batch", CORRECT),
    Row("`F.dense_forward`", "non-contiguous or read-only x", CORRECT),
    Row("`F.dense_forward`", "mixed backends", E(TypeError, "mixed backends", r"x on cupy", r"W on numpy")),
    Row("`F.batchnorm_forward`", "wrong rank or shape", E(ValueError, r"\b(x|gamma)\b", r"must have shape")),
    Row("`F.batchnorm_forward`", "integer or float16 input", E(TypeError, r"\bx\b", "float32 or float64")),
    Row("`F.batchnorm_forward`", "empty batch or one row", E(ValueError, r"\bx\b", "at least 2 rows")),
    Row("`F.batchnorm_forward`", "non-contiguous or read-only x", CORRECT),
    Row("activations (`F.*_forward`, `nn.ReLU` ...)", "any rank from 1", CORRECT),
    Row("activations (`F.*_forward`, `nn.ReLU` ...)", "0-d array", E(ValueError, r"\bx\b", "at least one dimension")),
    Row("activations (`F.*_forward`, `nn.ReLU` ...)", "integer or float16 input",
        E(TypeError, r"\bx\b", "float32 or float64")),
    Row("activations (`F.*_forward`, `nn.ReLU` ...)", "NaN or inf", PROPAGATES),
    Row("activations (`F.*_forward`, `nn.ReLU` ...)", "empty batch", CORRECT),
    Row("activations (`F.*_forward`, `nn.ReLU` ...)", "non-contiguous or read-only x", CORRECT),
    Row("`nn.LeakyReLU`", "slope not a number", E((TypeError, ValueError), "slope")),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "target of another shape",
        E(ValueError, "target has shape", "prediction has shape")),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "integer or float16 prediction",
        E(TypeError, r"\b(z|p|pred)\b", "float32 or float64")),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "integer or bool target", CORRECT),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "NaN in the prediction", PROPAGATES),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "empty batch",
        E(ValueError, r"\b(z|p|pred)\b", "empty", "at least one row")),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "non-contiguous or read-only arrays", CORRECT),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "mixed backends",
        E(TypeError, "mixed backends", r"target on cupy")),
    Row("losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)", "target not an array",
        E(TypeError, "target must be an array")),
    Row("softmax cross-entropy (`F.`, `losses.`)", "wrong rank or shape, labels not integers",
        E(ValueError, r"logits|labels", r"\(N, C\)|must be integers|must have shape")),
    Row("softmax cross-entropy (`F.`, `losses.`)", "labels outside [0, C)", E(ValueError, "labels", r"\[0, \d+\)")),
    # modules
    Row("`nn.Dense`", "wrong rank or shape", E(ValueError, r"Dense\(3->2\)", r"\(batch, 3\)")),
    Row("`nn.Dense`", "integer, float16 or float64 input", E(TypeError, r"input dtype", r"x\.astype\('float32'\)")),
    Row("`nn.Dense`", "NaN or inf in x", PROPAGATES),
    Row("`nn.Dense`", "empty batch", E(ValueError, r"\bx\b|input", r"empty|at least one|no rows|0 rows")),
    Row("`nn.Dense`", "mixed backends", E(TypeError, "mixed backends", "x on cupy")),
    Row("`nn.Dense`, `nn.BatchNorm1d`", "wrong types of hyperparameters",
        E((TypeError, ValueError), r"in_features|out_features|num_features|momentum|eps|dtype")),
    Row("`nn.Dense`", "unknown init", E(ValueError, "unknown init", "glorot")),
    Row("`nn.BatchNorm1d`", "wrong rank or shape, one-row training batch",
        E(ValueError, r"BatchNorm1d\(3\)", r"\(batch, 3\)|at least 2 rows")),
    Row("`nn.BatchNorm1d`", "integer, float16 or float64 input", E(TypeError, "input dtype", "float32")),
    Row("`nn.BatchNorm1d`", "mixed backends", E(TypeError, "mixed backends", "x on cupy")),
    Row("modules (`Dense`, `BatchNorm1d`, `Sequential`)", "non-contiguous or read-only x", CORRECT),
    Row("`Module.backward`", "dy of another shape or dtype", E((ValueError, TypeError), r"backward\(dy\)",
                                                               r"shaped like the forward's output")),
    Row("`Module.backward`", "no forward before it, or called twice", E(RuntimeError, "without a matching forward")),
    Row("`Module.to`", "float16 or integer dtype, unknown backend",
        E((TypeError, ValueError), r"dtype must be float32 or float64|unknown backend")),
    Row("`Module.load_state_dict`", "missing or unexpected keys, wrong shapes",
        E(ValueError, r"missing|unexpected|saved shape")),
    Row("`Module.load_state_dict`", "read-only, float64, integer or device arrays", CORRECT),
    # optimizers
    Row("`optim.SGD`, `optim.Adam`", "params not a list of Param, or empty",
        E((TypeError, ValueError), r"params|parameter list")),
    Row("`optim.SGD`, `optim.Adam`", "wrong types of hyperparameters",
        E(TypeError, r"\b(lr|momentum|betas|eps|weight_decay)\b", r"must be")),
    Row("`optim.SGD`, `optim.Adam`", "hyperparameter out of range, NaN or inf",
        E(ValueError, r"need ", r"\(a finite number\), got")),
    Row("`Optimizer.step`", "gradient of another shape or dtype", E(ValueError, r"gradient of 'W'", "parameter is")),
    Row("`Optimizer.step`", "NaN or inf gradient", PROPAGATES),
    Row("`Optimizer.step`", "gradient on another backend", E(TypeError, "mixed backends", "gradient of 'W' on cupy")),
    Row("`Optimizer.step`", "model moved or cast after the optimizer stepped",
        E(RuntimeError, r"parameter 'W'", r"moved or cast", r"Build the optimizer after model\.to")),
    Row("`Optimizer.load_state_dict`", "missing or unexpected keys, wrong shapes",
        E(ValueError, r"missing 'lr'|unexpected entry '7\.exp_avg'|'0\.exp_avg' has shape")),
    # GAN
    Row("`GAN`", "wrong types of hyperparameters or out of range",
        E((TypeError, ValueError), r"\b(noise_dim|d_steps|pack|label_smoothing|instance_noise)\b")),
    Row("`GAN`", "unknown loss", E(ValueError, "unknown generator loss", "nonsaturating")),
    Row("`GAN`", "optimizers not built on the models' parameters",
        E((ValueError, TypeError), r"g_optimizer|d_optimizer|discriminator must be a minigan Module")),
    Row("`GAN.train_step`", "wrong rank or shape, not arrays, wrong count, N not a multiple of pack",
        E((ValueError, TypeError), r"real_batches|real batch|batch size \d+ is not a multiple of pack")),
    Row("`GAN.train_step`", "integer, float16 or float64 batch", E(TypeError, "real_batches", "expected float32")),
    Row("`GAN.train_step`", "NaN or inf in the batch", PROPAGATES),
    Row("`minigan train` (`train.Run`)", "NaN or inf in the data", E(Exception, "training stopped at step 1",
                                                                   "not finite")),
    Row("`GAN.train_step`", "empty batch", E(ValueError, "real_batches", r"empty|at least one|no rows|0 rows")),
    Row("`GAN.train_step`", "non-contiguous or read-only batch", CORRECT),
    Row("`GAN.train_step`", "mixed backends", E(TypeError, "mixed backends", "real_batches on cupy")),
    Row("`GAN.train_step`", "a layer replaced after the optimizers were built",
        E(RuntimeError, r"[gd]_optimizer parameter", "got no gradient", "replaced")),
    # gradcheck
    Row("`gradcheck.check_*`", "NaN or inf input", E(ValueError, r"\b(x|pred|real)\b|inputs\[0\]", "finite")),
    Row("`gradcheck.check_*`", "wrong types of settings or out of range",
        E((TypeError, ValueError), r"\b(eps|atol|rtol|max_elements)\b")),
    Row("`gradcheck.check_*`", "integer or float16 input", CORRECT),
    Row("`gradcheck.check_*`", "non-contiguous input", CORRECT),
    Row("`gradcheck.check_*`", "read-only input", CORRECT),
    # datasets
    Row("`data.get_dataset`", "unknown name or scale", E(ValueError, r"unknown (dataset|scale)", r"ring8|tanh")),
    Row("`data.get_dataset`, `Dataset.batch`, `real_samples`", "seed, step, batch size, n not integers or negative",
        E((TypeError, ValueError), r"\b(seed|step|batch_size|n)\b", r"must be an integer")),
    Row("`Dataset.batch`", "batch size larger than the dataset", E(ValueError, "batch_size", "exceeds")),
    Row("`data.images_to_model_scale`", "not uint8", E(TypeError, "expected uint8 images")),
    # checkpoints
    Row("`checkpoint.load_checkpoint`", "missing file or folder", E(CheckpointError, "no checkpoint at")),
    Row("`checkpoint.load_checkpoint`", "truncated or corrupt file", E(CheckpointError, "corrupt or truncated")),
    Row("`checkpoint.load_checkpoint`", "pickle-bearing npz", E(CheckpointError, "pickled", "never")),
    Row("`checkpoint.load_checkpoint`", "missing keys, unreadable config or step, bad generator state",
        E(CheckpointError, r"lacks \['step'\]|unreadable config|config must be|step must be|6")),
    Row("`train.resume`, `evaluate.load_generator`", "weights that do not fit the model",
        E(CheckpointError, r"do(es)? not fit", r"saved shape|missing")),
    # CLI
    Row("`minigan` CLI", "unknown option values", E(Exception, r"argument --(dataset|arch|loss|lr-decay|backend)",
                                                    "invalid choice")),
    Row("`minigan` CLI", "numbers out of range or not numbers",
        E(Exception, r"argument --(steps|batch-size|lr-g|beta1|pack|seed|label-smoothing)|argument -n", "expected")),
    Row("`minigan` CLI", "bad paths", E(Exception, r"^minigan (sample|evaluate|train): error: ")),
]

_BY_KEY = {(r.entry, r.bad): r for r in CONTRACT}


def _cases(entry, bad, cases, xfail=(), examples=8):
    row = _BY_KEY[(entry, bad)]
    row.cases, row.xfail, row.examples = cases, tuple(xfail), examples


A = "activations (`F.*_forward`, `nn.ReLU` ...)"
L = "losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)"
S = "softmax cross-entropy (`F.`, `losses.`)"
_cases("`F.dense_forward`", "wrong rank or shape", {"F.dense_forward": _dense_shape})
_cases("`F.dense_forward`", "integer or float16 input, x and W of different dtypes", {"F.dense_forward": _dense_dtype})
_cases("`F.dense_forward`", "NaN or inf in x",
       {"F.dense_forward": lambda d: F.dense_forward(d.nonfinite(d.batch(f=3)), d.array((3, 2)))[0]})
_cases("`F.dense_forward`", "empty batch", {"F.dense_forward": _dense_empty})
_cases("`F.dense_forward`", "non-contiguous or read-only x",
       {"F.dense_forward": lambda d: same_as_contiguous(lambda x: F.dense_forward(x, np.eye(3, 2, dtype=np.float32))[0],
                                                        d.awkward(d.batch(f=3)))})
_cases("`F.dense_forward`", "mixed backends",
       {"F.dense_forward": lambda d: F.dense_forward(DeviceArray(d.batch(f=3)), d.array((3, 2)))})
_cases("`F.batchnorm_forward`", "wrong rank or shape", {"F.batchnorm_forward": _bn_shape})
_cases("`F.batchnorm_forward`", "integer or float16 input",
       {"F.batchnorm_forward": lambda d: _bn(d.bad_dtype(d.batch(n=3) * 3))})
_cases("`F.batchnorm_forward`", "empty batch or one row",
       {"F.batchnorm_forward": lambda d: _bn(d.batch(n=d.int(0, 1)))})
_cases("`F.batchnorm_forward`", "non-contiguous or read-only x",
       {"F.batchnorm_forward": lambda d: same_as_contiguous(lambda x: _bn(x)[0], d.awkward(d.batch(n=d.int(2, 5))))})
_cases(A, "any rank from 1", {k: (lambda d, f=f: same_as_contiguous(
    f, d.array(tuple(d.int(1, 3) for _ in range(d.int(1, 4)))))) for k, f in ACTIVATIONS.items()})
_cases(A, "0-d array", {k: (lambda d, f=f: f(np.float32(d.int(-2, 2)) * np.ones((), np.float32)))
                        for k, f in ACTIVATIONS.items()})
_cases(A, "integer or float16 input", {k: (lambda d, f=f: f(d.bad_dtype(d.batch() * 3))) for k, f in ACTIVATIONS.items()})
_cases(A, "NaN or inf", {k: (lambda d, f=f: _activation_nan(d, f)) for k, f in ACTIVATIONS.items()})
_cases(A, "empty batch", {k: (lambda d, f=f: (lambda y: None if y.shape == (0, 3) else pytest.fail(str(y.shape)))(
    f(np.zeros((0, 3), np.float32)))) for k, f in ACTIVATIONS.items()})
_cases(A, "non-contiguous or read-only x",
       {k: (lambda d, f=f: same_as_contiguous(f, d.awkward(d.batch()))) for k, f in ACTIVATIONS.items()})
_cases("`nn.LeakyReLU`", "slope not a number",
       {"nn.LeakyReLU": lambda d: nn.LeakyReLU(d.pick(["0.2", None, [0.2]]))}, xfail=["nn.LeakyReLU"])
_cases(L, "target of another shape", loss_cases(_loss_shape))
_cases(L, "integer or float16 prediction", loss_cases(_loss_dtype))
_cases(L, "integer or bool target", loss_cases(_loss_int_target))
_cases(L, "NaN in the prediction", loss_cases(_loss_nan))
_cases(L, "empty batch", loss_cases(_loss_empty))
_cases(L, "non-contiguous or read-only arrays", loss_cases(_loss_awkward))
_cases(L, "mixed backends", loss_cases(_loss_mixed))
_cases(L, "target not an array", loss_cases(_loss_target_type))
_cases(S, "wrong rank or shape, labels not integers", {k: (lambda d, f=f: _softmax_shape(d, f)) for k, f in SOFTMAX.items()})
_cases(S, "labels outside [0, C)", {k: (lambda d, f=f: _softmax_range(d, f)) for k, f in SOFTMAX.items()})
_cases("`nn.Dense`", "wrong rank or shape",
       {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0).forward(d.pick([d.batch(f=2), d.batch(f=3)[0], d.batch(f=3)[None]]))})
_cases("`nn.Dense`", "integer, float16 or float64 input",
       {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0).forward(d.pick([d.bad_dtype(d.batch(f=3)), d.batch(f=3, dtype=np.float64)]))})
_cases("`nn.Dense`", "NaN or inf in x", {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0).forward(d.nonfinite(d.batch(f=3)))})
_cases("`nn.Dense`", "empty batch", {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0).forward(np.zeros((0, 3), np.float32))},
       xfail=["nn.Dense"])
_cases("`nn.Dense`", "mixed backends", {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0).forward(DeviceArray(d.batch(f=3)))})
_cases("`nn.Dense`, `nn.BatchNorm1d`", "wrong types of hyperparameters", {
    "nn.Dense": lambda d: nn.Dense(*d.pick([("3", 2), (3, 2.5), (0, 2), (3, 2, 0, "glorot", True, np.float16),
                                            (3, 2, 0, "glorot", True, np.int32)])),
    "nn.BatchNorm1d": lambda d: nn.BatchNorm1d(*d.pick([("3",), (3, "0.1"), (3, 0.0), (3, 0.1, -1.0),
                                                        (3, 0.1, 1e-5, np.float16)]))})
_cases("`nn.Dense`", "unknown init", {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0, init=d.pick(["xavier", "he_uniform"]))})
_cases("`nn.BatchNorm1d`", "wrong rank or shape, one-row training batch",
       {"nn.BatchNorm1d": lambda d: nn.BatchNorm1d(3).forward(d.pick([d.batch(f=2), d.batch(f=3)[None], d.batch(n=1, f=3)]))})
_cases("`nn.BatchNorm1d`", "integer, float16 or float64 input",
       {"nn.BatchNorm1d": lambda d: nn.BatchNorm1d(3).forward(d.pick([d.bad_dtype(d.batch(n=3, f=3)),
                                                                      d.batch(n=3, f=3, dtype=np.float64)]))})
_cases("`nn.BatchNorm1d`", "mixed backends",
       {"nn.BatchNorm1d": lambda d: nn.BatchNorm1d(3).forward(DeviceArray(d.batch(n=3, f=3)))})
_cases("modules (`Dense`, `BatchNorm1d`, `Sequential`)", "non-contiguous or read-only x", _module_cases(_module_awkward))
_cases("`Module.backward`", "dy of another shape or dtype", _module_cases(_dy_wrong))
_cases("`Module.backward`", "no forward before it, or called twice", _module_cases(_backward_twice))
_cases("`Module.to`", "float16 or integer dtype, unknown backend",
       {"Module.to": lambda d: nn.Dense(3, 2, rng=0).to(**d.pick([{"dtype": np.float16}, {"dtype": "int32"},
                                                                  {"backend": "tpu"}]))})
_cases("`Module.load_state_dict`", "missing or unexpected keys, wrong shapes",
       {"Module.load_state_dict": lambda d: _load_state(d, d.pick(["missing", "unexpected", "shape"]))})
_cases("`Module.load_state_dict`", "read-only, float64, integer or device arrays", {"Module.load_state_dict": _load_state_ok})
_cases("`optim.SGD`, `optim.Adam`", "params not a list of Param, or empty", {"optimizers": _optimizer_params})
_cases("`optim.SGD`, `optim.Adam`", "wrong types of hyperparameters", {"optimizers": _optimizer_hyper})
_cases("`optim.SGD`, `optim.Adam`", "hyperparameter out of range, NaN or inf", {"optimizers": _optimizer_range})
_cases("`Optimizer.step`", "gradient of another shape or dtype", {"step": _optimizer_bad_grad})
_cases("`Optimizer.step`", "NaN or inf gradient", {"step": _optimizer_nan_grad})
_cases("`Optimizer.step`", "gradient on another backend", {"step": _optimizer_device_grad})
_cases("`Optimizer.step`", "model moved or cast after the optimizer stepped", {"step": _optimizer_moved})
_cases("`Optimizer.load_state_dict`", "missing or unexpected keys, wrong shapes", {"load_state_dict": _optimizer_load_state})
_cases("`GAN`", "wrong types of hyperparameters or out of range", {"GAN": _gan_hyper})
_cases("`GAN`", "unknown loss", {"GAN": lambda d: (lambda g: GAN(g.G, g.D, g.g_optimizer, g.d_optimizer, noise_dim=2,
                                                                  loss=d.pick(["wgan", "Minimax", ""])))(tiny_gan())})
_cases("`GAN`", "optimizers not built on the models' parameters", {"GAN": _gan_optimizers})
_cases("`GAN.train_step`", "wrong rank or shape, not arrays, wrong count, N not a multiple of pack",
       {"train_step": _gan_real_shape})
_cases("`GAN.train_step`", "integer, float16 or float64 batch",
       {"train_step": lambda d: tiny_gan().train_step(d.pick([d.bad_dtype(d.batch(n=4, f=3) * 3),
                                                              d.batch(n=4, f=3, dtype=np.float64)]))})
_cases("`GAN.train_step`", "NaN or inf in the batch",
       {"train_step": lambda d: tiny_gan().train_step(d.nonfinite(d.batch(n=4, f=3)))["d_loss"]})
_cases("`minigan train` (`train.Run`)", "NaN or inf in the data", {"Run.train": None}, examples=0)
_cases("`GAN.train_step`", "empty batch", {"train_step": lambda d: tiny_gan().train_step(np.zeros((0, 3), np.float32))},
       xfail=["train_step"])
_cases("`GAN.train_step`", "non-contiguous or read-only batch", {"train_step": _gan_awkward})
_cases("`GAN.train_step`", "mixed backends", {"train_step": lambda d: tiny_gan().train_step(DeviceArray(d.batch(n=4, f=3)))})
_cases("`GAN.train_step`", "a layer replaced after the optimizers were built", {"train_step": _gan_replaced})
_cases("`gradcheck.check_*`", "NaN or inf input",
       {k: (lambda d, f=f: f(d.nonfinite(_gc_input(d)))) for k, f in GRADCHECK.items()})
_cases("`gradcheck.check_*`", "wrong types of settings or out of range",
       {k: (lambda d, f=f: _gc_settings(d, f)) for k, f in GRADCHECK.items()})
_cases("`gradcheck.check_*`", "integer or float16 input", {k: (lambda d, f=f, k=k: _gc_cast(d, f, k)) for k, f in GRADCHECK.items()},
       examples=3)
_cases("`gradcheck.check_*`", "non-contiguous input",
       {k: (lambda d, f=f: _gc_awkward(d, f, False)) for k, f in GRADCHECK.items()},
       xfail=["check_function", "check_module", "check_loss"], examples=3)  # check_gan_step never perturbs real
_cases("`gradcheck.check_*`", "read-only input",
       {k: (lambda d, f=f: _gc_awkward(d, f, True)) for k, f in GRADCHECK.items()}, examples=3)
_cases("`data.get_dataset`", "unknown name or scale",
       {"get_dataset": lambda d: data.get_dataset(**d.pick([{"name": "cifar"}, {"name": "Ring8"},
                                                                          {"name": "digits", "scale": "relu"}]))})
_cases("`data.get_dataset`, `Dataset.batch`, `real_samples`", "seed, step, batch size, n not integers or negative",
       {"datasets": _dataset_ints})
_cases("`Dataset.batch`", "batch size larger than the dataset",
       {"digits": lambda d: data.get_dataset("digits").batch(0, 10_001)}, examples=0)
_cases("`data.images_to_model_scale`", "not uint8",
       {"images_to_model_scale": lambda d: data.images_to_model_scale(d.pick([np.zeros((2, 28, 28)),
                                                                              np.zeros((2, 784), np.int16)]))})
# Rows that need a folder: their cases take (tmp_path, capsys) and run once.
_cases("`checkpoint.load_checkpoint`", "missing file or folder", {"missing": lambda t, c: checkpoint.load_checkpoint(
    t / "nothing.npz"), "empty folder": lambda t, c: _ckpt_missing(t)}, examples=0)
_cases("`checkpoint.load_checkpoint`", "truncated or corrupt file",
       {how: (lambda t, c, how=how: _ckpt_corrupt(t, how)) for how in ("truncated", "not a zip", "flipped bytes")},
       examples=0)
_cases("`checkpoint.load_checkpoint`", "pickle-bearing npz", {"object array": lambda t, c: _ckpt_pickle(t)}, examples=0)
_cases("`checkpoint.load_checkpoint`", "missing keys, unreadable config or step, bad generator state",
       {how: (lambda t, c, how=how: _ckpt_keys(t, how))
        for how in ("missing step", "config not json", "config a list", "step an array", "rng words")}, examples=0)
_cases("`train.resume`, `evaluate.load_generator`", "weights that do not fit the model",
       {how: (lambda t, c, how=how: _ckpt_wrong_model(t, how)) for how in ("sample", "resume")}, examples=0)
_CLI_OPTIONS = [["train", "--dataset", "cifar"], ["train", "--arch", "dcgan"], ["train", "--loss", "wgan"],
                ["train", "--lr-decay", "cosine"], ["train", "--backend", "tpu"], ["sample", "run", "--backend", "gpu"]]
_CLI_NUMBERS = [["train", "--steps", "0"], ["train", "--batch-size", "-4"], ["train", "--lr-g", "abc"],
                ["train", "--beta1", "1"], ["train", "--pack", "1.5"], ["train", "--seed", "-1"],
                ["train", "--label-smoothing", "nan"], ["sample", "run", "-n", "0"]]
_cases("`minigan` CLI", "unknown option values",
       {" ".join(a): (lambda t, c, a=a: _cli(a, c)) for a in _CLI_OPTIONS}, examples=0)
_cases("`minigan` CLI", "numbers out of range or not numbers",
       {" ".join(a): (lambda t, c, a=a: _cli(a, c)) for a in _CLI_NUMBERS}, examples=0)
_cases("`minigan` CLI", "bad paths", {
    "sample missing": lambda t, c: _cli(["sample", str(t / "missing")], c),
    "evaluate missing": lambda t, c: _cli(["evaluate", str(t / "missing")], c),
    "resume missing": lambda t, c: _cli(["train", "--resume", str(t / "missing"), "--no-progress"], c),
    "out under a file": lambda t, c: _cli(["train", "--dataset", "ring8", "--steps", "1", "--no-progress", "--out",
                                           str(_a_file(t) / "run")], c)}, examples=0)

NEEDS_FOLDER = {"`checkpoint.load_checkpoint`", "`train.resume`, `evaluate.load_generator`", "`minigan` CLI"}


def _params():
    out = []
    for row in CONTRACT:
        assert row.cases, f"row {row.entry} | {row.bad} has no case"
        for member in row.cases:
            marks = [CONTRACTS_BRANCH] if member in row.xfail else []
            out.append(pytest.param(row, member, marks=marks, id=f"{row.entry} | {row.bad} | {member}"))
    return out


def _outcome(call):
    try:
        return "returned", call()
    except Exception as err:  # noqa: BLE001 -- the row's expectation judges it
        return "raised", err


@pytest.mark.parametrize(("row", "member"), _params())
def test_contract(row, member, tmp_path, capsys):
    case = row.cases[member]
    if row.entry == "`minigan train` (`train.Run`)":
        row.expect.verify(_outcome(lambda: _diverging_run(tmp_path)))
    elif row.entry in NEEDS_FOLDER:
        outcome = _outcome(lambda: case(tmp_path, capsys))
        if row.entry == "`minigan` CLI":  # cli.main returns 2 and prints one error line; judge that line
            kind, value = outcome
            assert kind == "returned" and value[0] == 2, f"expected exit status 2, got {value!r}"
            lines = [line for line in value[1].splitlines() if "error:" in line]
            assert len(lines) == 1 and "Traceback" not in value[1], value[1]
            outcome = ("raised", Exception(lines[0]))
        row.expect.verify(outcome)
    elif row.examples == 0:
        row.expect.verify(_outcome(lambda: case(Draw(None))))
    else:
        @settings(max_examples=row.examples)
        @given(st.data())
        def sweep(data):
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):  # inf - inf may warn; judged below
                row.expect.verify(_outcome(lambda: case(Draw(data))))

        sweep()


def _doc_rows():
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0] not in ("entry point",) and not set(cells[0]) <= set("-: "):
            rows.append((cells[0], cells[1]))
    return rows


def test_doc_and_sweep_list_the_same_rows():
    doc = _doc_rows()
    assert len(doc) == len(set(doc)), "a row appears twice in docs/contracts.md"
    assert set(doc) == set(_BY_KEY), (f"in the doc only: {sorted(set(doc) - set(_BY_KEY))}; "
                                      f"in the sweep only: {sorted(set(_BY_KEY) - set(doc))}")


def test_a_removed_check_fails_its_row(monkeypatch):
    """The sweep can fail: with the loss check switched off, the empty-batch row of the losses is violated."""
    from minigan import validate

    monkeypatch.setattr(validate, "float_array", lambda *a, **k: a[2])
    row = _BY_KEY[(L, "empty batch")]
    with pytest.raises(AssertionError):
        with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
            row.expect.verify(_outcome(lambda: _loss_empty(Draw(None), LOSSES["F.mse_forward"][0], "pred", False)))

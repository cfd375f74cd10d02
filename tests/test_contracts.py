"""The bad-input contract of docs/contracts.md, swept.

``CONTRACT`` below mirrors the doc's table row for row (``test_doc_and_sweep_list_the_same_rows`` keeps them equal):
each row is an entry point, a kind of bad input, what it must get, and the cases that try it. Hypothesis draws the
shapes and values of each case. An error row passes only when the exception has the promised type AND its message
names the argument and what was expected (every pattern of the row is found in it): an unrelated exception (a
ZeroDivisionError, "too many values to unpack", an IndexError from deep inside) fails it, and so does an error
from some other check, because its message names something else. A "correct result" case compares with the same
call on a plain contiguous, writable copy; a "propagates" case requires the NaN/inf to reach the output.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigan import checkpoint, cli, data, gradcheck, losses, nn, optim
from minigan import functional as F
from minigan.checkpoint import CheckpointError
from minigan.gan import GAN
from minigan.train import TrainingDiverged

DOC = Path(__file__).resolve().parent.parent / "docs" / "contracts.md"


# ------------------------------------------------------------------------------------------------ what a row expects


class Raises:
    """The call raises ``error`` (or a subclass) and every regex of ``names`` is found in the message."""

    def __init__(self, error, *names):
        self.error, self.names = error, names
        errors = error if isinstance(error, tuple) else (error,)
        self.expected = " or ".join(e.__name__ for e in errors)

    def verify(self, outcome):
        kind, value = outcome
        assert kind == "raised", f"expected {self.expected}, but the call returned {value!r}"
        assert isinstance(value, self.error), f"expected {self.expected}, got {type(value).__name__}: {value}"
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


class ExitStatus2:
    """``cli.main`` returned 2 after printing exactly one error line (no traceback) that matches ``pattern``."""

    def __init__(self, pattern):
        self.pattern = pattern

    def verify(self, outcome):
        kind, value = outcome
        if kind == "raised":
            raise value
        code, err = value
        lines = [line for line in err.splitlines() if "error:" in line]
        assert code == 2 and len(lines) == 1 and "Traceback" not in err, f"exit status {code}, stderr {err!r}"
        assert re.search(self.pattern, lines[0], re.M), f"error line lacks {self.pattern!r}: {lines[0]}"


CORRECT, PROPAGATES = Correct(), Propagates()


@dataclass
class Row:
    entry: str
    bad: str
    expect: object
    cases: dict  # member name -> case(draw), or case(folder) when ``folder``; what it returns is judged by expect
    examples: int = 8  # hypothesis examples per case; 0: run once with fixed draws
    folder: bool = False  # the cases take a fresh tmp folder instead of hypothesis draws, and run once


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
    how = d.pick(["bad", "list", "mismatch"])
    if how == "bad":
        return F.dense_forward(d.bad_dtype(d.batch(f=3)), W)
    if how == "list":
        return F.dense_forward(d.batch(f=3).tolist(), W)
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


def _gc_settings(d, f):
    name, value = d.pick([("eps", 0.0), ("eps", "1e-6"), ("atol", -1.0), ("rtol", None), ("max_elements", 0),
                          ("max_elements", 2.5)])
    return naming(name, lambda: f(_gc_input(d), **{name: value}))


def _gc_cast(d, f, name):
    x = np.round(_gc_input(d) * 2)
    # check_function treats integer inputs as labels (not differentiated), so it is tried with float16 only
    dtypes = [np.float16, np.float32] if name == "check_function" else [np.int64, np.float16, np.float32]
    got = f(x.astype(d.pick(dtypes)), max_elements=8)
    want = f(x, max_elements=8)
    assert got.ok and want.ok and [t.max_abs_error for t in got.tensors] == pytest.approx(
        [t.max_abs_error for t in want.tensors], abs=1e-9)


def _gc_awkward(d, f, readonly):
    x = _gc_input(d)
    if readonly:
        y = x.copy()
        y.flags.writeable = False
    else:
        y = np.asfortranarray(x) if d.pick(["fortran", "transposed"]) == "fortran" else np.ascontiguousarray(x.T).T
    result = f(y, max_elements=8)
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


def _ckpt_missing(tmp):  # a folder without checkpoint.npz
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


def _ckpt_without_average(tmp, how):
    """A run trained with a weight average, its checkpoint then stripped of G_ema/...: resuming or sampling it
    must not silently fall back to the live G (other pictures than the run's own)."""
    from minigan import evaluate, train as T

    out = T.train(T.TrainConfig(dataset="ring8", arch="toy", steps=2, batch_size=8, ema=0.9, sample_every=2,
                                log_every=2), tmp / "run", progress=False)
    with np.load(out / T.CHECKPOINT, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith("G_ema/")}
    np.savez(out / T.CHECKPOINT, **arrays)
    if how == "sample":
        return evaluate.load_generator(out)
    return T.resume(out, {"steps": 3}, progress=False)


def _a_file(tmp):
    (tmp / "f").write_text("a file, not a folder")
    return tmp / "f"


def _cli(argv, tmp):
    """``cli.main(argv)`` run in ``tmp``; returns (exit status, what it printed to stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), _chdir(tmp):
        code = cli.main(argv)
    return code, err.getvalue()


@contextlib.contextmanager
def _chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


# ------------------------------------------------------------------------------------------------ the table


def each(members, case, **fixed):
    """One case per member of ``members`` (name -> function): ``case(d, f, **fixed)``."""
    return {name: functools.partial(case, f=f, **fixed) for name, f in members.items()}


def _act_any_rank(d, f):
    same_as_contiguous(f, d.array(tuple(d.int(1, 3) for _ in range(d.int(1, 4)))))


def _act_0d(d, f):
    return f(np.asarray(d.int(-2, 2), np.float32))


def _act_empty(d, f):
    assert f(np.zeros((0, 3), np.float32)).shape == (0, 3)


def _forward(module, *choices):
    return lambda d: module().forward(d.pick([make(d) for make in choices]))


def _gc_nan(d, f):
    return f(d.nonfinite(_gc_input(d)))


def _unknown_loss(d):
    g = tiny_gan()
    return GAN(g.G, g.D, g.g_optimizer, g.d_optimizer, noise_dim=2, loss=d.pick(["wgan", "Minimax", ""]))


def _dense_hyper(d):
    return nn.Dense(*d.pick([("3", 2), (3, 2.5), (0, 2), (3, 2, 0, "glorot", True, np.float16),
                             (3, 2, 0, "glorot", True, np.int32)]))


def _bn_hyper(d):
    return nn.BatchNorm1d(*d.pick([("3",), (3, "0.1"), (3, 0.0), (3, 0.1, -1.0), (3, 0.1, 1e-5, np.float16)]))


def _get_dataset_option(d):
    return data.get_dataset(**d.pick([{"name": "cifar"}, {"name": "Ring8"}, {"name": "digits", "scale": "relu"}]))


def _not_uint8(d):
    return data.images_to_model_scale(d.pick([np.zeros((2, 28, 28)), np.zeros((2, 784), np.int16)]))


def cli_cases(*argvs):
    return {" ".join(argv): functools.partial(_cli, argv) for argv in argvs}


DENSE = lambda: nn.Dense(3, 2, rng=0)  # noqa: E731
BN = lambda: nn.BatchNorm1d(3)  # noqa: E731
# the image layers: each takes (N, 3, H, W)
IMAGE_LAYERS = {"nn.Conv2d": lambda: nn.Conv2d(3, 2, 3, stride=2, padding=1, rng=0),
                "nn.ConvTranspose2d": lambda: nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1, rng=0),
                "nn.BatchNorm2d": lambda: nn.BatchNorm2d(3)}
CONVS = {k: v for k, v in IMAGE_LAYERS.items() if k != "nn.BatchNorm2d"}


def _image(d, c=3, dtype=np.float32):
    return d.array((d.int(1, 3, "n"), c, d.int(2, 5, "h"), d.int(2, 5, "w")), dtype)


def _image_shape(d, make):
    """Not 4-D (a flat batch, one image without its batch axis) or 2 channels where the layer takes 3."""
    x = _image(d)
    return make().forward(d.pick([x.reshape(len(x), -1), x[0], _image(d, c=2)]))


def _conv_too_small(d, name):
    """A spatial size the kernel does not fit (Conv2d), or padding that crops more than the kernel adds (transposed)."""
    if name == "nn.Conv2d":
        return nn.Conv2d(3, 2, 5, rng=0).forward(d.array((1, 3, d.int(1, 4, "h"), 6)))
    return nn.ConvTranspose2d(3, 2, 1, padding=d.int(1, 2, "padding"), rng=0).forward(d.array((1, 3, 1, 1)))


def _conv_hyper(d, name):
    kind = nn.Conv2d if name == "nn.Conv2d" else nn.ConvTranspose2d
    bad = d.pick([{"kernel_size": 2.5}, {"kernel_size": 0}, {"stride": 0}, {"padding": -1}, {"stride": "2"},
                  {"kernel_size": (3, 3, 3)}] + ([{"output_padding": 2, "stride": 2}] if kind is nn.ConvTranspose2d
                                                  else []))
    return kind(3, 2, **dict({"kernel_size": 3}, **bad), rng=0)


def _image_awkward(d, make):
    x = _image(d)
    if make is IMAGE_LAYERS["nn.BatchNorm2d"] and x.shape[0] * x.shape[2] * x.shape[3] < 2:
        x = np.concatenate([x, x + 1])  # a training batch norm needs two values per channel

    def run(x):
        m = make()
        y = m.forward(x)
        return y, m.backward(np.ones_like(y))
    same_as_contiguous(run, d.awkward(x))


def _functional_conv_shape(d, f):
    W = d.array((2, 3, 3, 3))  # conv2d: 3 input channels; conv_transpose2d: 2
    x = d.pick([_image(d, c=d.pick([1, 4])), _image(d)[0]])
    return f(x, W if f is F.conv2d_forward else W.transpose(1, 0, 2, 3).copy())


def _reshape_misfit(d):
    n = d.int(1, 4)
    return nn.Reshape((1, 4, 4)).forward(d.array((n, d.pick([15, 17, 32]))))
A = "activations (`F.*_forward`, `nn.ReLU` ...)"
L = "losses (`F.bce_with_logits`, `bce`, `mse`; `losses.*`)"
S = "softmax cross-entropy (`F.`, `losses.`)"
IM = "`nn.Conv2d`, `nn.ConvTranspose2d`, `nn.BatchNorm2d`"
CV = "`nn.Conv2d`, `nn.ConvTranspose2d`"
E = Raises
CONTRACT = [
    # ---- functional ops
    Row("`F.dense_forward`", "wrong rank or shape", E(ValueError, r"\b(x|b)\b", r"must have shape \("),
        {"F.dense_forward": _dense_shape}),
    Row("`F.dense_forward`", "integer or float16 input, a list, x and W of different dtypes",
        E(TypeError, r"\bx\b", r"float32 or float64|W has"), {"F.dense_forward": _dense_dtype}),
    Row("`F.dense_forward`", "NaN or inf in x", PROPAGATES,
        {"F.dense_forward": lambda d: F.dense_forward(d.nonfinite(d.batch(f=3)), d.array((3, 2)))[0]}),
    Row("`F.dense_forward`", "empty batch", CORRECT, {"F.dense_forward": _dense_empty}),
    Row("`F.dense_forward`", "non-contiguous or read-only x", CORRECT, {"F.dense_forward": lambda d: same_as_contiguous(
        lambda x: F.dense_forward(x, np.eye(3, 2, dtype=np.float32))[0], d.awkward(d.batch(f=3)))}),
    Row("`F.dense_forward`", "mixed backends", E(TypeError, "mixed backends", r"x on cupy", r"W on numpy"),
        {"F.dense_forward": lambda d: F.dense_forward(DeviceArray(d.batch(f=3)), d.array((3, 2)))}),
    Row("`F.batchnorm_forward`", "wrong rank or shape", E(ValueError, r"\b(x|gamma)\b", r"must have shape"),
        {"F.batchnorm_forward": _bn_shape}),
    Row("`F.batchnorm_forward`", "integer or float16 input", E(TypeError, r"\bx\b", "float32 or float64"),
        {"F.batchnorm_forward": lambda d: _bn(d.bad_dtype(d.batch(n=3) * 3))}),
    Row("`F.batchnorm_forward`", "empty batch or one row", E(ValueError, r"\bx\b", "at least 2 rows"),
        {"F.batchnorm_forward": lambda d: _bn(d.batch(n=d.int(0, 1)))}),
    Row("`F.batchnorm_forward`", "non-contiguous or read-only x", CORRECT, {"F.batchnorm_forward": lambda d: (
        same_as_contiguous(lambda x: _bn(x)[0], d.awkward(d.batch(n=d.int(2, 5)))))}),
    Row(A, "any rank from 1", CORRECT, each(ACTIVATIONS, _act_any_rank)),
    Row(A, "0-d array", E(ValueError, r"\bx\b", "at least one dimension"), each(ACTIVATIONS, _act_0d)),
    Row(A, "integer or float16 input, or a list", E(TypeError, r"\bx\b", "float32 or float64"),
        each(ACTIVATIONS, lambda d, f: f(d.pick([d.bad_dtype(d.batch() * 3), d.batch().tolist()])))),
    Row(A, "NaN or inf", PROPAGATES, each(ACTIVATIONS, _activation_nan)),
    Row(A, "empty batch", CORRECT, each(ACTIVATIONS, _act_empty)),
    Row(A, "non-contiguous or read-only x", CORRECT,
        each(ACTIVATIONS, lambda d, f: same_as_contiguous(f, d.awkward(d.batch())))),
    Row("`nn.LeakyReLU`", "slope not a number", E((TypeError, ValueError), "slope"),
        {"nn.LeakyReLU": lambda d: nn.LeakyReLU(d.pick(["0.2", None, [0.2]]))}),
    Row(L, "target of another shape", E(ValueError, "target has shape", "prediction has shape"),
        loss_cases(_loss_shape)),
    Row(L, "integer or float16 prediction", E(TypeError, r"\b(z|p|pred)\b", "float32 or float64"),
        loss_cases(_loss_dtype)),
    Row(L, "integer or bool target", CORRECT, loss_cases(_loss_int_target)),
    Row(L, "NaN in the prediction", PROPAGATES, loss_cases(_loss_nan)),
    Row(L, "empty batch", E(ValueError, r"\b(z|p|pred)\b|prediction", "empty batch", "at least one (row|element)"),
        loss_cases(_loss_empty)),
    Row(L, "non-contiguous or read-only arrays", CORRECT, loss_cases(_loss_awkward)),
    Row(L, "mixed backends", E(TypeError, "mixed backends", r"target on cupy"), loss_cases(_loss_mixed)),
    Row(L, "target not an array", E(TypeError, "target must be an array"), loss_cases(_loss_target_type)),
    Row(S, "wrong rank or shape, labels not integers",
        E(ValueError, r"logits|labels", r"\(N, C\)|must be integers|must have shape"), each(SOFTMAX, _softmax_shape)),
    Row(S, "labels outside [0, C)", E(ValueError, "labels", r"\[0, \d+\)"), each(SOFTMAX, _softmax_range)),
    # ---- modules
    Row("`nn.Dense`", "wrong rank or shape", E(ValueError, r"Dense\(3->2\)", r"\(batch, 3\)"),
        {"nn.Dense": _forward(DENSE, lambda d: d.batch(f=2), lambda d: d.batch(f=3)[0], lambda d: d.batch(f=3)[None])}),
    Row("`nn.Dense`", "integer, float16 or float64 input", E(TypeError, r"input dtype", r"x\.astype\('float32'\)"),
        {"nn.Dense": _forward(DENSE, lambda d: d.bad_dtype(d.batch(f=3)), lambda d: d.batch(f=3, dtype=np.float64))}),
    Row("`nn.Dense`", "NaN or inf in x", PROPAGATES,
        {"nn.Dense": _forward(DENSE, lambda d: d.nonfinite(d.batch(f=3)))}),
    Row("`nn.Dense`", "empty batch", E(ValueError, r"\bx\b|input", r"empty|at least one|no rows|0 rows"),
        {"nn.Dense": _forward(DENSE, lambda d: np.zeros((0, 3), np.float32))}),
    Row("`nn.Dense`", "mixed backends", E(TypeError, "mixed backends", "x on cupy"),
        {"nn.Dense": _forward(DENSE, lambda d: DeviceArray(d.batch(f=3)))}),
    Row("`nn.Dense`, `nn.BatchNorm1d`", "wrong types of hyperparameters",
        E((TypeError, ValueError), r"in_features|out_features|num_features|momentum|eps|dtype"),
        {"nn.Dense": _dense_hyper, "nn.BatchNorm1d": _bn_hyper}),
    Row("`nn.Dense`", "unknown init", E(ValueError, "unknown init", "glorot"),
        {"nn.Dense": lambda d: nn.Dense(3, 2, rng=0, init=d.pick(["xavier", "he_uniform"]))}),
    Row("`nn.BatchNorm1d`", "wrong rank or shape, one-row training batch",
        E(ValueError, r"BatchNorm1d\(3\)", r"\(batch, 3\)|at least 2 rows"),
        {"nn.BatchNorm1d": _forward(BN, lambda d: d.batch(f=2), lambda d: d.batch(f=3)[None],
                                    lambda d: d.batch(n=1, f=3))}),
    Row("`nn.BatchNorm1d`", "integer, float16 or float64 input", E(TypeError, "input dtype", "float32"),
        {"nn.BatchNorm1d": _forward(BN, lambda d: d.bad_dtype(d.batch(n=3, f=3)),
                                    lambda d: d.batch(n=3, f=3, dtype=np.float64))}),
    Row("`nn.BatchNorm1d`", "mixed backends", E(TypeError, "mixed backends", "x on cupy"),
        {"nn.BatchNorm1d": _forward(BN, lambda d: DeviceArray(d.batch(n=3, f=3)))}),
    # ---- image layers (issue 11)
    Row(IM, "input not 4-D, or a wrong channel count",
        E(ValueError, r"layer|Conv2d|ConvTranspose2d|BatchNorm2d", r"\(batch, 3, height, width\)"),
        {name: functools.partial(_image_shape, make=make) for name, make in IMAGE_LAYERS.items()}),
    Row(CV, "a spatial size the kernel does not fit, or padding that crops the whole output",
        E(ValueError, r"Conv(Transpose)?2d", r"too small: a 5x5 kernel does not fit|gives an empty output"),
        {name: functools.partial(_conv_too_small, name=name) for name in CONVS}),
    Row(CV, "kernel_size, stride, padding or output_padding not ints or out of range",
        E((TypeError, ValueError), r"kernel_size|stride|padding|output_padding", r"must be|need"),
        {name: functools.partial(_conv_hyper, name=name) for name in CONVS}),
    Row(IM, "integer, float16 or float64 input", E(TypeError, "input dtype", r"x\.astype\('float32'\)"),
        {name: lambda d, make=make: make().forward(d.pick([d.bad_dtype(_image(d)), _image(d, dtype=np.float64)]))
         for name, make in IMAGE_LAYERS.items()}),
    Row(IM, "non-contiguous or read-only x", CORRECT,
        {name: functools.partial(_image_awkward, make=make) for name, make in IMAGE_LAYERS.items()}),
    Row(IM, "mixed backends", E(TypeError, "mixed backends"),
        {name: lambda d, make=make: make().forward(DeviceArray(_image(d))) for name, make in IMAGE_LAYERS.items()}),
    Row("`F.conv2d_forward`, `F.conv_transpose2d_forward`", "input not 4-D or channels not matching W",
        E(ValueError, r"conv(_transpose)?2d: expected input of shape \(N, [23], H, W\) for weights of shape"),
        {"F.conv2d_forward": functools.partial(_functional_conv_shape, f=F.conv2d_forward),
         "F.conv_transpose2d_forward": functools.partial(_functional_conv_shape, f=F.conv_transpose2d_forward)}),
    Row("`nn.Reshape`", "input whose size per example does not fit the shape",
        E(ValueError, r"Reshape\(\(1, 4, 4\)\)", r"cannot reshape input of shape \(\d+, \d+\)"),
        {"nn.Reshape": _reshape_misfit}),
    Row("modules (`Dense`, `BatchNorm1d`, `Sequential`)", "non-contiguous or read-only x", CORRECT,
        _module_cases(_module_awkward)),
    Row("`Module.backward`", "dy of another shape or dtype",
        E((ValueError, TypeError), r"backward\(dy\)", r"shaped like the forward's output"), _module_cases(_dy_wrong)),
    Row("`Module.backward`", "no forward before it, or called twice", E(RuntimeError, "without a matching forward"),
        _module_cases(_backward_twice)),
    Row("`Module.to`", "float16 or integer dtype, unknown backend",
        E((TypeError, ValueError), r"dtype must be float32 or float64|unknown backend"),
        {"Module.to": lambda d: DENSE().to(**d.pick([{"dtype": np.float16}, {"dtype": "int32"}, {"backend": "tpu"}]))}),
    Row("`Module.load_state_dict`", "missing or unexpected keys, wrong shapes",
        E(ValueError, r"missing|unexpected|saved shape"),
        {"Module.load_state_dict": lambda d: _load_state(d, d.pick(["missing", "unexpected", "shape"]))}),
    Row("`Module.load_state_dict`", "read-only, float64, integer or device arrays", CORRECT,
        {"Module.load_state_dict": _load_state_ok}),
    # ---- optimizers
    Row("`optim.SGD`, `optim.Adam`", "params not a list of Param, or empty",
        E((TypeError, ValueError), r"params|parameter list"), {"optimizers": _optimizer_params}),
    Row("`optim.SGD`, `optim.Adam`", "wrong types of hyperparameters",
        E(TypeError, r"\b(lr|momentum|betas|eps|weight_decay)\b", r"must be"), {"optimizers": _optimizer_hyper}),
    Row("`optim.SGD`, `optim.Adam`", "hyperparameter out of range, NaN or inf",
        E(ValueError, r"need ", r"\(a finite number\), got"), {"optimizers": _optimizer_range}),
    Row("`Optimizer.step`", "gradient of another shape or dtype", E(ValueError, r"gradient of 'W'", "parameter is"),
        {"step": _optimizer_bad_grad}),
    Row("`Optimizer.step`", "NaN or inf gradient", PROPAGATES, {"step": _optimizer_nan_grad}),
    Row("`Optimizer.step`", "gradient on another backend", E(TypeError, "mixed backends", "gradient of 'W' on cupy"),
        {"step": _optimizer_device_grad}),
    Row("`Optimizer.step`", "model moved or cast after the optimizer stepped",
        E(RuntimeError, r"parameter 'W'", r"moved or cast", r"Build the optimizer after model\.to"),
        {"step": _optimizer_moved}),
    Row("`Optimizer.load_state_dict`", "missing or unexpected keys, wrong shapes",
        E(ValueError, r"missing 'lr'|unexpected entry '7\.exp_avg'|'0\.exp_avg' has shape"),
        {"load_state_dict": _optimizer_load_state}),
    # ---- GAN
    Row("`GAN`", "wrong types of hyperparameters or out of range",
        E((TypeError, ValueError), r"\b(noise_dim|d_steps|pack|label_smoothing|instance_noise)\b"),
        {"GAN": _gan_hyper}),
    Row("`GAN`", "unknown loss", E(ValueError, "unknown generator loss", "nonsaturating"), {"GAN": _unknown_loss}),
    Row("`GAN`", "optimizers not built on the models' parameters",
        E((ValueError, TypeError), r"g_optimizer|d_optimizer|discriminator must be a minigan Module"),
        {"GAN": _gan_optimizers}),
    Row("`GAN.train_step`", "wrong rank or shape, not arrays, wrong count, N not a multiple of pack",
        E((ValueError, TypeError), r"real_batches|real batch|batch size \d+ is not a multiple of pack"),
        {"train_step": _gan_real_shape}),
    Row("`GAN.train_step`", "integer, float16 or float64 batch", E(TypeError, "real_batches", "expected float32"),
        {"train_step": lambda d: tiny_gan().train_step(d.pick([d.bad_dtype(d.batch(n=4, f=3) * 3),
                                                                d.batch(n=4, f=3, dtype=np.float64)]))}),
    Row("`GAN.train_step`", "NaN or inf in the batch", PROPAGATES,
        {"train_step": lambda d: tiny_gan().train_step(d.nonfinite(d.batch(n=4, f=3)))["d_loss"]}),
    Row("`minigan train` (`train.Run`)", "NaN or inf in the data",
        E(TrainingDiverged, "training stopped at step 1", "not finite"), {"Run.train": _diverging_run}, folder=True),
    Row("`GAN.train_step`", "empty batch", E(ValueError, "real_batches", r"empty|at least one|no rows|0 rows"),
        {"train_step": lambda d: tiny_gan().train_step(np.zeros((0, 3), np.float32))}),
    Row("`GAN.train_step`", "non-contiguous or read-only batch", CORRECT, {"train_step": _gan_awkward}),
    Row("`GAN.train_step`", "mixed backends", E(TypeError, "mixed backends", "real_batches on cupy"),
        {"train_step": lambda d: tiny_gan().train_step(DeviceArray(d.batch(n=4, f=3)))}),
    Row("`GAN.train_step`", "a layer replaced after the optimizers were built",
        E(RuntimeError, r"[gd]_optimizer parameter", "got no gradient", "replaced"), {"train_step": _gan_replaced}),
    # ---- gradcheck
    Row("`gradcheck.check_*`", "NaN or inf input", E(ValueError, r"\b(x|pred|real)\b|inputs\[0\]", "finite"),
        each(GRADCHECK, _gc_nan)),
    Row("`gradcheck.check_*`", "wrong types of settings or out of range",
        E((TypeError, ValueError), r"\b(eps|atol|rtol|max_elements)\b"), each(GRADCHECK, _gc_settings)),
    Row("`gradcheck.check_*`", "integer or float16 input", CORRECT,
        {name: functools.partial(_gc_cast, f=f, name=name) for name, f in GRADCHECK.items()}, examples=3),
    Row("`gradcheck.check_*`", "non-contiguous input", CORRECT, each(GRADCHECK, _gc_awkward, readonly=False),
        examples=3),  # check_gan_step never perturbs real
    Row("`gradcheck.check_*`", "read-only input", CORRECT, each(GRADCHECK, _gc_awkward, readonly=True), examples=3),
    # ---- datasets
    Row("`data.get_dataset`", "unknown name or scale", E(ValueError, r"unknown (dataset|scale)", r"ring8|tanh"),
        {"get_dataset": _get_dataset_option}),
    Row("`data.get_dataset`, `Dataset.batch`, `real_samples`", "seed, step, batch size, n not integers or negative",
        E((TypeError, ValueError), r"\b(seed|step|batch_size|n)\b", r"must be an integer"),
        {"datasets": _dataset_ints}),
    Row("`Dataset.batch`", "batch size larger than the dataset", E(ValueError, "batch_size", "exceeds"),
        {"digits": lambda d: data.get_dataset("digits").batch(0, 10_001)}, examples=0),
    Row("`data.images_to_model_scale`", "not uint8", E(TypeError, "expected uint8 images"),
        {"images_to_model_scale": _not_uint8}),
    # ---- checkpoints (cases get a fresh folder)
    Row("`checkpoint.load_checkpoint`", "missing file or folder", E(CheckpointError, "no checkpoint at"),
        {"missing": lambda t: checkpoint.load_checkpoint(t / "nothing.npz"), "empty folder": _ckpt_missing},
        folder=True),
    Row("`checkpoint.load_checkpoint`", "truncated or corrupt file", E(CheckpointError, "corrupt or truncated"),
        {how: functools.partial(_ckpt_corrupt, how=how) for how in ("truncated", "not a zip", "flipped bytes")},
        folder=True),
    Row("`checkpoint.load_checkpoint`", "pickle-bearing npz", E(CheckpointError, "pickled", "never"),
        {"object array": _ckpt_pickle}, folder=True),
    Row("`checkpoint.load_checkpoint`", "missing keys, unreadable config or step, bad generator state",
        E(CheckpointError, r"lacks \['step'\]|unreadable config|config must be|step must be|6"),
        {how: functools.partial(_ckpt_keys, how=how)
         for how in ("missing step", "config not json", "config a list", "step an array", "rng words")}, folder=True),
    Row("`train.resume`, `evaluate.load_generator`", "weights that do not fit the model",
        E(CheckpointError, r"do(es)? not fit", r"saved shape|missing"),
        {how: functools.partial(_ckpt_wrong_model, how=how) for how in ("sample", "resume")}, folder=True),
    Row("`train.resume`, `evaluate.load_generator`",
        "a run with a weight average (`--ema`) whose checkpoint lacks it",
        E(CheckpointError, r"lacks (a|the) weight average of G", r"G_ema"),
        {how: functools.partial(_ckpt_without_average, how=how) for how in ("sample", "resume")}, folder=True),
    # ---- the CLI (cases get a fresh folder; cli.main must return 2 after printing one error line)
    Row("`minigan` CLI", "unknown option values",
        ExitStatus2(r"argument --(dataset|arch|loss|lr-decay|backend): invalid choice"),
        cli_cases(["train", "--dataset", "cifar"], ["train", "--arch", "resnet"], ["train", "--loss", "wgan"],
                  ["train", "--lr-decay", "cosine"], ["train", "--backend", "tpu"],
                  ["sample", "run", "--backend", "gpu"]), folder=True),
    Row("`minigan` CLI", "numbers out of range or not numbers",
        ExitStatus2(r"argument (--(steps|batch-size|lr-g|beta1|pack|seed|label-smoothing)|-n): expected"),
        cli_cases(["train", "--steps", "0"], ["train", "--batch-size", "-4"], ["train", "--lr-g", "abc"],
                  ["train", "--beta1", "1"], ["train", "--pack", "1.5"], ["train", "--seed", "-1"],
                  ["train", "--label-smoothing", "nan"], ["sample", "run", "-n", "0"]), folder=True),
    Row("`minigan` CLI", "bad paths",
        ExitStatus2(r"^minigan (sample|evaluate|train): error: .*(missing|Not a directory)"),
        {"sample missing": lambda t: _cli(["sample", str(t / "missing")], t),
         "evaluate missing": lambda t: _cli(["evaluate", str(t / "missing")], t),
         "resume missing": lambda t: _cli(["train", "--resume", str(t / "missing"), "--no-progress"], t),
         "out under a file": lambda t: _cli(["train", "--dataset", "ring8", "--steps", "1", "--no-progress",
                                             "--out", str(_a_file(t) / "run")], t)}, folder=True),
]
_BY_KEY = {(r.entry, r.bad): r for r in CONTRACT}


def _params():
    out = []
    for row in CONTRACT:
        for member in row.cases:
            out.append(pytest.param(row, member, id=f"{row.entry} | {row.bad} | {member}"))
    return out


def _outcome(call):
    try:
        return "returned", call()
    except Exception as err:  # noqa: BLE001 -- the row's expectation judges it
        return "raised", err


@pytest.mark.parametrize(("row", "member"), _params())
def test_contract(row, member, tmp_path):
    case = row.cases[member]
    if row.folder:
        row.expect.verify(_outcome(lambda: case(tmp_path)))
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
    """``(entry point, bad input)`` of each row of the table in docs/contracts.md."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 3 and cells[0] != "entry point" and set(cells[0]) - set("-: "):
            rows.append((cells[0], cells[1]))
    return rows


def test_doc_and_sweep_list_the_same_rows():
    doc = _doc_rows()
    assert len(doc) == len(set(doc)), "a row appears twice in docs/contracts.md"
    assert set(doc) == set(_BY_KEY), (f"in the doc only: {sorted(set(doc) - set(_BY_KEY))}; "
                                      f"in the sweep only: {sorted(set(_BY_KEY) - set(doc))}")
    assert all(row.cases for row in CONTRACT)


def test_a_removed_check_fails_its_row(monkeypatch):
    """The sweep can fail: without the optimizer's state check, the row "model moved or cast after the optimizer
    stepped" is violated (the step silently runs float64 parameters on float32 moments)."""
    monkeypatch.setattr(optim.Optimizer, "_check_state", lambda self, p, state, slot: None)
    row = _BY_KEY[("`Optimizer.step`", "model moved or cast after the optimizer stepped")]
    with pytest.raises(AssertionError, match="expected RuntimeError, but the call returned"):
        row.expect.verify(_outcome(lambda: row.cases["step"](Draw(None))))


def test_a_message_naming_something_else_fails_its_row():
    """An error of the right type that names some other argument does not satisfy a row."""
    row = _BY_KEY[("`GAN.train_step`", "integer, float16 or float64 batch")]
    with pytest.raises(AssertionError, match="message lacks"):
        row.expect.verify(("raised", TypeError("layer 0 Dense(3->4): input dtype int64 differs from the weights'")))

"""Helpers for writing your own gradient-check test suites: strategies, assertions and a plain-NumPy GAN step.

Three kinds of helper, each usable from any pytest file:

* **hypothesis strategies** that draw the inputs where hand-written backward passes break: batch shapes with a
  batch of 1 and odd sizes (``shapes``), bounded float64/float32 arrays (``arrays``), extreme logits at +-40 and
  +-100 (``logits``), probabilities away from 0 and 1 (``probabilities``), 0/1 targets and class labels
  (``binary_targets``, ``class_labels``, ``logits_and_labels``). hypothesis is an optional dependency: it is
  imported when a strategy is first asked for, so ``import minigan.testing`` works without it.
* **assertions** built on ``minigan.gradcheck``: ``assert_backward_matches(forward, backward, inputs)`` for a
  functional pair, ``assert_module_gradients(module, x)`` for a module, ``assert_no_mutation(fn, *args)`` and
  ``assert_backward_no_mutation(backward, dout, cache)``. Each raises an ``AssertionError`` whose message is the
  checker's: the failing tensor, the worst element, the analytic and numeric values, the tolerance.
* **an independent reference for the GAN step**: ``PlainGAN`` writes the textbook step out in plain NumPy and
  float64 (its own MLP forward and backward, ``L_D``, the non-saturating or minimax ``L_G``, Adam), and
  ``assert_train_step_matches_reference(gan, batches)`` runs ``GAN.train_step`` beside it and compares every
  weight after every step within the GAN's floating-point rounding.

A ten-line example is in the README, section "Writing your own gradient tests: minigan.testing".
"""

from __future__ import annotations

import copy
import functools
import inspect

import numpy as np

from . import nn
from .backend import to_numpy, xp_of
from .gradcheck import DEFAULTS, BackwardOutputError, GradCheckError, check_function, check_module

__all__ = [
    "shapes", "arrays", "logits", "probabilities", "binary_targets", "class_labels", "logits_and_labels",
    "assert_backward_matches", "assert_module_gradients", "assert_no_mutation", "assert_backward_no_mutation",
    "MutationError",
    "PlainMLP", "PlainGAN", "plain_sigmoid", "plain_adam_update", "assert_train_step_matches_reference",
]

# =============================================================================================== strategies


def _hypothesis():
    """hypothesis's ``strategies`` and its NumPy extra, imported on first use (hypothesis is optional)."""
    try:
        from hypothesis import strategies as st
        from hypothesis.extra import numpy as hnp
    except ImportError:
        raise ImportError(
            "minigan.testing's strategies need hypothesis, which is not installed: pip install hypothesis "
            "(or pip install 'minigan[test]'). The assertion helpers and PlainGAN work without it."
        ) from None
    return st, hnp


def _float_dtype(dtype) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"minigan.testing: dtype must be float32 or float64, got {dtype}")
    return dtype


def _floats(low: float, high: float, dtype):
    """Finite floats in [low, high] that are exactly representable in ``dtype`` (bounds rounded inwards)."""
    st, _ = _hypothesis()
    dtype = _float_dtype(dtype)
    lo, hi = dtype.type(low), dtype.type(high)
    if lo < low:
        lo = np.nextafter(lo, dtype.type(np.inf))
    if hi > high:
        hi = np.nextafter(hi, dtype.type(-np.inf))
    return st.floats(float(lo), float(hi), allow_nan=False, allow_infinity=False, width=8 * dtype.itemsize)


def _shape_strategy(shape):
    """A strategy of shapes from a shape, a strategy of shapes, or None (``shapes()``)."""
    st, _ = _hypothesis()
    if shape is None:
        return shapes()
    if isinstance(shape, st.SearchStrategy):
        return shape
    return st.just(tuple(int(s) for s in shape))


def shapes(min_batch: int = 1, max_batch: int = 8, min_features: int = 1, max_features: int = 8):
    """Strategy of batch shapes ``(N, F)`` with ``min_batch <= N <= max_batch``, ``min_features <= F <= max_features``.

    The smallest batch (1 by default) is drawn often on purpose: with one row, a gradient that forgot to sum over
    the batch has the right values and the wrong shape, and 1/N mistakes vanish. Odd sizes come with the range.
    """
    st, _ = _hypothesis()
    if not 1 <= min_batch <= max_batch or not 1 <= min_features <= max_features:
        raise ValueError("shapes: need 1 <= min_batch <= max_batch and 1 <= min_features <= max_features")
    batch = st.one_of(st.just(min_batch), st.integers(min_batch, max_batch))
    return st.tuples(batch, st.integers(min_features, max_features))


def arrays(shape=None, dtype=np.float64, bound: float = 3.0):
    """Strategy of float arrays with every value in ``[-bound, bound]`` (no NaN, no inf).

    ``shape``: a tuple, a strategy of shapes, or None for ``shapes()``. ``dtype``: float64 (what gradient checks
    run in) or float32 (what training runs in; the values are float32 numbers, not rounded float64 ones).
    """
    _, hnp = _hypothesis()
    return hnp.arrays(_float_dtype(dtype), _shape_strategy(shape), elements=_floats(-bound, bound, dtype))


def logits(shape=None, dtype=np.float64, extremes=(40.0, 100.0), bound: float = 5.0):
    """Strategy of logit arrays that always hold at least one extreme value.

    Each element is either moderate (in ``[-bound, bound]``) or one of ``+-extremes``, and one random element is
    always extreme, so all-moderate arrays never come out; mixed signs, all-extreme arrays and batches of one
    extreme logit all do. The defaults are where naive code breaks: from z = 40 the sigmoid rounds to exactly 1 in
    float32 and float64 alike, so ``log(1 - sigmoid(z))`` is -inf; at z = -100, ``exp(-z)`` overflows float32, so
    the naive ``1 / (1 + exp(-z))`` is 0 and ``log(sigmoid(z))`` is -inf.
    """
    st, hnp = _hypothesis()
    dtype = _float_dtype(dtype)
    values = sorted({float(dtype.type(s * m)) for m in extremes for s in (-1, 1)})
    extreme = st.sampled_from(values)
    elements = st.one_of(_floats(-bound, bound, dtype), extreme)
    shape_strategy = _shape_strategy(shape)

    @st.composite
    def draw_logits(draw):
        z = draw(hnp.arrays(dtype, draw(shape_strategy), elements=elements))
        if z.size == 0:
            raise ValueError("logits: the shape must have at least one element")
        z.flat[draw(st.integers(0, z.size - 1))] = draw(extreme)
        return z

    return draw_logits()


def probabilities(shape=None, dtype=np.float64, margin: float = 1e-3):
    """Strategy of probability arrays in ``[margin, 1 - margin]``: away from 0 and 1, where ``log p`` and
    ``1 / (p (1 - p))`` (the naive BCE and its gradient) blow up."""
    if not 0 < margin < 0.5:
        raise ValueError(f"probabilities: margin must be in (0, 0.5), got {margin}")
    _, hnp = _hypothesis()
    return hnp.arrays(_float_dtype(dtype), _shape_strategy(shape), elements=_floats(margin, 1 - margin, dtype))


def binary_targets(shape=None, dtype=np.float64):
    """Strategy of 0/1 target arrays (real = 1, fake = 0), in a float dtype like the predictions they go with."""
    st, hnp = _hypothesis()
    dtype = _float_dtype(dtype)
    return hnp.arrays(dtype, _shape_strategy(shape), elements=st.sampled_from([dtype.type(0), dtype.type(1)]))


def class_labels(n: int, num_classes: int):
    """Strategy of integer class labels: int64 arrays of shape ``(n,)`` with values in ``[0, num_classes)``."""
    st, hnp = _hypothesis()
    if n < 1 or num_classes < 1:
        raise ValueError(f"class_labels: need n >= 1 and num_classes >= 1, got {n}, {num_classes}")
    return hnp.arrays(np.int64, (n,), elements=st.integers(0, num_classes - 1))


def logits_and_labels(max_batch: int = 8, max_classes: int = 6, dtype=np.float64, bound: float = 5.0):
    """Strategy of ``(logits, labels)`` for softmax cross-entropy: logits ``(N, C)`` in ``[-bound, bound]`` with
    ``1 <= N <= max_batch`` and ``2 <= C <= max_classes``, labels ``(N,)`` int64 in ``[0, C)``."""
    st, _ = _hypothesis()
    shape = shapes(1, max_batch, 2, max_classes)
    return shape.flatmap(lambda s: st.tuples(arrays(s, dtype, bound), class_labels(s[0], s[1])))


# ================================================================================================ no mutation


class MutationError(AssertionError):
    """A function changed one of its arguments in place (a backward pass its ``dout`` or cache, a forward its
    input)."""


def _is_array(a) -> bool:
    return hasattr(a, "shape") and hasattr(a, "dtype") and hasattr(a, "copy")


def _arrays_in(value, path: str):
    """``(path, array)`` for every array in value, looking inside tuples, lists and dicts (a cache is often one)."""
    if _is_array(value):
        yield path, value
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _arrays_in(v, f"{path}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _arrays_in(v, f"{path}[{k!r}]")


def _changes(before, after) -> str | None:
    """None if ``after`` still equals ``before`` element for element (NaN equal to NaN), else what changed."""
    b, a = to_numpy(before), to_numpy(after)
    if a.shape != b.shape or a.dtype != b.dtype:
        return f"its shape/dtype went from {b.shape} {b.dtype} to {a.shape} {a.dtype}"
    same = a == b
    if a.dtype.kind in "fc":
        same |= np.isnan(a) & np.isnan(b)
    if same.all():
        return None
    where = np.argwhere(~same)
    first = tuple(int(i) for i in where[0])
    return (f"{len(where)} of {a.size} elements differ, first at {first}: "
            f"{b[first].item()!r} before the call, {a[first].item()!r} after")


def _argument_names(fn, args, kwargs) -> tuple[list[str], dict[str, str]]:
    """Names for the positional and keyword arguments of a call, from fn's signature where it has one."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = [positional[i] if i < len(positional) else f"argument {i}" for i in range(len(args))]
    return names, {k: k for k in kwargs}


def _call_unmutated(fn, args, kwargs, names, keyword_names, hint: str, label: str | None = None):
    """Call ``fn(*args, **kwargs)``; raise AssertionError (naming fn, or ``label``) if any array argument changed."""
    __tracebackhide__ = True
    watched = [(path, a, a.copy()) for value, name in zip(args, names) for path, a in _arrays_in(value, name)]
    watched += [(path, a, a.copy()) for k, v in kwargs.items() for path, a in _arrays_in(v, keyword_names[k])]
    result = fn(*args, **kwargs)
    problems = [f"  {path}: {change}" for path, a, before in watched if (change := _changes(before, a)) is not None]
    if problems:
        name = label or getattr(fn, "__name__", repr(fn))
        raise MutationError(f"{name} changed its arguments in place:\n" + "\n".join(problems) + f"\n{hint}")
    return result


def assert_no_mutation(fn, *args, **kwargs):
    """Call ``fn(*args, **kwargs)``, assert that no array among its arguments was changed, and return the result.

    Arrays inside tuple, list and dict arguments (a cache) are watched too. The message names each changed
    argument (by fn's parameter names), how many elements changed and the first one, before and after. Values are
    compared, so an in-place write of the same values (``x *= 1``) is not seen.
    """
    __tracebackhide__ = True
    names, keyword_names = _argument_names(fn, args, kwargs)
    return _call_unmutated(fn, args, kwargs, names, keyword_names,
                           "A function must leave its inputs alone: the caller may still need them. Write into a "
                           "new array (y = x * mask) instead of the input (x *= mask).")


_BACKWARD_HINT = ("A backward pass must leave dout and the cache alone: the caller may pass the same dout to another "
                  "branch, and the cache may hold the caller's own input. Write into a new array "
                  "(dx = dout * mask, not dout *= mask).")


def assert_backward_no_mutation(backward, dout, cache):
    """``backward(dout, cache)``, asserting that it changed neither ``dout`` nor any array in ``cache``.

    Returns what backward returned, so it can stand in for the call itself: ``dx = assert_backward_no_mutation(
    F.relu_backward, dout, cache)``.
    """
    __tracebackhide__ = True
    return _call_unmutated(backward, (dout, cache), {}, ["dout", "cache"], {}, _BACKWARD_HINT)


def _watch_first_call(fn, watch):
    """fn, wrapped so that its first call goes through ``watch(fn, args, kwargs)`` (a mutation check); the many
    later calls of a finite-difference check run it unwatched."""
    calls = []

    @functools.wraps(fn)  # keeps __name__ and the signature: the checker names gradients after fn's parameters
    def wrapper(*args, **kwargs):
        __tracebackhide__ = True
        if calls:
            return fn(*args, **kwargs)
        calls.append(1)
        return watch(fn, args, kwargs)

    return wrapper


# ============================================================================================ gradient checks


def assert_backward_matches(forward, backward, inputs, *, wrt=None, names=None, check_mutation: bool = True,
                            eps: float = DEFAULTS["eps"], atol: float = DEFAULTS["atol"],
                            rtol: float = DEFAULTS["rtol"], max_elements: int = 256, seed: int = 0):
    """Assert that ``backward`` is the gradient of ``forward``, by ``minigan.gradcheck.check_function``.

    ``forward(*inputs) -> (out, cache)`` and ``backward(dout, cache) -> grads`` (one per input, or one per checked
    input); ``wrt``, ``names``, ``eps``, ``atol``, ``rtol``, ``max_elements`` and ``seed`` mean what they mean
    there. The check runs in float64 on copies: ``inputs`` are never touched.

    With ``check_mutation`` (the default), the first forward call must leave its inputs unchanged and the
    backward call must leave ``dout`` and the cache unchanged (``assert_backward_no_mutation``).

    Raises an ``AssertionError``: ``GradCheckError`` (its ``.result`` is the whole ``GradCheckResult``) naming the
    failing tensor, its worst element, analytic and numeric values and the tolerance; ``BackwardOutputError`` for a
    gradient of the wrong shape or a wrong number of gradients; ``MutationError`` for an argument changed in
    place. Returns the ``GradCheckResult`` when everything passed.
    """
    __tracebackhide__ = True
    if check_mutation:
        forward = _watch_first_call(forward, lambda fn, args, kwargs: assert_no_mutation(fn, *args, **kwargs))
        backward = _watch_first_call(backward, lambda fn, args, kwargs: assert_backward_no_mutation(fn, *args))
    try:
        result = check_function(forward, backward, inputs, wrt=wrt, names=names, eps=eps, atol=atol, rtol=rtol,
                                max_elements=max_elements, seed=seed, raise_exception=False)
    except (BackwardOutputError, MutationError) as err:
        raise type(err)(str(err)) from None  # raised again here: pytest shows the test's line, not the checker's
    if not result.ok:
        raise GradCheckError(result)
    return result


def _forward_then_backward(module, x, dout):
    module.forward(x)
    return module.backward(dout)


def assert_module_gradients(module, x, *, dout=None, check_mutation: bool = True, eps: float = DEFAULTS["eps"],
                            atol: float = DEFAULTS["atol"], rtol: float = DEFAULTS["rtol"], max_elements: int = 256,
                            seed: int = 0):
    """Assert that ``module.backward`` returns the right ``dx`` and adds the right gradient to every trainable
    parameter, by ``minigan.gradcheck.check_module`` (on a float64 copy: ``module`` and ``x`` are not touched).

    With ``check_mutation``, one forward and backward of another float64 copy must leave ``x`` and ``dout``
    unchanged. Raises an ``AssertionError`` like ``assert_backward_matches``; returns the ``GradCheckResult``.
    """
    __tracebackhide__ = True
    if check_mutation:
        m = copy.deepcopy(module).to(dtype="float64")
        x64 = x.astype("float64", copy=True)
        out = m.forward(x64)  # once unwatched, for the shape and backend of dout
        if dout is None:
            upstream = xp_of(out).asarray(np.random.default_rng(seed).standard_normal(tuple(out.shape)))
        else:
            upstream = xp_of(out).asarray(dout, dtype="float64")
        _call_unmutated(_forward_then_backward, (m, x64, upstream), {}, ["module", "x", "dout"], {},
                        "A module's forward must leave x alone and its backward must leave dout alone: the caller "
                        "may still need them.", label=f"{module!r} (forward, then backward)")
    try:
        result = check_module(module, x, dout=dout, eps=eps, atol=atol, rtol=rtol, max_elements=max_elements,
                              seed=seed, raise_exception=False)
    except BackwardOutputError as err:
        raise type(err)(str(err)) from None
    if not result.ok:
        raise GradCheckError(result)
    return result


# ============================================================================= the plain-NumPy GAN reference


def plain_sigmoid(z):
    """The textbook stable sigmoid: ``1 / (1 + e)`` for z >= 0, ``e / (1 + e)`` below, with ``e = exp(-|z|)``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _softplus(z):
    """``log(1 + exp(z))``, by NumPy's own overflow-free ``logaddexp``."""
    return np.logaddexp(0.0, z)


def plain_adam_update(w, g, m, v, t: int, lr: float, betas=(0.9, 0.999), eps: float = 1e-8,
                      weight_decay: float = 0.0):
    """One Adam step as the paper writes it (Kingma & Ba 2015, Algorithm 1; PyTorch's L2 weight decay), step t >= 1.

    Returns the new ``(w, m, v)``; nothing is updated in place.
    """
    g = g + weight_decay * w
    m = betas[0] * m + (1 - betas[0]) * g
    v = betas[1] * v + (1 - betas[1]) * g * g
    m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


class PlainMLP:
    """A copy of a minigan ``Sequential`` of ``Dense``, ``ReLU``, ``LeakyReLU``, ``Sigmoid`` and ``Tanh`` as plain
    float64 NumPy arrays, with its forward and backward written out the obvious way (no minigan code runs).

    ``params`` lists the arrays in the order of ``model.params()``; ``names`` their qualified names (``"2.W"``).
    """

    def __init__(self, model):
        self.layers = []  # ("dense", index of W, index of b or None) | ("leaky", slope) | (activation name,)
        self.params, self.names = [], []
        for index, layer in enumerate(model if isinstance(model, nn.Sequential) else [model]):
            if isinstance(layer, nn.Dense):
                self.layers.append(("dense", len(self.params), None if layer.b is None else len(self.params) + 1))
                for p in (layer.W, layer.b):
                    if p is not None:
                        self.params.append(to_numpy(p.data).astype(np.float64))
                        self.names.append(f"{layer.name or index}.{p.name}")
            elif isinstance(layer, nn.LeakyReLU):
                self.layers.append(("leaky", layer.slope))
            elif isinstance(layer, (nn.ReLU, nn.Sigmoid, nn.Tanh)):
                self.layers.append((type(layer).__name__.lower(),))
            else:
                raise ValueError(f"PlainMLP covers Dense, ReLU, LeakyReLU, Sigmoid and Tanh, not {layer!r}")

    def forward(self, x):
        """Every layer's input and the final output: ``acts[0] = x``, ``acts[-1] = model(x)``."""
        acts = [np.asarray(x, dtype=np.float64)]
        for layer in self.layers:
            x = acts[-1]
            if layer[0] == "dense":
                y = x @ self.params[layer[1]] + (0.0 if layer[2] is None else self.params[layer[2]])
            elif layer[0] == "leaky":
                y = np.where(x > 0, x, layer[1] * x)
            elif layer[0] == "relu":
                y = np.where(x > 0, x, 0.0)
            elif layer[0] == "sigmoid":
                y = plain_sigmoid(x)
            else:
                y = np.tanh(x)
            acts.append(y)
        return acts

    def backward(self, acts, dy):
        """``(dx, grads)``: the input gradient and one gradient per entry of ``params``, for ``dy = dL/doutput``."""
        grads = [np.zeros_like(p) for p in self.params]
        for layer, x, y in reversed(list(zip(self.layers, acts[:-1], acts[1:]))):
            if layer[0] == "dense":
                grads[layer[1]] = x.T @ dy  # (in, out): summed over the batch by the product
                if layer[2] is not None:
                    grads[layer[2]] = dy.sum(axis=0)  # (out,)
                dy = dy @ self.params[layer[1]].T  # (N, in)
            elif layer[0] == "leaky":
                dy = np.where(x > 0, dy, layer[1] * dy)
            elif layer[0] == "relu":
                dy = np.where(x > 0, dy, 0.0)
            elif layer[0] == "sigmoid":
                dy = dy * y * (1 - y)
            else:
                dy = dy * (1 - y * y)
        return dy, grads


class PlainGAN:
    """The textbook GAN step (Goodfellow et al. 2014) in plain NumPy and float64, as a reference for
    ``GAN.train_step``. With D's logits ``a = D(x)`` on real data and ``b = D(G(z))`` on fakes, s the sigmoid:

    * D step (``discriminator_gradients``): ``L_D = -mean log s(a) - mean log(1 - s(b))``, so
      ``dL_D/da = (s(a) - 1) / N`` and ``dL_D/db = s(b) / N``; real and fake go through D separately (minigan
      stacks them into one batch) and their gradients add.
    * G step (``generator_gradients``), fresh z: ``L_G = -mean log s(b)`` (non-saturating,
      ``dL_G/db = (s(b) - 1) / N``) or ``mean log(1 - s(b))`` (minimax, ``dL_G/db = -s(b) / N``), back through D
      (whose weights this step does not change) into G.
    * each followed by ``adam_update``: ``plain_adam_update`` on that network's weights.

    ``step(real, z_d, z_g)`` does all four. ``adam_g`` and ``adam_d`` hold ``lr``, ``betas``, ``eps`` and
    ``weight_decay``.
    """

    def __init__(self, G, D, adam_g: dict, adam_d: dict, loss: str = "nonsaturating"):
        if loss not in ("nonsaturating", "minimax"):
            raise ValueError(f"PlainGAN: loss must be 'nonsaturating' or 'minimax', got {loss!r}")
        self.nets = {"G": PlainMLP(G), "D": PlainMLP(D)}
        self.loss = loss
        self.adam = {"G": dict(adam_g), "D": dict(adam_d)}
        self.moments = {name: [[np.zeros_like(p), np.zeros_like(p), 0] for p in net.params]
                        for name, net in self.nets.items()}  # Adam's (m, v, t) per weight

    @classmethod
    def from_gan(cls, gan) -> "PlainGAN":
        """A PlainGAN with the GAN's current weights, Adam settings and Adam state (so it can start mid-run).

        Covers what the textbook step covers: Adam optimizers, ``d_steps=1``, ``pack=1``, no label smoothing, no
        instance noise, every parameter trainable; anything else is a ValueError that says which setting.
        """
        from .optim import Adam

        unsupported = {"d_steps": gan.d_steps != 1, "pack": gan.pack != 1,
                       "label_smoothing": gan.label_smoothing != 0, "instance_noise": gan.instance_noise != 0,
                       "frozen parameters": not all(p.requires_grad for p in gan.G.params() + gan.D.params())}
        if any(unsupported.values()):
            raise ValueError(f"PlainGAN covers the textbook step only; this GAN has "
                             f"{', '.join(k for k, v in unsupported.items() if v)}")
        for opt in (gan.g_optimizer, gan.d_optimizer):
            if not isinstance(opt, Adam):
                raise ValueError(f"PlainGAN covers Adam only, not {type(opt).__name__}")
        plain = cls(gan.G, gan.D, *({k: getattr(opt, k) for k in ("lr", "betas", "eps", "weight_decay")}
                                     for opt in (gan.g_optimizer, gan.d_optimizer)), loss=gan.loss)
        for name, model, opt in (("G", gan.G, gan.g_optimizer), ("D", gan.D, gan.d_optimizer)):
            for slot, p in zip(plain.moments[name], model.params()):
                state = opt.state.get(p)
                if state and "exp_avg" in state:
                    slot[:] = [to_numpy(state["exp_avg"]).astype(np.float64),
                               to_numpy(state["exp_avg_sq"]).astype(np.float64), int(state["step"])]
        return plain

    def discriminator_gradients(self, real, z):
        """``(grads, stats)``: dL_D for each of D's weights on ``real`` and ``G(z)``; ``d_loss``, ``d_real`` (mean
        D(x)) and ``d_fake`` (mean D(G(z)))."""
        G, D = self.nets["G"], self.nets["D"]
        real = np.asarray(real, dtype=np.float64)
        n = len(real)
        fake = G.forward(z)[-1]  # plain data for D: no gradient flows into G here
        acts_real, acts_fake = D.forward(real), D.forward(fake)
        a, b = acts_real[-1], acts_fake[-1]  # (N, 1) logits
        d_loss = _softplus(-a).mean() + _softplus(b).mean()  # -log s(a) = softplus(-a); -log(1 - s(b)) = softplus(b)
        _, grads_real = D.backward(acts_real, (plain_sigmoid(a) - 1) / n)
        _, grads_fake = D.backward(acts_fake, plain_sigmoid(b) / n)
        stats = {"d_loss": d_loss, "d_real": plain_sigmoid(a).mean(), "d_fake": plain_sigmoid(b).mean()}
        return [gr + gf for gr, gf in zip(grads_real, grads_fake)], {k: float(v) for k, v in stats.items()}

    def generator_gradients(self, z):
        """``(grads, g_loss)``: dL_G for each of G's weights, through D, for noise ``z``."""
        G, D = self.nets["G"], self.nets["D"]
        acts_g = G.forward(z)
        acts_d = D.forward(acts_g[-1])
        b, s = acts_d[-1], plain_sigmoid(acts_d[-1])
        n = len(b)
        if self.loss == "nonsaturating":
            g_loss, dlogits = _softplus(-b).mean(), (s - 1) / n
        else:
            g_loss, dlogits = -_softplus(b).mean(), -s / n
        dfake, _ = D.backward(acts_d, dlogits)  # D's own gradients are dropped: D is frozen here
        _, grads = G.backward(acts_g, dfake)
        return grads, float(g_loss)

    def adam_update(self, name: str, grads) -> None:
        """One Adam step on network ``name`` ("G" or "D") with the given gradients (one per weight)."""
        net = self.nets[name]
        for i, g in enumerate(grads):
            m, v, t = self.moments[name][i]
            net.params[i], m, v = plain_adam_update(net.params[i], np.asarray(g, np.float64), m, v, t + 1,
                                                    **self.adam[name])
            self.moments[name][i] = [m, v, t + 1]

    def step(self, real, z_d, z_g) -> dict:
        """One D update on ``real`` and ``G(z_d)``, then one G update with ``z_g``. Returns ``d_loss``, ``g_loss``,
        ``d_real`` and ``d_fake`` as floats, like ``GAN.train_step``."""
        d_grads, stats = self.discriminator_gradients(real, z_d)
        self.adam_update("D", d_grads)
        g_grads, stats["g_loss"] = self.generator_gradients(z_g)
        self.adam_update("G", g_grads)
        return stats


#: ``(gradient rtol, weight rtol, weight atol as a fraction of lr)`` per dtype: the rounding of one step
_STEP_TOLERANCES = {np.dtype(np.float32): (1e-4, 1e-5, 1e-4), np.dtype(np.float64): (1e-10, 1e-12, 1e-10)}


def assert_train_step_matches_reference(gan, real_batches) -> list[tuple[dict, dict]]:
    """Run ``gan.train_step`` on each batch (on a deep copy: ``gan`` is left as it was) and check every step
    against ``PlainGAN`` started from the same weights, Adam state and noise. After each step:

    * D's and G's gradients (``Param.grad``, which the step leaves in place) equal the reference's
      ``dL_D`` and ``dL_G`` within ``rtol * max |reference gradient|`` of each tensor;
    * the weights equal the reference's Adam update of the old weights by minigan's own gradients within
      ``rtol_w * |w| + atol_w * lr`` -- so D must not move in the G step, and Adam must be exact;
    * ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` equal the reference's within the gradient tolerance.

    Tolerances are one step's rounding in the GAN's dtype: float32 ``rtol 1e-4``, ``rtol_w 1e-5``,
    ``atol_w 1e-4``; float64 ``1e-10``, ``1e-12``, ``1e-10``. Each step starts the reference from the GAN's own
    state, so rounding never piles up over steps, while a wrong loss, sign, target or optimizer step is off by far
    more (a weight moves by about lr per Adam step). Raises AssertionError naming each tensor that differs, its
    worst element and both values; returns ``[(minigan stats, reference stats), ...]``, one pair per step.
    """
    __tracebackhide__ = True
    gan = copy.deepcopy(gan)
    rtol, rtol_w, atol_w = _STEP_TOLERANCES[np.dtype(gan.dtype)]
    history = []
    for k, real in enumerate(real_batches, start=1):
        plain = PlainGAN.from_gan(gan)  # the weights and Adam state before this step
        replay = copy.copy(gan)
        replay.rng = copy.deepcopy(gan.rng)  # will draw the step's noise: one batch for D, then one for G
        stats = gan.train_step(real)
        n = real.shape[0]
        z_d, z_g = (to_numpy(replay.sample_noise(n)) for _ in range(2))

        problems = []

        def compare(name, model, grads):
            lr = plain.adam[name]["lr"]
            for qualified, p, g in zip(plain.nets[name].names, model.params(), grads):
                atol = rtol * float(np.abs(g).max(initial=0.0)) + 1e-300
                problems.extend(_differences(f"d{qualified} of {name}", to_numpy(p.grad), g, rtol, atol))
            plain.adam_update(name, [to_numpy(p.grad) for p in model.params()])
            for qualified, p, w in zip(plain.nets[name].names, model.params(), plain.nets[name].params):
                problems.extend(_differences(f"{name} {qualified} after Adam", to_numpy(p.data), w, rtol_w,
                                             atol_w * lr))

        d_grads, expected = plain.discriminator_gradients(to_numpy(real), z_d)
        compare("D", gan.D, d_grads)  # also moves the reference's D, which the G step then uses
        g_grads, expected["g_loss"] = plain.generator_gradients(z_g)
        compare("G", gan.G, g_grads)
        for key, value in expected.items():
            problems.extend(_differences(key, np.array(stats[key]), np.array(value), rtol, rtol * abs(value)))
        history.append((stats, expected))
        if problems:
            raise AssertionError(f"GAN.train_step differs from the plain-NumPy reference (PlainGAN) at step {k}:\n"
                                 + "\n".join(problems))
    return history


def _differences(name: str, actual, expected, rtol: float, atol: float) -> list[str]:
    """One line saying where ``actual`` misses ``expected`` by more than ``atol + rtol |expected|`` (or none)."""
    actual = np.asarray(actual, dtype=np.float64)
    err = np.abs(actual - expected)
    tol = atol + rtol * np.abs(expected)
    bad = ~(err <= tol)  # NaN counts as a miss
    if not bad.any():
        return []
    worst = np.unravel_index(int(np.argmax(np.where(bad, err / tol, -np.inf))), actual.shape)
    return [f"  {name}: {int(bad.sum())} of {actual.size} elements differ; worst {tuple(int(i) for i in worst)}: "
            f"minigan {actual[worst]:.8g}, reference {expected[worst]:.8g}, |diff| {err[worst]:.3g} > "
            f"tolerance {tol[worst]:.3g}"]

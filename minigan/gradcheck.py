"""Gradient checking: compare a hand-written backward pass with central finite differences.

For a scalar function f of an array x, the central difference ``(f(x + eps e_i) - f(x - eps e_i)) / (2 eps)``
approximates ``df/dx_i`` with an error of order ``eps^2``. Every check here runs in float64 (float32 has only ~7
digits: its finite differences are noise at eps = 1e-6).

An op whose output is not a scalar is turned into one with a random "upstream gradient" ``dout``:
``f(x) = sum(out(x) * dout)``, whose gradient is exactly what ``backward(dout)`` must return.

Three entry points for ops and modules, each returning a ``GradCheckResult`` (and raising ``GradCheckError`` on
failure unless ``raise_exception=False``):

* ``check_function(forward, backward, inputs)`` for a functional pair, e.g. ``F.dense_forward``/``F.dense_backward``;
* ``check_module(module, x)`` for a module: the input gradient ``dx`` and every trainable parameter;
* ``check_loss(loss, pred, target)`` for a loss module;

and ``check_gan_step(gan, real)`` for a whole GAN step, which also compares ``L_D`` and ``L_G`` with the textbook
formulas (a wrong loss has a right backward: only a comparison with the objective catches it).

An element passes when ``|analytic - numeric| <= atol + rtol * |numeric|`` (torch.autograd.gradcheck's test, with
its defaults atol 1e-5, rtol 1e-3); the result also reports CS231n's relative error
``|a - n| / max(|a|, |n|)``, its denominator floored at atol so that a gradient that is truly 0 (a bias before
batch norm) reads ~0 instead of a puzzling 1.0 (``relative_error``). Tensors larger than ``max_elements`` are checked on a seeded random subset of elements
plus one random direction ``d`` (Chainer's idea): ``(f(x + eps d) - f(x - eps d)) / (2 eps)`` against ``<grad, d>``,
which sees an error anywhere in the tensor for the price of two evaluations.

Kinks. ReLU is not differentiable at 0, and a perturbation that crosses 0 makes the central difference the
average of two slopes. Each element's one-sided differences ``(f(x) - f(x - eps)) / eps`` and
``(f(x + eps) - f(x)) / eps`` come for free from the same evaluations; where they disagree by more than the
tolerance, the element is looked at again with steps of eps/10 and eps/100. A smooth but strongly curved function
(batch normalisation of a small batch) has a gap of ``step * |f''|``, which shrinks with the step, and a kink
farther away than the smaller step is not crossed by it: either way the element is compared, using the smaller
step. A kink within eps/100 keeps its gap: the element is reported as non-differentiable (``kinks``) and not
compared, instead of failing at random.
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field

import numpy as np

from . import validate as V
from .backend import to_numpy, xp_of

DEFAULTS = dict(eps=1e-6, atol=1e-5, rtol=1e-3)


class GradCheckError(AssertionError):
    """A gradient check failed; ``.result`` holds the full ``GradCheckResult``."""

    def __init__(self, result: "GradCheckResult"):
        super().__init__(result.failure_message())
        self.result = result


class BackwardOutputError(ValueError, AssertionError):
    """A backward pass returned the wrong number of gradients, or one of the wrong shape (``db`` not summed over
    the batch, ``dW`` transposed). A ValueError, and also an AssertionError: under pytest it is a failed test,
    not a crash of the test suite."""


@dataclass
class TensorCheck:
    """The comparison of one gradient tensor (e.g. ``dW`` of one layer) with its finite-difference estimate."""

    name: str  # e.g. "dx" or "dW [layer 0 Dense(3->4)]"
    shape: tuple
    checked: int  # elements compared one by one
    kinks: int  # elements skipped as non-differentiable
    max_abs_error: float
    max_rel_error: float  # CS231n's |a - n| / max(|a|, |n|, atol): see relative_error
    worst_index: tuple  # the element that exceeds its tolerance most (or is closest to it)
    analytic: float
    numeric: float
    tolerance: float  # atol + rtol * |numeric| at the worst element
    direction_error: float | None = None  # |<grad, d> - numeric| along a random direction, for large tensors
    direction_tolerance: float | None = None
    note: str = ""
    passed: bool = True

    @property
    def total(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass
class ObjectiveCheck:
    """A loss value the step computed, beside the textbook formula evaluated independently from D's logits."""

    name: str  # "L_D" or "L_G"
    step_value: float
    textbook_value: float
    formula: str  # the textbook formula, e.g. "-E[log D(x)] - E[log(1 - D(G(z)))]"
    terms: dict = field(default_factory=dict)  # the textbook terms, e.g. {"real term": 0.7, "fake term": 0.6}
    diagnosis: str = ""  # what is wrong, when the step's value matches a known wrong objective
    passed: bool = True

    def message(self) -> str:
        terms = ", ".join(f"{k} {v:.6g}" for k, v in self.terms.items())
        what = self.diagnosis or f"{self.name} is not the textbook objective"
        return (f"  objective {self.name}: {what}. The step computes {self.name} = {self.step_value:.6g}; the textbook "
                f"{self.name} = {self.formula} = {self.textbook_value:.6g} ({terms})")


@dataclass
class GradCheckResult:
    """Every tensor checked, with its worst error; ``ok`` is True when all passed.

    ``objectives`` holds the loss-value comparisons of ``check_gan_step`` (empty for the other checks)."""

    target: str
    tensors: list[TensorCheck] = field(default_factory=list)
    eps: float = DEFAULTS["eps"]
    atol: float = DEFAULTS["atol"]
    rtol: float = DEFAULTS["rtol"]
    objectives: list[ObjectiveCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.passed for t in self.tensors) and all(o.passed for o in self.objectives)

    def __bool__(self) -> bool:
        return self.ok

    def __getitem__(self, name: str) -> TensorCheck:
        for t in self.tensors:
            if t.name == name or t.name.split(" ")[0] == name:
                return t
        raise KeyError(f"no tensor named {name!r}; checked: {[t.name for t in self.tensors]}")

    def __str__(self) -> str:
        head = (f"gradient check of {self.target}: {'passed' if self.ok else 'FAILED'} "
                f"(eps {self.eps:g}, atol {self.atol:g}, rtol {self.rtol:g})")
        rows = [("tensor", "shape", "checked", "max |a-n|", "max rel err", "kinks", "")]
        for t in self.tensors:
            checked = f"{t.checked}/{t.total}" + ("+dir" if t.direction_error is not None else "")
            rows.append((t.name, str(t.shape), checked, f"{t.max_abs_error:.1e}", f"{t.max_rel_error:.1e}",
                         str(t.kinks), "ok" if t.passed else "FAIL"))
        widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(f"{c:<{w}}" for c, w in zip(r, widths)).rstrip() for r in rows]
        objectives = [f"{o.name} = {o.formula}: step {o.step_value:.6g}, textbook {o.textbook_value:.6g}  "
                      + ("ok" if o.passed else f"FAIL ({o.diagnosis or 'not the textbook value'})")
                      for o in self.objectives]
        return "\n".join([head] + objectives + lines)

    def failure_message(self) -> str:
        lines = [f"gradient check failed for {self.target}:"]
        lines += [o.message() for o in self.objectives if not o.passed]
        for t in self.tensors:
            if t.passed:
                continue
            lines.append(
                f"  tensor {t.name}: worst element {t.worst_index}: analytic {t.analytic:.6g}, numeric "
                f"{t.numeric:.6g}, |a - n| = {abs(t.analytic - t.numeric):.3g} > tolerance {t.tolerance:.3g} "
                f"(atol {self.atol:g} + rtol {self.rtol:g} * |numeric|); relative error {t.max_rel_error:.3g}"
            )
            if t.direction_error is not None and t.direction_error > (t.direction_tolerance or 0):
                lines.append(f"    along a random direction: |<grad, d> - numeric| = {t.direction_error:.3g} "
                             f"> {t.direction_tolerance:.3g}")
            if t.note:
                lines.append(f"    note: {t.note}")
        return "\n".join(lines)

    def raise_if_failed(self) -> "GradCheckResult":
        if not self.ok:
            raise GradCheckError(self)
        return self


# ------------------------------------------------------------------------------------------------ the engine


def _compare_tensor(f, array, analytic, name, *, eps, atol, rtol, max_elements, rng) -> TensorCheck:
    """Perturb ``array`` in place element by element (restoring it), evaluating the scalar ``f()`` each time."""
    xp = xp_of(array)
    note = ""
    if analytic is None:
        note = "the backward pass produced no gradient (None) for this tensor; compared as zeros"
        analytic = xp.zeros_like(array)
    if tuple(analytic.shape) != tuple(array.shape):
        raise BackwardOutputError(f"{name}: analytic gradient has shape {tuple(analytic.shape)}, but the tensor "
                                  f"has shape {tuple(array.shape)}; a gradient has its tensor's shape (summed "
                                  "over the batch? transposed?)")
    # Elements are perturbed through their multi-index, array[idx], which writes into the array f() reads whatever
    # its memory layout: array.reshape(-1) of a transposed or Fortran-ordered array would be a copy, and perturbing
    # a copy leaves f unchanged (numeric gradient 0: a false failure).
    shape = tuple(array.shape)
    a_flat = to_numpy(analytic).astype(np.float64).reshape(-1)  # C order, like np.unravel_index below
    n = int(np.prod(shape)) if shape else 1
    subset = n > max_elements
    indices = np.sort(rng.choice(n, size=max_elements, replace=False)) if subset else np.arange(n)

    f0 = f()
    numeric, kink = np.empty(len(indices)), np.zeros(len(indices), dtype=bool)
    for k, i in enumerate(indices):
        idx = tuple(int(v) for v in np.unravel_index(int(i), shape))
        old = array[idx].copy()
        array[idx] = old + eps
        f_plus = f()
        array[idx] = old - eps
        f_minus = f()
        array[idx] = old
        numeric[k] = (f_plus - f_minus) / (2 * eps)
        one_sided_gap = abs((f_plus - f0) - (f0 - f_minus)) / eps  # |right slope - left slope|
        if one_sided_gap > atol + rtol * abs(numeric[k]):
            kink[k], numeric[k] = _look_closer(f, array, idx, f0, eps, one_sided_gap, atol, rtol)

    a = a_flat[indices]
    err = np.abs(a - numeric)
    tol = atol + rtol * np.abs(numeric)
    rel = relative_error(a, numeric, atol)
    usable = ~kink
    passed = bool(np.all(err[usable] <= tol[usable]))
    excess = np.where(usable, err / tol, -np.inf)
    worst = int(np.argmax(excess)) if usable.any() else 0
    if not usable.any():
        note = (note + "; " if note else "") + "every checked element sits at a kink (non-differentiable point)"

    result = TensorCheck(
        name=name, shape=tuple(array.shape), checked=int(usable.sum()), kinks=int(kink.sum()),
        max_abs_error=float(err[usable].max()) if usable.any() else 0.0,
        max_rel_error=float(rel[usable].max()) if usable.any() else 0.0,
        worst_index=tuple(int(v) for v in np.unravel_index(int(indices[worst]), tuple(array.shape))),
        analytic=float(a[worst]), numeric=float(numeric[worst]), tolerance=float(tol[worst]), note=note,
        passed=passed,
    )
    if subset:
        _check_direction(f, array, a_flat, result, eps=eps, atol=atol, rtol=rtol, rng=rng)
    return result


def relative_error(analytic, numeric, atol=DEFAULTS["atol"]):
    """CS231n's relative error ``|a - n| / max(|a|, |n|)``, with the denominator floored at ``atol``.

    Without the floor, a gradient that is truly 0 (a bias before batch norm, whose shift the normalisation
    removes) reads as "relative error 1.0": both values are rounding noise of ~1e-10 and differ by about their own
    size. Below ``atol`` a gradient counts as zero, so such an element shows a relative error near 0, as it should.
    """
    a, n = np.abs(analytic), np.abs(numeric)
    return np.abs(analytic - numeric) / np.maximum(np.maximum(a, n), atol)


def _check_direction(f, array, a_flat, result, *, eps, atol, rtol, rng) -> None:
    """Chainer-style check of the whole tensor along one random unit direction ``d``."""
    xp = xp_of(array)
    d_host = rng.standard_normal(a_flat.size)
    d_host /= np.linalg.norm(d_host)
    d = xp.asarray(d_host.reshape(array.shape), dtype=array.dtype)
    original = array.copy()
    f0 = f()
    array += eps * d
    f_plus = f()
    array[...] = original - eps * d
    f_minus = f()
    array[...] = original
    numeric = (f_plus - f_minus) / (2 * eps)
    gap = abs((f_plus - f0) - (f0 - f_minus)) / eps
    tol = atol + rtol * abs(numeric)
    if gap > tol:
        result.note = (result.note + "; " if result.note else "") + "random-direction check skipped (crosses a kink)"
        return
    result.direction_error = float(abs(float(a_flat @ d_host) - numeric))
    result.direction_tolerance = float(tol)
    result.passed = result.passed and result.direction_error <= tol


def _as_float64(a):
    """A C-ordered float64 copy of a floating array (integers, e.g. labels, pass through untouched)."""
    if hasattr(a, "dtype") and a.dtype.kind == "f":
        return a.astype("float64", order="C", copy=True)
    return a


def _random_like(xp, out, rng):
    """A random upstream gradient ``dout`` shaped like ``out`` (float64, on out's backend)."""
    return xp.asarray(rng.standard_normal(tuple(out.shape)))


def _look_closer(f, array, idx, f0, eps, gap, atol, rtol):
    """``(is_kink, numeric)`` for an element whose one-sided slopes differ by ``gap`` at step ``eps``.

    Either a kink (the slopes jump: the gap stays as the step shrinks) or strong curvature (the gap is
    ``step * |f''|``, a tenth for a step ten times smaller). Steps eps/10 and eps/100 decide: at the first step
    where the slopes agree within tolerance the function is smooth there (a kink, if any, is farther away than the
    step), and that step's central difference is the numeric derivative. If they never agree, the element is smooth
    only when the gap shrank tenfold at each step.
    """
    old = array[idx].copy()
    gaps, step = [gap], eps
    for _ in range(2):
        step /= 10
        array[idx] = old + step
        f_plus = f()
        array[idx] = old - step
        f_minus = f()
        array[idx] = old
        numeric = (f_plus - f_minus) / (2 * step)
        gaps.append(abs((f_plus - f0) - (f0 - f_minus)) / step)
        if gaps[-1] <= atol + rtol * abs(numeric):
            return False, numeric
    curvature = all(0.05 <= b / a <= 0.2 for a, b in zip(gaps, gaps[1:]))
    return not curvature, numeric


def _check_call(where, eps, atol, rtol, max_elements, **inputs) -> None:
    """Tolerances are positive numbers, and every array to differentiate holds only finite values."""
    V.real(where, "eps", eps, low=0, low_open=True)
    V.real(where, "atol", atol, low=0)
    V.real(where, "rtol", rtol, low=0)
    V.integer(where, "max_elements", max_elements)
    for name, a in inputs.items():
        if not hasattr(a, "dtype"):
            raise TypeError(f"{where}: {name} must be a NumPy or CuPy array, got {type(a).__name__}")
        V.finite(where, name, a)


def _real_as_float64(a):
    """A float64 copy of any real array (integers too: a check perturbs the input, so it must be a float)."""
    return a.astype("float64", order="C") if a.dtype.kind in "iub" else _as_float64(a)


def _finish(result: GradCheckResult, raise_exception: bool) -> GradCheckResult:
    return result.raise_if_failed() if raise_exception else result


# ------------------------------------------------------------------------------------------------ public API


def check_function(forward, backward, inputs, *, wrt=None, names=None, eps=DEFAULTS["eps"], atol=DEFAULTS["atol"],
                   rtol=DEFAULTS["rtol"], max_elements=256, seed=0, raise_exception=True) -> GradCheckResult:
    """Check a functional pair ``forward(*inputs) -> (out, cache)``, ``backward(dout, cache) -> grads``.

    ``wrt`` lists the indices of the inputs to check (default: every floating-point input). ``backward`` may
    return one gradient per input or one per checked input. ``names`` defaults to ``d`` + the forward's parameter
    names (``dx``, ``dW``, ``db`` for ``dense_forward(x, W, b)``).
    """
    _check_call("check_function", eps, atol, rtol, max_elements,
                **{f"inputs[{i}]": a for i, a in enumerate(inputs) if hasattr(a, "dtype") and a.dtype.kind == "f"})
    rng = np.random.default_rng(seed)
    inputs = [_as_float64(a) for a in inputs]
    if wrt is None:
        wrt = [i for i, a in enumerate(inputs) if getattr(getattr(a, "dtype", None), "kind", "") == "f"]
    if names is None:
        try:
            params = list(inspect.signature(forward).parameters)
        except (TypeError, ValueError):
            params = []
        names = [f"d{params[i]}" if i < len(params) else f"d(input {i})" for i in range(len(inputs))]
    xp = xp_of(*[a for a in inputs if hasattr(a, "dtype")])
    out, cache = forward(*inputs)
    dout = _random_like(xp, out, rng)
    # backward gets a copy: one that edits dout in place (dx = dout; dx[mask] = 0) must not also rewrite the dout
    # of the finite differences below, or analytic and numeric would agree about the wrong loss
    grads = backward(dout.copy(), cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) == len(inputs):
        grads = [grads[i] for i in wrt]
    elif len(grads) != len(wrt):
        raise BackwardOutputError(f"backward returned {len(grads)} gradients for {len(inputs)} inputs "
                                  f"({len(wrt)} checked)")

    def f():
        return float((forward(*inputs)[0] * dout).sum())

    target = f"{getattr(forward, '__name__', 'forward')}/{getattr(backward, '__name__', 'backward')}"
    result = GradCheckResult(target, eps=eps, atol=atol, rtol=rtol)
    for i, g in zip(wrt, grads):
        result.tensors.append(_compare_tensor(f, inputs[i], g, names[i], eps=eps, atol=atol, rtol=rtol,
                                              max_elements=max_elements, rng=rng))
    return _finish(result, raise_exception)


def check_module(module, x, *, dout=None, eps=DEFAULTS["eps"], atol=DEFAULTS["atol"], rtol=DEFAULTS["rtol"],
                 max_elements=256, seed=0, raise_exception=True) -> GradCheckResult:
    """Check ``module.backward``: the input gradient ``dx`` and the gradient of every trainable parameter.

    The module itself is not touched: a float64 deep copy is checked, on the module's own backend (NumPy or CuPy).
    """
    _check_call("check_module", eps, atol, rtol, max_elements, x=x)
    rng = np.random.default_rng(seed)
    m = copy.deepcopy(module).to(dtype="float64")
    x = _real_as_float64(x)
    out = m.forward(x)
    xp = xp_of(out)
    dout = _random_like(xp, out, rng) if dout is None else xp.asarray(dout, dtype="float64")
    m.zero_grad()
    dx = m.backward(dout.copy())  # a copy, as in check_function: the finite differences need the true dout
    analytic = {id(p): p.grad for p in m.params()}

    def f():
        return float((m.forward(x) * dout).sum())

    result = GradCheckResult(repr(module), eps=eps, atol=atol, rtol=rtol)
    result.tensors.append(_compare_tensor(f, x, dx, "dx", eps=eps, atol=atol, rtol=rtol,
                                          max_elements=max_elements, rng=rng))
    for qualified, p in m.named_params():
        if not p.requires_grad:
            continue
        owner, _ = m._owner_of(qualified)
        where = f" [{owner.label}]" if owner is not m else ""
        result.tensors.append(_compare_tensor(f, p.data, analytic[id(p)], f"d{p.name}{where}", eps=eps, atol=atol,
                                              rtol=rtol, max_elements=max_elements, rng=rng))
    return _finish(result, raise_exception)


def check_loss(loss, pred, target, *, eps=DEFAULTS["eps"], atol=DEFAULTS["atol"], rtol=DEFAULTS["rtol"],
               max_elements=256, seed=0, raise_exception=True) -> GradCheckResult:
    """Check a loss module: ``loss.backward()`` against finite differences of ``loss.forward(pred, target)``."""
    _check_call("check_loss", eps, atol, rtol, max_elements, pred=pred)
    rng = np.random.default_rng(seed)
    pred, target = _real_as_float64(pred), _as_float64(target)
    loss.forward(pred, target)
    dpred = loss.backward()

    def f():
        return float(loss.forward(pred, target))

    result = GradCheckResult(repr(loss), eps=eps, atol=atol, rtol=rtol)
    result.tensors.append(_compare_tensor(f, pred, dpred, "dpred", eps=eps, atol=atol, rtol=rtol,
                                          max_elements=max_elements, rng=rng))
    return _finish(result, raise_exception)


def _mean(a) -> float:
    return float(to_numpy(a.mean()))


def _textbook_d_loss(g, real, z, noise):
    """``L_D`` by the textbook, from D's logits: ``{"total", "real term", "fake term"}`` and the values a few
    known-wrong objectives would have (keys ``"wrong: ..."``), computed without the step's loss functions.

    With ``-log D = softplus(-logit)`` and ``-log(1 - D) = softplus(logit)`` (finite for any logit) and one-sided
    label smoothing s (real target ``t = 1 - s``):
    real term ``-t E[log D(x)] - s E[log(1 - D(x))]``, fake term ``-E[log(1 - D(G(z)))]``, ``L_D`` their sum.
    """
    from .functional import softplus
    from .gan import pack

    xp = xp_of(real)
    fake = g.G.forward(z)  # (N, d)
    x = xp.concatenate([pack(real, g.pack), pack(fake, g.pack)])  # (2N/m, m*d)
    if noise is not None:
        x = x + pack(noise, g.pack)
    logits = g.D.forward(x)  # (2N/m, 1)
    n = logits.shape[0] // 2
    real_l, fake_l = logits[:n], logits[n:]
    s = g.label_smoothing
    t = 1.0 - s
    neg_log_d_real, neg_log_1md_real = _mean(softplus(-real_l)), _mean(softplus(real_l))
    neg_log_d_fake, neg_log_1md_fake = _mean(softplus(-fake_l)), _mean(softplus(fake_l))
    real_term = t * neg_log_d_real + s * neg_log_1md_real
    fake_term = neg_log_1md_fake
    values = {"total": real_term + fake_term, "real term": real_term, "fake term": fake_term}
    values["wrong: L_D's fake term has the wrong sign (the step computes -E[log D(x)] + E[log(1 - D(G(z)))]: "
           "D is rewarded for calling fakes real)"] = real_term - fake_term
    values["wrong: L_D's real term has the wrong sign (the step computes +E[log D(x)] - E[log(1 - D(G(z)))])"] = (
        -real_term + fake_term)
    values["wrong: real and fake targets swapped (the step computes -E[log(1 - D(x))] - E[log D(G(z))]: D learns "
           "to call real data fake)"] = neg_log_1md_real + t * neg_log_d_fake + s * neg_log_1md_fake
    values["wrong: L_D is half the textbook value (missing factor 2: the mean of the BCE over the stacked real+fake "
           "batch is the average of the two terms, L_D is their sum)"] = 0.5 * (real_term + fake_term)
    values["wrong: L_D has no fake term (only -E[log D(x)])"] = real_term
    values["wrong: L_D has no real term (only -E[log(1 - D(G(z)))])"] = fake_term
    if s:
        values[f"wrong: label smoothing ignored (real targets 1 instead of 1 - {s:g})"] = neg_log_d_real + fake_term
        values[f"wrong: label smoothing applied to the fake targets too (fake targets {s:g} instead of 0)"] = (
            real_term + s * neg_log_d_fake + t * neg_log_1md_fake)
    return values


def _textbook_g_loss(g, z, noise):
    """``L_G`` by the textbook, from D's logits on ``G(z)``, and the values of known-wrong generator objectives.

    non-saturating: ``-E[log D(G(z))]``; minimax: ``E[log(1 - D(G(z)))]``.
    """
    from .functional import softplus
    from .gan import pack

    x = pack(g.G.forward(z), g.pack)  # (N/m, m*d)
    if noise is not None:
        x = x + pack(noise, g.pack)
    logits = g.D.forward(x)  # (N/m, 1)
    neg_log_d, neg_log_1md = _mean(softplus(-logits)), _mean(softplus(logits))
    nonsaturating, minimax = neg_log_d, -neg_log_1md
    values = {"total": nonsaturating if g.loss == "nonsaturating" else minimax,
              "-E[log D(G(z))]": nonsaturating, "E[log(1 - D(G(z)))]": minimax}
    values["wrong: L_G trains G toward target 0 (BCE with the fake label, -E[log(1 - D(G(z)))]): G learns to make "
           "its samples look fake"] = neg_log_1md
    if g.loss == "nonsaturating":
        values["wrong: L_G is the saturating minimax E[log(1 - D(G(z)))] where the non-saturating -E[log D(G(z))] "
               "was asked (its gradient vanishes when D rejects the fakes)"] = minimax
        values["wrong: L_G has the wrong sign (+E[log D(G(z))]: G learns to make its samples look fake)"] = (
            -nonsaturating)
    else:
        values["wrong: L_G is the non-saturating -E[log D(G(z))] where the minimax E[log(1 - D(G(z)))] was "
               "asked"] = nonsaturating
    return values


def _compare_objective(name, formula, step_value, values, terms) -> ObjectiveCheck:
    """Compare a loss value with the textbook one; when they differ, name the known wrong objective it matches."""
    textbook = values["total"]

    def close(a, b):
        return abs(a - b) <= 1e-6 * max(1.0, abs(b))  # both float64 evaluations of the same logits

    check = ObjectiveCheck(name, float(step_value), float(textbook), formula,
                           {k: float(values[k]) for k in terms}, passed=close(step_value, textbook))
    if not check.passed:
        wrong = sorted(((abs(step_value - v), k) for k, v in values.items() if k.startswith("wrong: ")
                        and close(step_value, v)))
        check.diagnosis = wrong[0][1][len("wrong: "):] if wrong else ""
    return check


def check_gan_step(gan, real, *, eps=DEFAULTS["eps"], atol=DEFAULTS["atol"], rtol=DEFAULTS["rtol"],
                   max_elements=64, seed=0, raise_exception=True) -> GradCheckResult:
    """Check both halves of a GAN training step against the textbook objective, in float64 on a copy of the GAN.

    Two questions, with the noise ``z`` (and instance noise, if the GAN uses it) held fixed:

    1. **Is the step's loss the right one?** ``L_D`` and ``L_G`` as the step computes them are compared with the
       textbook formulas evaluated independently from D's logits (stable ``log D = -softplus(-logit)``), honouring
       label smoothing, packing and the generator loss asked for:
       ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]``, ``L_G = -E[log D(G(z))]`` (non-saturating) or
       ``E[log(1 - D(G(z)))]`` (minimax). A mismatch fails with a message naming the wrong term when it matches a
       known mistake: the fake term's sign flipped, real and fake targets swapped, the missing factor 2, a
       generator trained toward target 0 or with the other form of ``L_G``, label smoothing ignored.
    2. **Are the step's gradients the gradients of that objective?** Every discriminator parameter gradient of the
       D step against finite differences of the *textbook* ``L_D(theta_D)``, and every generator parameter
       gradient of the G step (through the frozen D) against finite differences of the textbook ``L_G(theta_G)``.

    A gradient check alone cannot catch a wrong loss: the backward of a wrong loss is a right backward. Comparing
    the values with the formula is what ties the step to the game it is meant to play.
    """
    _check_call("check_gan_step", eps, atol, rtol, max_elements, real=real)
    rng = np.random.default_rng(seed)
    g = copy.copy(gan)
    g.G, g.D = copy.deepcopy(gan.G).to(dtype="float64"), copy.deepcopy(gan.D).to(dtype="float64")
    g._targets = {}
    real = _real_as_float64(real)
    xp = xp_of(real)
    n, example = real.shape[0], tuple(real.shape[1:])  # rows (N, d) or images (N, C, H, W)
    z_d, z_g = (xp.asarray(rng.standard_normal((n, gan.noise_dim))) for _ in range(2))
    noise_d = xp.asarray(rng.standard_normal((2 * n, *example))) * gan.instance_noise if gan.instance_noise else None
    noise_g = xp.asarray(rng.standard_normal((n, *example))) * gan.instance_noise if gan.instance_noise else None

    result = GradCheckResult(f"GAN step ({gan.loss} loss, pack {gan.pack})", eps=eps, atol=atol, rtol=rtol)
    d_formula = "-E[log D(x)] - E[log(1 - D(G(z)))]"
    if gan.label_smoothing:
        s = gan.label_smoothing
        d_formula = f"-{1 - s:g} E[log D(x)] - {s:g} E[log(1 - D(x))] - E[log(1 - D(G(z)))]"
    g_formula = "-E[log D(G(z))]" if gan.loss == "nonsaturating" else "E[log(1 - D(G(z)))]"
    steps = (
        (g.D, "L_D", d_formula, lambda: g.discriminator_gradients(real, z_d, noise_d)["d_loss"],
         lambda: _textbook_d_loss(g, real, z_d, noise_d), ("real term", "fake term")),
        (g.G, "L_G", g_formula, lambda: g.generator_gradients(z_g, noise_g)["g_loss"],
         lambda: _textbook_g_loss(g, z_g, noise_g), ("-E[log D(G(z))]", "E[log(1 - D(G(z)))]")),
    )
    for net, loss_name, formula, step_loss, textbook, terms in steps:
        net.zero_grad()
        step_value = float(to_numpy(step_loss()))  # the step's loss; fills the step's gradients
        analytic = {id(p): None if p.grad is None else p.grad.copy() for p in net.params()}
        result.objectives.append(_compare_objective(loss_name, formula, step_value, textbook(), terms))

        def f(textbook=textbook):
            return textbook()["total"]

        for qualified, p in net.named_params():
            owner, _ = net._owner_of(qualified)
            who = "D" if net is g.D else "G"
            name = f"d{loss_name}/d{p.name} [{who} {owner.label}]"
            result.tensors.append(_compare_tensor(f, p.data, analytic[id(p)], name, eps=eps, atol=atol, rtol=rtol,
                                                  max_elements=max_elements, rng=rng))
    return _finish(result, raise_exception)

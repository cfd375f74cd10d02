"""What the grader checks, function by function: the cases (visible ones with fixed seeds, grade-time random ones),
how to call a student's function and read its return value, the reference's answer, the finite-difference target of
each gradient tensor, and the values the catalogue's mistakes would produce on the same inputs.

Everything here runs in float64 (plus a float32 case for each forward, to check that dtypes are preserved), in the
grader's child process; the engine in ``grader.py`` compares and scores.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

from . import a1_layers as A1
from . import a2_losses as A2
from . import a3_gan_step as A3
from . import a4_optimizers as A4


class Malformed(Exception):
    """The student's function returned something of the wrong structure (None, a tuple of the wrong length, ...)."""


@dataclass
class Case:
    label: str  # e.g. "visible: x (4, 3), W (3, 5)"
    hidden: bool  # a grade-time random case (Gradescope: after_due_date)
    args: tuple  # what the function under test is called with
    names: tuple  # the argument names, for messages ("dout", "cache", "x", ...)
    N: int = 1  # the batch size, for the "off by the batch size" mistake
    info: dict = field(default_factory=dict)  # whatever the spec needs besides (inputs, dout, ...)


def _sigmoid(t):
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1 / (1 + e), e / (1 + e))


def _naive_bce(p, y):
    """The overflowing form, on purpose: what a student who writes log(sigmoid) gets."""
    with np.errstate(all="ignore"):
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))


ODD = "odd"  # a size drawn at grade time: 3, 5, 7 or 9, so a file cannot special-case the shapes it will meet


def _size(v, rng):
    return int(rng.choice([3, 5, 7, 9])) if v == ODD else v


def _shape(shape, rng):
    return tuple(_size(v, rng) for v in shape)


def _with_zeros(x, rng):
    """Put a few exact zeros into x: ReLU's kink, where the mask convention matters."""
    x = x.copy()
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, size=max(1, flat.size // 6), replace=False)] = 0.0
    return x


def _expect_tuple(result, n, what):
    if result is None:
        raise Malformed(f"returned None; it must return {what}")
    if not isinstance(result, (tuple, list)):
        raise Malformed(f"returned a {type(result).__name__}; it must return a tuple {what}")
    if len(result) != n:
        raise Malformed(f"returned a tuple of {len(result)}; it must return {n}: {what}")
    return list(result)


def _expect_array(result, what):
    if result is None:
        raise Malformed(f"returned None; it must return {what}")
    if isinstance(result, (tuple, list)):
        raise Malformed(f"returned a {type(result).__name__} of {len(result)}; it must return {what} itself")
    return result


# ------------------------------------------------------------------------------------------------ a1 / a2 ops


class Spec:
    """One graded function. Subclasses fill in the cases, the call and the reference."""

    name: str
    tensors: list  # one score item per tensor
    lesson: str = "gradcheck"
    written = False  # a written answer: recorded for the instructor, 0 points

    def cases(self, seed: int, hidden: bool) -> list[Case]:
        """The visible (or grade-time) cases, drawn from ``self.makers`` with a generator seeded by ``seed``."""
        rng = np.random.default_rng(seed)
        out = []
        for label, is_hidden, maker in self.makers:
            if is_hidden == hidden:
                names, args = maker(rng)
                out.append(Case(label, hidden, tuple(args), tuple(names), N=int(np.shape(args[0])[0] or 1)))
        return out

    def call(self, fn, case: Case) -> list:
        raise NotImplementedError

    def expected(self, case: Case) -> list:
        raise NotImplementedError

    def fd(self, case: Case, k: int):
        """``(f, array)``: a scalar function of ``array`` (perturbed in place) whose gradient tensor k must be."""
        return None

    def candidates(self, case: Case, k: int) -> dict:
        """Catalogue key -> the value tensor k would have with that mistake (computed from the reference)."""
        return {}

    def allowed(self, case: Case, k: int, student, expected):
        """``(mask, note)``: elements where another value is a legitimate convention (not marked wrong)."""
        return None, ""

    def properties(self, case: Case, k: int, student) -> list[str]:
        """Messages for properties tensor k must have whatever the values (signs, ...)."""
        return []

    def inplace_key(self, arg_name: str) -> str:
        return "input_in_place"

    def extra_messages(self, case: Case, result) -> list[str]:
        """Failures that belong to the call as a whole (a forward's cache), charged to every tensor."""
        return []


class Forward(Spec):
    """``name_forward(*inputs) -> (out, cache)``: the output is scored; the cache must be the documented one."""

    def __init__(self, op, ref, makers, out_name="y", lesson="dense", overflow=None):
        self.op, self.name, self.ref = op, f"{op}_forward", getattr(ref, f"{op}_forward")
        self.makers, self.tensors, self.lesson, self.overflow = makers, [out_name], lesson, overflow

    def cases(self, seed, hidden):
        out = super().cases(seed, hidden)
        if out and not hidden:  # the first visible case again in float32: the dtype must be preserved
            first = out[0]
            args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                           for a in first.args)
            out.insert(1, Case(first.label.replace("visible", "visible float32"), False, args32, first.names,
                               N=first.N))
        return out

    def call(self, fn, case):
        result = fn(*case.args)
        out, cache = _expect_tuple(result, 2, "(out, cache)")
        case.info["student_cache"] = cache
        return [out]

    def expected(self, case):
        out, cache = self.ref(*copy.deepcopy(case.args))
        case.info["cache"] = cache
        return [out]

    def candidates(self, case, k):
        if self.overflow is None:
            return {}
        return {"overflow": self.overflow(*case.args)}

    def extra_messages(self, case, result):
        mine, ref = case.info.get("student_cache"), case.info.get("cache")
        problem = _compare_structure(mine, ref)
        return [f"the cache is not the documented one: {problem}"] if problem else []


class Backward(Spec):
    """``name_backward(dout, cache) -> grads``, fed the reference's cache and a random ``dout``."""

    def __init__(self, op, ref, makers, grads, wrt, loss=False, lesson="dense", extra=None):
        self.op, self.name = op, f"{op}_backward"
        self.ref_forward, self.ref = getattr(ref, f"{op}_forward"), getattr(ref, f"{op}_backward")
        self.makers, self.tensors, self.wrt, self.loss = makers, list(grads), list(wrt), loss
        self.lesson, self.extra = lesson, extra or {}

    def cases(self, seed, hidden):
        rng = np.random.default_rng(seed)
        out = []
        for label, is_hidden, maker in self.makers:
            if is_hidden != hidden:
                continue
            _, inputs = maker(rng)
            y, cache = self.ref_forward(*copy.deepcopy(inputs))
            if self.loss:
                dout = 1.0 if not hidden else float(rng.uniform(0.5, 2.0))
            else:
                dout = rng.standard_normal(np.shape(y))
            out.append(Case(label, hidden, (dout, cache), ("dout", "cache"), N=int(np.shape(inputs[0])[0] or 1),
                            info={"inputs": inputs, "y": y}))
        return out

    def call(self, fn, case):
        result = fn(*case.args)
        what = ", ".join(self.tensors)
        if len(self.tensors) == 1:
            return [_expect_array(result, what)]
        return _expect_tuple(result, len(self.tensors), f"({what})")

    def expected(self, case):
        result = self.ref(*copy.deepcopy(case.args))
        return [result] if len(self.tensors) == 1 else list(result)

    def fd(self, case, k):
        inputs = [a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a
                  for a in copy.deepcopy(case.info["inputs"])]
        dout = case.args[0]
        forward = self.ref_forward

        def f():
            with np.errstate(all="ignore"):
                return float(np.sum(forward(*inputs)[0] * dout))

        array = inputs[self.wrt[k]]
        return None if array is None else (f, array)

    def candidates(self, case, k):
        make = self.extra.get(self.tensors[k])
        return make(case) if make else {}

    def allowed(self, case, k, student, expected):
        if self.op not in ("relu", "leaky_relu"):
            return None, ""
        x = case.info["inputs"][0]
        at_zero = x == 0
        if not np.any(at_zero) or np.shape(student) != np.shape(expected):
            return None, ""
        dout = case.args[0]
        slope = 0.0 if self.op == "relu" else case.args[1][1]
        s = np.asarray(student, dtype=np.float64)
        lo, hi = np.minimum(slope * dout, dout), np.maximum(slope * dout, dout)
        ok = at_zero & (s >= lo - 1e-12) & (s <= hi + 1e-12)
        differs = ok & ~np.isclose(s, expected, rtol=1e-6, atol=1e-9)
        if not differs.any():
            return None, ""
        return ok, "relu_at_zero"

    def inplace_key(self, arg_name):
        return "dout_in_place" if arg_name == "dout" else "cache_in_place"


def _compare_structure(mine, ref, where="cache") -> str:
    """'' when ``mine`` holds the same values as ``ref`` (tuples element by element), else what differs."""
    if isinstance(ref, (tuple, list)):
        if not isinstance(mine, (tuple, list)) or len(mine) != len(ref):
            kind = type(mine).__name__ + (f" of {len(mine)}" if isinstance(mine, (tuple, list)) else "")
            return f"{where} is a {kind}, it should be a tuple of {len(ref)}"
        for i, (a, b) in enumerate(zip(mine, ref)):
            problem = _compare_structure(a, b, f"{where}[{i}]")
            if problem:
                return problem
        return ""
    if isinstance(ref, np.ndarray):
        if mine is None or np.shape(mine) != ref.shape:
            return f"{where} has shape {np.shape(mine) if mine is not None else None}, it should be {ref.shape}"
        with np.errstate(all="ignore"):
            if not np.allclose(np.asarray(mine, dtype=np.float64), ref, rtol=1e-6, atol=1e-9, equal_nan=True):
                return f"{where} holds other values than the documented cache"
        return ""
    try:
        return "" if np.isclose(float(mine), float(ref)) else f"{where} is {mine!r}, it should be {ref!r}"
    except (TypeError, ValueError):
        return f"{where} is {mine!r}, it should be {ref!r}"


def _layer_inputs(shape, scale=1.0, zeros=False, extreme=None):
    def make(rng):
        x = rng.standard_normal(_shape(shape, rng)) * scale
        if zeros:
            x = _with_zeros(x, rng)
        if extreme is not None:
            flat = x.reshape(-1)
            flat[: len(extreme)] = extreme[: flat.size]
        return ("x",), (x,)
    return make


def _dense_inputs(n, d_in, d_out, bias=True):
    def make(rng):
        n_, d_in_, d_out_ = _shape((n, d_in, d_out), rng)
        x, W = rng.standard_normal((n_, d_in_)), rng.standard_normal((d_in_, d_out_))
        return ("x", "W", "b"), (x, W, rng.standard_normal(d_out_) if bias else None)
    return make


def _leaky_inputs(shape, slope):
    def make(rng):
        return ("x", "slope"), (_with_zeros(rng.standard_normal(_shape(shape, rng)), rng), slope)
    return make


def _a1_specs():
    dense = [("visible: x (4, 3), W (3, 5)", False, _dense_inputs(4, 3, 5)),
             ("visible: x (2, 4), W (4, 4)", False, _dense_inputs(2, 4, 4)),
             ("grade-time: batch of 1", True, _dense_inputs(1, 3, 2)),
             ("grade-time: random odd sizes", True, _dense_inputs(ODD, ODD, ODD)),
             ("grade-time: b = None", True, _dense_inputs(3, 2, 5, bias=False))]
    relu = [("visible: (4, 5) with exact zeros", False, _layer_inputs((4, 5), zeros=True)),
            ("grade-time: batch of 1", True, _layer_inputs((1, 3), zeros=True)),
            ("grade-time: random odd sizes, exact zeros", True, _layer_inputs((ODD, ODD), zeros=True))]
    leaky = [("visible: (4, 5), slope 0.2, exact zeros", False, _leaky_inputs((4, 5), 0.2)),
             ("grade-time: batch of 1, slope 0.01", True, _leaky_inputs((1, 3), 0.01)),
             ("grade-time: random odd sizes, slope 0.1", True, _leaky_inputs((ODD, ODD), 0.1))]
    big = [40.0, -40.0, 800.0, -800.0]
    sigm = [("visible: (4, 5)", False, _layer_inputs((4, 5), scale=3.0)),
            ("visible: extreme inputs +-40, +-800", False, _layer_inputs((3, 4), scale=3.0, extreme=big)),
            ("grade-time: batch of 1", True, _layer_inputs((1, 3), scale=3.0)),
            ("grade-time: random odd sizes, extreme inputs", True,
             _layer_inputs((ODD, ODD), scale=5.0, extreme=big))]

    def from_input(fn_key, f_prime):
        def make(case):
            dout, y = case.args
            with np.errstate(all="ignore"):
                return {fn_key: dout * f_prime(y)}
        return make

    sig_wrong = from_input("sigmoid_from_input", lambda y: _sigmoid(y) * (1 - _sigmoid(y)))
    tanh_wrong = from_input("tanh_from_input", lambda y: 1 - np.tanh(y) ** 2)
    return [
        Forward("dense", A1, dense), Backward("dense", A1, dense, ["dx", "dW", "db"], [0, 1, 2]),
        Forward("relu", A1, relu, lesson="activations"),
        Backward("relu", A1, relu, ["dx"], [0], lesson="activations",
                 extra={"dx": lambda case: {"relu_mask_always_on": case.args[0]}}),
        Forward("leaky_relu", A1, leaky, lesson="activations"),
        Backward("leaky_relu", A1, leaky, ["dx"], [0], lesson="activations"),
        Forward("sigmoid", A1, sigm, lesson="activations"),
        Backward("sigmoid", A1, sigm, ["dx"], [0], lesson="activations", extra={"dx": sig_wrong}),
        Forward("tanh", A1, sigm, lesson="activations"),
        Backward("tanh", A1, sigm, ["dx"], [0], lesson="activations", extra={"dx": tanh_wrong}),
    ]


def _binary_inputs(shape, scale=2.0, extreme=None, probs=False):
    def make(rng):
        size = _shape(shape, rng)
        z = rng.standard_normal(size) * scale
        y = (rng.random(size) < 0.5).astype(np.float64)
        if extreme is not None:
            flat_z, flat_y = z.reshape(-1), y.reshape(-1)
            k = min(len(extreme), flat_z.size)
            flat_z[:k] = extreme[:k]
            flat_y[:k] = [0.0, 1.0, 1.0, 0.0][:k]
        if probs:
            return ("p", "y"), (rng.uniform(0.05, 0.95, size), y)
        return ("z", "y"), (z, y)
    return make


def _regression_inputs(shape):
    def make(rng):
        size = _shape(shape, rng)
        return ("pred", "target"), (rng.standard_normal(size), rng.standard_normal(size))
    return make


def _class_inputs(n, c, scale=1.0):
    def make(rng):
        n_, c_ = _shape((n, c), rng)
        return ("logits", "labels"), (rng.standard_normal((n_, c_)) * scale, rng.integers(0, c_, size=n_))
    return make


class Written(Spec):
    """A written question: the answer is recorded for the instructor (0 points, graded by hand)."""

    written = True

    def __init__(self, name):
        self.name, self.tensors = name, ["answer"]

    def cases(self, seed, hidden):
        return [] if hidden else [Case("visible: your answer", False, (), ())]

    def call(self, fn, case):
        return [fn()]

    def expected(self, case):
        return [None]


def _a2_specs():
    big = [40.0, -40.0, 800.0, -800.0]
    bce_logits = [("visible: (8, 1)", False, _binary_inputs((8, 1))),
                  ("visible: extreme logits +-40, +-800", False, _binary_inputs((4, 1), extreme=big)),
                  ("grade-time: batch of 1", True, _binary_inputs((1, 1))),
                  ("grade-time: random odd sizes, extreme logits", True,
                   _binary_inputs((ODD, ODD), scale=30.0, extreme=big))]
    bce = [("visible: (6, 1)", False, _binary_inputs((6, 1), probs=True)),
           ("grade-time: batch of 1", True, _binary_inputs((1, 1), probs=True)),
           ("grade-time: random odd sizes", True, _binary_inputs((ODD, ODD), probs=True))]
    mse = [("visible: (5, 3)", False, _regression_inputs((5, 3))),
           ("grade-time: batch of 1", True, _regression_inputs((1, 1))),
           ("grade-time: random odd sizes", True, _regression_inputs((ODD, ODD)))]
    sce = [("visible: (5, 4)", False, _class_inputs(5, 4)),
           ("visible: large logits (x1000)", False, _class_inputs(3, 4, scale=1000.0)),
           ("grade-time: batch of 1", True, _class_inputs(1, 3)),
           ("grade-time: random odd sizes, large logits", True, _class_inputs(ODD, ODD, scale=300.0))]

    def naive_loss(z, y):
        return np.asarray(_naive_bce(_sigmoid(z), y).mean())

    return [
        Forward("bce_with_logits", A2, bce_logits, out_name="loss", lesson="bce", overflow=naive_loss),
        Backward("bce_with_logits", A2, bce_logits, ["dz"], [0], loss=True, lesson="bce"),
        Forward("bce", A2, bce, out_name="loss", lesson="bce"),
        Backward("bce", A2, bce, ["dp"], [0], loss=True, lesson="bce"),
        Written("bce_question"),
        Forward("mse", A2, mse, out_name="loss", lesson="gradcheck"),
        Backward("mse", A2, mse, ["dpred"], [0], loss=True, lesson="gradcheck"),
        Forward("softmax_cross_entropy", A2, sce, out_name="loss", lesson="gradcheck"),
        Backward("softmax_cross_entropy", A2, sce, ["dlogits"], [0], loss=True, lesson="gradcheck"),
    ]


# ------------------------------------------------------------------------------------------------------ a3


def _softplus(t):
    return np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))


class Plain(Spec):
    """A function of named arrays returning a tuple (or a dict) of tensors, scored against the reference."""

    def __init__(self, name, ref, makers, tensors, lesson, keys=None, fd=None, extra=None, props=None,
                 inplace=None):
        self.name, self.ref, self.makers, self.tensors, self.lesson = name, ref, makers, list(tensors), lesson
        self.keys, self._fd, self.extra, self.props = keys, fd or {}, extra, props or {}
        self.inplace = inplace or {}

    def _read(self, result):
        if self.keys is None:
            if len(self.tensors) == 1:
                return [_expect_array(result, self.tensors[0])]
            return _expect_tuple(result, len(self.tensors), f"({', '.join(self.tensors)})")
        if not isinstance(result, dict):
            raise Malformed(f"returned a {type(result).__name__}; it must return a dict with keys "
                            f"{', '.join(self.keys)}")
        missing = [k for k in self.keys if k not in result]
        if missing:
            raise Malformed(f"the returned dict lacks {', '.join(missing)}")
        return [result[k] for k in self.keys]

    def call(self, fn, case):
        return self._read(fn(*case.args))

    def expected(self, case):
        return self._read(self.ref(*copy.deepcopy(case.args)))

    def fd(self, case, k):
        target = self._fd.get(self.tensors[k])
        return target(case) if target else None

    def candidates(self, case, k):
        return self.extra(case, k) if self.extra else {}

    def properties(self, case, k, student):
        prop = self.props.get(self.tensors[k])
        return prop(case, student) if prop else []

    def inplace_key(self, arg_name):
        return self.inplace.get(arg_name, "input_in_place")


class DiscriminatorLoss(Plain):
    """``L_D`` is compared with the textbook formula itself wherever that formula is finite (moderate logits)."""

    def expected(self, case):
        out = super().expected(case)
        if "extreme" not in case.label:
            out[0] = np.asarray(_textbook_ld(*case.args))
        return out


class GeneratorLoss(Plain):
    """``generator_loss`` is called twice per case: once per kind, each kind scored on its own."""

    def call(self, fn, case):
        return [x for kind in ("nonsaturating", "minimax") for x in
                _expect_tuple(fn(case.args[0], kind), 2, f"(L_G, dlogits_fake) for kind={kind!r}")]

    def expected(self, case):
        out = [x for kind in ("nonsaturating", "minimax") for x in self.ref(case.args[0].copy(), kind)]
        if "extreme" not in case.label:  # the textbook formulas themselves, where they are finite
            d = _sigmoid(case.args[0])
            out[0], out[2] = np.asarray(-np.mean(np.log(d))), np.asarray(np.mean(np.log(1 - d)))
        return out


def _logit_pair(n, m, scale=2.0, extreme=None):
    def make(rng):
        n_, m_ = _shape((n, m), rng)
        real, fake = rng.standard_normal((n_, 1)) * scale + 1, rng.standard_normal((m_, 1)) * scale - 1
        if extreme is not None:
            real[:2, 0], fake[:2, 0] = extreme[:2], extreme[2:4]
        return ("logits_real", "logits_fake"), (real, fake)
    return make


def _fake_logits(m, scale=2.0, extreme=None):
    def make(rng):
        fake = rng.standard_normal((m, 1)) * scale - 1
        if extreme is not None:
            fake[: len(extreme), 0] = extreme[:m]
        return ("logits_fake",), (fake,)
    return make


def _gan_params(*sizes, kind="nonsaturating", step=False):
    def make(rng):
        n, k, d = _shape(sizes, rng)
        z = rng.standard_normal((n, k))
        Wg, bg = rng.standard_normal((k, d)), rng.standard_normal(d) * 0.5
        Wd, bd = rng.standard_normal((d, 1)), rng.standard_normal(1) * 0.5
        if not step:
            return ("z", "Wg", "bg", "Wd", "bd", "kind"), (z, Wg, bg, Wd, bd, kind)
        real, z_g = rng.standard_normal((n, d)) + 2, rng.standard_normal((n, k))
        return (("real", "z_d", "z_g", "Wg", "bg", "Wd", "bd", "lr", "kind"),
                (real, z, z_g, Wg, bg, Wd, bd, 0.1, kind))
    return make


def _textbook_ld(lr, lf):
    """L_D exactly as the paper writes it (fine for moderate logits, which is where the grader uses it)."""
    with np.errstate(all="ignore"):
        return -np.mean(np.log(_sigmoid(lr))) - np.mean(np.log(1 - _sigmoid(lf)))


def _a3_specs():
    big = [40.0, -40.0, 40.0, -40.0]
    huge = [800.0, -800.0, 800.0, -800.0]
    d_loss = [("visible: 4 real, 4 fake", False, _logit_pair(4, 4)),
              ("visible: 3 real, 5 fake", False, _logit_pair(3, 5)),
              ("visible: extreme logits +-40", False, _logit_pair(3, 3, extreme=big)),
              ("grade-time: 1 real, 1 fake", True, _logit_pair(1, 1)),
              ("grade-time: random odd numbers of real and fake", True, _logit_pair(ODD, ODD)),
              ("grade-time: extreme logits +-800", True, _logit_pair(4, 3, extreme=huge))]

    def ld_fd(which):
        def target(case):
            arrays = [a.copy() for a in case.args]
            return (lambda: float(A3.discriminator_loss(*arrays)[0])), arrays[which]
        return target

    def ld_mistakes(case, k):
        lr, lf = case.args
        flipped = [np.asarray(_softplus(-lr).mean() - _softplus(lf).mean()), None, -_sigmoid(lf) / lf.size]
        out = {"ld_fake_sign": flipped[k]} if flipped[k] is not None else {}
        if k == 0:
            out["overflow"] = np.asarray(_naive_bce(_sigmoid(lr), np.ones_like(lr)).mean()
                                         + _naive_bce(_sigmoid(lf), np.zeros_like(lf)).mean())
        return out

    def sign_prop(sign, who):
        def check(case, s):
            s = np.asarray(s, dtype=np.float64)
            bad = s * sign < 0  # exactly 0 is fine: the sigmoid saturates for extreme logits
            if s.shape and bad.any():
                i = tuple(int(v) for v in np.argwhere(bad)[0])
                return [f"dL_D/dlogit on {who} examples must be {'negative' if sign < 0 else 'positive'} "
                        f"everywhere (raising D's logit on a {who} example {'lowers' if sign < 0 else 'raises'} "
                        f"L_D); yours is {float(s[i]):.4g} at index {list(i)}"]
            return []
        return check

    g_loss = [("visible: 4 fakes", False, _fake_logits(4)),
              ("visible: extreme logits +-40", False, _fake_logits(4, extreme=[40.0, -40.0, 35.0, -35.0])),
              ("grade-time: 1 fake", True, _fake_logits(1)),
              ("grade-time: 5 fakes, extreme logits +-800", True, _fake_logits(5, extreme=huge))]

    def lg_fd(kind):
        def target(case):
            z = case.args[0].copy()
            return (lambda: float(A3.generator_loss(z, kind)[0])), z
        return target

    def lg_mistakes(case, k):
        lf = case.args[0]
        if k == 0:
            return {"saturating_lg": np.asarray(-_softplus(lf).mean())}
        if k == 1:
            return {"saturating_lg": -_sigmoid(lf) / lf.size}
        if k == 2:
            return {"overflow": np.asarray(-_naive_bce(_sigmoid(lf), np.zeros_like(lf)).mean())}
        return {}

    g_grad = [("visible: N 4, z (4, 3), d 2", False, _gan_params(4, 3, 2)),
              ("visible: minimax loss", False, _gan_params(4, 3, 2, kind="minimax")),
              ("grade-time: batch of 1", True, _gan_params(1, 2, 3)),
              ("grade-time: random odd sizes, minimax", True, _gan_params(ODD, ODD, ODD, kind="minimax"))]

    def gg_fd(index):
        def target(case):
            args = list(copy.deepcopy(case.args))
            return (lambda: float(A3.generator_gradients(*args)[0])), args[index]
        return target

    def gg_mistakes(case, k):
        args = list(copy.deepcopy(case.args))
        if args[-1] != "nonsaturating":
            return {}
        args[-1] = "minimax"
        return {"saturating_lg": A3.generator_gradients(*args)[k]}

    step = [("visible: N 4, k 3, d 2", False, _gan_params(4, 3, 2, step=True)),
            ("grade-time: batch of 1", True, _gan_params(1, 2, 3, step=True)),
            ("grade-time: random odd sizes, minimax", True,
             _gan_params(ODD, ODD, ODD, kind="minimax", step=True))]

    def step_mistakes(case, k):
        real, z_d, z_g, Wg, bg, Wd, bd, lr, kind = copy.deepcopy(case.args)
        new = A3.gan_step(real, z_d, z_g, Wg, bg, Wd, bd, lr, kind)
        if k > 1:
            return {}
        fake = z_g @ Wg + bg
        _, dlogits = A3.generator_loss(fake @ new["Wd"] + new["bd"], kind)
        moved = [new["Wd"] - lr * (fake.T @ dlogits), new["bd"] - lr * dlogits.sum(axis=0)]
        return {"d_moved": moved[k]}

    d_frozen = {"Wd": "d_moved", "bd": "d_moved"}
    return [
        DiscriminatorLoss("discriminator_loss", A3.discriminator_loss, d_loss, ["L_D", "dlogits_real", "dlogits_fake"],
              "gan_losses", fd={"dlogits_real": ld_fd(0), "dlogits_fake": ld_fd(1)}, extra=ld_mistakes,
              props={"dlogits_real": sign_prop(-1, "real"), "dlogits_fake": sign_prop(+1, "fake")}),
        GeneratorLoss("generator_loss", A3.generator_loss, g_loss,
                      ["L_G", "dlogits_fake", "L_G (minimax)", "dlogits_fake (minimax)"], "gan_losses",
                      fd={"dlogits_fake": lg_fd("nonsaturating"), "dlogits_fake (minimax)": lg_fd("minimax")},
                      extra=lg_mistakes),
        Plain("generator_gradients", A3.generator_gradients, g_grad, ["L_G", "dWg", "dbg"], "gan_step",
              fd={"dWg": gg_fd(1), "dbg": gg_fd(2)}, extra=gg_mistakes, inplace=d_frozen),
        Plain("gan_step", A3.gan_step, step, ["Wd", "bd", "Wg", "bg", "L_D", "L_G"], "gan_step",
              keys=["Wd", "bd", "Wg", "bg", "L_D", "L_G"], extra=step_mistakes, inplace=d_frozen),
    ]


# ------------------------------------------------------------------------------------------------------ a4


def _sgd_inputs(shape, first=False, lr=0.1, momentum=0.9):
    def make(rng):
        size = _shape(shape, rng)
        w, g = rng.standard_normal(size), rng.standard_normal(size)
        v = np.zeros(size) if first else rng.standard_normal(size)
        return ("w", "grad", "velocity", "lr", "momentum"), (w, g, v, lr, momentum)
    return make


def _adam_inputs(shape, t, lr=0.01, betas=(0.9, 0.999)):
    def make(rng):
        size = _shape(shape, rng)
        w, g = rng.standard_normal(size), rng.standard_normal(size)
        m = np.zeros(size) if t == 1 else rng.standard_normal(size) * 0.1
        v = np.zeros(size) if t == 1 else rng.random(size) * 0.1
        return ("w", "grad", "m", "v", "t", "lr", "beta1", "beta2", "eps"), (w, g, m, v, t, lr, *betas, 1e-8)
    return make


def _a4_specs():
    sgd = [("visible: first step (velocity 0)", False, _sgd_inputs((3, 4), first=True)),
           ("visible: a later step", False, _sgd_inputs((3, 4))),
           ("grade-time: one weight", True, _sgd_inputs((1,), momentum=0.5)),
           ("grade-time: random odd sizes, lr 0.03", True, _sgd_inputs((ODD, ODD), lr=0.03))]
    adam = [("visible: step 1 (m, v = 0)", False, _adam_inputs((3, 4), 1)),
            ("visible: step 3", False, _adam_inputs((3, 4), 3)),
            ("grade-time: step 1, one weight", True, _adam_inputs((1,), 1)),
            ("grade-time: step 10, betas (0.5, 0.99)", True,
             _adam_inputs((ODD, ODD), 10, betas=(0.5, 0.99)))]

    def adam_mistakes(case, k):
        if k != 0:
            return {}
        w, g, m, v, t, lr, b1, b2, eps = case.args
        m_new, v_new = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        return {"no_bias_correction": w - lr * m_new / (np.sqrt(v_new) + eps)}

    return [
        Plain("sgd_momentum_step", A4.sgd_momentum_step, sgd, ["w_new", "v_new"], "mlp"),
        Plain("adam_step", A4.adam_step, adam, ["w_new", "m_new", "v_new"], "mlp", extra=adam_mistakes),
    ]


SPECS = {"a1": _a1_specs, "a2": _a2_specs, "a3": _a3_specs, "a4": _a4_specs}


def specs(assignment: str) -> list[Spec]:
    return SPECS[assignment]()

"""Checks at minigan's public entry points, so bad input gets an error that names the argument and what was expected.

``docs/contracts.md`` is the contract: for every entry point and kind of bad input, a correct result or one of these
errors; ``tests/test_contracts.py`` sweeps it. Each check costs a few attribute reads; ops on the training path call
them only behind a cheap guard (``if x.dtype not in FLOAT_DTYPES: ...``), so a good call pays almost nothing.

Why only float32 and float64: training runs in float32 and gradient checks in float64. float16 is refused rather
than half supported: NumPy emulates it slowly, and Adam's eps of 1e-8 rounds to 0 in it (a zero gradient then
gives 0/0 = NaN). Integers are refused because an op that silently promoted them would hide a data bug.
"""

from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from .backend import backend_of

# A frozenset, not a tuple: ``None in (np.dtype("float64"),)`` is True, since NumPy reads None as float64.
FLOAT_DTYPES = frozenset({np.dtype(np.float32), np.dtype(np.float64)})


def float_array(where: str, name: str, a, ndim: int | None = None, nonempty: bool = False):
    """``a`` must be a NumPy/CuPy array of float32 or float64 (of rank ``ndim``, or any rank from 1 for ``ndim=-1``;
    with at least one row if ``nonempty``)."""
    dtype = getattr(a, "dtype", None)
    if dtype is None or not hasattr(a, "shape"):
        raise TypeError(f"{where}: {name} must be a NumPy or CuPy array of float32 or float64, got "
                        f"{type(a).__name__}; wrap it with numpy.asarray(..., dtype=numpy.float32)")
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{where}: {name} has dtype {dtype}, expected float32 or float64 (minigan never promotes "
                        f"silently); convert it with {name}.astype(numpy.float32)")
    if ndim == -1 and len(a.shape) == 0:  # ndim=-1: any rank from 1
        raise ValueError(f"{where}: {name} must have at least one dimension, got a 0-d array; use {name}.reshape(1)")
    if ndim is not None and ndim >= 0 and len(a.shape) != ndim:
        expected = {1: "(features,)", 2: "(batch, features)"}.get(ndim, f"{ndim} dimensions")
        raise ValueError(f"{where}: {name} must have shape {expected}, got shape {tuple(a.shape)}")
    if nonempty and a.size == 0:
        raise ValueError(f"{where}: empty batch ({name} of shape {tuple(a.shape)}); expected at least one row")
    return a


def shape(where: str, name: str, a, expected: tuple, hint: str = "") -> None:
    """``a.shape`` must equal ``expected`` (``None`` entries match any size)."""
    got = tuple(a.shape)
    if len(got) != len(expected) or any(e is not None and e != g for e, g in zip(expected, got)):
        sizes = ["N" if e is None else str(e) for e in expected]
        want = f"({sizes[0]},)" if len(sizes) == 1 else "(" + ", ".join(sizes) + ")"
        raise ValueError(f"{where}: {name} must have shape {want}, got {got}{'; ' + hint if hint else ''}")


def same_backend(where: str, **arrays) -> None:
    """The named arrays must all live on one backend; a TypeError naming which is where otherwise."""
    places = {name: backend_of(a) for name, a in arrays.items() if a is not None and hasattr(a, "shape")}
    if len(set(places.values())) > 1:
        listed = ", ".join(f"{name} on {place}" for name, place in places.items())
        raise TypeError(f"{where}: mixed backends ({listed}); move them to one place first, e.g. model.to('cupy') "
                        "and minigan.backend.to_device(x, 'cupy'), or minigan.backend.to_numpy(x)")


def real(where: str, name: str, value, *, low: float | None = None, high: float | None = None,
         low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number (not a bool, not a string) in ``[low, high]`` (open ends where asked), as a float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{where}: {name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if not math.isfinite(value) or too_low or too_high:
        if low is not None and high is not None:
            cond = f"{low} {'<' if low_open else '<='} {name} {'<' if high_open else '<='} {high}"
        elif low is not None:
            cond = f"{name} {'>' if low_open else '>='} {low}"
        else:
            cond = f"{name} {'<' if high_open else '<='} {high}" if high is not None else f"a finite {name}"
        raise ValueError(f"{where}: need {cond} (a finite number), got {value!r}")
    return value


def integer(where: str, name: str, value, minimum: int = 1) -> int:
    """An int (or NumPy integer; not a bool, float or string) of at least ``minimum``."""
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{where}: {name} must be an integer, got {type(value).__name__} {value!r}") from None
    if value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value}")
    return value


def float_dtype(where: str, name: str, dtype) -> np.dtype:
    """A dtype minigan computes in: float32 or float64."""
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: {name} must be a dtype, got {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{where}: {name} must be float32 or float64, got {dtype} (float16 is not supported: "
                        "Adam's eps rounds to 0 in it)")
    return dtype


def finite(where: str, name: str, a) -> None:
    """No NaN or infinity in ``a`` (used where a check costs little: gradient checks, not training steps)."""
    if hasattr(a, "dtype") and a.dtype.kind == "f" and not bool(np.all(np.isfinite(np.asarray(_host(a))))):
        raise ValueError(f"{where}: {name} contains NaN or infinite values; expected finite numbers")


def _host(a):
    return a.get() if hasattr(a, "get") and not isinstance(a, np.ndarray) else a

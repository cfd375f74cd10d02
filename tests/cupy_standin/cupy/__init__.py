"""A strict stand-in for CuPy, for minigan's tests only: the CuPy path runs on every test run, with or without a GPU.

It is importable as ``cupy`` when its folder (``tests/cupy_standin``) is first on ``sys.path`` (``tests/conftest.py``
puts it there when no real CuPy with a CUDA device is present) or on ``PYTHONPATH`` (subprocesses: the CLI, the
tutorials). minigan's package never imports it; a real GPU stays the final judge (``benchmarks/speed/gpu_checks.sh``).

Device arrays are their own type, ``cupy.ndarray``, wrapping a NumPy array (``_a``) -- not a subclass, so nothing
converts them to NumPy silently. The rules of CuPy that CPU code most often breaks are kept:

* implicit conversion to NumPy raises TypeError: ``np.asarray(d)``, ``np.array(d)``, ``np.exp(d)`` (NumPy ufuncs
  and functions on device arrays), ``np_array + d``;
* a NumPy array of rank >= 1 mixed into a device operation raises TypeError (0-d arrays and scalars are fine);
* ``d.get()`` and ``cupy.asnumpy(d)`` are the explicit copies to the host;
* reductions return 0-d device arrays, not Python or NumPy scalars;
* ``copyto`` refuses a Python scalar source, as CuPy releases before 13 do under NumPy 2.

It counts device-to-host reads -- ``.get()``, ``asnumpy``, ``float()``/``int()``/``bool()``/``.item()``/
``.tolist()``/``repr`` of a device array -- so a test can assert that a training step reads nothing back:
``cupy.reset_d2h_reads()``, run, ``assert cupy.d2h_reads() == 0``.

Only what minigan and its tests use is implemented; anything else raises AttributeError saying so.
"""

from __future__ import annotations

import builtins
import sys
import types

import numpy as _np

__version__ = "13.0.0+minigan.standin"
IS_STANDIN = True

_reads = 0


def d2h_reads() -> int:
    """Device-to-host reads since the last ``reset_d2h_reads()``."""
    return _reads


def reset_d2h_reads() -> None:
    global _reads
    _reads = 0


def _count_read() -> None:
    global _reads
    _reads += 1


_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a NumPy array "
             "explicitly.")


def _unwrap(x):
    """The NumPy value behind an operand of a device operation; TypeError for a NumPy array of rank >= 1."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        if x.ndim == 0:
            return x
        raise TypeError(f"Unsupported type {type(x)} (shape {x.shape}): a NumPy array mixed into a CuPy operation. "
                        "Move it to the device first (cupy.asarray / minigan.backend.to_device).")
    if isinstance(x, (list, tuple)):
        raise TypeError(f"Unsupported type {type(x)}: CuPy operations take arrays or scalars, not Python sequences")
    return x  # Python and NumPy scalars, None, dtypes


def _unwrap_index(key):
    if isinstance(key, tuple):
        return tuple(_unwrap_index(k) for k in key)
    if isinstance(key, (ndarray, _np.ndarray)):
        return _unwrap(key)
    if isinstance(key, list):
        raise TypeError("indexing a device array with a Python list: use a device array of indices")
    return key


def _wrap(r):
    if isinstance(r, _np.ndarray):
        return ndarray(r)
    if isinstance(r, _np.generic):
        return ndarray(_np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    return r


def _call(func, args, kwargs):
    """Run a NumPy function on unwrapped operands; wrap the result (the ``out`` array itself when given)."""
    out = kwargs.get("out")
    if out is not None:
        if not isinstance(out, ndarray):
            raise TypeError(f"out must be a device array (cupy.ndarray), got {type(out).__name__}")
        kwargs = dict(kwargs, out=out._a)
    if "where" in kwargs and kwargs["where"] is not True:
        kwargs = dict(kwargs, where=_unwrap(kwargs["where"]))
    result = func(*[_unwrap(a) for a in args], **kwargs)
    if out is not None and result is out._a:
        return out
    return _wrap(result)


class ndarray:
    """A device array: a NumPy array that refuses to leave the device implicitly."""

    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy ufuncs refuse device arrays, and np_array <op> d defers to d's reflected op
    __hash__ = None

    def __init__(self, a):
        if not isinstance(a, _np.ndarray):
            raise TypeError("cupy.ndarray(...) wraps a NumPy array internally; use cupy.asarray(x) to copy data to "
                            "the device")
        self._a = a

    # ------------------------------------------------------------------ refusing implicit conversion
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self)))

    # ------------------------------------------------------------------ explicit reads (counted)
    def get(self, stream=None, order="C", out=None):
        _count_read()
        return _np.array(self._a, order=order, copy=True)

    def item(self):
        _count_read()
        return self._a.item()

    def tolist(self):
        _count_read()
        return self._a.tolist()

    def __float__(self):
        _count_read()
        return float(self._a)

    def __int__(self):
        _count_read()
        return int(self._a)

    def __index__(self):
        _count_read()
        return self._a.__index__()

    def __bool__(self):
        _count_read()
        return bool(self._a)

    def __repr__(self):
        _count_read()
        return repr(self._a)

    def __str__(self):
        _count_read()
        return str(self._a)

    def __format__(self, spec):
        _count_read()
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    # ------------------------------------------------------------------ attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))
    device = property(lambda self: cuda.Device(0))

    def __len__(self):
        return len(self._a)

    def __copy__(self):
        return ndarray(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray(self._a.copy())

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap_index(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap_index(key)] = _unwrap(value)

    # ------------------------------------------------------------------ methods
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        return _wrap(self._a.astype(dtype, order=order, copy=copy))

    def copy(self, order="C"):
        return ndarray(self._a.copy(order=order))

    def reshape(self, *shape, order="C"):
        return ndarray(self._a.reshape(*shape, order=order))

    def fill(self, value):
        self._a.fill(_unwrap(value))

    def __getattr__(self, name):
        if name in _METHODS:
            method = getattr(self._a, name)
            return lambda *args, **kwargs: _call(method, args, kwargs)
        raise AttributeError(f"minigan's CuPy stand-in: cupy.ndarray has no attribute {name!r} here (add it to "
                             "tests/cupy_standin/cupy/__init__.py if minigan now needs it)")


_METHODS = {"sum", "mean", "max", "min", "std", "var", "prod", "argmax", "argmin", "all", "any", "cumsum", "clip",
            "dot", "ravel", "flatten", "transpose", "swapaxes", "squeeze", "repeat", "take", "round", "nonzero"}


def _binary(name):
    def op(self, other):
        return _wrap(getattr(self._a, name)(_unwrap(other)))
    op.__name__ = name
    return op


def _inplace(name):
    def op(self, other):
        getattr(self._a, name)(_unwrap(other))
        return self
    op.__name__ = name
    return op


for _name in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
              "rshift"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
    setattr(ndarray, f"__r{_name}__", _binary(f"__r{_name}__"))
    setattr(ndarray, f"__i{_name}__", _inplace(f"__i{_name}__"))
for _name in ("lt", "le", "gt", "ge", "eq", "ne"):
    setattr(ndarray, f"__{_name}__", _binary(f"__{_name}__"))
for _name in ("neg", "pos", "abs", "invert"):
    setattr(ndarray, f"__{_name}__", (lambda n: lambda self: _wrap(getattr(self._a, n)()))(f"__{_name}__"))


# ---------------------------------------------------------------------------------------------- module functions

def asarray(a, dtype=None, order=None):
    """Copy host data to the device (a device array passes through, cast if ``dtype`` differs)."""
    if isinstance(a, ndarray):
        return a if dtype is None or _np.dtype(dtype) == a.dtype else a.astype(dtype)
    return ndarray(_np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(obj, dtype=None, copy=True, order="K"):
    if isinstance(obj, ndarray):
        return ndarray(_np.array(obj._a, dtype=dtype, copy=True, order=order))
    return ndarray(_np.array(obj, dtype=dtype, order=order, copy=True))


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise TypeError(f"Unsupported type {type(a)}")
    return ndarray(_np.ascontiguousarray(a._a, dtype=dtype))


def asnumpy(a, stream=None, order="C", out=None):
    """The explicit device-to-host copy (host data passes through, as in CuPy)."""
    if isinstance(a, ndarray):
        return a.get(order=order)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    return sys.modules[__name__] if builtins.any(isinstance(a, ndarray) for a in args) else _np


def _function(name):
    numpy_function = getattr(_np, name)

    def function(*args, **kwargs):
        return _call(numpy_function, args, kwargs)
    function.__name__ = name
    return function


for _name in ("maximum", "minimum", "abs", "absolute", "exp", "log", "log1p", "expm1", "sqrt", "square", "tanh",
              "negative", "add", "subtract", "multiply", "divide", "true_divide", "power", "sign", "isfinite", "isnan",
              "where", "matmul", "dot", "trace", "bincount", "sum", "mean", "clip", "argmax", "argmin",
              "zeros_like", "ones_like", "empty_like", "full_like", "outer", "diag", "sort", "cumsum", "all", "any",
              "allclose", "array_equal", "logical_and", "logical_or", "logical_not", "floor", "ceil", "round"):
    globals()[_name] = _function(_name)


def _creator(name):
    numpy_function = getattr(_np, name)

    def function(*args, **kwargs):
        return ndarray(numpy_function(*args, **kwargs))
    function.__name__ = name
    return function


for _name in ("zeros", "ones", "empty", "full", "arange", "linspace", "eye"):
    globals()[_name] = _creator(_name)


def concatenate(arrays, axis=0, out=None, dtype=None):
    return ndarray(_np.concatenate([_unwrap(a) for a in arrays], axis=axis, dtype=dtype))


def stack(arrays, axis=0):
    return ndarray(_np.stack([_unwrap(a) for a in arrays], axis=axis))


def copyto(dst, src, casting="same_kind", where=True):
    if not isinstance(dst, ndarray):
        raise TypeError(f"copyto: dst must be a device array, got {type(dst).__name__}")
    if type(src) in (int, float, bool, complex):
        # CuPy < 13 asks numpy.can_cast about the Python scalar, which NumPy 2 refuses: pass a typed scalar or array
        raise TypeError(f"copyto: a Python {type(src).__name__} as src fails on CuPy releases before 13 under "
                        "NumPy 2 (numpy.can_cast no longer takes Python scalars); pass dst.dtype.type(value)")
    _np.copyto(dst._a, _unwrap(src), casting=casting, where=_unwrap(where))


for _name in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
              "uint64", "bool_", "complex64", "complex128", "dtype", "newaxis", "inf", "nan", "pi", "e"):
    globals()[_name] = getattr(_np, _name)

linalg = types.ModuleType("cupy.linalg")
for _name in ("eigh", "eigvalsh", "norm", "svd", "inv", "cholesky", "qr"):
    setattr(linalg, _name, (lambda f: lambda *a, **k: _call(f, a, k))(getattr(_np.linalg, _name)))


# ---------------------------------------------------------------------------------------------- cupy.cuda

cuda = types.ModuleType("cupy.cuda")
runtime = types.ModuleType("cupy.cuda.runtime")
cuda.runtime = runtime


class CUDARuntimeError(RuntimeError):
    pass


runtime.CUDARuntimeError = CUDARuntimeError
runtime.getDeviceCount = lambda: 1
runtime.getDeviceProperties = lambda device: {"name": b"minigan CuPy stand-in (NumPy on the CPU)",
                                              "totalGlobalMem": 0}


class _Stream:
    def synchronize(self) -> None:
        pass


class Device:
    def __init__(self, device=0):
        self.id = int(device)

    def synchronize(self) -> None:
        pass

    def use(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


cuda.Device = Device
cuda.Stream = _Stream
cuda.get_current_stream = lambda: _Stream()
cuda.is_available = lambda: True
sys.modules.setdefault("cupy.cuda", cuda)
sys.modules.setdefault("cupy.cuda.runtime", runtime)
sys.modules.setdefault("cupy.linalg", linalg)


def __getattr__(name):
    raise AttributeError(f"minigan's CuPy stand-in has no cupy.{name} (add it to tests/cupy_standin/cupy/__init__.py "
                         "if minigan now needs it)")

"""The one seam between minigan and its array libraries: NumPy on the CPU, CuPy on an NVIDIA GPU.

Engine code never asks "which backend is on?". It asks an array: ``xp = xp_of(x)`` returns the module
(``numpy`` or ``cupy``) that owns ``x``, and the op is written once with ``xp`` functions, operators (``@``,
``.T``, ``+=``) and array methods. This file is the only one that imports CuPy, and only when asked to.

Names a user may pass: ``"numpy"``, ``"cupy"`` and ``"auto"`` (CuPy when a GPU is usable, else NumPy). Where no
name is given, the environment variable ``MINIGAN_BACKEND`` decides, and then ``"numpy"``.
"""

from __future__ import annotations

import os

import numpy as np

BACKENDS = ("numpy", "cupy", "auto")


class BackendError(RuntimeError):
    """A requested backend cannot be used here (CuPy missing, or no CUDA device)."""


_checked_cupy = None  # the CuPy module whose devices were counted: checked once, not on every to_device


def _import_cupy():
    """Import CuPy and check that a CUDA device answers; raise BackendError saying what to do otherwise.

    The device count is asked once per imported CuPy module and remembered: ``to_device`` runs several times a
    training step, and counting GPUs is a driver call.
    """
    global _checked_cupy
    try:
        import cupy  # the only CuPy import in minigan
    except ImportError as err:
        raise BackendError(
            "backend 'cupy' needs CuPy, which is not installed. Install the extra that matches your CUDA "
            "toolkit: pip install 'minigan[gpu]' (CUDA 12, cupy-cuda12x) or pip install 'minigan[gpu-cuda13]' "
            f"(CUDA 13, cupy-cuda13x); or use --backend numpy. ({err})"
        ) from None
    if cupy is _checked_cupy:
        return cupy
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken: CuPy raises its own runtime error types
        raise BackendError(
            f"CuPy is installed but no CUDA device can be used ({type(err).__name__}: {err}). Check the NVIDIA "
            "driver with nvidia-smi, or use --backend numpy."
        ) from None
    if count < 1:
        raise BackendError("CuPy is installed but this machine has no CUDA device; use --backend numpy.")
    _checked_cupy = cupy
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and at least one CUDA device answers."""
    try:
        _import_cupy()
    except BackendError:
        return False
    return True


def resolve(name: str | None = None) -> str:
    """Turn a backend name (or None: ``$MINIGAN_BACKEND``, then ``"numpy"``) into ``"numpy"`` or ``"cupy"``.

    ``"cupy"`` is checked here, so a missing CuPy or GPU is reported before any work starts.
    """
    if name is None:
        name = os.environ.get("MINIGAN_BACKEND", "numpy")
    name = str(name).strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}: choose one of {', '.join(BACKENDS)}")
    if name == "auto":
        return "cupy" if cupy_available() else "numpy"
    if name == "cupy":
        _import_cupy()
    return name


def get_xp(name: str | None = None):
    """The array module (``numpy`` or ``cupy``) for a backend name."""
    return _import_cupy() if resolve(name) == "cupy" else np


def is_cupy_array(a) -> bool:
    """True for a CuPy ndarray, found without importing CuPy."""
    return type(a).__module__.startswith("cupy")


def backend_of(a) -> str:
    """``"cupy"`` or ``"numpy"``: where an array lives."""
    return "cupy" if is_cupy_array(a) else "numpy"


def xp_of(*arrays):
    """The array module shared by ``arrays``; a TypeError when NumPy and CuPy arrays are mixed.

    Non-array arguments (None, Python numbers) are ignored. With no array at all, NumPy is returned.
    """
    kinds = {backend_of(a) for a in arrays if isinstance(a, (np.ndarray, np.generic)) or is_cupy_array(a)}
    if len(kinds) > 1:
        raise TypeError(
            "mixed backends: got both NumPy and CuPy arrays in one operation. Move the model and the data to "
            "the same place, e.g. model.to('cupy') and minigan.backend.to_device(x, 'cupy'), or to_numpy(...)."
        )
    if kinds == {"cupy"}:
        import sys

        return sys.modules["cupy"]  # already imported, since one of its arrays exists
    return np


def to_device(a, backend: str):
    """Copy (or pass through) array ``a`` to ``"numpy"`` or ``"cupy"``; dtype is kept."""
    target = backend if backend in ("numpy", "cupy") else resolve(backend)  # the usual names need no resolving
    if target == "numpy":
        return to_numpy(a)
    cupy = _import_cupy()
    return cupy.asarray(a)


def to_numpy(a) -> np.ndarray:
    """A NumPy array holding ``a``'s values (a device-to-host copy for CuPy arrays)."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def synchronize(a=None) -> None:
    """Wait for queued GPU work (no-op on NumPy); timing code calls this before reading a clock."""
    if a is not None and is_cupy_array(a):
        import sys

        sys.modules["cupy"].cuda.get_current_stream().synchronize()

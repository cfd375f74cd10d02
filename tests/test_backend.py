"""The NumPy/CuPy seam: names, environment, clear errors, and moving arrays and models."""

import sys
from pathlib import Path

import numpy as np
import pytest

from minigan import backend, nn


def test_resolve_names_and_environment(monkeypatch):
    assert backend.resolve("numpy") == "numpy" and backend.resolve(" NumPy ") == "numpy"
    monkeypatch.setenv("MINIGAN_BACKEND", "numpy")
    assert backend.resolve() == "numpy"
    monkeypatch.delenv("MINIGAN_BACKEND")
    assert backend.resolve() == "numpy"
    assert backend.resolve("auto") in ("numpy", "cupy")
    with pytest.raises(ValueError, match="unknown backend 'torch': choose one of numpy, cupy, auto"):
        backend.resolve("torch")


def test_cupy_missing_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` fail like a missing package
    with pytest.raises(backend.BackendError, match=r"pip install 'minigan\[gpu\]'.*cupy-cuda12x.*--backend numpy"):
        backend.resolve("cupy")
    assert backend.resolve("auto") == "numpy" and not backend.cupy_available()


def test_cupy_without_a_device_says_so(monkeypatch):
    class NoDevice:
        class cuda:
            class runtime:
                @staticmethod
                def getDeviceCount():
                    raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    monkeypatch.setitem(sys.modules, "cupy", NoDevice)
    with pytest.raises(backend.BackendError, match="CuPy is installed but no CUDA device can be used.*nvidia-smi"):
        backend.resolve("cupy")


class FakeCupyArray(np.ndarray):
    """Looks like a CuPy array to the seam (its type lives in a 'cupy' module), without needing a GPU."""


FakeCupyArray.__module__ = "cupy._core.core"


def test_mixing_numpy_and_cupy_arrays_is_a_clear_type_error():
    fake = np.zeros(3).view(FakeCupyArray)
    with pytest.raises(TypeError, match="mixed backends: got both NumPy and CuPy arrays"):
        backend.xp_of(np.zeros(3), fake)
    layer = nn.Dense(3, 2, rng=0)
    layer.W.data = layer.W.data.view(FakeCupyArray)
    with pytest.raises(TypeError, match="mixed backends"):
        layer.forward(np.zeros((1, 3), np.float32))


def test_xp_of_and_moving_arrays():
    assert backend.xp_of(np.zeros(2), None, 3.0) is np and backend.xp_of() is np
    a = np.arange(3, dtype=np.float32)
    assert backend.to_numpy(a) is a and backend.to_device(a, "numpy").dtype == np.float32
    assert backend.backend_of(a) == "numpy"


def test_model_moves_to_numpy_and_back_with_identical_weights(backend_name):
    host = nn.Sequential(nn.Dense(4, 3, rng=5), nn.ReLU(), nn.Dense(3, 1, rng=6))
    moved = nn.Sequential(nn.Dense(4, 3, rng=5), nn.ReLU(), nn.Dense(4 - 1, 1, rng=6)).to(backend_name)
    assert all(backend.backend_of(p.data) == backend_name for p in moved.params())
    back = moved.to("numpy")
    for p, q in zip(host.params(), back.params()):
        np.testing.assert_array_equal(p.data, q.data)


def test_only_backend_imports_cupy():
    import pathlib

    root = pathlib.Path(backend.__file__).parent
    offenders = [p.name for p in root.rglob("*.py") if p.name != "backend.py" and "import cupy" in p.read_text()]
    assert offenders == []


def test_gpu_extras_pin_cupy_releases_that_import_under_every_allowed_numpy():
    """The gpu extras named no CuPy version: pip could pick a CuPy that cannot import under NumPy 2."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg")
    extras = cfg["options.extras_require"]
    assert extras["gpu"].split() == ["cupy-cuda12x>=13.6,<15"]
    assert extras["gpu-cuda13"].split() == ["cupy-cuda13x>=13.6,<15"]
    assert ">=13.6,<15" in (Path(__file__).resolve().parents[1] / "README.md").read_text()

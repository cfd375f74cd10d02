"""Shared fixtures: the hypothesis profiles and the backends every test runs on.

The "cupy" backend: a real CuPy with a CUDA device when this machine has one (the final judge, as in
``benchmarks/speed/gpu_checks.sh``); otherwise the strict test-only stand-in in ``tests/cupy_standin/cupy``, put in
front of ``sys.path`` here, so every ``[cupy]`` case runs on every test run. ``standin_env()`` gives a subprocess
(the CLI, a tutorial) the same stand-in through ``PYTHONPATH``.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from minigan import backend

# CI: derandomized and bounded, so a run is reproducible and its time predictable. Locally: a few more examples.
settings.register_profile("ci", derandomize=True, max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

REPO = Path(__file__).resolve().parents[1]
STANDIN_DIR = Path(__file__).resolve().parent / "cupy_standin"

#: A real CuPy that sees a CUDA device. When True, the stand-in is never put on the path.
HAVE_GPU = backend.cupy_available()
if not HAVE_GPU:
    for name in [m for m in sys.modules if m == "cupy" or m.startswith("cupy.")]:
        del sys.modules[name]  # a real CuPy without a device, half imported: make way for the stand-in
    sys.path.insert(0, str(STANDIN_DIR))
    import cupy  # noqa: E402  the stand-in

    assert getattr(cupy, "IS_STANDIN", False), f"expected minigan's CuPy stand-in, imported {cupy.__file__}"
#: True when the "cupy" cases run on the stand-in (NumPy underneath), False on a real GPU.
CUPY_IS_STANDIN = not HAVE_GPU
BACKENDS = ["numpy", "cupy"]


def standin_env(base=None) -> dict:
    """An environment for a subprocess that makes ``import cupy`` find the stand-in (and minigan from this tree).

    On a machine with a real GPU the environment is returned with only minigan's folder added: a subprocess then
    uses the real CuPy, as the in-process tests do.
    """
    env = dict(os.environ if base is None else base)
    paths = [str(REPO)] if HAVE_GPU else [str(STANDIN_DIR), str(REPO)]  # the stand-in first, as in this process
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    """Each test that takes this fixture runs once on NumPy and once on CuPy (real, or the stand-in)."""
    return request.param


@pytest.fixture
def xp(backend_name):
    return backend.get_xp(backend_name)


@pytest.fixture
def d2h_reads():
    """A function returning the device-to-host reads since the fixture started (stand-in only; a real GPU skips)."""
    if not CUPY_IS_STANDIN:
        pytest.skip("device-to-host reads are counted by the CuPy stand-in only")
    import cupy

    cupy.reset_d2h_reads()
    return cupy.d2h_reads


def to(xp, a):
    """Put a NumPy array on xp's backend."""
    return xp.asarray(a)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

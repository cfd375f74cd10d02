"""Shared fixtures: the hypothesis profiles and the backends present on this machine."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

from minigan import backend

# CI: derandomized and bounded, so a run is reproducible and its time predictable. Locally: a few more examples.
settings.register_profile("ci", derandomize=True, max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("dev", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

HAVE_GPU = backend.cupy_available()
BACKENDS = [
    "numpy",
    pytest.param("cupy", marks=pytest.mark.skipif(not HAVE_GPU, reason="CuPy or a CUDA device is missing")),
]


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    """Each test that takes this fixture runs once per backend present (CuPy cases skip cleanly without a GPU)."""
    return request.param


@pytest.fixture
def xp(backend_name):
    return backend.get_xp(backend_name)


def to(xp, a):
    """Put a NumPy array on xp's backend."""
    return xp.asarray(a)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

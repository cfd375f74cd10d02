"""Hypothesis strategies shared by the tests: small shapes (1-8) and well-scaled float64 values."""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

sizes = st.integers(min_value=1, max_value=8)
values = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_infinity=False, width=64)


def matrices(rows=sizes, cols=sizes, elements=values):
    """Float64 arrays of shape (rows, cols)."""
    return st.tuples(rows, cols).flatmap(lambda s: hnp.arrays(np.float64, s, elements=elements))


def batch_and_features():
    return st.tuples(sizes, sizes)


seeds = st.integers(min_value=0, max_value=2**32 - 1)

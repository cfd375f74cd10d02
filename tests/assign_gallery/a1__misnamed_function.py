EXPECT = {"lost": {"dense_backward:dx": 2, "dense_backward:dW": 2, "dense_backward:db": 2},
          "message": "dense_backward not found in your file (did you mean to name 'dense_bakward' 'dense_backward'?)"}

dense_bakward = dense_backward  # noqa: F821 - the typo this mutant makes
del dense_backward  # noqa: F821

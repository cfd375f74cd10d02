EXPECT = {"lost": {"dense_backward:dx": 2, "dense_backward:dW": 2, "dense_backward:db": 2},
          "message": "dense_backward not found in your file"}

del dense_backward  # noqa: F821 - the reference's, defined above this file once appended

# Code at the top level runs at import: one timeout zeroes the whole file (once, not once per function).
EXPECT = {"lost": {"dense_forward:y": 2, "dense_backward:dx": 2, "dense_backward:dW": 2, "dense_backward:db": 2,
                   "relu_forward:y": 2, "relu_backward:dx": 2, "leaky_relu_forward:y": 2,
                   "leaky_relu_backward:dx": 2, "sigmoid_forward:y": 2, "sigmoid_backward:dx": 2,
                   "tanh_forward:y": 2, "tanh_backward:dx": 2},
          "message": "importing your file did not finish within 2 s", "timeout": 2.0}

while True:
    pass

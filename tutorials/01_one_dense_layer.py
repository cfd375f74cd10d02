"""Tutorial 1 -- one Dense layer, forward and backward by hand, checked by finite differences.

Run: python tutorials/01_one_dense_layer.py

A dense layer computes y = x @ W + b. Given dL/dy (the "upstream gradient" dy), the chain rule gives
    dL/dx = dy @ W.T      dL/dW = x.T @ dy      dL/db = dy summed over the batch
This script does exactly that with minigan.functional, then lets the gradient checker confirm it.
"""

import numpy as np

from minigan import functional as F
from minigan.gradcheck import check_function

rng = np.random.default_rng(0)
x = rng.standard_normal((4, 3))  # a batch of 4 examples with 3 features
W = rng.standard_normal((3, 2))  # weights: (in, out)
b = np.zeros(2)

y, cache = F.dense_forward(x, W, b)  # y: (4, 2); cache remembers x and W for the backward pass
print("y =\n", y)

dy = np.ones_like(y)  # pretend the loss is L = sum(y): then dL/dy is all ones
dx, dW, db = F.dense_backward(dy, cache)
print("dW =\n", dW, "\n(each column is the sum of the inputs, since every output has slope 1)")
print("db =", db, "(the batch size, 4, for each output)")

# Is the hand-written backward right? Perturb each input a little and watch the loss move.
print(check_function(F.dense_forward, F.dense_backward, [x, W, b]))

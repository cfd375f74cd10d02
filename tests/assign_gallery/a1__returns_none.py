EXPECT = {"lost": {"relu_backward:dx": 2},
          "message": "relu_backward dx [visible: (4, 5) with exact zeros]: returned None"}


def relu_backward(dy, cache):
    dx = dy * (cache > 0)  # computed, but never returned

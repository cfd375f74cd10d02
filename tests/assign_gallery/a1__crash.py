EXPECT = {"lost": {"relu_backward:dx": 2}, "message": "crashed"}


def relu_backward(dy, cache):
    import os

    os._exit(3)

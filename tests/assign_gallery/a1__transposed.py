EXPECT = {"lost": {"dense_backward:dW": 2}, "mistakes": {"dense_backward:dW": "transposed"}}


def dense_backward(dy, cache):
    x, W = cache
    return dy @ W.T, dy.T @ x, dy.sum(axis=0)

EXPECT = {"lost": {"dense_backward:dW": 2}, "mistakes": {"dense_backward:dW": "batch_size"}}


def dense_backward(dy, cache):
    x, W = cache
    return dy @ W.T, x.T @ dy / x.shape[0], dy.sum(axis=0)

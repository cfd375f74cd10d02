EXPECT = {"lost": {"dense_backward:dx": 2}, "mistakes": {"dense_backward:dx": "sign"}}


def dense_backward(dy, cache):
    x, W = cache
    return -(dy @ W.T), x.T @ dy, dy.sum(axis=0)

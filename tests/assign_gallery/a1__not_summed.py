EXPECT = {"lost": {"dense_backward:db": 2}, "mistakes": {"dense_backward:db": "not_summed"}}


def dense_backward(dy, cache):
    x, W = cache
    return dy @ W.T, x.T @ dy, dy

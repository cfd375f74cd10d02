EXPECT = {"lost": {"tanh_backward:dx": 2}, "message": "ran out of memory"}


def tanh_backward(dy, cache):
    scratch = np.ones((100_000, 100_000))  # 80 GB
    return dy * (1 - cache**2) + 0 * scratch[0, 0]

EXPECT = {"lost": {"tanh_backward:dx": 2}, "mistakes": {"tanh_backward:dx": "tanh_from_input"}}


def tanh_backward(dy, cache):
    return dy * (1 - np.tanh(cache) ** 2)

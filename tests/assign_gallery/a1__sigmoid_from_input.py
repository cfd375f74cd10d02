EXPECT = {"lost": {"sigmoid_backward:dx": 2}, "mistakes": {"sigmoid_backward:dx": "sigmoid_from_input"}}


def sigmoid_backward(dy, cache):
    s = 1 / (1 + np.exp(-cache))  # the sigmoid applied again: the cache already holds y = sigmoid(x)
    return dy * s * (1 - s)

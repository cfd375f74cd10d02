EXPECT = {"lost": {"sigmoid_backward:dx": 2}, "mistakes": {"sigmoid_backward:dx": "dout_in_place"}}


def sigmoid_backward(dy, cache):
    dy *= cache * (1 - cache)
    return dy

EXPECT = {"lost": {"relu_backward:dx": 2}, "mistakes": {"relu_backward:dx": "relu_mask_always_on"},
          "notes": {"relu_backward:dx": None}}


def relu_backward(dy, cache):
    return dy * (cache >= 0)

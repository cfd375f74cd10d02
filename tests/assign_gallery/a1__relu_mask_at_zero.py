# A convention, not a mistake: reported as a note, no points lost.
EXPECT = {"lost": {}, "notes": {"leaky_relu_backward:dx": "relu_at_zero"}}


def leaky_relu_backward(dy, cache):
    y, slope = cache
    return np.where(y >= 0, dy, slope * dy)

# The sign explains some failing elements, not all: a mistake is named only when it explains every one.
EXPECT = {"lost": {"dense_backward:dx": 2}, "mistakes": {"dense_backward:dx": None}}


def dense_backward(dy, cache):
    x, W = cache
    dx = dy @ W.T
    dx[0] *= -1  # the first example's gradient flipped ...
    if len(dx) > 1:
        dx[1] *= 3  # ... and the second one's scaled: no single mistake explains both
    return dx, x.T @ dy, dy.sum(axis=0)

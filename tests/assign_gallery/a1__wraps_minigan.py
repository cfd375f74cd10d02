EXPECT = {"lost": {"tanh_backward:dx": 2}, "message": "tanh_backward calls minigan.functional.tanh_backward"}

from minigan import functional as F  # noqa: E402


def tanh_backward(dy, cache):
    return F.tanh_backward(dy, cache)

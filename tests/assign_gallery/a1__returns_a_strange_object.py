EXPECT = {"lost": {"relu_forward:y": 2}, "message": "y is a Strange, not an array of numbers"}


class Strange:
    def __array__(self, *args, **kwargs):
        raise RuntimeError("no array here")


def relu_forward(x, out=None):
    return Strange(), np.maximum(x, 0)

EXPECT = {"lost": {"relu_forward:y": 2}, "message": "y has shape (20,), expected (4, 5)"}


def relu_forward(x, out=None):
    y = np.maximum(x, 0).reshape(-1)
    return y, np.maximum(x, 0)

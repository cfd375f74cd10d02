EXPECT = {"lost": {"tanh_forward:y": 2}, "message": "is NaN or infinite"}


def tanh_forward(x, out=None):
    y = np.tanh(x)
    y[0, 0] = np.nan
    return y, y

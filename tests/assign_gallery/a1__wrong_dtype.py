EXPECT = {"lost": {"sigmoid_forward:y": 2}, "message": "has dtype float32, expected float64"}


def sigmoid_forward(x, out=None):
    y = (1 / (1 + np.exp(-x))).astype(np.float32)
    return y, y

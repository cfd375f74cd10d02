EXPECT = {"lost": {"relu_forward:y": 2}, "message": "did not finish within", "timeout": 2.0}


def relu_forward(x, out=None):
    while True:
        pass

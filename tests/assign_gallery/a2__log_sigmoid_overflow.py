EXPECT = {"lost": {"bce_with_logits_forward:loss": 2}, "mistakes": {"bce_with_logits_forward:loss": "overflow"}}


def bce_with_logits_forward(z, y):
    s = 1 / (1 + np.exp(-z))
    loss = -(y * np.log(s) + (1 - y) * np.log(1 - s)).mean()
    return np.asarray(loss, dtype=z.dtype), (z, y)

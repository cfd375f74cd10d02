EXPECT = {"lost": {"softmax_cross_entropy_backward:dlogits": 2},
          "mistakes": {"softmax_cross_entropy_backward:dlogits": "sign"}}


def softmax_cross_entropy_backward(dloss, cache):
    probs, labels = cache
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1
    return (onehot - probs) * dloss / probs.shape[0]

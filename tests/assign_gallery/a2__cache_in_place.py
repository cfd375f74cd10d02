# The classic: the one-hot subtracted from the cached probabilities themselves.
EXPECT = {"lost": {"softmax_cross_entropy_backward:dlogits": 2},
          "mistakes": {"softmax_cross_entropy_backward:dlogits": "cache_in_place"}}


def softmax_cross_entropy_backward(dloss, cache):
    probs, labels = cache
    probs[np.arange(probs.shape[0]), labels] -= 1
    return probs * (dloss / probs.shape[0])

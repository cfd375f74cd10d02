EXPECT = {"lost": {"mse_backward:dpred": 2}, "mistakes": {"mse_backward:dpred": "batch_size"}}


def mse_backward(dloss, cache):
    return 2 * dloss * cache

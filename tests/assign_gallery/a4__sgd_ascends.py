# Wrong, but no catalogued mistake explains it: nothing may be named.
EXPECT = {"lost": {"sgd_momentum_step:w_new": 2}, "mistakes": {"sgd_momentum_step:w_new": None}}


def sgd_momentum_step(w, grad, velocity, lr, momentum=0.9):
    v_new = momentum * velocity + grad
    return w + lr * v_new, v_new

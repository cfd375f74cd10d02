EXPECT = {"lost": {"sgd_momentum_step:w_new": 2, "sgd_momentum_step:v_new": 2},
          "mistakes": {"sgd_momentum_step:v_new": "input_in_place"}}


def sgd_momentum_step(w, grad, velocity, lr, momentum=0.9):
    velocity *= momentum
    velocity += grad
    return w - lr * velocity, velocity

EXPECT = {"lost": {"adam_step:w_new": 2}, "mistakes": {"adam_step:w_new": "no_bias_correction"}}


def adam_step(w, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    m_new = beta1 * m + (1 - beta1) * grad
    v_new = beta2 * v + (1 - beta2) * grad * grad
    return w - lr * m_new / (np.sqrt(v_new) + eps), m_new, v_new

# %% [markdown]
# # Assignment 4 -- optimizers
#
# Each function takes the current values and returns NEW arrays (never modify an argument in place), so one call
# is one optimizer step for one parameter array ``w``. Self-check: ``minigan assign check a4 a4_optimizers.py``.
# Lesson: ``tutorials/05_training_an_mlp.py``.

# %%
import numpy as np


# %%
def sgd_momentum_step(w, grad, velocity, lr, momentum=0.9):
    """One step of SGD with momentum, PyTorch's form: ``v_new = momentum * v + grad``, ``w_new = w - lr * v_new``.

    w, grad and velocity share one shape; velocity starts at zeros (so the first step is plain SGD).
    Returns ``(w_new, v_new)``.
    """
    ### BEGIN SOLUTION
    v_new = momentum * velocity + grad
    return w - lr * v_new, v_new
    ### END SOLUTION


# %%
def adam_step(w, grad, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam step with bias correction (Kingma & Ba, 2015); t is this step's number, starting at 1.

    ``m_new = beta1 m + (1 - beta1) grad``, ``v_new = beta2 v + (1 - beta2) grad**2``,
    ``m_hat = m_new / (1 - beta1**t)``, ``v_hat = v_new / (1 - beta2**t)``,
    ``w_new = w - lr * m_hat / (sqrt(v_hat) + eps)``. m and v start at zeros. Returns ``(w_new, m_new, v_new)``.
    """
    ### BEGIN SOLUTION
    m_new = beta1 * m + (1 - beta1) * grad
    v_new = beta2 * v + (1 - beta2) * grad * grad
    m_hat = m_new / (1 - beta1**t)  # without it the first steps are far too small (m starts at 0)
    v_hat = v_new / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m_new, v_new
    ### END SOLUTION

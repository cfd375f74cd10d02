# %% [markdown]
# # Assignment 3 -- the GAN step by hand
#
# A GAN small enough to follow every number: the generator is one affine map ``G(z) = z @ Wg + bg`` and the
# discriminator is logistic regression, ``logit = x @ Wd + bd``, ``D(x) = sigmoid(logit)``, its belief that x is
# real. Shapes: z ``(N, k)``, Wg ``(k, d)``, bg ``(d,)``, x ``(N, d)``, Wd ``(d, 1)``, bd ``(1,)``, logits ``(N, 1)``.
#
# Work from logits (``softplus(t) = log(1 + exp(t)) = max(t, 0) + log1p(exp(-|t|))``): ``-log D = softplus(-logit)``
# and ``-log(1 - D) = softplus(logit)`` stay finite for any logit, where ``log(1 - sigmoid(logit))`` does not.
# Never modify an argument in place; return new arrays.
# Self-check: ``minigan assign check a3 a3_gan_step.py``. Lessons: ``tutorials/06_gan_losses.py``,
# ``tutorials/07_gan_step_by_hand.py``.

# %%
import numpy as np


def _softplus(t):
    """``log(1 + exp(t))`` without overflow (a helper you may use)."""
    return np.maximum(t, 0) + np.log1p(np.exp(-np.abs(t)))


def _sigmoid(t):
    """``1 / (1 + exp(-t))`` without overflow (a helper you may use)."""
    e = np.exp(-np.abs(t))
    return np.where(t >= 0, 1 / (1 + e), e / (1 + e))


# %%
def discriminator_loss(logits_real, logits_fake):
    """The discriminator's loss ``L_D = -mean(log D(x)) - mean(log(1 - D(G(z))))`` and its gradient.

    logits_real ``(N, 1)`` are D's logits on real data, logits_fake ``(M, 1)`` on generated data.
    Returns ``(L_D, dlogits_real, dlogits_fake)``: L_D a 0-d array (or NumPy float), the gradients shaped like
    their logits. Compute the loss from the logits, stably (lesson 3), and derive the two gradients (lesson 6):
    which sign must each have?
    """
    ### BEGIN SOLUTION
    n_real, n_fake = logits_real.size, logits_fake.size
    loss = _softplus(-logits_real).mean() + _softplus(logits_fake).mean()
    dlogits_real = (_sigmoid(logits_real) - 1) / n_real
    dlogits_fake = _sigmoid(logits_fake) / n_fake
    return np.asarray(loss), dlogits_real, dlogits_fake
    ### END SOLUTION


def generator_loss(logits_fake, kind="nonsaturating"):
    """The generator's loss on D's logits for a fake batch ``(M, 1)``, and ``dL_G/dlogits_fake``.

    * ``kind="nonsaturating"`` (the default, used in practice): ``L_G = -mean(log D(G(z)))``;
    * ``kind="minimax"`` (the game as written in the paper): ``L_G = mean(log(1 - D(G(z))))``.

    Derive each gradient with respect to the logits (lesson 6 shows why one of them vanishes when D rejects the
    fakes).

    Returns ``(L_G, dlogits_fake)``; raise ValueError for any other kind.
    """
    ### BEGIN SOLUTION
    m = logits_fake.size
    if kind == "nonsaturating":
        return np.asarray(_softplus(-logits_fake).mean()), (_sigmoid(logits_fake) - 1) / m
    if kind == "minimax":
        return np.asarray(-_softplus(logits_fake).mean()), -_sigmoid(logits_fake) / m
    raise ValueError(f"unknown generator loss {kind!r}")
    ### END SOLUTION


# %%
def generator_gradients(z, Wg, bg, Wd, bd, kind="nonsaturating"):
    """``L_G`` and the generator's parameter gradients, back-propagated THROUGH the frozen discriminator.

    fake = ``z @ Wg + bg`` ``(N, d)``; logits = ``fake @ Wd + bd`` ``(N, 1)``; ``L_G`` from ``generator_loss``.
    Returns ``(L_G, dWg, dbg)`` with dWg ``(k, d)`` and dbg ``(d,)``. D is frozen: Wd and bd are read, never
    changed, and their gradients are not needed.
    """
    ### BEGIN SOLUTION
    fake = z @ Wg + bg  # (N, d)
    logits = fake @ Wd + bd  # (N, 1)
    loss, dlogits = generator_loss(logits, kind)
    dfake = dlogits @ Wd.T  # (N, d): the gradient flows through D into its input
    return loss, z.T @ dfake, dfake.sum(axis=0)
    ### END SOLUTION


# %%
def gan_step(real, z_d, z_g, Wg, bg, Wd, bd, lr, kind="nonsaturating"):
    """One alternating GAN step with plain gradient descent (learning rate lr); returns a dict of new values.

    1. D step: fake = ``G(z_d)`` is plain data (no gradient into G); ``L_D`` on D's logits of real and fake;
       ``Wd_new = Wd - lr * dL_D/dWd``, ``bd_new = bd - lr * dL_D/dbd``.
    2. G step, against the UPDATED discriminator (``Wd_new``, ``bd_new``) with fresh noise z_g:
       ``Wg_new = Wg - lr * dL_G/dWg``, ``bg_new = bg - lr * dL_G/dbg``. D does not move in this step.

    Returns ``{"Wg": Wg_new, "bg": bg_new, "Wd": Wd_new, "bd": bd_new, "L_D": L_D, "L_G": L_G}``
    (L_D from step 1, L_G from step 2); the arguments themselves are left unchanged.
    """
    ### BEGIN SOLUTION
    fake = z_d @ Wg + bg  # (N, d), data for D
    loss_d, dreal, dfake = discriminator_loss(real @ Wd + bd, fake @ Wd + bd)
    dWd = real.T @ dreal + fake.T @ dfake  # (d, 1)
    dbd = dreal.sum(axis=0) + dfake.sum(axis=0)  # (1,)
    Wd_new, bd_new = Wd - lr * dWd, bd - lr * dbd
    loss_g, dWg, dbg = generator_gradients(z_g, Wg, bg, Wd_new, bd_new, kind)
    return {"Wg": Wg - lr * dWg, "bg": bg - lr * dbg, "Wd": Wd_new, "bd": bd_new, "L_D": loss_d, "L_G": loss_g}
    ### END SOLUTION

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lesson 3: binary cross-entropy, stably
#
# A GAN's discriminator D answers one question per image, "real or fake?", and is trained with **binary
# cross-entropy** (BCE). The classic GAN tutorial this project grew from computes it the textbook way: a sigmoid
# turns D's score into a probability `p`, then `-[y log p + (1 - y) log(1 - p)]`. That is its third mistake:
# once D is confident, the loss becomes `inf` or `NaN`, and one NaN in a batch poisons every weight at the next
# step. This lesson shows exactly where and why it breaks, and the form that never does.
#
# Derivation: [docs/derivations.md](../docs/derivations.md#bce-from-logits).
#
# **Notation.** D's last layer is a `Dense` with one output and *no* activation: its output `z` is a **logit**,
# any real number. `p = sigmoid(z) = 1 / (1 + e^{-z})` is D's belief that the input is real; `y` is the target
# (1 for real, 0 for fake). The loss per example is
#
# $$\ell(z, y) = -\,y \log \sigma(z) - (1 - y) \log\big(1 - \sigma(z)\big).$$

# %%
import numpy as np
import matplotlib.pyplot as plt

from minigan import functional as F
from minigan.gradcheck import check_function
from minigan.lesson import Lesson

lesson = Lesson("03_stable_bce")

# %% [markdown]
# ## The naive form, in float32
#
# Logits from a confident D: -40 ("certainly fake") to +40 ("certainly real"), each with both targets. We compute
# `p` with minigan's sigmoid (which itself never overflows) and then the textbook loss.
#
# Why `np.errstate`? NumPy reports `log(0)` and `0 * inf` with a `RuntimeWarning` and carries on with `-inf` and
# `NaN`. Here we *want* to look at those values, so we silence the warnings inside this one block, on purpose
# and nowhere else. (In training code leave the warnings on, or stop at the first non-finite loss, as
# `minigan train` does. The test suite even turns such warnings into errors.)

# %%
def naive_bce(p, y):
    """Per-example textbook BCE on probabilities: -[y log p + (1 - y) log(1 - p)]."""
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def naive_dloss_dz(p, y):
    """The same loss's gradient with respect to the logit, by the chain rule through the sigmoid:
    dL/dp = (p - y) / (p (1 - p)) (as minigan.functional.bce_backward), times dp/dz = p (1 - p)."""
    dL_dp = (p - y) / (p * (1 - p))
    return dL_dp * (p * (1 - p))


logits = np.array([-40, -17, 0, 17, 40], dtype=np.float32)
with np.errstate(divide="ignore", invalid="ignore"):
    p, _ = F.sigmoid_forward(logits)  # float32 probabilities
    naive = {t: naive_bce(p, np.float32(t)) for t in (0, 1)}
    naive_grad = {t: naive_dloss_dz(p, np.float32(t)) for t in (0, 1)}
    naive_batch = F.bce_forward(np.concatenate([p, p]), np.repeat(np.float32([0, 1]), len(p)))[0]

print(f"{'logit':>6} {'p = sigmoid(z)':>16} {'loss, y=0':>10} {'loss, y=1':>10} {'dL/dz, y=0':>11} {'dL/dz, y=1':>11}")
for k, z in enumerate(logits):
    print(f"{z:6.0f} {p[k]:16.9g} {naive[0][k]:10.4g} {naive[1][k]:10.4g} {naive_grad[0][k]:11.4g} "
          f"{naive_grad[1][k]:11.4g}")
print("mean naive BCE over this batch:", float(naive_batch))

# %% [markdown]
# ### What went wrong, and why only on one side
#
# Look at the row z = 40: `p` is **exactly 1.0**. float32 carries about 7 significant digits, and numbers just
# below 1 are spaced 6e-8 apart, so `1 - 4e-18` rounds to 1. Then `log(1 - p) = log(0) = -inf`:
#
# * y = 0 (a fake that D calls real with total confidence): loss `inf`;
# * y = 1 (a real image, correctly called real): `(1 - y) * log(1 - p) = 0 * (-inf) = NaN`. The *correct* answer
#   produces NaN, and a NaN anywhere makes the batch mean NaN.
#
# The gradient is worse: `dL/dp = (p - y) / (p (1 - p))` divides by 0, and `dp/dz = p (1 - p)` is 0, so the
# chain rule multiplies `inf` by 0 and returns NaN for both targets.
#
# The row z = -40 survives, by luck of where floats are dense: `p = 4.2e-18` is tiny but representable (float32
# reaches down to 1e-38, and to 1e-45 with denormals), so `log p` is finite. The negative side fails only near
# z ≈ -103.3, where the sigmoid underflows to exactly 0. (It is not *accurate*, though: at z = -17, y = 0 it gives
# 5.96e-8 where the true loss is 4.14e-8, because `1 - p` has lost most of p's digits.) The positive side fails
# from z ≈ 16.6 on. Where exactly?

# %%
def first_saturating_logit(dtype):
    """The smallest logit at which sigmoid(z) rounds to exactly 1 in this dtype."""
    z = np.arange(0, 60, 0.001).astype(dtype)
    return float(z[np.argmax(F.sigmoid_forward(z)[0] == 1)])


saturates_at = {np.dtype(d).name: first_saturating_logit(d) for d in (np.float32, np.float64)}
print("sigmoid(z) == 1 exactly from z =", saturates_at)

# %% [markdown]
# float64 does not save you: it only moves the cliff from z ≈ 16.6 to z ≈ 36.7, and a discriminator reaches
# either within a few hundred steps on easy data.
#
# A common patch (Keras does it) is to clip `p` into `[1e-7, 1 - 1e-7]` before the log. The loss stays finite, but
# it is wrong (capped near 16) and, worse, flat: the clip has derivative 0, so a confidently wrong D receives
# **no gradient at all**, exactly when it most needs one.

# %%
def clipped_bce_and_grad(z, y, clip=1e-7):
    p = F.sigmoid_forward(np.atleast_1d(np.asarray(z, dtype=np.float32)))[0]
    p_clipped = np.clip(p, np.float32(clip), np.float32(1 - clip))
    inside = (p > clip) & (p < 1 - clip)  # the clip passes gradient only where it did not bite
    return naive_bce(p_clipped, np.float32(y)), np.where(inside, p - y, 0)


clipped_loss_at_40, clipped_grad_at_40 = (float(v[0]) for v in clipped_bce_and_grad(40.0, 0))
print(f"clipped BCE at z=40, y=0: loss {clipped_loss_at_40:.3f} (true value 40), dL/dz {clipped_grad_at_40}")

# %% [markdown]
# ## The stable form: BCE from logits
#
# Never form `p`. Write the two logs in terms of z (use `1 - σ(z) = σ(-z)` and `-log σ(z) = log(1 + e^{-z})`):
#
# $$-\log(1 - \sigma(z)) = \log(1 + e^{z}) = \mathrm{softplus}(z), \qquad
#   -\log \sigma(z) = \mathrm{softplus}(z) - z,$$
#
# so both targets at once are
#
# $$\ell(z, y) = \mathrm{softplus}(z) - y\,z, \qquad \mathrm{softplus}(z) = \max(z, 0) + \log\!\big(1 + e^{-|z|}\big).$$
#
# The second way of writing softplus is the trick: `e^{-|z|}` lies in (0, 1], so it cannot overflow, and
# `log1p` keeps its precision when it is tiny. Its gradient is the famous "prediction minus target",
#
# $$\frac{\partial \ell}{\partial z} = \sigma(z) - y,$$
#
# always in [-1, 1], never NaN, and largest when D is confidently wrong (z = 40 on a fake: gradient 1). This is
# `minigan.functional.bce_with_logits_forward` / `_backward` (`losses.BCEWithLogits`), the loss every GAN in
# minigan uses. Check it against the closed form computed independently in float64 (NumPy's `logaddexp(0, z)`
# is `log(e^0 + e^z)`, and `sigmoid(z) = (1 + tanh(z / 2)) / 2`).

# %%
z_all = np.linspace(-1000, 1000, 20001).astype(np.float32)  # far beyond any logit a network produces
stable_rel_error, grad_abs_error, all_finite = 0.0, 0.0, True
for t in (0, 1):
    y = np.full_like(z_all, t)
    per_example = F.softplus(z_all) - y * z_all  # float32, the minigan formula
    closed_form = np.logaddexp(0.0, z_all.astype(np.float64)) - t * z_all.astype(np.float64)  # float64
    all_finite &= bool(np.isfinite(per_example).all())
    # relative error for large losses, absolute for losses below 1 (see the note after this cell)
    error = np.abs(per_example - closed_form) / np.maximum(np.abs(closed_form), 1.0)
    stable_rel_error = max(stable_rel_error, float(error.max()))
    loss, cache = F.bce_with_logits_forward(z_all, y)
    dz = F.bce_with_logits_backward(1.0, cache) * z_all.size  # undo the 1/n of the mean
    exact_grad = 0.5 * (1 + np.tanh(z_all.astype(np.float64) / 2)) - t  # sigmoid, written another way
    grad_abs_error = max(grad_abs_error, float(np.abs(dz - exact_grad).max()))
    all_finite &= bool(np.isfinite(loss)) and bool(np.isfinite(dz).all())
print(f"finite for every logit in [-1000, 1000]: {all_finite}")
print(f"worst error against the float64 closed form (relative, or absolute below 1): {stable_rel_error:.1e}")
print(f"worst |dL/dz - (sigmoid(z) - y)|: {grad_abs_error:.1e}")

stable = {t: F.softplus(logits) - np.float32(t) * logits for t in (0, 1)}
for k, z in enumerate(logits):
    print(f"z = {z:4.0f}: loss for y=0 {stable[0][k]:10.4g}, for y=1 {stable[1][k]:10.4g}")

# %% [markdown]
# One thing to notice in the last lines: at z = 40, y = 1 the loss prints as 0, not the true 4.2e-18. The formula
# computes `softplus(40) - 40`, and `softplus(40) = 40 + 4.2e-18` rounds to 40 before the subtraction. That is an
# *absolute* error of 4e-18, far below anything training can feel, which is why the comparison above measures
# small losses by their absolute error; it is never inf or NaN, and the gradient `sigmoid(z) - y` (what actually
# trains D) is exact to float32 precision. (Exercise 4 asks you to reorder the terms so even this goes away.)
#
# And the backward pass passes a gradient check (in float64) on logits spread over [-40, 40]. At z = -40, y = 0
# the gradient is 4e-18/17 and the finite difference is 0: both "zero" for every practical purpose, but a plain
# relative error `|a - n| / max(|a|, |n|)` would call them 100% apart. The checker floors that denominator at
# `atol`, so such an element reads as a relative error near 0; lesson 4 explains why it tests
# `|a - n| <= atol + rtol |n|` rather than the relative error alone.

# %%
z_check = np.linspace(-40, 40, 17).reshape(-1, 1)
y_check = (np.arange(17) % 2).astype(np.float64).reshape(-1, 1)
bce_check = check_function(F.bce_with_logits_forward, F.bce_with_logits_backward, [z_check, y_check], wrt=[0],
                           names=["dz", "dy"])
print(bce_check)

# %% [markdown]
# ## Both forms, side by side
#
# Left: the loss for a fake (y = 0) as D's logit grows; the naive float32 curve stops where it becomes `inf`
# (crosses mark the NaN/inf region), the clipped one flattens at 16, the logit form keeps rising as a straight
# line of slope 1. Right: the gradient each form sends back into D.

# %%
z_plot = np.linspace(-30, 30, 601).astype(np.float32)
with np.errstate(divide="ignore", invalid="ignore"):
    p_plot = F.sigmoid_forward(z_plot)[0]
    naive_plot, naive_grad_plot = naive_bce(p_plot, np.float32(0)), naive_dloss_dz(p_plot, np.float32(0))
clip_plot, clip_grad_plot = clipped_bce_and_grad(z_plot, 0)
stable_plot = F.softplus(z_plot)
stable_grad_plot = F.sigmoid_forward(z_plot)[0]

fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(11, 4))
for ax, naive_values, clip_values, stable_values in ((ax_loss, naive_plot, clip_plot, stable_plot),
                                                      (ax_grad, naive_grad_plot, clip_grad_plot, stable_grad_plot)):
    broken = ~np.isfinite(naive_values)
    ax.plot(z_plot, stable_values, lw=4, alpha=0.5, label="from logits: softplus(z) - y z")
    ax.plot(z_plot, clip_values, "--", label="clipped p (Keras style)")
    ax.plot(z_plot[~broken], naive_values[~broken], label="naive, float32")
    ax.plot(z_plot[broken][::20], np.zeros(broken.sum())[::20], "rx", label="naive: inf or NaN")
    ax.set_xlabel("D's logit z on a fake (target y = 0)")
    ax.legend(fontsize=8)
ax_loss.set_ylabel("loss")
ax_grad.set_ylabel("dL/dz")
lesson.save(fig, "bce_naive_vs_logits.png")

# %% [markdown]
# ## Why D outputs a logit
#
# Because then the loss can be computed from `z` itself, as above, and nothing ever rounds to 0 or 1 on the way.
# If D ended in a sigmoid, the information that separates z = 20 from z = 40 would be gone before the loss saw
# it. So in minigan D's last layer is a plain `Dense(…, 1)`; `D(x) = sigmoid(logit)` is computed only to *report*
# how sure D is (the `D(x)` and `D(G(z))` curves of lesson 9), never to train it. The same holds for any
# classifier: the softmax is folded into the loss (`softmax_cross_entropy` in lesson 5, derivation
# [here](../docs/derivations.md#softmax-cross-entropy)).

# %%
lesson.record(
    naive_loss_plus40_fake=float(naive[0][-1]), naive_loss_plus40_real=float(naive[1][-1]),
    naive_loss_minus40_real=float(naive[1][0]), naive_loss_minus40_fake=float(naive[0][0]),
    naive_grad_plus40_fake=float(naive_grad[0][-1]), naive_grad_plus40_real=float(naive_grad[1][-1]),
    naive_batch_mean=float(naive_batch), naive_loss_17_fake=float(naive[0][3]),
    saturates_float32=saturates_at["float32"], saturates_float64=saturates_at["float64"],
    clipped_loss_plus40_fake=clipped_loss_at_40, clipped_grad_plus40_fake=clipped_grad_at_40,
    stable_finite=all_finite, stable_rel_error=stable_rel_error, stable_grad_abs_error=grad_abs_error,
    stable_loss_plus40_fake=float(stable[0][-1]), stable_loss_plus40_real=float(stable[1][-1]),
    stable_loss_minus40_real=float(stable[1][0]), stable_loss_minus40_fake=float(stable[0][0]),
    gradcheck_ok=bce_check.ok, gradcheck_abs_error=bce_check["dz"].max_abs_error,
)

# %% [markdown]
# ## What you should see
#
# | what | key | value |
# |---|---|---|
# | naive BCE, z = +40, fake (y = 0) | `naive_loss_plus40_fake` | inf |
# | naive BCE, z = +40, real (y = 1): 0 · (-inf) | `naive_loss_plus40_real` | nan |
# | naive BCE, z = +17, fake (true value 17) | `naive_loss_17_fake` | inf |
# | naive BCE, z = -40, real: still finite (float32 holds 4e-18) | `naive_loss_minus40_real` | 40.0 ± 1e-4 |
# | naive gradient at z = +40, fake | `naive_grad_plus40_fake` | nan |
# | naive gradient at z = +40, real | `naive_grad_plus40_real` | nan |
# | the naive batch mean | `naive_batch_mean` | nan |
# | sigmoid(z) is exactly 1 from, float32 | `saturates_float32` | 16.636 ± 0.002 |
# | ... and in float64 | `saturates_float64` | 36.737 ± 0.002 |
# | clipped BCE at z = +40, fake: finite but wrong | `clipped_loss_plus40_fake` | 15.94 ± 0.01 |
# | and its gradient: none | `clipped_grad_plus40_fake` | 0 |
# | from logits, z = +40, fake | `stable_loss_plus40_fake` | 40.0 ± 1e-4 |
# | from logits, z = +40, real (true 4e-18, prints 0) | `stable_loss_plus40_real` | < 1e-17 |
# | from logits, z = -40, real | `stable_loss_minus40_real` | 40.0 ± 1e-4 |
# | finite for every logit in [-1000, 1000] | `stable_finite` | true |
# | worst error vs the closed form (relative; absolute below 1) | `stable_rel_error` | < 1e-6 |
# | worst error of the gradient vs sigmoid(z) - y | `stable_grad_abs_error` | < 1e-6 |
# | the gradient check of `bce_with_logits` | `gradcheck_ok` | true |
# | its worst absolute error | `gradcheck_abs_error` | < 1e-8 |
#
# and `bce_naive_vs_logits.png`: the naive curves break off at z ≈ 16.6, the clipped ones go flat, the logit
# form goes on.
#
# ## Exercises
#
# 1. **Predict, then run.** Repeat the naive table in float64. Which of the five rows break now? At which logit
#    would they break? (Hint: where numbers just below 1 are 1.1e-16 apart.)
# 2. **Implement and check.** Write `bce_with_logits` for *soft* targets, e.g. y = 0.9 for real images (one-sided
#    label smoothing). Does the formula change? Check the gradient with `check_function` at z = ±40.
# 3. **Predict.** With the clipped loss, a discriminator's logits on fakes drift to +25 after a bad step. How much
#    gradient does D get to correct itself? And with the logit form?
# 4. **Derive and improve.** Show that `softplus(z) - z = softplus(-z)`. Then reorder
#    `max(z, 0) + log1p(exp(-|z|)) - y z` so that z = 40, y = 1 gives 4.2e-18 instead of 0 in float32, and check
#    that your version still matches the closed form everywhere.
#
# Answers: [answers/03_stable_bce.md](answers/03_stable_bce.md).

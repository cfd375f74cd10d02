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
# # Lesson 6: the GAN game and its two losses
#
# A generative adversarial network is two networks playing a game. The **generator** G turns noise `z` into a
# sample `G(z)`. The **discriminator** D looks at a sample and outputs a *logit* `l`; `D(x) = sigmoid(l)` is its
# belief that `x` is real. D wants to tell real from fake; G wants its fakes to be called real.
#
# This lesson writes the two losses down, derives where they come from, shows in a plot why the generator's loss
# "as written in the paper" stalls, and then makes the mistake of the classic GAN tutorial on purpose (one sign in
# `L_D`) to see what it does to training -- and why a gradient check cannot see it.
#
# Run it as a script (`python tutorials/06_gan_losses.py`) or as a notebook
# (`jupytext --to ipynb tutorials/06_gan_losses.py`). Figures and `results.json` go to
# `tutorial_output/06_gan_losses/`. The derivations in full: [docs/derivations.md](../docs/derivations.md#gan-losses).
#
# ## The discriminator's loss
#
# D is a binary classifier: target 1 for real data, 0 for generated data. Its loss is the binary cross-entropy of
# the two halves, **summed**:
#
# $$L_D = -\mathbb{E}_x[\log D(x)] \;-\; \mathbb{E}_z[\log(1 - D(G(z)))].$$
#
# Both terms are non-negative (a log of a probability is at most 0) and both shrink as D gets better: the first
# when `D(x) -> 1`, the second when `D(G(z)) -> 0`. **Both minus signs matter.** The classic tutorial writes
# `L_D = -E[log D(x)] + E[log(1 - D(G(z)))]`. Minimising `+log(1 - D(G(z)))` drives it towards `-inf`, that is,
# drives `D(G(z)) -> 1`: D is rewarded for calling fakes real. We will run that below.
#
# minigan computes both terms from the logit, never from `sigmoid(l)` (lesson 3,
# [BCE from logits](../docs/derivations.md#bce-from-logits)):
# `-log D = softplus(-l)` and `-log(1 - D) = softplus(l)`, finite for any logit.
#
# **Why this loss?** For a fixed G, the D that minimises `L_D` is `D*(x) = p_data(x) / (p_data(x) + p_G(x))`
# (minimise the integrand pointwise: `-p log D - q log(1 - D)` has its minimum at `D = p / (p + q)`). Putting `D*`
# back in gives `L_D(D*) = log 4 - 2 JS(p_data || p_G)`: the better D can do, the farther apart the two
# distributions are. G's job is to make that best D as bad as possible, which happens exactly when `p_G = p_data`.
#
# ## The generator's loss: minimax and non-saturating
#
# The game as written by Goodfellow et al. (2014) is `min_G max_D` of the same value function, so G minimises the
# only term it can change:
#
# $$L_G^{\text{minimax}} = \mathbb{E}_z[\log(1 - D(G(z)))].$$
#
# The paper itself warns that this saturates, and proposes the **non-saturating** loss instead (same fixed point,
# G still wants `D(G(z)) -> 1`):
#
# $$L_G^{\text{non-sat}} = -\mathbb{E}_z[\log D(G(z))].$$
#
# **The short derivation** that explains everything: with `s = sigmoid(l)` and `ds/dl = s (1 - s)`,
#
# * `d/dl log(1 - s) = -s (1 - s) / (1 - s) = -s`, so the minimax gradient per sample is `-D(G(z))`;
# * `d/dl (-log s) = -s (1 - s) / s = s - 1`, so the non-saturating gradient is `D(G(z)) - 1`.
#
# Early in training D easily rejects the fakes: `D(G(z)) ~ 0`. There the minimax gradient is `~ 0` -- G learns
# nothing exactly when it is worst -- while the non-saturating gradient is `~ -1`, as large as it gets. This
# gradient w.r.t. the logit is what flows back through D into G
# ([the generator's gradient through D](../docs/derivations.md#generator-gradient-through-d)).

# %%
import contextlib

import matplotlib.pyplot as plt
import numpy as np

from minigan import data, gan, gradcheck, metrics, models, optim
from minigan import functional as F
from minigan.lesson import Lesson, pick

lesson = Lesson("06_gan_losses")

# D(G(z)) from 0.001 to 0.999, and the logit that gives it: l = log(p / (1 - p))
p = np.linspace(0.001, 0.999, 999)
logits = np.log(p / (1 - p))[:, None]  # (999, 1): one "fake sample" per row
n = len(logits)

curves = {}
for kind in ("minimax", "nonsaturating"):
    mean_loss, dlogits = gan.generator_loss(logits, kind)  # the library's L_G and dL_G/dlogit
    curves[kind] = dlogits[:, 0] * n  # the mean divides each sample's gradient by n: undo it, per-sample slope
loss_minimax = -F.softplus(logits[:, 0])  # log(1 - D) = -softplus(l)
loss_nonsat = F.softplus(-logits[:, 0])  # -log D = softplus(-l)

fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(10, 3.8))
ax_loss.plot(p, loss_minimax, label=r"minimax  $\log(1 - D(G(z)))$")
ax_loss.plot(p, loss_nonsat, label=r"non-saturating  $-\log D(G(z))$")
ax_loss.set_xlabel("D(G(z))")
ax_loss.set_ylabel("generator loss per sample")
ax_loss.legend(fontsize=8)
ax_grad.plot(p, curves["minimax"], label="minimax: $-D(G(z))$")
ax_grad.plot(p, curves["nonsaturating"], label="non-saturating: $D(G(z)) - 1$")
ax_grad.axvspan(0, 0.1, color="tab:red", alpha=0.1, label="early training: D rejects the fakes")
ax_grad.set_xlabel("D(G(z))")
ax_grad.set_ylabel("dL_G / dlogit per sample")
ax_grad.legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "generator_losses.png")

at = int(np.argmin(np.abs(p - 0.01)))  # D(G(z)) = 0.01: a discriminator that easily rejects the fakes
grad_minimax, grad_nonsat = float(curves["minimax"][at]), float(curves["nonsaturating"][at])
print(f"at D(G(z)) = 0.01: minimax gradient {grad_minimax:.3f}, non-saturating gradient {grad_nonsat:.3f} "
      f"({abs(grad_nonsat / grad_minimax):.0f}x larger)")
lesson.record(grad_minimax_at_001=grad_minimax, grad_nonsaturating_at_001=grad_nonsat)

# %% [markdown]
# **What to look at.** Left: the minimax loss is flat near `D(G(z)) = 0` and steep near 1; the non-saturating one
# is the other way round. Right: the slope that reaches G. In the shaded region, where every GAN starts, the
# minimax slope is about `-0.01` and the non-saturating one about `-0.99`: a hundred times more signal. Both slopes
# are negative everywhere -- both push `D(G(z))` up -- which is why they share a fixed point.
#
# ## The classic mistake: flipping the sign of the fake term
#
# Now train a small GAN on eight Gaussians in a ring (lesson 8 does it properly) twice, from the same start: once
# with the right `L_D` and once with the classic tutorial's
# `L_D = -E[log D(x)] + E[log(1 - D(G(z)))]`. The wrong loss is a perfectly good function with a perfectly good
# gradient; we write it with `minigan.functional` and hand it to the GAN in place of the library's.

# %%
def flipped_discriminator_loss(logits, targets):
    """The classic tutorial's L_D = -E[log D(x)] + E[log(1 - D(G(z)))], and ITS gradient (which is right for it).

    ``logits`` stacks n real rows then n fake rows, as in GAN.discriminator_gradients.
    """
    n = logits.shape[0] // 2
    real_term, real_cache = F.bce_with_logits_forward(logits[:n], targets[:n])  # -E[log D(x)]
    fake_bce, fake_cache = F.bce_with_logits_forward(logits[n:], targets[n:])  # -E[log(1 - D(G(z)))]
    loss = real_term - fake_bce  # the flipped sign: + E[log(1 - D(G(z)))]
    dlogits = np.concatenate([F.bce_with_logits_backward(1.0, real_cache),
                              F.bce_with_logits_backward(-1.0, fake_cache)])
    return loss, dlogits


def make_gan(seed=0):
    G, D = models.build_models("toy", data_dim=2, rng=seed)  # G 8->4x128->2, D 2->3x128->1 (a logit)
    betas = (0.5, 0.999)
    return gan.GAN(G, D, optim.Adam(G.params(), 1e-3, betas), optim.Adam(D.params(), 1e-3, betas),
                   noise_dim=models.NOISE_DIM["toy"], rng=seed)


@contextlib.contextmanager
def discriminator_loss_replaced_by(d_loss_fn):
    """Inside the ``with`` block, GAN steps use ``d_loss_fn`` as L_D (GAN.discriminator_gradients looks the loss
    up in minigan.gan); the library's own loss is put back afterwards, whatever happens."""
    right = gan.discriminator_loss
    gan.discriminator_loss = d_loss_fn
    try:
        yield
    finally:
        gan.discriminator_loss = right


def train(model, steps, d_loss_fn=None):
    """``steps`` GAN steps on ring8; with ``d_loss_fn`` the step uses that L_D instead of the library's."""
    ring = data.get_dataset("ring8", seed=0)
    with discriminator_loss_replaced_by(d_loss_fn or gan.discriminator_loss):
        return [model.train_step(ring.batch(k, 256)) for k in range(steps)]


STEPS = pick(600, 200)
right_run = train(make_gan(), STEPS)
flipped_model = make_gan()
flipped_run = train(flipped_model, STEPS, flipped_discriminator_loss)

for name, run in (("right L_D", right_run), ("flipped  ", flipped_run)):
    print(f"{name}: D(G(z)) {run[0]['d_fake']:.2f} -> {run[-1]['d_fake']:.2f}   "
          f"D(x) {run[0]['d_real']:.2f} -> {run[-1]['d_real']:.2f}   L_D at the end {run[-1]['d_loss']:.2f}")

# %%
steps = np.arange(1, STEPS + 1)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, (title, run) in zip(axes, (("right: -E[log D(x)] - E[log(1 - D(G(z)))]", right_run),
                                   ("flipped: -E[log D(x)] + E[log(1 - D(G(z)))]", flipped_run))):
    ax.plot(steps, [r["d_real"] for r in run], label="D(x), real")
    ax.plot(steps, [r["d_fake"] for r in run], label="D(G(z)), fake")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
axes[0].set_ylabel("mean D output")
fig.tight_layout()
lesson.save(fig, "flipped_sign.png")

ring = data.get_dataset("ring8", seed=0)
flipped_quality = metrics.toy_metrics(flipped_model.generate(2500), ring.modes, ring.sigma)  # lesson 8's yardstick
tail = max(1, STEPS // 10)  # average the last 10% of steps: single steps are noisy
lesson.record(
    steps=STEPS,
    flipped_d_fake_start=flipped_run[0]["d_fake"],
    flipped_d_fake_end=float(np.mean([r["d_fake"] for r in flipped_run[-tail:]])),
    flipped_d_real_end=float(np.mean([r["d_real"] for r in flipped_run[-tail:]])),
    flipped_d_loss_end=flipped_run[-1]["d_loss"],
    flipped_high_quality=flipped_quality["high_quality"],
    right_d_fake_end=float(np.mean([r["d_fake"] for r in right_run[-tail:]])),
    right_d_real_end=float(np.mean([r["d_real"] for r in right_run[-tail:]])),
)
print(f"the flipped run's samples: {flipped_quality['modes_covered']} of 8 modes, "
      f"{100 * flipped_quality['high_quality']:.1f}% high quality")

# %% [markdown]
# **What to look at.** With the right loss, D(x) and D(G(z)) both hover near 0.5: the game is being played and
# neither side runs away. With the flipped sign, **D(G(z)) rises to 1** within a few dozen
# steps and stays there: D has learned to call the fakes real, which is exactly what the flipped loss rewards.
# D(x) drifts wherever it likes, because the real term is now tiny next to the fake term. `L_D` falls without
# bound: `+log(1 - D(G(z)))` goes to `-inf` as `D(G(z)) -> 1`; computed from logits it falls linearly in the
# fake logit, to millions below zero. And G? Its loss `-log D(G(z))` is already ~0, so its gradient
# `D(G(z)) - 1` is ~0: it has nothing to learn from, and its samples never reach the ring (0% high quality).
#
# ## Why a gradient check cannot catch it
#
# A gradient check compares a backward pass with finite differences *of the same function*. The flipped loss is
# a function like any other, and its backward pass is its correct derivative: the check passes.

# %%
rng = np.random.default_rng(0)
some_logits = rng.standard_normal((8, 1))  # 4 real rows, then 4 fake rows
targets = np.concatenate([np.ones((4, 1)), np.zeros((4, 1))])


def flipped_forward(logits):
    """(loss, cache) in minigan.functional's convention; the cache is just the logits."""
    return flipped_discriminator_loss(logits, targets)[0], logits


def flipped_backward(dloss, cache):
    return flipped_discriminator_loss(cache, targets)[1] * dloss


plain = gradcheck.check_function(flipped_forward, flipped_backward, [some_logits], names=["dlogits"])
print(plain)

# %% [markdown]
# What does catch it is comparing the loss with **the objective itself**. `check_gan_step` recomputes `L_D` and
# `L_G` from D's logits by the textbook formulas, independently of the step's loss functions, compares them with
# what the step computes, and checks the step's gradients against finite differences of the *textbook* losses. On
# the flipped GAN it fails and names the term:

# %%
small = make_gan()
real = data.get_dataset("ring8", seed=0).batch(0, 8)
with discriminator_loss_replaced_by(flipped_discriminator_loss):
    objective = gradcheck.check_gan_step(small, real, max_elements=16, raise_exception=False)
print(objective.failure_message().splitlines()[1] if not objective.ok else "passed")
right = gradcheck.check_gan_step(make_gan(), real, max_elements=16, raise_exception=False)
print("the library's own step:", "passed" if right.ok else "FAILED")
lesson.record(plain_gradcheck_of_flipped_loss_ok=plain.ok, objective_check_of_flipped_ok=objective.ok,
              objective_check_message=objective.failure_message().splitlines()[1] if not objective.ok else "",
              objective_check_of_right_ok=right.ok)

# %% [markdown]
# ## What you should see
#
# The full run (600 steps per training; 14 s on an idle 2-core machine) prints and records in `results.json`:
#
# * at `D(G(z)) = 0.01`: minimax gradient `-0.010`, non-saturating `-0.990` (99x larger);
# * right `L_D`: D(x) 0.49 and D(G(z)) 0.49 on average over the last 60 steps;
# * flipped sign: D(G(z)) from 0.59 at the first step to **1.00**, D(x) 0.63, `L_D` at the end about `-1.7e7`;
#   the flipped run's samples: 0 of 8 modes, 0.0% high quality;
# * the plain gradient check of the flipped loss: **passed**; `check_gan_step` on the flipped GAN: **failed**,
#   "L_D's fake term has the wrong sign"; on the library's step: passed.
#
# ## Exercises
#
# 1. **Predict, then run.** Train the flipped GAN with `loss="minimax"` for G. What does D(G(z)) do now, and does
#    G learn anything? (Look at the slope of the minimax loss at `D(G(z)) = 1` in the first figure.)
# 2. **The other sign.** Flip the sign of the *real* term instead (`+E[log D(x)] - E[log(1 - D(G(z)))]`). Predict
#    D(x) and D(G(z)) after 200 steps, then check with `train(make_gan(), 200, your_loss)`. What does
#    `check_gan_step` say?
# 3. **The optimal discriminator.** For one point where `p_data = 0.3` and `p_G = 0.1`, minimise
#    `-0.3 log D - 0.1 log(1 - D)` over D numerically (a grid over (0, 1) is enough) and compare with
#    `p_data / (p_data + p_G)`.
# 4. **Implement and check.** Write the minimax `L_G` from logits yourself (`forward` returning the mean of
#    `-softplus(l)`, `backward` returning `-sigmoid(l) / n`) and check it with `gradcheck.check_function`. Then
#    explain why passing that check says nothing about whether it is the loss G should minimise.
#
# Answers: [answers/06_gan_losses.md](answers/06_gan_losses.md).

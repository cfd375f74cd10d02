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
# # Lesson 8: a GAN on a ring and a grid
#
# Two-dimensional data is where a GAN's failures are easiest to *see*. The target is a mixture of Gaussians:
# **ring8**, eight tight blobs (standard deviation 0.01) on a circle of radius 1, and **grid25**, a 5x5 grid of
# blobs (standard deviation 0.05). A generator that only learns some of the blobs has **collapsed** onto those
# modes -- the most common way a GAN fails, and one its losses do not show.
#
# This lesson measures mode collapse, shows the remedy minigan uses (PacGAN packing) and the other stability
# options, and ends where minigan's best configuration ends on the ring: every mode, sharply.
#
# Run it as a script (`python tutorials/08_ring_and_grid.py`) or as a notebook
# (`jupytext --to ipynb tutorials/08_ring_and_grid.py`). Output goes to `tutorial_output/08_ring_and_grid/`. The
# full run takes about 2.7 minutes on a 2-core machine (160 s measured, one BLAS thread; on a machine busy with
# other work it took 14 minutes).
#
# ## Measuring mode coverage
#
# `metrics.toy_metrics(samples, modes, sigma)` (the VEEGAN / PacGAN protocol) assigns each of 2,500 samples to its
# nearest mode and calls it **high quality (HQ)** when it lies within `3 sigma` of that mode. Then:
#
# * **modes covered**: how many modes received at least one HQ sample (8 and 25 are perfect);
# * **HQ %**: the fraction of samples that are HQ -- a blurry ring covers every mode and still scores low here;
# * **reverse KL**: `KL(p || uniform)` of the histogram of HQ samples over the modes, `sum_k p_k log(K p_k)`: 0 when
#   every mode gets the same share, `log 8 = 2.08` when everything falls on one mode.
#
# Modes covered alone is a weak number (one lucky sample covers a mode); read the three together.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minigan import data, gan, metrics, models, optim
from minigan.lesson import Lesson, pick
from minigan.train import lr_factor

lesson = Lesson("08_ring_and_grid")
ring, grid = data.get_dataset("ring8", seed=0), data.get_dataset("grid25", seed=0)
eval_z = np.random.default_rng(123).standard_normal((2500, models.NOISE_DIM["toy"]), dtype=np.float32)

real = metrics.toy_metrics(ring.real_samples(2500), ring.modes, ring.sigma)
print(f"real ring8 data: {real['modes_covered']}/8 modes, HQ {100 * real['high_quality']:.1f}%, "
      f"reverse KL {real['reverse_kl']:.4f}")


def make_gan(pack, seed=0):
    """minigan's 2-D networks (``--arch toy``): G 8 -> 4x128 (ReLU) -> 2, D (2 * pack) -> 3x128 (LeakyReLU) -> 1."""
    G, D = models.build_models("toy", data_dim=2, rng=seed, pack=pack)
    betas = (0.5, 0.999)
    return gan.GAN(G, D, optim.Adam(G.params(), 1e-3, betas), optim.Adam(D.params(), 1e-3, betas),
                   noise_dim=models.NOISE_DIM["toy"], rng=seed, pack=pack)


def train(model, dataset, steps, batch=512, lr=1e-3, decay="none", every=None):
    """``steps`` GAN steps; returns the quality measured every ``every`` steps (and at the end)."""
    every = every or steps
    curve = []
    for step in range(steps):
        model.g_optimizer.lr = model.d_optimizer.lr = lr * lr_factor(step, steps, decay)
        model.train_step(dataset.batch(step, batch))
        if (step + 1) % every == 0 or step + 1 == steps:
            m = metrics.toy_metrics(model.generate(z=eval_z), dataset.modes, dataset.sigma)
            curve.append(dict(step=step + 1, **{k: m[k] for k in ("modes_covered", "high_quality", "reverse_kl")}))
    return curve


def show(ax, model, dataset, title):
    x = model.generate(z=eval_z)
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, color="tab:blue")
    ax.scatter(dataset.modes[:, 0], dataset.modes[:, 1], s=30, marker="x", color="tab:red")
    limit = 1.5 * float(np.abs(dataset.modes).max())
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


# %% [markdown]
# ## Mode collapse, seen and measured
#
# Why does a GAN collapse? G is rewarded for samples D calls real, *one sample at a time*. If G puts all its mass
# on the mode D currently trusts most, every single sample looks real; D then learns to distrust that mode, G
# hops to another one, and so on. Nothing in the per-sample loss asks G to cover *all* modes at once.
#
# **PacGAN** (Lin et al., 2018) changes what D sees: `pack = m` concatenates m samples into one input of D (for
# 2-D points with m = 2, D's input is 4 numbers). Two real samples come from two independent modes 7 times out of
# 8; two samples from a collapsed G are nearly the same point. A pair is therefore much easier to catch than a
# single sample, and D's gradient pushes G towards diversity. The code change is one reshape,
# `x.reshape(N / m, m * d)` (`gan.pack`), and D's first layer being m times wider.
#
# Below: the same networks, data, batch (512 samples) and learning rate, with `pack = 1` (a plain GAN) and
# `pack = 2`, at a constant learning rate. We track the three numbers during training.

# %%
STEPS_A, EVERY_A = pick(1500, 100), pick(100, 50)
plain, packed = make_gan(pack=1), make_gan(pack=2)
curve_plain = train(plain, ring, STEPS_A, every=EVERY_A)
curve_packed = train(packed, ring, STEPS_A, every=EVERY_A)

fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
show(axes[0], plain, ring, f"pack 1 (plain GAN), step {STEPS_A}")
show(axes[1], packed, ring, f"pack 2 (PacGAN), step {STEPS_A}")
for curve, label in ((curve_plain, "pack 1"), (curve_packed, "pack 2")):
    steps = [c["step"] for c in curve]
    axes[2].plot(steps, [c["modes_covered"] for c in curve], "o-", ms=3, label=label)
    axes[3].plot(steps, [c["reverse_kl"] for c in curve], "o-", ms=3, label=label)
axes[2].set_ylabel("modes covered (of 8)")
axes[3].set_ylabel("reverse KL (0 = balanced)")
for ax in axes[2:]:
    ax.set_xlabel("step")
    ax.legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "collapse.png")

for name, curve in (("pack 1", curve_plain), ("pack 2", curve_packed)):
    worst = min(c["modes_covered"] for c in curve)
    mean_kl = np.mean([c["reverse_kl"] for c in curve])
    print(f"{name}: at the end {curve[-1]['modes_covered']}/8 modes, HQ {100 * curve[-1]['high_quality']:.1f}%, "
          f"reverse KL {curve[-1]['reverse_kl']:.3f};  during training: fewest modes {worst}, "
          f"mean reverse KL {mean_kl:.3f}")
lesson.record(pack1_ring=curve_plain[-1], pack2_ring=curve_packed[-1],
              pack1_mean_reverse_kl=float(np.mean([c["reverse_kl"] for c in curve_plain])),
              pack2_mean_reverse_kl=float(np.mean([c["reverse_kl"] for c in curve_packed])),
              pack1_fewest_modes=min(c["modes_covered"] for c in curve_plain),
              pack2_fewest_modes=min(c["modes_covered"] for c in curve_packed))

# %% [markdown]
# **What to look at.** Early on, both generators cover only a few modes (the curves start at 1-3 of 8): G finds
# one region D accepts and piles samples onto it. This is mode collapse in its purest form, and the right-hand
# panel shows it as a reverse KL near `log 8 = 2.08`. Then the two part ways. The plain GAN spreads out slowly and
# unevenly: modes drop in and out as D chases G from one to the next, and at the end its samples are still
# lopsided -- some blobs dense, some sparse (reverse KL around 0.6 in the full run). The packed GAN covers all
# eight modes hundreds of steps sooner and spreads its samples far more evenly (reverse KL below 0.1 at the end).
# Its ring is also sharper, but both are still *blurry*: many samples sit between the modes, which is why HQ % is
# well under the real data's 98.8%. With these small networks and big batches, a plain GAN rarely collapses onto
# one mode for good on the ring; with the paper's networks and batches of 100 it often does (PacGAN's Table 1: a
# plain GAN covers 6.3 of 8 ring modes on average).
#
# ## The other stability options
#
# minigan's `GAN` has four more knobs. Each fixes a specific way the game goes wrong, and each costs something:
#
# * `label_smoothing=s`: real targets `1 - s` (one-sided; Salimans et al., 2016). Helps when D grows
#   over-confident early, its logits explode and G's gradient becomes erratic. Price: D's optimum moves to
#   `D*(x) = (1 - s) p_data / (p_data + p_G)`.
# * `instance_noise=sigma`: Gaussian noise on every input D sees (Sønderby et al., 2017). Helps when real and fake
#   barely overlap (sharp, low-dimensional data like these blobs), so D separates them perfectly and its gradient
#   says little. Price: samples blur by about sigma; anneal it to 0.
# * `d_steps=k`: k D updates per G update. Helps when D lags behind G and gives stale advice. Price: k times the
#   D cost per step.
# * **learning-rate decay**: `lr * lr_factor(step, steps, "linear")`, constant for the first half, then linearly to
#   0. Helps when G orbits the modes instead of settling on them (modes covered, HQ low). Price: the run must know
#   its length.
#
# The last one is what turns "eight modes, blurry" into "eight modes, sharp": at a constant learning rate Adam
# keeps taking steps of roughly the same size, so G's samples jitter around each mode by about that much; decaying
# the rate shrinks the jitter below the blobs' 0.01.
#
# ## The best configuration on the ring
#
# minigan's default for 2-D data (`minigan train --dataset ring8`) is the combination that won its benchmark
# (`benchmarks/quality/RESULTS.md`): the `toy` networks, `pack = 2`, batches of 512 samples, Adam `1e-3` with
# `beta1 = 0.5`, and the linear decay over the second half. The command runs 20,000 steps; here we run
# 5,000, which is enough on the ring.

# %%
STEPS_B = pick(5000, 500)
best = make_gan(pack=2)
curve_best = train(best, ring, STEPS_B, decay="linear", every=STEPS_B // 10)
result = metrics.toy_metrics(best.generate(z=eval_z), ring.modes, ring.sigma)

fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
show(axes[0], best, ring, f"best configuration, step {STEPS_B}")
steps = [c["step"] for c in curve_best]
axes[1].plot(steps, [100 * c["high_quality"] for c in curve_best], "o-", ms=3, label="HQ %")
axes[1].axvline(STEPS_B / 2, color="gray", ls="--", lw=0.6, label="learning rate starts to decay")
axes[1].set_xlabel("step")
axes[1].set_ylabel("high-quality samples (%)")
axes[1].legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "best_ring.png")
print(f"best configuration, {STEPS_B} steps: {result['modes_covered']}/8 modes, "
      f"HQ {100 * result['high_quality']:.1f}%, reverse KL {result['reverse_kl']:.4f}; "
      f"HQ samples per mode {result['counts']}")
lesson.record(steps_best=STEPS_B, best_ring={k: result[k] for k in ("modes_covered", "high_quality", "reverse_kl",
                                                                      "counts")},
              best_ring_curve=curve_best)

# %% [markdown]
# **What to look at.** The HQ curve: during the constant first half it rises and wobbles (G finds the modes but
# jitters around them); after the decay starts it climbs steadily. Compare with the real data's numbers printed at
# the start: the generator's HQ % ends a few points under the real data's 98.8%.
#
# ## The grid: 25 modes
#
# The same recipe on grid25. Twenty-five modes are harder: G must carve its noise into 25 pieces spread over a
# square from -4 to 4, and a sample that wanders between two modes is far from both. We run it briefly to see
# where it stands; the full
# `minigan train --dataset grid25` (20,000 steps, about 3-4 minutes on an idle core) reaches 25/25 modes and
# 92 +- 2% HQ over 10 seeds (`benchmarks/quality/RESULTS.md`).

# %%
STEPS_C = pick(3000, 100)
on_grid = make_gan(pack=2)
curve_grid = train(on_grid, grid, STEPS_C, decay="linear", every=max(1, STEPS_C // 8))
grid_result = metrics.toy_metrics(on_grid.generate(z=eval_z), grid.modes, grid.sigma)
fig, ax = plt.subplots(figsize=(4.2, 4.2))
show(ax, on_grid, grid, f"grid25, step {STEPS_C}")
fig.tight_layout()
lesson.save(fig, "grid.png")
print(f"grid25, {STEPS_C} steps: {grid_result['modes_covered']}/25 modes, HQ {100 * grid_result['high_quality']:.1f}%, "
      f"reverse KL {grid_result['reverse_kl']:.3f}")
lesson.record(steps_grid=STEPS_C, grid={k: grid_result[k] for k in ("modes_covered", "high_quality", "reverse_kl")})

# %% [markdown]
# **What to look at.** After a short run the grid is a blurry square: G has learned *where* the data lives (the
# square from -4 to 4) but not yet that it lives only on 25 small blobs. Most modes have a stray sample within
# 3 sigma = 0.15, so "modes covered" looks respectable while HQ % is near zero -- the reason never to read modes
# covered alone. It is the ring's story at its step 1,000, stretched out: with the full 20,000 steps and the decay,
# the cloud condenses onto the blobs.

# %% [markdown]
# ## What you should see
#
# The full run prints and records:
#
# * real ring8 data: 8/8 modes, HQ 98.8%, reverse KL 0.0039;
# * after 1,500 steps at a constant learning rate: pack 1, 8/8 modes, HQ 38.6%, reverse KL 0.636 (fewest modes
#   during training 2, mean reverse KL 0.584); pack 2, 8/8 modes, HQ 62.3%, reverse KL 0.073 (mean 0.419);
# * the best configuration after 5,000 steps: **8/8 modes, HQ 94.1%, reverse KL 0.0051**, HQ samples per mode
#   between 246 and 339 of 2,500;
# * grid25 after 3,000 steps: 18/25 modes, HQ 1.5%, reverse KL 0.465 -- the grid is far from done at this budget;
#   its full 20,000-step run (`minigan train --dataset grid25`) is the one that reaches 25/25 and 92% HQ.
#
# ## Exercises
#
# 1. **Pack 4.** Predict how `pack = 4` compares with `pack = 2` in the collapse cell after the same number of
#    steps (think of what D must learn, and of the batch: 512 samples are now 128 inputs). Run it.
# 2. **Instance noise.** Train the best configuration with `instance_noise=0.05` (pass it to `gan.GAN`). Predict
#    the HQ % at the end, given that the blobs have standard deviation 0.01. What would you change so that the
#    noise helps early and costs nothing at the end?
# 3. **No decay.** Run the best configuration with `decay="none"`. Which of the three numbers changes most?
# 4. **Implement a metric.** Write `modes_covered(samples, modes, sigma)` yourself with NumPy (nearest mode by
#    squared distance, HQ within `3 sigma`) and check it against `metrics.toy_metrics` on the samples above.
#
# Answers: [answers/08_ring_and_grid.md](answers/08_ring_and_grid.md).

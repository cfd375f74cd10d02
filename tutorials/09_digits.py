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
# # Lesson 9: a GAN that draws digits
#
# Everything is in place: the stable loss (lesson 3), the step (lesson 7), the options that keep the game
# balanced (lesson 8). Now the same step on 784-dimensional data: 28x28 images of handwritten digits. This lesson
# trains the `mlp` GAN on the bundled digits, watches the samples form, measures them with a digit classifier,
# walks between two noise vectors, and reads the training curves.
#
# Run it as a script (`python tutorials/09_digits.py`) or as a notebook (`jupytext --to ipynb tutorials/09_digits.py`).
# Figures and `results.json` go to `tutorial_output/09_digits/`. The full run takes about 4 minutes on a 2-core
# machine (236 s measured, one BLAS thread; on a machine busy with other work it took 17 minutes).
#
# ## The data and the networks
#
# `data.get_dataset("digits")` is 10,000 MNIST training images (1,000 per digit) shipped with minigan. Pixels are
# scaled to `[-1, 1]`, because the generator ends in `tanh`, whose outputs live there. Each image is flattened to
# a row of 784 numbers.
#
# * G: noise `z` (100) -> 256 -> 512 -> 1024 -> 784, LeakyReLU(0.2) between layers, `tanh` at the end.
# * D: 784 -> 512 -> 256 -> 1 logit, LeakyReLU(0.2).
# * Adam with learning rate `2e-4` and `beta1 = 0.5` for both (DCGAN's setting: less momentum keeps the two
#   players from overshooting each other; see [Adam](../docs/derivations.md#adam)); the learning rate decays
#   linearly to 0 over the second half, which takes the last salt-and-pepper noise out of the digits.

# %%
import matplotlib.pyplot as plt
import numpy as np

from minigan import data, gan, metrics, models, optim, plot
from minigan.lesson import Lesson, pick

lesson = Lesson("09_digits")
digits = data.get_dataset("digits", scale="tanh", seed=0)
print(digits)

G, D = models.build_models("mlp", data_dim=784, rng=0)
G.summary()
D.summary()
betas = (0.5, 0.999)
LR = 2e-4
model = gan.GAN(G, D, optim.Adam(G.params(), LR, betas), optim.Adam(D.params(), LR, betas), noise_dim=100, rng=0)

fig, ax = plt.subplots(figsize=(3, 3))
ax.imshow(1 - plot.image_grid(digits.to_images(digits.batch(0, 36))), cmap="gray")
ax.set_axis_off()
ax.set_title("real digits", fontsize=9)
lesson.save(fig, "real_digits.png")

# %% [markdown]
# ## Measuring a generator
#
# A picture convinces a person; a number convinces a test. minigan bundles a small classifier trained on MNIST
# (`metrics.load_classifier()`, 98% test accuracy). We give it 1,000 generated digits and ask:
#
# * **classes covered**: how many of the ten digits it sees at all (a collapsed generator draws few);
# * **MNIST score**: `exp(E_x KL(p(y|x) || p(y)))`, the Inception-score formula. It is 1 when every image gets the
#   same prediction or the classifier is unsure of all of them, and 10 at best: confident predictions, all ten
#   digits equally often. Real MNIST scores about 9.6 with this classifier.
#
# And one number without a classifier, for the first few hundred steps when there are no digits yet to classify:
# the **mean-image gap**, the RMS difference between the average generated image and the average real digit.

# %%
classifier = metrics.load_classifier()
eval_z = np.random.default_rng(1).standard_normal((1000, 100), dtype=np.float32)  # the same 1,000 z every time
mean_real = digits.to_images(digits.real_samples(1000)).reshape(1000, 784).mean(axis=0)  # (784,) the average digit


def quality(model):
    images01 = digits.to_images(model.generate(z=eval_z)).reshape(1000, 784)  # [0, 1], as the classifier wants
    probs = classifier.probs(images01)
    counts = metrics.class_histogram(probs.argmax(axis=1))
    mean_gap = float(np.sqrt(((images01.mean(axis=0) - mean_real) ** 2).mean()))  # RMS gap between average images
    return {"classes_covered": metrics.classes_covered(counts), "mnist_score": metrics.mnist_score(probs),
            "mean_image_gap": mean_gap, "counts": counts}


# %% [markdown]
# ## Training
#
# The loop is `train_step` on consecutive batches, with the learning rate set before each step. Every
# `LOG_EVERY` steps we keep the losses and D's mean outputs; at a few steps we also draw the *same* 64 noise
# vectors (so the pictures show G changing, not z) and measure quality.

# %%
STEPS, BATCH, LOG_EVERY = pick(6000, 300), 64, pick(50, 20)
SNAPSHOTS = sorted({0, STEPS // 12, STEPS // 4, STEPS // 2, STEPS})
fixed_z = np.random.default_rng(2).standard_normal((64, 100), dtype=np.float32)
rows, grids = [], {}
for step in range(STEPS + 1):
    if step in SNAPSHOTS:
        grids[step] = digits.to_images(model.generate(z=fixed_z))
        rows.append(dict(step=step, **quality(model)))
        print(f"step {step:5d}: classes covered {rows[-1]['classes_covered']}, "
              f"MNIST score {rows[-1]['mnist_score']:.2f}, mean-image gap {rows[-1]['mean_image_gap']:.3f}")
    if step == STEPS:
        break
    factor = min(1.0, 2.0 * (1.0 - step / STEPS))  # 1 for the first half, then linearly to 0
    model.g_optimizer.lr = model.d_optimizer.lr = LR * factor
    stats = model.train_step(digits.batch(step, BATCH))
    if (step + 1) % LOG_EVERY == 0:
        rows.append(dict(step=step + 1, **stats))

# %%
fig, axes = plt.subplots(1, len(grids), figsize=(3 * len(grids), 3.2))
for ax, (step, images) in zip(axes, grids.items()):
    ax.imshow(1 - plot.image_grid(images), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"step {step}", fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
lesson.save(fig, "samples_over_training.png")

final = [r for r in rows if "mnist_score" in r][-1]
lesson.record(steps=STEPS, classes_covered=final["classes_covered"], mnist_score=final["mnist_score"],
              class_counts=final["counts"],
              quality_over_training=[{k: r[k] for k in ("step", "classes_covered", "mnist_score",
                                                        "mean_image_gap")} for r in rows if "mnist_score" in r])

# %% [markdown]
# **What to look at.** At step 0 the samples are gray noise (G's outputs near `tanh(0)`). Within a few hundred steps,
# faint blobs in the middle of each square appear: G first learns the *average* image (the mean-image gap falls long
# before any digit is recognisable, and the classifier calls every blob the same digit). Strokes come next, then
# distinct digits (by step 1,500 the classifier already sees all ten); the last half, with the decaying learning rate,
# sharpens the strokes and removes most of the speckles. The MNIST score follows the same story: about 3 at the
# halfway point, about 6 at the end.
#
# ## What the curves say

# %%
logged = [r for r in rows if "d_loss" in r]
steps_logged = [r["step"] for r in logged]
fig, (ax_loss, ax_d) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
ax_loss.plot(steps_logged, [r["d_loss"] for r in logged], label="$L_D$")
ax_loss.plot(steps_logged, [r["g_loss"] for r in logged], label="$L_G$")
ax_loss.axhline(2 * np.log(2), color="gray", ls="--", lw=0.6, label="$L_D$ at the equilibrium: 2 log 2")
ax_loss.axhline(np.log(2), color="gray", ls=":", lw=0.6, label="$L_G$ at the equilibrium: log 2")
ax_loss.legend(fontsize=8)
ax_loss.set_ylabel("loss")
ax_d.plot(steps_logged, [r["d_real"] for r in logged], label="D(x), real")
ax_d.plot(steps_logged, [r["d_fake"] for r in logged], label="D(G(z)), fake")
ax_d.axhline(0.5, color="gray", ls="--", lw=0.6)
ax_d.set_ylim(0, 1)
ax_d.set_ylabel("mean D output")
ax_d.set_xlabel("step")
ax_d.legend(fontsize=8)
fig.tight_layout()
lesson.save(fig, "losses.png")
tail = logged[-max(1, len(logged) // 10):]
lesson.record(final_d_real=float(np.mean([r["d_real"] for r in tail])),
              final_d_fake=float(np.mean([r["d_fake"] for r in tail])),
              final_d_loss=float(np.mean([r["d_loss"] for r in tail])),
              final_g_loss=float(np.mean([r["g_loss"] for r in tail])))
print(f"last 10% of training: D(x) {lesson.results['final_d_real']:.2f}, "
      f"D(G(z)) {lesson.results['final_d_fake']:.2f}, L_D {lesson.results['final_d_loss']:.2f}, "
      f"L_G {lesson.results['final_g_loss']:.2f}")

# %% [markdown]
# **Reading them.** (In the full run: after step 3,000, when the learning rate starts to fall, both curves calm down;
# D(x) settles near 0.6 and D(G(z)) near 0.4.) A GAN's losses do not go to zero: they are two players' scores in a
# game. At the theoretical equilibrium D cannot tell real from fake, `D = 1/2` everywhere, so `L_D = 2 log 2 ~ 1.39`
# and `L_G = log 2 ~ 0.69`. In practice D stays ahead: D(x) above 1/2, D(G(z)) below it, `L_D` under 1.39 and `L_G`
# above 0.69. That is healthy *as long as the gap is steady*. The warning signs:
#
# * D(G(z)) falling towards 0 and staying there, `L_G` climbing: D has won; G's gradient fades (with the minimax
#   loss it vanishes; lesson 6).
# * D(x) and D(G(z)) both near 1/2 and `L_D` near 1.39 from the first steps on: D is not learning (too small a
#   learning rate, a bug in its update).
# * A sudden spike in `L_G` together with all samples looking alike: mode collapse (lesson 8).
#
# ## Walking between two noise vectors
#
# G is a smooth function of z. Take two noise vectors and the points on the straight line between them: the
# images morph from one digit into another, through shapes that are plausible on the way -- G has not memorised
# 10,000 pictures, it has learned a continuous map. (High-dimensional Gaussian noise concentrates on a shell of
# radius ~sqrt(100) = 10; the midpoint of a straight line is shorter, ~7, which is why some prefer to walk on the
# sphere, "slerp". Try it in the exercises.)

# %%
pairs = np.random.default_rng(3).standard_normal((4, 2, 100), dtype=np.float32)  # 4 walks: (start, end) each
t = np.linspace(0, 1, 10, dtype=np.float32)[:, None]  # (10, 1)
walks = np.concatenate([(1 - t) * a + t * b for a, b in pairs])  # (40, 100)
walk_images = digits.to_images(model.generate(z=walks))  # (40, 28, 28)
walk_labels = np.asarray(classifier.predict(walk_images.reshape(len(walk_images), 784))).reshape(4, 10)
fig, ax = plt.subplots(figsize=(8, 3.4))
ax.imshow(1 - plot.image_grid(walk_images, ncols=10), cmap="gray", vmin=0, vmax=1)
ax.set_axis_off()
ax.set_title("z = (1 - t) z0 + t z1, t = 0 ... 1 (one walk per row)", fontsize=9)
lesson.save(fig, "interpolation.png")
print("the classifier's reading along each walk:")
for row in walk_labels:
    print("  ", " ".join(str(int(d)) for d in row))
lesson.record(interpolation_labels=walk_labels.tolist())

# %% [markdown]
# ## What you should see
#
# The full run (6,000 steps, batch 64) prints quality at each snapshot -- step 0: 1 class, score 1.01, mean-image
# gap 0.410; step 500: 1 class, 1.01, 0.207; step 1,500: 10 classes, 2.91, 0.103; step 3,000: 10 classes, 3.15;
# step 6,000: **10 classes covered and an MNIST score of 6.06**, mean-image gap 0.026 (real digits score about
# 9.6). Over the last 10% of training D(x) 0.61 and D(G(z)) 0.40, `L_D` 1.08, `L_G` 0.98. Of the four
# interpolation walks, three change digit once or twice along the way (e.g. 4 4 4 8 8 8 8 3 3 3) and one stays a 6.
#
# ## Exercises
#
# 1. **No decay.** Set `factor = 1.0` (constant learning rate) and rerun. Predict the MNIST score at the end
#    compared with the decayed run, then look at the last sample grid: what is different?
# 2. **Who wins?** Give D ten times G's learning rate. Predict the D(x) and D(G(z)) curves; check.
# 3. **Slerp.** Replace the straight line by spherical interpolation,
#    `z(t) = sin((1-t) w)/sin(w) z0 + sin(t w)/sin(w) z1` with `cos(w) = z0.z1 / (|z0| |z1|)`, and compare the
#    midpoints of the two walks.
# 4. **Count the digits.** From `lesson.results["class_counts"]`, which digit does G draw least? Is it also the
#    one the classifier finds hardest on real data (try `classifier.predict` on
#    `digits.to_images(digits.real_samples(1000)).reshape(1000, 784)`)?
#
# Answers: [answers/09_digits.md](answers/09_digits.md).

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
# # Lesson 7: one GAN step by hand
#
# `GAN.train_step` is about twenty lines, and every one of them matters. In this lesson you write one whole step
# yourself with nothing but `minigan.functional` -- the D update on real and fake data, then the G update
# *through* a frozen D -- and prove it is the library's step by comparing every weight **bit for bit**. Then you
# read a piece of Keras code that looks like a GAN and cannot train, and say why.
#
# Run it as a script (`python tutorials/07_gan_step_by_hand.py`) or as a notebook
# (`jupytext --to ipynb tutorials/07_gan_step_by_hand.py`). Output goes to `tutorial_output/07_gan_step_by_hand/`.
#
# ## The step, in words
#
# 1. **D step.** Draw noise `z`, make fakes `G(z)`. The fakes are *data* for this step: no gradient will flow
#    into G. Stack real and fake into one batch `[x; G(z)]` (one matrix product per layer instead of two), run D,
#    and compute `L_D = -E[log D(x)] - E[log(1 - D(G(z)))]` from the logits with targets `[1...1; 0...0]`.
#    Backward through D into D's weights; update D.
# 2. **G step.** Draw fresh noise, run G *and keep its activations*, run D on `G(z)`, compute
#    `L_G = -E[log D(G(z))]`. Backward: from the logit through D down to its **input** -- D's backward returns `dx`
#    -- but D's weights are frozen: their gradients are not computed and they do not move. That `dx` is
#    `dL_G/dG(z)`: how each fake sample should move. Continue backward through G; update G.
#
# Two facts make the stacked D loss come out right. The BCE mean over the stacked batch of `2n` rows is the
# *average* of the two halves' means, and `L_D` is their *sum*, so `L_D = 2 * mean BCE`; and its gradient
# w.r.t. each logit is `2 (sigmoid(l) - y) / 2n = (D - y) / n`, exactly the gradient of each half's mean
# ([BCE from logits](../docs/derivations.md#bce-from-logits)). The G step's chain rule is derived in
# [the generator's gradient through D](../docs/derivations.md#generator-gradient-through-d); the layer backward
# passes in [Dense](../docs/derivations.md#dense).

# %%
import copy

import numpy as np

from minigan import data, gan, gradcheck, models, nn, optim
from minigan import functional as F
from minigan.lesson import Lesson, pick

lesson = Lesson("07_gan_step_by_hand")

SEED, BATCH, LR = 0, pick(64, 32), 0.005
G, D = models.build_models("toy", data_dim=2, rng=SEED)  # G: 8 -> 4x128 (ReLU) -> 2;  D: 2 -> 3x128 (LeakyReLU) -> 1
noise_dim = models.NOISE_DIM["toy"]
real = data.get_dataset("ring8", seed=0).batch(0, BATCH)  # (BATCH, 2) float32
print(G, D, sep="\n")

# The library's GAN on copies of the same weights, with plain SGD so the update is one line we can write by hand.
G_lib, D_lib = copy.deepcopy(G), copy.deepcopy(D)
lib = gan.GAN(G_lib, D_lib, optim.SGD(G_lib.params(), LR), optim.SGD(D_lib.params(), LR), noise_dim=noise_dim,
              rng=SEED)

# %% [markdown]
# ## Forward and backward through a stack of layers, by hand
#
# Our networks are `Dense`, `ReLU` and `LeakyReLU` layers. For each we call the functional pair and keep the
# cache ourselves; the backward walks the layers in reverse and hands each cache back. `want_param_grads=False` is
# how D is frozen in the G step: the `dx` chain is computed, `dW` and `db` are not.

# %%
def forward(layers, x):
    """Run x through the layers; return the output and one cache per layer."""
    caches = []
    for layer in layers:
        if isinstance(layer, nn.Dense):
            x, cache = F.dense_forward(x, layer.W.data, layer.b.data)  # (N, out)
        elif isinstance(layer, nn.LeakyReLU):
            x, cache = F.leaky_relu_forward(x, layer.slope)
        elif isinstance(layer, nn.ReLU):
            x, cache = F.relu_forward(x)
        else:
            raise TypeError(f"this lesson's hand-written step knows Dense, ReLU and LeakyReLU, not {layer!r}")
        caches.append(cache)
    return x, caches


def backward(layers, caches, dy, want_param_grads=True):
    """Backward from dy = dL/d(output); returns dL/d(input) and {param: gradient} (empty when frozen)."""
    grads = {}
    for layer, cache in zip(reversed(layers), reversed(caches)):
        if isinstance(layer, nn.Dense):
            dy, dW, db = F.dense_backward(dy, cache)  # dx = dy @ W.T, dW = x.T @ dy, db = sum of dy
            if want_param_grads:
                grads[layer.W], grads[layer.b] = dW, db
        elif isinstance(layer, nn.LeakyReLU):
            dy = F.leaky_relu_backward(dy, cache)
        else:
            dy = F.relu_backward(dy, cache)
    return dy, grads


def sgd(grads):
    for param, grad in grads.items():
        param.data -= LR * grad  # exactly what optim.SGD does


# %% [markdown]
# ## The D step

# %%
rng = np.random.default_rng(SEED)  # the same noise stream the library's GAN draws from (it was given SEED too)
G_layers, D_layers = list(G), list(D)

z = rng.standard_normal((BATCH, noise_dim), dtype=np.float32)  # (N, 8)
fake, _ = forward(G_layers, z)  # (N, 2): data for D; G's caches are thrown away, nothing flows into G
x = np.concatenate([real, fake])  # (2N, 2): real rows first, then fake
logits, D_caches = forward(D_layers, x)  # (2N, 1)
targets = np.concatenate([np.ones((BATCH, 1), np.float32), np.zeros((BATCH, 1), np.float32)])  # (2N, 1)
mean_bce, loss_cache = F.bce_with_logits_forward(logits, targets)
d_loss = 2 * mean_bce  # L_D = -E[log D(x)] - E[log(1 - D(G(z)))], the sum of the two halves' means
dlogits = F.bce_with_logits_backward(2.0, loss_cache)  # (2N, 1): (D - y) / N
_, D_grads = backward(D_layers, D_caches, dlogits)
sgd(D_grads)
print(f"L_D = {float(d_loss):.4f};  D(x) = {float(F.sigmoid_forward(logits[:BATCH])[0].mean()):.3f}, "
      f"D(G(z)) = {float(F.sigmoid_forward(logits[BATCH:])[0].mean()):.3f}")

# %% [markdown]
# ## The G step, through a frozen D

# %%
D_before = [p.data.copy() for p in D.params()]
z = rng.standard_normal((BATCH, noise_dim), dtype=np.float32)  # fresh noise
fake, G_caches = forward(G_layers, z)  # this time G's caches are kept: G will be differentiated
logits, D_caches = forward(D_layers, fake)  # (N, 1), through the D we just updated
ns_loss, loss_cache = F.bce_with_logits_forward(logits, np.ones_like(logits))  # L_G = -E[log D(G(z))]
dlogits = F.bce_with_logits_backward(1.0, loss_cache)  # (N, 1): (D(G(z)) - 1) / N
dfake, no_grads = backward(D_layers, D_caches, dlogits, want_param_grads=False)  # (N, 2): dL_G / dG(z)
_, G_grads = backward(G_layers, G_caches, dfake)
sgd(G_grads)
d_frozen = not no_grads and all(np.array_equal(a, p.data) for a, p in zip(D_before, D.params()))
print(f"L_G = {float(ns_loss):.4f};  D's weights unchanged by the G step: {d_frozen};  "
      f"|dL_G/dG(z)| per sample ~ {float(np.abs(dfake).sum(axis=1).mean()):.2e}")

# %% [markdown]
# ## Is it the library's step?
#
# The library's GAN started from the same weights and draws its noise from the same seed in the same order
# (D's `z`, then G's). One `train_step` later, every weight must be *identical* -- not close: the same float32
# operations in the same order give the same bits.

# %%
stats = lib.train_step(real)
pairs = list(zip(G.params() + D.params(), lib.G.params() + lib.D.params()))
bit_for_bit = all(np.array_equal(mine.data, theirs.data) for mine, theirs in pairs)
max_diff = max(float(np.abs(mine.data - theirs.data).max()) for mine, theirs in pairs)
print(f"library: L_D = {stats['d_loss']:.4f}, L_G = {stats['g_loss']:.4f}")
print(f"every weight of G and D equal bit for bit: {bit_for_bit} (largest difference {max_diff})")
lesson.record(bit_for_bit=bit_for_bit, max_abs_difference=max_diff, d_frozen_in_g_step=d_frozen,
              d_loss_by_hand=float(d_loss), d_loss_library=stats["d_loss"],
              g_loss_by_hand=float(ns_loss), g_loss_library=stats["g_loss"], num_tensors=len(pairs))
assert bit_for_bit, "the hand-written step differs from GAN.train_step"

# %% [markdown]
# ## A GAN that cannot train: the classic Keras snippet
#
# This is representative of the code in the tutorial this project grew from (it is text here, not run):
#
# ```python
# generator = Sequential([Dense(256, activation="relu", input_dim=100), Dense(784, activation="sigmoid")])
# discriminator = Sequential([Dense(256, activation="relu", input_dim=784), Dense(1, activation="sigmoid")])
# discriminator.compile(loss="binary_crossentropy", optimizer="adam")
#
# gan_input = Input(shape=(100,))
# gan_output = discriminator(Input(shape=(784,)))        # (1) not connected to gan_input or the generator
# gan_model = Model(gan_input, gan_output)
# gan_model.compile(loss="binary_crossentropy", optimizer="adam")   # (3) discriminator.trainable never set False
#
# gan_model.fit(x_train, y_train, epochs=100, batch_size=128)        # (2) one fit, no alternation; (4) x_train,
#                                                                    #     y_train never defined
# ```
#
# Why it cannot train:
#
# 1. **Disconnected graph.** `gan_output` is D applied to a *new* `Input`, not to `generator(gan_input)`. The
#    model's output does not depend on its input, and the generator is not in the model at all: no gradient can
#    ever reach G. (Keras refuses to build it: "Graph disconnected".) The fix: `gan_output =
#    discriminator(generator(gan_input))` -- the G step above, `forward(D_layers, fake)` on G's own output.
# 2. **No alternation.** A GAN is two optimisations taking turns: a D update on real and fake, then a G update. One
#    `fit` call over the combined model runs only one kind of update, forever. Our step does both, every time.
# 3. **D is not frozen in the G update.** Training the combined model with target "real" also updates D's weights
#    -- towards calling fakes real, undoing the D step. In Keras one sets `discriminator.trainable = False` before
#    compiling the combined model; in our step, `want_param_grads=False` (the library sets `requires_grad = False`
#    on D's parameters for the G step). D's backward still returns `dx`: frozen weights do not stop the gradient
#    flowing through D into G.
# 4. **Undefined data.** `x_train, y_train` are never defined, and a GAN has no labels `y_train` to fit to: the
#    targets are 1 and 0 by construction, made inside the step, and the inputs are noise for G and real images
#    for D.
#
# (And a fifth, lesson 3's subject: a `sigmoid` output fed to `binary_crossentropy` on probabilities overflows to
# `inf`/NaN once D is confident; D should output a logit and the loss be computed from it.)
#
# ## Checking the whole step: `check_gan_step`
#
# Bit-for-bit agreement says our step *is* the library's. That the library's step is *right* is what
# `check_gan_step` checks: on a float64 copy, it compares `L_D` and `L_G` with the textbook formulas computed
# from D's logits, and every parameter gradient of both steps with finite differences of those textbook losses.

# %%
result = gradcheck.check_gan_step(lib, real[:8], max_elements=pick(24, 8))
print(result)
lesson.record(check_gan_step_ok=result.ok, check_gan_step_tensors=len(result.tensors),
              check_gan_step_worst_rel_error=max(t.max_rel_error for t in result.tensors))

# %% [markdown]
# ## What you should see
#
# The full run (batch 64; about 1 s) prints `L_D = 1.9474` and `L_G = 0.6191` by hand and the same from the
# library, **every weight of G and D equal bit for bit: True** (18 tensors, largest difference 0.0), D's weights
# unchanged by the G step, and a `check_gan_step` table that passes: `L_D` and `L_G` equal to the textbook values
# (1.81228 and 0.49547 on the checker's own batch and noise) and 18 gradient tensors within tolerance.
#
# ## Exercises
#
# 1. **Break the freeze.** Call `backward(D_layers, D_caches, dlogits)` with `want_param_grads=True` in the G step
#    and apply those gradients to D too. Predict: is the result still bit-for-bit equal to the library? Which way
#    do D's weights move -- towards or away from calling fakes real?
# 2. **Two batches instead of one.** Run D separately on `real` and on `fake` and add the two halves' means. Is
#    the result equal to the library's bit for bit? Close? Why might it differ in the last bits?
# 3. **Minimax by hand.** Replace the G loss with the minimax form: `loss = -mean BCE(l, 0)`, gradient
#    `F.bce_with_logits_backward(-1.0, cache)`. Build the library GAN with `loss="minimax"` and check bit-for-bit
#    equality again.
# 4. **Fix the Keras snippet** on paper: write the four changed lines.
#
# Answers: [answers/07_gan_step_by_hand.md](answers/07_gan_step_by_hand.md).

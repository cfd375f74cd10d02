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
# # Lesson 11: convolutions by hand, and a DCGAN
#
# The `mlp` GAN of lesson 9 treats an image as a row of 784 unrelated numbers: it has to learn separately, at every
# position, what a stroke looks like. A convolution shares one small kernel over every position, so a stroke
# learned in one corner is known everywhere. This lesson
#
# 1. writes a 2-D convolution as a plain loop, then as **im2col + one matrix product** (how minigan computes it),
#    checks the two against each other and the backward pass against finite differences;
# 2. shows that a **transposed convolution** is nothing but the convolution's backward pass run forward, through
#    the adjoint identity `<conv(x), y> = <x, conv_T(y)>`, checked numerically;
# 3. trains a **DCGAN** (Radford et al., 2016), `--arch dcgan`, on the bundled digits and looks at its pictures.
#
# Run it as a script (`python tutorials/11_convolutions.py`) or as a notebook (`jupytext --to ipynb
# tutorials/11_convolutions.py`). Figures and `results.json` go to `tutorial_output/11_convolutions/`. The full run
# trains for 1,500 steps: about 2.5 minutes on a quiet 2-core machine (one BLAS thread; ~95 ms a step), several
# times that on a busy one.
#
# ## 1. Convolution by hand
#
# A convolution layer (really a cross-correlation, as in every framework) slides a kernel `W[o, c]` of size
# `kH x kW` over the zero-padded input and takes a dot product at every position:
#
# `y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] * xpad[n, c, stride*p + i, stride*q + j]`
#
# with output size `OH = floor((H + 2 padding - kH) / stride) + 1` (PyTorch's formula). Shapes are NCHW:
# x `(N, C_in, H, W)`, W `(C_out, C_in, kH, kW)`, y `(N, C_out, OH, OW)`. First the formula as loops, nothing
# clever:

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minigan import data, functional as F, gan, metrics, models, optim, plot
from minigan.gradcheck import check_function
from minigan.lesson import Lesson, pick

lesson = Lesson("11_convolutions")


def conv2d_loop(x, W, b, stride=1, padding=0):
    """The formula, one output number at a time."""
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = W.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((n, c_out, oh, ow), dtype=x.dtype)
    for i in range(n):
        for o in range(c_out):
            for p in range(oh):
                for q in range(ow):
                    patch = xpad[i, :, stride * p:stride * p + kh, stride * q:stride * q + kw]  # (C_in, kH, kW)
                    y[i, o, p, q] = b[o] + np.sum(W[o] * patch)
    return y


rng = np.random.default_rng(0)
x = rng.standard_normal((2, 3, 9, 9))  # (N, C_in, H, W), float64 for exact comparisons
W = rng.standard_normal((4, 3, 3, 3))  # (C_out, C_in, kH, kW)
b = rng.standard_normal(4)
y_loop = conv2d_loop(x, W, b, stride=2, padding=1)
print("loop output shape", y_loop.shape, "  (9 + 2*1 - 3) // 2 + 1 =", (9 + 2 - 3) // 2 + 1)

# %% [markdown]
# Four nested loops, `N * C_out * OH * OW` small dot products: correct, and far too slow for training. **im2col**
# turns the whole convolution into *one* matrix product. Copy every patch the kernel sees into a column of a
# matrix `cols` of shape `(C_in*kH*kW, OH*OW*N)`; then every output number is the dot product of one kernel row of
# `W.reshape(C_out, C_in*kH*kW)` with one column:
#
# `Y = W.reshape(C_out, -1) @ cols`, a `(C_out, OH*OW*N)` matrix, which is y rearranged.
#
# Here is im2col written the plain way, one column per output position:

# %%
def im2col_plain(x, kh, kw, stride, padding):
    n, c, h, w = x.shape
    oh, ow = (h + 2 * padding - kh) // stride + 1, (w + 2 * padding - kw) // stride + 1
    xpad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((c * kh * kw, oh, ow, n), dtype=x.dtype)  # column order (oh, ow, n), as minigan's
    for p in range(oh):
        for q in range(ow):
            for i in range(n):
                cols[:, p, q, i] = xpad[i, :, stride * p:stride * p + kh, stride * q:stride * q + kw].reshape(-1)
    return cols.reshape(c * kh * kw, -1), (oh, ow)


cols, (oh, ow) = im2col_plain(x, 3, 3, stride=2, padding=1)
Y = W.reshape(4, -1) @ cols + b[:, None]  # (C_out, OH*OW*N): the one GEMM
y_im2col = Y.reshape(4, oh, ow, 2).transpose(3, 0, 1, 2)  # back to (N, C_out, OH, OW)
y_minigan, cache = F.conv2d_forward(x, W, b, stride=2, padding=1)
print("cols shape", cols.shape)
print("loop vs im2col:  max |difference| =", np.abs(y_loop - y_im2col).max())
print("loop vs minigan: max |difference| =", np.abs(y_loop - y_minigan).max())
np.testing.assert_array_equal(im2col_plain(x, 3, 3, 2, 1)[0], F.im2col(x, 3, stride=2, padding=1))
lesson.record(loop_vs_im2col=float(np.abs(y_loop - y_im2col).max()),
              loop_vs_minigan=float(np.abs(y_loop - y_minigan).max()),
              im2col_plain_equals_minigan=True, cols_shape=list(cols.shape))

# %% [markdown]
# minigan's `F.im2col` builds the same matrix differently: instead of one copy per output position (here 50), it
# makes one strided-slice copy per *kernel offset* `(i, j)` (here 9): the pixels tap `(i, j)` sees at every output
# position form the slice `xpad[:, :, i : i + stride*OH : stride, j : j + stride*OW : stride]`. Same numbers,
# `kH*kW` big copies instead of `N*OH*OW` small ones.
#
# ## The backward pass, and the gradient checker
#
# Once the convolution is `Y = Wm @ cols`, its backward is the dense layer's (lesson 1): `dWm = dY @ cols.T`,
# `dcols = Wm.T @ dY`. The only new step is getting from `dcols` back to `dx`: a pixel was copied into several
# columns (every patch that covers it), so it receives the **sum** of their gradients. That is **col2im**, the
# adjoint of im2col: it adds each column back where it came from. `F.conv2d_backward` does exactly this; the
# gradient checker compares it with central finite differences in float64:

# %%
result = check_function(F.conv2d_forward, F.conv2d_backward, [x, W, b, 2, 1], wrt=[0, 1, 2])
print(result)
lesson.record(conv2d_gradcheck_ok=result.ok,
              conv2d_gradcheck_max_rel_error=max(t.max_rel_error for t in result.tensors))

# %% [markdown]
# ## 2. Transposed convolution is the convolution's backward pass
#
# A generator needs to go *up*: from a 7x7 feature map to a 28x28 image. The layer that does it,
# `ConvTranspose2d`, is often drawn as "a convolution with holes", but it is simpler than that: it is the map
# `dy -> dx` of a convolution's backward pass, used as a forward layer. The convolution `x -> y` is linear in x,
# `y = A x` for some big matrix A; its backward pass computes `A^T dy`; the transposed convolution computes
# `A^T v` for any v. That is the whole definition, and its name.
#
# The defining property of a transpose is the **adjoint identity**: for every u and v,
#
# `<A u, v> = <u, A^T v>`, here `sum(conv2d(u, W) * v) == sum(u * conv_transpose2d(v, W))`
#
# with the *same* weight array W (PyTorch stores a transposed convolution's weights as `(C_in, C_out, kH, kW)` for
# exactly this reason: it is the array of the convolution it transposes). Check it on random arrays:

# %%
u = rng.standard_normal((2, 3, 9, 9))  # an input of the convolution
v = rng.standard_normal((2, 4, 5, 5))  # an output-shaped array
conv_u, _ = F.conv2d_forward(u, W, None, stride=2, padding=1)  # (2, 4, 5, 5)
convT_v, _ = F.conv_transpose2d_forward(v, W, None, stride=2, padding=1)  # (2, 3, 9, 9): back up
lhs, rhs = float(np.sum(conv_u * v)), float(np.sum(u * convT_v))
print(f"<conv(u), v>   = {lhs:.12f}")
print(f"<u, conv_T(v)> = {rhs:.12f}   relative difference {abs(lhs - rhs) / abs(lhs):.1e}")

# and the transposed convolution's forward IS conv2d's input gradient:
_, cache_u = F.conv2d_forward(u, W, None, stride=2, padding=1)
dx, _, _ = F.conv2d_backward(v, cache_u)
print("max |conv_T(v) - conv2d_backward's dx| =", np.abs(convT_v - dx).max())
lesson.record(adjoint_lhs=lhs, adjoint_rhs=rhs, adjoint_rel_difference=abs(lhs - rhs) / abs(lhs),
              convT_equals_conv_input_grad=float(np.abs(convT_v - dx).max()))

# %% [markdown]
# The output size runs the convolution's formula backwards: `OH = (H - 1) stride - 2 padding + kH`. With kernel
# 4, stride 2, padding 1 that is `2H`: each transposed convolution doubles the side, 7 -> 14 -> 28, which is how
# the DCGAN's generator grows its images. (Since a stride-2 convolution maps several input sizes to the same
# output size, `output_padding` picks among them; the DCGAN does not need it.)

# %%
sizes = [7]
for _ in range(2):
    sizes.append(F.conv_transpose_output_size(sizes[-1], 4, stride=2, padding=1))
print(" -> ".join(map(str, sizes)))
lesson.record(generator_sizes=sizes)

# %% [markdown]
# ## 3. A DCGAN on the digits
#
# `models.build_models("dcgan", 784)` builds the DCGAN recipe at widths a 2-core machine can train:
#
# * **G**: z (100) -> Dense to 64x7x7 (no bias) -> BatchNorm1d -> ReLU -> reshape to (64, 7, 7) ->
#   ConvTranspose2d 64->32, k4 s2 p1 (no bias) -> BatchNorm2d -> ReLU -> (32, 14, 14) -> ConvTranspose2d 32->1
#   -> tanh -> (1, 28, 28), flattened to 784.
# * **D**: the 784 numbers reshaped to (1, 28, 28) -> Conv2d 1->32, k4 s2 p1 -> LeakyReLU(0.2) -> (32, 14, 14)
#   -> Conv2d 32->64 -> LeakyReLU(0.2) -> (64, 7, 7) -> flatten -> Dense -> 1 logit.
#
# No layer has a bias in front of a batch norm (it would be subtracted right away), D has no batch norm (real and
# fake rows go through it as one batch, and batch statistics would mix them), weights start from N(0, 0.02^2).
# The models take and return flat rows, so the data, the pictures and the metrics of lesson 9 work unchanged.
# Adam at DCGAN's `2e-4`, `beta1 = 0.5`, the learning rate decaying linearly over the second half, batch 64.

# %%
digits = data.get_dataset("digits", scale="tanh", seed=0)
G, D = models.build_models("dcgan", data_dim=784, rng=0)
G.summary()
D.summary()
print(f"G has {G.num_params():,} parameters, D {D.num_params():,}")
LR, betas = 2e-4, (0.5, 0.999)
model = gan.GAN(G, D, optim.Adam(G.params(), LR, betas), optim.Adam(D.params(), LR, betas), noise_dim=100, rng=0)

classifier = metrics.load_classifier()
eval_z = np.random.default_rng(1).standard_normal((1000, 100), dtype=np.float32)
grid_z = eval_z[:36]
mean_real = digits.to_images(digits.real_samples(1000)).reshape(1000, 784).mean(axis=0)  # (784,)


def quality(model):
    """Classes covered and MNIST score of 1,000 samples (lesson 9), and the mean-image gap; in eval mode: batch
    norm then uses its running statistics, so each sample depends on its own noise only."""
    model.G.eval()
    try:
        images01 = digits.to_images(model.generate(z=eval_z)).reshape(1000, 784)
    finally:
        model.G.train()
    probs = classifier.probs(images01)
    counts = metrics.class_histogram(probs.argmax(axis=1))
    return {"classes_covered": metrics.classes_covered(counts), "mnist_score": metrics.mnist_score(probs),
            "mean_image_gap": float(np.sqrt(np.mean((images01.mean(axis=0) - mean_real) ** 2))),
            "class_counts": counts}


def sample_grid(model):
    model.G.eval()
    try:
        return digits.to_images(model.generate(z=grid_z))  # (36, 28, 28) in [0, 1]
    finally:
        model.G.train()


# %% [markdown]
# Train, keeping a grid of the same 36 noise vectors at a few snapshots and the quality numbers:

# %%
STEPS = pick(1500, 60)
SNAPSHOTS = sorted({0, STEPS // 10, STEPS // 3, STEPS})
BATCH = 64
grids, history, logs = {}, [], []
t0 = time.perf_counter()
for k in range(STEPS + 1):
    if k in SNAPSHOTS:
        grids[k] = sample_grid(model)
        q = quality(model)
        history.append(dict(step=k, **{key: q[key] for key in ("classes_covered", "mnist_score", "mean_image_gap")}))
        print(history[-1])
    if k == STEPS:
        break
    factor = min(1.0, 2.0 * (1.0 - k / STEPS))  # constant, then linear decay over the second half
    model.g_optimizer.lr = model.d_optimizer.lr = LR * factor
    logs.append(model.train_step(digits.batch(k, BATCH)))
seconds = time.perf_counter() - t0
print(f"{STEPS} steps in {seconds:.0f} s ({1e3 * seconds / max(STEPS, 1):.0f} ms a step, with the snapshots)")

fig, axes = plt.subplots(1, len(SNAPSHOTS), figsize=(3 * len(SNAPSHOTS), 3.2))
for ax, k in zip(axes, SNAPSHOTS):
    ax.imshow(1 - plot.image_grid(grids[k]), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"step {k}", fontsize=9)
    ax.set_axis_off()
lesson.save(fig, "dcgan_samples_over_training.png")

last = logs[-max(1, len(logs) // 10):]  # the last 10% of training
final = quality(model)
lesson.record(steps=STEPS, seconds=seconds, quality_over_training=history,
              classes_covered=final["classes_covered"], mnist_score=final["mnist_score"],
              class_counts=final["class_counts"],
              final_d_real=float(np.mean([s["d_real"] for s in last])),
              final_d_fake=float(np.mean([s["d_fake"] for s in last])),
              losses_finite=bool(all(np.isfinite(v) for s in logs for v in s.values())))

# %% [markdown]
# The last grid, larger:

# %%
fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(1 - plot.image_grid(grids[STEPS]), cmap="gray", vmin=0, vmax=1)
ax.set_axis_off()
ax.set_title(f"DCGAN, step {STEPS}: {final['classes_covered']} classes, MNIST score {final['mnist_score']:.2f}",
             fontsize=9)
lesson.save(fig, "dcgan_samples.png")

# %% [markdown]
# ## What you should see
#
# Parts 1 and 2 are exact up to float64 rounding in any run: loop, im2col and `F.conv2d_forward` agree to about
# 1e-15; the gradient check passes with relative errors around 1e-7 or below; the two sides of the adjoint identity
# agree to about 1e-15 relative, and the transposed convolution equals conv2d's input gradient exactly (0.0: it is
# the same GEMM and the same col2im). The generator's sizes run 7 -> 14 -> 28.
#
# Part 3, the full 1,500 steps (measured: 402 s on a busy 2-core machine, ~2.5 minutes on a quiet one):
#
# | step | classes covered | MNIST score | mean-image gap |
# |---:|---:|---:|---:|
# | 0 | 1 | 1.00 | 0.405 |
# | 150 | 8 | 2.40 | 0.347 |
# | 500 | 10 | 4.64 | 0.044 |
# | 1,500 | **10** | **5.13** | 0.030 |
#
# Over the last 10% of training D(x) is 0.54 and D(G(z)) 0.46. Shapes come early -- at step 150 the grid already
# holds stroke-like blobs, where the `mlp` GAN's first samples are noise in every pixel -- because a kernel learned
# at one position is used at all of them. At the end the background is clean (none of the `mlp` GAN's
# salt-and-pepper pixels) and the strokes have smooth edges, but they are thick and often broken, and many samples
# are only half a digit; the classes are unbalanced (the classifier finds few 1s: `class_counts` has 12 of them in
# 1,000). On full MNIST (`benchmarks/quality/MNIST_RESULTS.md`, last section) the DCGAN at the ~3-minute budget
# likewise covers 10/10 classes but trails the `mlp` GAN in FID and class balance: at this size and budget its value
# is teaching and longer runs, not a better 3-minute score.
#
# ## Exercises
#
# 1. **Count the work.** For the DCGAN's second D convolution (32 -> 64 channels, 14x14 -> 7x7, kernel 4) at
#    batch 128 (real + fake), how many multiply-adds does its GEMM take? How big is its im2col matrix, in MB of
#    float32? Compare with the Dense layer that follows it.
# 2. **Stride larger than the kernel.** Run `conv2d_loop` with kernel 1 and stride 2. Which input pixels does the
#    output never see? What does `F.conv2d_backward` give as their gradient, and why is that right?
# 3. **The adjoint identity with padding.** Repeat part 2 with `padding=2` and `stride=3`. Does the identity still
#    hold? Where do the padded pixels' contributions go in `conv_transpose2d`?
# 4. **Batch norm in D.** Add a `BatchNorm2d(64)` after D's second convolution (the DCGAN paper has one) and train.
#    The GAN step pushes real and fake rows through D as *one* batch: what does D's batch norm then compute, and
#    why can that help or hurt D?
#
# Answers: [answers/11_convolutions.md](answers/11_convolutions.md).

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
# # Lesson 10: the same code on a GPU
#
# Nothing in the previous nine lessons said "CPU". Every op in `minigan.functional` is written with operators
# (`@`, `+=`, `.T`) and array methods, and where it needs a function it asks the array which library owns it:
# `xp = xp_of(x)` is `numpy` for a NumPy array and `cupy` for a CuPy array. CuPy is NumPy's interface on an NVIDIA
# GPU, so the same lines run there. This lesson moves a GAN to the GPU, checks that it computes the same thing as
# on the CPU, and times both.
#
# Run it as a script (`python tutorials/10_gpu.py`) or as a notebook (`jupytext --to ipynb tutorials/10_gpu.py`).
# **Without CuPy or a GPU the lesson says so and skips the GPU cells; the CPU cells still run.** To get CuPy:
# `pip install -e ".[gpu]"` (CUDA 12) or `".[gpu-cuda13]"` (CUDA 13).
#
# ## How a model moves
#
# * `minigan.backend` is the only module that imports CuPy (lazily). `backend.cupy_available()` says whether CuPy
#   imports *and* a CUDA device answers.
# * A model is always **built on the host** from a seeded NumPy generator, then moved: `model.to("cupy")` copies
#   every parameter (and buffer) to the GPU in place. So a CPU copy and a GPU copy start from identical weights.
# * **Create optimizers after moving**: Adam's moments are created on the parameters' own backend.
# * Data goes over with `backend.to_device(x, "cupy")`; results come back with `backend.to_numpy(a)`. Never mix:
#   an op on a NumPy and a CuPy array fails with a message telling you what to move.
# * `GAN.sample_noise` draws `z` on the host and moves it, so both copies see the same noise.
# * GPU work is queued: time it only after `backend.synchronize(a)` has waited for it.

# %%
import time

import numpy as np

from minigan import backend, data, gan, models, optim
from minigan.lesson import Lesson, pick

lesson = Lesson("10_gpu")

GPU = backend.cupy_available()
if GPU:
    print("CuPy and a CUDA device are available: the GPU cells will run.")
else:
    try:
        backend.resolve("cupy")
        reason = "unknown"
    except backend.BackendError as err:
        reason = str(err)
    print("No GPU here, so the GPU cells of this lesson are SKIPPED; the CPU cells still run.\n"
          f"Why: {reason}")
lesson.record(gpu_available=GPU, gpu_cells_skipped=not GPU)

# %% [markdown]
# ## One recipe, two places
#
# `build(backend_name)` makes the digits GAN of lesson 9 from seed 0 on the host, moves it, and only then
# creates its optimizers. Called twice, it gives two GANs with bit-identical starting weights and the same noise
# stream, one per backend.

# %%
digits = data.get_dataset("digits", scale="tanh", seed=0)


def build(backend_name, seed=0):
    G, D = models.build_models("mlp", data_dim=784, rng=seed)  # on the host, float32
    G.to(backend_name), D.to(backend_name)  # in place; a no-op for "numpy"
    betas = (0.5, 0.999)
    return gan.GAN(G, D, optim.Adam(G.params(), 2e-4, betas), optim.Adam(D.params(), 2e-4, betas),
                   noise_dim=100, rng=seed)


def batches(backend_name, steps, batch_size):
    """The same real batches for both backends, moved to the model's side."""
    return [backend.to_device(digits.batch(k, batch_size), backend_name) for k in range(steps)]


def ms_per_step(model, real_batches):
    """Mean wall time of a training step, after one warm-up step (the GPU compiles its kernels on first use)."""
    model.train_step(real_batches[0], to_host=False)
    backend.synchronize(model.G.params()[0].data)
    start = time.perf_counter()
    for real in real_batches[1:]:
        model.train_step(real, to_host=False)  # losses stay on the device: no wait for the host each step
    backend.synchronize(model.G.params()[0].data)
    return 1000 * (time.perf_counter() - start) / (len(real_batches) - 1)


# %% [markdown]
# ## The CPU reference
#
# First the timing on NumPy, for two batch sizes: 64 (the default of `minigan train`) and 512.
#
# A CPU timing depends on how many threads NumPy's BLAS uses for the matrix products. These matrices are small; on
# a machine whose cores are busy with other work, a second BLAS thread mostly waits for a free core, and a step
# can be *ten times slower* than with one. If your numbers look absurd, rerun with `OPENBLAS_NUM_THREADS=1` (or
# `OMP_NUM_THREADS=1`) set in the environment before Python starts.

# %%
TIMED_STEPS = pick(21, 3)
cpu_ms = {}
for batch_size in (64, 512):
    cpu_ms[batch_size] = ms_per_step(build("numpy"), batches("numpy", TIMED_STEPS, batch_size))
    print(f"NumPy, batch {batch_size:4d}: {cpu_ms[batch_size]:7.1f} ms per step")
lesson.record(cpu_ms_per_step_batch64=cpu_ms[64], cpu_ms_per_step_batch512=cpu_ms[512])

# %% [markdown]
# ## Parity: does the GPU compute the same thing?
#
# Same weights, same noise, same data, a few steps on each backend; then compare every weight. Expect **close,
# not equal**: a GPU sums a matrix product's terms in a different order than the CPU's BLAS, and float32 addition
# is not associative, so the last bits differ (relative differences around `1e-7` after one step). Adam divides
# by the square root of a tiny second moment early on, which can amplify such differences a little over steps;
# what must not happen is a difference of the size of the weights themselves -- that would be a bug.

# %%
PARITY_STEPS = pick(10, 3)
if GPU:
    cpu_model, gpu_model = build("numpy"), build("cupy")
    cpu_stats = [cpu_model.train_step(x) for x in batches("numpy", PARITY_STEPS, 64)]
    gpu_stats = [gpu_model.train_step(x) for x in batches("cupy", PARITY_STEPS, 64)]
    worst = 0.0
    for p_cpu, p_gpu in zip(cpu_model.G.params() + cpu_model.D.params(), gpu_model.G.params() + gpu_model.D.params()):
        on_host = backend.to_numpy(p_gpu.data)  # device -> host copy
        scale = float(np.abs(p_cpu.data).max()) or 1.0
        worst = max(worst, float(np.abs(on_host - p_cpu.data).max()) / scale)
    loss_gap = max(abs(a["d_loss"] - b["d_loss"]) + abs(a["g_loss"] - b["g_loss"])
                   for a, b in zip(cpu_stats, gpu_stats))
    print(f"after {PARITY_STEPS} steps: largest weight difference {worst:.2e} of the weights' scale; "
          f"largest loss difference {loss_gap:.2e}")
    lesson.record(parity_steps=PARITY_STEPS, parity_max_rel_weight_difference=worst,
                  parity_max_loss_difference=loss_gap)
else:
    print("skipped (no GPU): parity")

# %% [markdown]
# ## Timing on the GPU
#
# A small batch leaves most of a GPU idle: each step is dozens of small kernels, and their launch overhead, not
# arithmetic, sets the pace. A larger batch fills the device for almost the same time per step.

# %%
gpu_ms = {}
if GPU:
    for batch_size in (64, 512):
        gpu_ms[batch_size] = ms_per_step(build("cupy"), batches("cupy", TIMED_STEPS, batch_size))
        print(f"CuPy,  batch {batch_size:4d}: {gpu_ms[batch_size]:7.1f} ms per step  "
              f"({cpu_ms[batch_size] / gpu_ms[batch_size]:.1f}x the CPU's speed)")
    lesson.record(gpu_ms_per_step_batch64=gpu_ms[64], gpu_ms_per_step_batch512=gpu_ms[512])
else:
    print("skipped (no GPU): timing")

# %% [markdown]
# ## What you should see
#
# Without a GPU (the full run on an idle 2-core machine, about 5 s): "No GPU here, so the GPU cells of this lesson
# are SKIPPED" with the reason (CuPy not installed), then NumPy at about 27 ms per step for batch 64 and 100 ms for
# batch 512 with two BLAS threads (38 and 170 ms with one), and "skipped (no GPU)" for parity and timing. On the
# same machine busy with other work, one BLAS thread gave 169 and 506 ms: timings are only comparable on a quiet
# machine.
#
# With a GPU: the same CPU lines; a largest weight difference far below `1e-3` of the weights' scale after 10
# steps (float32 rounding, not a bug); and GPU steps that are a few times faster than the CPU's at batch 64 and
# many times faster at batch 512 -- the GPU's time per step barely grows with the batch.
#
# ## Exercises
#
# 1. **Mixing backends.** Build a GAN with `build("cupy")` and call `train_step` with a NumPy batch. Read the error
#    message. Which function in `minigan.backend` raises it, and what does it tell you to do?
# 2. **Where is the time?** Time batch sizes 64, 256, 1024 and 4096 on the CPU (and the GPU, if you have one) and
#    plot ms per step against batch size. Where does each curve turn from flat to linear?
# 3. **Parity in float64.** Build both GANs, convert them with `G.to(dtype="float64")` (before the optimizers), and
#    redo the parity cell. By how many orders of magnitude does the difference shrink, and why?
#
# Answers: [answers/10_gpu.md](answers/10_gpu.md).

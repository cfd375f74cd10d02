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
# # Lesson 4: gradient checking as a habit
#
# Every backward pass in minigan was written by hand, and every one of them is tested the same way: against the
# *definition* of a derivative, evaluated numerically. You used the checker in lessons 1 to 3; this lesson opens
# it up. How big should the step be? Why float64? What does "relative error" mean and when does it lie? How can a
# check of a 200,000-weight layer take a fraction of a second? And how do you turn all that into a test that
# guards your own new layer forever?
#
# If you write gradient-check suites, start here. This lesson needs
# [hypothesis](https://hypothesis.readthedocs.io/) besides minigan (`pip install -e ".[test]"` installs it).

# %%
import time

import numpy as np
import matplotlib.pyplot as plt
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from minigan import functional as F, nn
from minigan.gradcheck import GradCheckError, check_function, check_module
from minigan.lesson import Lesson, pick

lesson = Lesson("04_gradient_checking")
rng = np.random.default_rng(0)

# %% [markdown]
# ## Central differences, and why not one-sided ones
#
# Taylor's theorem around `x`, one coordinate at a time:
#
# $$f(x \pm \varepsilon) = f(x) \pm \varepsilon f'(x) + \tfrac{\varepsilon^2}{2} f''(x) \pm \tfrac{\varepsilon^3}{6} f'''(x) + \dots$$
#
# The *forward* difference `(f(x + ε) - f(x)) / ε = f'(x) + ε f''(x) / 2 + …` is off by a term of order `ε`.
# Subtracting the two expansions cancels the even terms: the *central* difference
# `(f(x + ε) - f(x - ε)) / 2ε = f'(x) + ε² f'''(x) / 6 + …` is off by order `ε²`. Same two evaluations per
# element (the checker needs `f(x)` anyway), a much better estimate.
#
# ## The step size: truncation against rounding
#
# Smaller `ε` shrinks the truncation error `ε² |f'''| / 6`, but `f(x + ε)` and `f(x - ε)` are computed with a
# relative rounding error `u` (the *unit roundoff*: 6e-8 in float32, 1.1e-16 in float64), and their difference
# is divided by `2ε`: a rounding error of about `u |f| / ε`. The total is smallest where the two balance,
#
# $$\varepsilon^\ast \approx \left(\frac{3 u |f|}{|f'''|}\right)^{1/3} \sim u^{1/3}:
#   \quad \text{about } 5\cdot 10^{-6} \text{ in float64, } 4\cdot 10^{-3} \text{ in float32.}$$
#
# Let us measure it. The function is the check's loss of a tanh layer, `f(W) = sum(tanh(x @ W) * dout)`, whose
# exact gradient is `x.T @ (dout * (1 - tanh²))` (lesson 1 and 2 together). For each eps, in float32 and in
# float64, compare central differences with it over every element of `W`, and record the worst **relative error**
# `|analytic - numeric| / max(|analytic|, |numeric|)`.

# %%
x = rng.standard_normal((16, 6))  # (16, 6)
W = rng.standard_normal((6, 5)) * 0.5  # (6, 5)
dout = rng.standard_normal((16, 5))  # (16, 5)
t = np.tanh(x @ W)
dW_exact = x.T @ (dout * (1 - t * t))  # (6, 5), float64


def loss_of(W_, dtype):
    """The check's scalar loss, computed entirely in ``dtype``."""
    return float((np.tanh(x.astype(dtype) @ W_) * dout.astype(dtype)).sum(dtype=dtype))


def worst_relative_error(eps, dtype, central=True):
    W_ = W.astype(dtype)
    f0 = loss_of(W_, dtype)
    worst = 0.0
    for i, j in np.ndindex(W.shape):
        old = W_[i, j].copy()
        W_[i, j] = old + dtype(eps)
        f_plus = loss_of(W_, dtype)
        W_[i, j] = old - dtype(eps)
        f_minus = loss_of(W_, dtype)
        W_[i, j] = old
        numeric = (f_plus - f_minus) / (2 * eps) if central else (f_plus - f0) / eps
        exact = dW_exact[i, j]
        worst = max(worst, abs(numeric - exact) / max(abs(numeric), abs(exact)))
    return worst


eps_grid = 10.0 ** np.arange(-12, 0.01, pick(0.25, 1.0))
errors = {
    "central, float32": np.array([worst_relative_error(e, np.float32) for e in eps_grid]),
    "central, float64": np.array([worst_relative_error(e, np.float64) for e in eps_grid]),
    "forward, float64": np.array([worst_relative_error(e, np.float64, central=False) for e in eps_grid]),
}
best = {name: (float(eps_grid[np.argmin(err)]), float(err.min())) for name, err in errors.items()}
for name, (e, err) in best.items():
    print(f"{name}: best eps {e:.0e}, worst relative error there {err:.1e}")
at_1e6 = {name: float(err[np.argmin(np.abs(np.log10(eps_grid) + 6))]) for name, err in errors.items()}
print(f"at eps = 1e-6 (the checker's default): float64 {at_1e6['central, float64']:.1e}, "
      f"float32 {at_1e6['central, float32']:.1e}")

fig, ax = plt.subplots(figsize=(6.5, 4.2))
for name, err in errors.items():
    ax.loglog(eps_grid, np.maximum(err, 1e-17), "o-", ms=3, label=name)
ax.axvline(1e-6, color="gray", ls=":", label="minigan's default eps = 1e-6")
ax.set_xlabel("eps")
ax.set_ylabel("worst relative error")
ax.set_title("finite differences: rounding (left) vs truncation (right)")
ax.legend(fontsize=8)
lesson.save(fig, "error_vs_eps.png")

# %% [markdown]
# **What to look at.** Each curve is a V. On the right, truncation: the central curves fall with slope 2 (100x per
# decade of eps), the forward one with slope 1. On the left, rounding: error grows like `1/eps`. The bottom of the
# V is the sweet spot, and it sits where the theory says: near 1e-5 to 1e-6 in float64 with errors around 1e-10,
# near 1e-2 to 1e-3 in float32, where the best you can get is about 1e-4. At eps = 1e-6, float32's estimate is
# noise (relative error near 1: the perturbation is at or below float32's resolution of `W` and of `f`, so
# `f(x + ε) - f(x - ε)` is mostly rounding).
#
# That is why minigan's checker always works on a **float64 copy** (the models train in float32) and uses
# eps = 1e-6, with tolerances (below) far above float64's 1e-10 but far below the size of a real bug.
#
# ## Relative error, absolute error, and the checker's test
#
# An absolute error means nothing on its own: 1e-4 is excellent for a gradient of size 1e3 and damning for one of
# size 1e-5. CS231n's rule of thumb reads the *relative* error: below 1e-7 you are fine; around 1e-4 suspicious
# unless there are kinks; above 1e-2 you have a bug. But relative error lies too, where the gradient is itself 0:
# a gradient of 1e-19 against a numeric 0 (lesson 3, z = -40) is "100% wrong" by that formula. So minigan
# passes an element when
#
# $$|a - n| \le \text{atol} + \text{rtol}\,|n|, \qquad \text{atol} = 10^{-5},\ \text{rtol} = 10^{-3}$$
#
# (the test of `torch.autograd.gradcheck`, with its defaults), and *reports* the relative error alongside, with
# its denominator floored at atol: `|a - n| / max(|a|, |n|, atol)`, so that gradients below atol count as zero.
#
# The price of `atol` is a blind spot: gradients much smaller than 1e-5 are barely checked. Here is a backward
# pass that is wrong by a factor 2 on a layer whose gradients are ~1e-7:

# %%
def tiny_forward(x):
    return 1e-7 * np.tanh(x), np.tanh(x)


def tiny_backward_wrong(dy, y):
    return 2 * 1e-7 * dy * (1 - y * y)  # BUG: a factor 2 too large


x_small = rng.standard_normal((4, 5))
tiny_default = check_function(tiny_forward, tiny_backward_wrong, [x_small], names=["dx"], raise_exception=False)
tiny_strict = check_function(tiny_forward, tiny_backward_wrong, [x_small], names=["dx"], atol=0,
                             raise_exception=False)
print(f"default tolerances: ok = {tiny_default.ok}, worst relative error {tiny_default['dx'].max_rel_error:.3f}")
print(f"atol = 0:           ok = {tiny_strict.ok}, worst relative error {tiny_strict['dx'].max_rel_error:.3f}")

# %% [markdown]
# The default check *passes* a gradient that is 100% wrong, and even its relative-error column looks harmless
# (about 0.01): below atol every gradient counts as zero. With `atol=0` the relative error is the true one, 0.5
# (analytic `2g` against numeric `g`: `|2g - g| / 2g`), and the check fails. When your gradients are tiny, either
# scale the check up (a larger `dout`, or inputs of a realistic size) or pass `atol=0`.
#
# ## Kinks
#
# At a point where the function has a corner (ReLU at 0, lesson 2), the central difference straddles it and
# averages two slopes. The checker recognises such points from the two one-sided slopes (which it gets for free
# from the same evaluations), looks again with eps/10 and eps/100, and reports a real kink in the `kinks` column
# instead of failing. On random inputs a whole ReLU network rarely puts a pre-activation exactly at 0, so its
# check usually reports no kinks at all:

# %%
mlp = nn.Sequential(nn.Dense(6, 16, rng=0, init="he"), nn.ReLU(), nn.Dense(16, 16, rng=1), nn.LeakyReLU(0.2),
                    nn.Dense(16, 1, rng=2))
mlp_check = check_module(mlp, rng.standard_normal((8, 6)).astype(np.float32))
print(mlp_check)
mlp_kinks = sum(t.kinks for t in mlp_check.tensors)

# %% [markdown]
# ## Big tensors: sampled elements and a random direction
#
# Checking every element of a `Dense(784, 256)` means 2 × 200,704 forward passes for `W` alone. The checker
# instead compares a seeded random **sample** of `max_elements` (256) elements per tensor, and adds one check
# along a random unit **direction** `d` through the *whole* tensor (Chainer's idea):
#
# $$\frac{f(W + \varepsilon d) - f(W - \varepsilon d)}{2\varepsilon} \approx \langle \nabla_W f, d\rangle .$$
#
# Two more evaluations, and an error *anywhere* in the tensor shifts the dot product. Here is a bug that a sample
# easily misses: a hand-written loop over the input features that stops one short, so the last row of `dW` is
# never filled in (0.1% of its elements).

# %%
def dense_backward_off_by_one(dy, cache):
    dx, dW, db = F.dense_backward(dy, cache)
    dW[-1, :] = 0  # BUG: "for i in range(n_in - 1)": the last input feature's row is never written
    return dx, dW, db


x_big = rng.standard_normal((2, 784))
W_big = rng.standard_normal((784, 256)) * 0.05
b_big = np.zeros(256)
big_check = check_function(F.dense_forward, dense_backward_off_by_one, [x_big, W_big, b_big], wrt=[1],
                           raise_exception=False)  # wrt=[1]: check W only, to keep the lesson quick
print(big_check)
dW_row = big_check["dW"]
print(f"dW: {dW_row.checked} of {W_big.size} elements sampled; the sample alone found the bug: "
      f"{dW_row.max_abs_error > dW_row.tolerance}")
print(f"along a random direction: |<grad, d> - numeric| = {dW_row.direction_error:.2e}, tolerance "
      f"{dW_row.direction_tolerance:.2e}")

# %% [markdown]
# That was one draw of the sample and the direction (the checker's `seed=0`). Repeat the check with other seeds
# and count how often each part finds the bug:

# %%
SEEDS = pick(40, 8)
sample_found, direction_found = [], []
start = time.perf_counter()
for seed in range(SEEDS):
    dW_check = check_function(F.dense_forward, dense_backward_off_by_one, [x_big, W_big, b_big], wrt=[1],
                              seed=seed, raise_exception=False)["dW"]
    sample_found.append(dW_check.max_abs_error > dW_check.tolerance)
    direction_found.append(dW_check.direction_error > dW_check.direction_tolerance)
seconds_per_check = (time.perf_counter() - start) / SEEDS
sample_rate, direction_rate = float(np.mean(sample_found)), float(np.mean(direction_found))
print(f"over {SEEDS} seeds: the sample found the bug {sample_rate:.0%} of the time, the random direction "
      f"{direction_rate:.0%}; {seconds_per_check:.2f} s per check (all 200,704 elements: about "
      f"{seconds_per_check * W_big.size / 258:.0f} s)")

# %% [markdown]
# With 256 of 200,704 elements sampled, the chance that the sample touches the broken row at all is about
# 1 − (1 − 256/200704)^256 ≈ 28%. The direction check catches it every time: its error is the sum of
# `dW[-1, j] d[-1, j]` over the 256 broken elements, far above the tolerance. (The 40 seeds of the full run find
# it by sample 7 times, 18%: within chance of 28%.) Sampled elements tell you *which*
# element is wrong when they find one; the direction makes sure nothing escapes.
#
# ## Make it a test: a hypothesis-driven gradient check for your own layer
#
# A check you ran once in a notebook protects nothing. Write it as a test, and let
# [hypothesis](https://hypothesis.readthedocs.io/) choose the inputs: shapes from 1×1 up, values from tiny to
# large, and, when something fails, *shrink* the input to the smallest one that still fails.
#
# Your new layer: **SiLU** (also called swish), `y = x · sigmoid(x)`. By the product rule, with `s = sigmoid(x)`
# and `s' = s (1 - s)`:
#
# $$\frac{dy}{dx} = s + x\,s\,(1 - s) = s\,\big(1 + x (1 - s)\big).$$

# %%
def silu_forward(x):
    """y = x * sigmoid(x). Shapes: x (N, F) -> y (N, F). cache = (x, s)."""
    s, _ = F.sigmoid_forward(x)  # (N, F), overflow-free
    return x * s, (x, s)


def silu_backward(dy, cache):
    """dx = dy * s * (1 + x (1 - s))."""
    x, s = cache
    return dy * s * (1 + x * (1 - s))


def silu_backward_wrong(dy, cache):
    """A plausible slip: the product rule forgotten, as if x were a constant."""
    x, s = cache
    return dy * s


# %% [markdown]
# The test below is exactly what you would put in `tests/test_silu.py` and run with `pytest`. It states three
# properties for *any* input hypothesis comes up with: the backward pass matches finite differences, it returns an
# array of the input's shape, and it leaves the caller's `dout` alone (lesson 2's bug). `derandomize=True` makes
# the examples the same on every run (what a CI wants); `database=None` keeps hypothesis from writing a
# `.hypothesis/` folder where you run the lesson.

# %%
EXAMPLES = pick(200, 25)
examples_run = []


def make_gradient_test(forward, backward):
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
    @given(x=arrays(np.float64, array_shapes(min_dims=2, max_dims=2, max_side=6),
                    elements=st.floats(-30, 30, allow_nan=False)))
    def test_gradient(x):
        examples_run.append(x)
        out, cache = forward(x)
        dout = np.random.default_rng(0).standard_normal(out.shape)
        dout_before = dout.copy()
        dx = backward(dout, cache)
        assert dx.shape == x.shape
        assert np.array_equal(dout, dout_before), "backward wrote into the caller's dout"
        check_function(forward, backward, [x], names=["dx"])  # raises GradCheckError on a mismatch

    return test_gradient


test_silu_gradient = make_gradient_test(silu_forward, silu_backward)
test_silu_gradient()  # run inline: hypothesis runs all its examples, and raises on the first failure
correct_examples = len(examples_run)
print(f"correct SiLU: {correct_examples} random inputs, all passed")

# %% [markdown]
# And the same test against the wrong backward pass. Hypothesis finds a failing input, shrinks it, and re-raises
# the checker's error for the smallest failing example it found (the last example it ran):

# %%
examples_run.clear()
try:
    make_gradient_test(silu_forward, silu_backward_wrong)()
    wrong_caught, wrong_message = False, ""
except GradCheckError as error:
    wrong_caught, wrong_message = True, str(error)
shrunk = examples_run[-1]
print(f"wrong SiLU caught: {wrong_caught}, after {len(examples_run)} examples")
print(f"smallest failing input hypothesis found: shape {shrunk.shape}, values {shrunk.ravel().tolist()}")
print(wrong_message)

# %% [markdown]
# **The habit**, in one list: check every new backward pass in float64, with a random `dout`; read the relative
# error, not just `ok`; mind `atol` when gradients are tiny; make sure the backward gets (or is checked with) its
# own copy of `dout`; check the *composition* too (whole modules, `check_module`; the whole GAN step,
# `check_gan_step` in lesson 7), since a wiring bug hides between correct layers; and keep the check as a
# hypothesis test next to the layer. Derivations of every layer in minigan:
# [docs/derivations.md](../docs/derivations.md#dense).

# %%
lesson.record(
    best_eps_float64=best["central, float64"][0], best_error_float64=best["central, float64"][1],
    best_eps_float32=best["central, float32"][0], best_error_float32=best["central, float32"][1],
    best_eps_forward_float64=best["forward, float64"][0], best_error_forward_float64=best["forward, float64"][1],
    error_float64_at_1e6=at_1e6["central, float64"], error_float32_at_1e6=at_1e6["central, float32"],
    tiny_wrong_passes_default=tiny_default.ok, tiny_wrong_rel_error_default=tiny_default["dx"].max_rel_error,
    tiny_wrong_rel_error=tiny_strict["dx"].max_rel_error,
    tiny_wrong_fails_atol0=not tiny_strict.ok,
    mlp_check_ok=mlp_check.ok, mlp_kinks=mlp_kinks,
    big_dW_sampled=dW_row.checked, big_dW_total=int(W_big.size), big_check_failed=not big_check.ok,
    big_seeds=SEEDS, big_sample_rate=sample_rate, big_direction_rate=direction_rate,
    big_seconds_per_check=seconds_per_check,
    hypothesis_examples=correct_examples, hypothesis_wrong_caught=wrong_caught,
    hypothesis_shrunk_size=int(shrunk.size),
)

# %% [markdown]
# ## What you should see
#
# | what | key | value |
# |---|---|---|
# | float64, central: best eps | `best_eps_float64` | 1e-5 ± 9e-6 |
# | float64, central: error there | `best_error_float64` | < 1e-9 |
# | float32, central: best eps | `best_eps_float32` | 5.6e-3 ± 4.5e-3 |
# | float32, central: error there | `best_error_float32` | < 1e-3 |
# | float64, forward difference: best error | `best_error_forward_float64` | > 1e-9 |
# | float32 at the default eps 1e-6: noise | `error_float32_at_1e6` | > 0.1 |
# | float64 at the default eps 1e-6 | `error_float64_at_1e6` | < 1e-7 |
# | a 2x-wrong tiny gradient passes the default check | `tiny_wrong_passes_default` | true |
# | its relative error, floored at atol, looks harmless | `tiny_wrong_rel_error_default` | < 0.05 |
# | `atol=0` catches it | `tiny_wrong_fails_atol0` | true |
# | with the true relative error | `tiny_wrong_rel_error` | 0.5 ± 1e-3 |
# | a ReLU/LeakyReLU MLP passes `check_module` | `mlp_check_ok` | true |
# | with no kinks on random inputs | `mlp_kinks` | 0 |
# | elements of the big `dW` sampled (of 200,704) | `big_dW_sampled` | 256 |
# | the check of the off-by-one `dW` fails | `big_check_failed` | true |
# | share of 40 seeds whose sample found the broken row | `big_sample_rate` | 0.175 ± 0.1 |
# | share of 40 seeds whose random direction caught it | `big_direction_rate` | 1.0 ± 1e-9 |
# | correct SiLU: hypothesis examples, all passed | `hypothesis_examples` | 200 |
# | wrong SiLU caught by the hypothesis test | `hypothesis_wrong_caught` | true |
# | size of the shrunk failing input | `hypothesis_shrunk_size` | 1 |
#
# and `error_vs_eps.png`: three V-shaped curves, float32's bottom two to three decades to the right of float64's
# and four decades higher.
#
# ## Exercises
#
# 1. **Predict, then run.** Rerun the eps sweep with `f(W) = sum((x @ W) * dout)` (no tanh). Where is the sweet
#    spot now, and why does the right half of the central curves disappear?
# 2. **Implement and check.** Write forward and backward for softsign, `y = x / (1 + |x|)`, and add it to the
#    hypothesis test. Does the checker report kinks at 0? (Compute both one-sided slopes first.)
# 3. **Break it.** In `silu_backward`, write `dy *= s * (1 + x * (1 - s)); return dy`. Which of the three
#    assertions of the test fails first, and would `check_function` alone have caught it?
# 4. **Predict.** A layer's true `dW` has a single wrong element, off by 1 (all other elements correct, typical
#    size 3). Will the random-direction check of a 200,000-element tensor catch it? Estimate
#    `|d_k|` for a random unit vector and compare with the tolerance `atol + rtol |<grad, d>|`.
#
# Answers: [answers/04_gradient_checking.md](answers/04_gradient_checking.md).

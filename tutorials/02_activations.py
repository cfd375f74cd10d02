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
# # Lesson 2: activations, kinks, and a bug that hides in place
#
# A stack of dense layers is still one dense layer (a product of matrices is a matrix). What makes a network more
# than linear is the *activation* applied elementwise between the layers. This lesson writes the backward pass of
# the four activations a GAN uses, looks at where they are not differentiable (the *kink* of ReLU at 0) and at
# what the gradient checker does there, and then measures the most common bug in hand-written backward passes:
# editing an array that belongs to someone else.
#
# The derivations are in [docs/derivations.md](../docs/derivations.md#activations).
#
# | activation | forward `y = f(x)` | backward `dx = dy * f'(x)` | where a GAN uses it |
# |---|---|---|---|
# | ReLU | `max(x, 0)` | `dy * [x > 0]` | hidden layers of G |
# | LeakyReLU(a) | `x` if `x > 0` else `a x` | `dy * (1 if x > 0 else a)` | hidden layers of D |
# | sigmoid | `1 / (1 + exp(-x))` | `dy * y (1 - y)` | turns D's logit into a probability |
# | tanh | `tanh(x)` | `dy * (1 - y^2)` | G's output, pixels in [-1, 1] |
#
# Notice the last two: their derivative is written with the *output* `y`, so the forward pass caches `y` and the
# backward pass never recomputes an exponential. (Differentiate `1 / (1 + e^{-x})`: you get
# `e^{-x} / (1 + e^{-x})^2 = y (1 - y)`. And `d tanh / dx = 1 - tanh^2`.)

# %%
import numpy as np
import matplotlib.pyplot as plt

from minigan import functional as F
from minigan.gradcheck import check_function
from minigan.lesson import Lesson

lesson = Lesson("02_activations")
rng = np.random.default_rng(0)

ACTIVATIONS = {
    "ReLU": (F.relu_forward, F.relu_backward),
    "LeakyReLU(0.2)": (lambda x, out=None: F.leaky_relu_forward(x, 0.2, out=out), F.leaky_relu_backward),
    "sigmoid": (F.sigmoid_forward, F.sigmoid_backward),
    "tanh": (F.tanh_forward, F.tanh_backward),
}

# %% [markdown]
# ## Forward and backward, side by side
#
# Feed each activation a grid of x values and an upstream gradient of ones: the backward pass then returns
# `f'(x)` itself. Look at the bottom row of the figure: ReLU's derivative jumps from 0 to 1 at x = 0; LeakyReLU's
# from 0.2 to 1; sigmoid's peaks at **0.25** and is almost 0 beyond |x| = 5 (a saturated unit passes on almost
# no gradient: this is where *vanishing gradients* come from); tanh's peaks at 1.

# %%
grid = np.linspace(-6, 6, 1201)  # (1201,), includes x = 0 exactly
fig, axes = plt.subplots(2, 4, figsize=(13, 5), sharex=True)
slopes = {}
for k, (name, (forward, backward)) in enumerate(ACTIVATIONS.items()):
    y, cache = forward(grid.copy())
    slope = backward(np.ones_like(grid), cache)  # f'(x): the upstream gradient is 1 everywhere
    slopes[name] = slope
    axes[0, k].plot(grid, y)
    axes[0, k].set_title(name)
    axes[1, k].plot(grid, slope, color="C1")
    axes[1, k].set_xlabel("x")
axes[0, 0].set_ylabel("f(x)")
axes[1, 0].set_ylabel("f'(x) from backward")
lesson.save(fig, "activations.png")

at = {v: int(np.argmin(np.abs(grid - v))) for v in (0.0, 5.0)}
sigmoid_slope_at_0 = float(slopes["sigmoid"][at[0.0]])
sigmoid_slope_at_5 = float(slopes["sigmoid"][at[5.0]])
tanh_slope_at_0 = float(slopes["tanh"][at[0.0]])
relu_slope_at_0 = float(slopes["ReLU"][at[0.0]])
print(f"sigmoid'(0) = {sigmoid_slope_at_0:.4f}, sigmoid'(5) = {sigmoid_slope_at_5:.4f}, tanh'(0) = {tanh_slope_at_0}")
print(f"ReLU'(0) as the backward pass computes it: {relu_slope_at_0}")

# %% [markdown]
# ## Gradient checks, away from the kink
#
# Each backward pass checked against central differences on random inputs (float64, as every check is). Random
# normal numbers are never exactly 0, so ReLU and LeakyReLU are checked only where they are smooth.

# %%
x = rng.standard_normal((8, 5))  # (8, 5)
worst_rel_error = {}
for name, (forward, backward) in ACTIVATIONS.items():
    result = check_function(forward, backward, [x], names=["dx"])
    worst_rel_error[name] = result["dx"].max_rel_error
    print(f"{name:15s} ok={result.ok}  worst relative error {result['dx'].max_rel_error:.1e}")

# %% [markdown]
# ## The kink at 0
#
# ReLU has no derivative at 0: the slope is 0 on the left and 1 on the right. Backward passes pick 0 there (a
# *subgradient*; every framework does the same, and it almost never matters because an activation is almost
# never exactly 0). The central difference, though, straddles the kink and averages the two slopes:
#
# $$\frac{\mathrm{relu}(\varepsilon) - \mathrm{relu}(-\varepsilon)}{2\varepsilon} = \frac{\varepsilon - 0}{2\varepsilon} = 0.5 .$$
#
# So a naive checker would report a *failure* (0 vs 0.5) on a correct backward pass. minigan's checker also
# computes the two one-sided slopes from the same evaluations; where they disagree it looks again with steps
# ten and a hundred times smaller. A real kink keeps its jump however small the step: the element is counted in
# the `kinks` column and not compared. An input merely *close* to 0 (here 3e-7, closer than eps = 1e-6) is
# straddled by the first step but not by the smaller ones, so it is compared normally.

# %%
x_kink = np.array([[-1.0, 0.0, 0.0, 3e-7, 0.5, -2.0]])  # two exact zeros, one value within eps of the kink
eps = 1e-6
central_at_0 = (F.relu_forward(np.array([eps]))[0][0] - F.relu_forward(np.array([-eps]))[0][0]) / (2 * eps)
print(f"central difference of ReLU at 0: {float(central_at_0)}, backward pass at 0: {relu_slope_at_0}")
kink_check = check_function(F.relu_forward, F.relu_backward, [x_kink], names=["dx"])
print(kink_check)
leaky_kink_check = check_function(ACTIVATIONS["LeakyReLU(0.2)"][0], F.leaky_relu_backward, [x_kink], names=["dx"])
print(leaky_kink_check)

# %% [markdown]
# ## The in-place bug
#
# Here is a ReLU backward pass as it is often first written. It looks harmless and its numbers are right:

# %%
def relu_backward_buggy(dout, cache):
    x = cache
    dx = dout  # NOT a copy: dx and dout are two names for ONE array
    dx[x < 0] = 0  # ...so this line also zeroes the caller's dout
    return dx


def relu_backward_correct(dout, cache):
    x = cache
    return dout * (x > 0)  # a new array; dout is left as it was


def relu_forward_x(x):
    return np.maximum(x, 0), x  # cache x itself, as the buggy backward expects

# %% [markdown]
# `dx = dout` does not copy: in Python, assignment gives an existing object a second name. The next line writes
# zeros *into the caller's array*. Whether that hurts depends on who else reads `dout`, so measure it: call both
# versions and compare the caller's array before and after.

# %%
x = rng.standard_normal((4, 6))  # (4, 6), about half negative
dout = rng.standard_normal((4, 6))
dout_before = dout.copy()
relu_backward_correct(dout, x)
correct_changed_caller = not np.array_equal(dout, dout_before)
relu_backward_buggy(dout, x)
buggy_changed_caller = not np.array_equal(dout, dout_before)
zeroed_fraction = float(np.mean(dout != dout_before))
print(f"correct version changed the caller's dout: {correct_changed_caller}")
print(f"buggy version changed the caller's dout:   {buggy_changed_caller} ({zeroed_fraction:.0%} of it zeroed)")

# %% [markdown]
# ### When it hurts: one upstream gradient, two consumers
#
# In a chain of layers each `dout` is used once, so the damage goes unnoticed. It shows as soon as a value feeds
# two branches, because both branches' backward passes receive *the same* upstream gradient. Take
# `y = relu(x) + tanh(x)`: by the chain rule `dx = relu'(x) * dout + tanh'(x) * dout`. If the ReLU branch runs
# first and zeroes part of `dout`, the tanh branch gets the mangled array, and `dx` is wrong wherever x < 0: it
# loses the tanh term entirely, a relative error of exactly 1 there.

# %%
def two_branches_forward(x, relu_backward):
    y = np.maximum(x, 0) + np.tanh(x)
    return y, (x, np.tanh(x), relu_backward)


def two_branches_backward(dout, cache):
    x, t, relu_backward = cache
    d_relu = relu_backward(dout, x)  # the ReLU branch runs first...
    d_tanh = dout * (1 - t * t)  # ...then the tanh branch reads the same dout
    return d_relu + d_tanh


dout = rng.standard_normal(x.shape)
dx_correct = two_branches_backward(dout.copy(), two_branches_forward(x, relu_backward_correct)[1])
dx_buggy = two_branches_backward(dout.copy(), two_branches_forward(x, relu_backward_buggy)[1])
wrong_entries = int(np.sum(dx_buggy != dx_correct))
branch_rel_error = float(np.max(np.abs(dx_buggy - dx_correct) / np.maximum(np.abs(dx_correct), 1e-300)))
print(f"relu + tanh: {wrong_entries} of {x.size} entries of dx wrong (x < 0 at {int(np.sum(x < 0))}); "
      f"worst relative error {branch_rel_error:.2f}")

# %% [markdown]
# ### Why a naive gradient checker would not warn you, and minigan's does
#
# A gradient checker draws a random `dout`, hands it to your backward pass, then computes finite differences of
# `sum(y * dout)`. Written naively, it hands over *its own* `dout`, and uses that same array for the finite
# differences, which your backward pass has just rewritten: analytic and numeric gradients then agree, about the
# wrong loss, and the bug passes. `naive_check` below is that checker, in a few lines.
#
# minigan's `check_function` (and `check_module`) hand your backward pass a *copy* of `dout`, so the finite
# differences see the true loss and the bug is caught, with a relative error of 1 where x < 0. (Checking ReLU alone
# passes either way, for a simpler reason: the zeroed entries sit where relu(x) = 0 and do not change the loss.)
# In your own tests, the same habit: call a backward pass with `dout.copy()` and check the original is untouched
# (`minigan.testing.assert_backward_no_mutation` does exactly that).

# %%
def naive_check(forward, backward, x, eps=1e-6, tol=1e-5):
    """A gradient check as often written: backward gets the checker's own dout. True when it 'passes'."""
    y, cache = forward(x)
    dout = np.random.default_rng(3).standard_normal(y.shape)
    analytic = backward(dout, cache)  # may rewrite dout...
    numeric = np.zeros_like(x)
    for i in np.ndindex(x.shape):  # ...which the finite differences then use
        old = x[i]
        x[i] = old + eps
        f_plus = float((forward(x)[0] * dout).sum())
        x[i] = old - eps
        f_minus = float((forward(x)[0] * dout).sum())
        x[i] = old
        numeric[i] = (f_plus - f_minus) / (2 * eps)
    return bool(np.allclose(analytic, numeric, atol=tol, rtol=1e-3))


buggy_graph = lambda x: two_branches_forward(x, relu_backward_buggy)  # noqa: E731
correct_graph = lambda x: two_branches_forward(x, relu_backward_correct)  # noqa: E731
naive_passes_buggy = naive_check(buggy_graph, two_branches_backward, x.copy())
buggy_check = check_function(buggy_graph, two_branches_backward, [x], names=["dx"], raise_exception=False)
correct_check = check_function(correct_graph, two_branches_backward, [x], names=["dx"], raise_exception=False)
alone_buggy = check_function(relu_forward_x, relu_backward_buggy, [x], names=["dx"], raise_exception=False)
print(f"ReLU alone, buggy backward:             check_function ok = {alone_buggy.ok}")
print(f"relu + tanh, buggy, a naive checker:    passes = {naive_passes_buggy}")
print(f"relu + tanh, buggy, check_function:     ok = {buggy_check.ok}, worst relative error "
      f"{buggy_check['dx'].max_rel_error:.2f}")
print(f"relu + tanh, correct, check_function:   ok = {correct_check.ok}")

# %% [markdown]
# The fix is one of `dx = dout * (x > 0)` (a new array) or `dx = dout.copy()` before editing. minigan does write
# in place where it is safe and saves memory (its `Sequential` lets an activation overwrite the output of the
# `Dense` just before it, an array nobody else holds), and never into an array that it was *given*.

# %%
lesson.record(
    sigmoid_slope_at_0=sigmoid_slope_at_0, sigmoid_slope_at_5=sigmoid_slope_at_5, tanh_slope_at_0=tanh_slope_at_0,
    relu_slope_at_0=relu_slope_at_0, central_difference_at_0=float(central_at_0),
    worst_rel_error=worst_rel_error, max_worst_rel_error=max(worst_rel_error.values()),
    relu_kinks=kink_check["dx"].kinks, relu_kink_checked=kink_check["dx"].checked, relu_kink_ok=kink_check.ok,
    leaky_relu_kinks=leaky_kink_check["dx"].kinks,
    buggy_changed_caller=buggy_changed_caller, correct_changed_caller=correct_changed_caller,
    buggy_zeroed_fraction=zeroed_fraction,
    branch_wrong_entries=wrong_entries, branch_negative_inputs=int(np.sum(x < 0)), branch_rel_error=branch_rel_error,
    buggy_alone_check_ok=alone_buggy.ok, naive_check_passes_buggy_branch=naive_passes_buggy,
    buggy_branch_check_ok=buggy_check.ok, buggy_branch_check_rel_error=buggy_check["dx"].max_rel_error,
    correct_branch_check_ok=correct_check.ok,
)

# %% [markdown]
# ## What you should see
#
# | what | key | value |
# |---|---|---|
# | sigmoid's largest slope, at 0 | `sigmoid_slope_at_0` | 0.25 ± 1e-6 |
# | sigmoid's slope at 5: almost saturated | `sigmoid_slope_at_5` | 0.0066 ± 1e-4 |
# | tanh's slope at 0 | `tanh_slope_at_0` | 1.0 ± 1e-6 |
# | ReLU's slope at 0 in the backward pass | `relu_slope_at_0` | 0 |
# | the central difference at 0 averages 0 and 1 | `central_difference_at_0` | 0.5 ± 1e-9 |
# | all four backward passes, worst relative error | `max_worst_rel_error` | < 1e-6 |
# | exact zeros the checker reports as kinks | `relu_kinks` | 2 |
# | elements it still compares (3e-7 among them) | `relu_kink_checked` | 4 |
# | and the check passes | `relu_kink_ok` | true |
# | LeakyReLU's kinks on the same input | `leaky_relu_kinks` | 2 |
# | the buggy backward changed the caller's `dout` | `buggy_changed_caller` | true |
# | the correct one did not | `correct_changed_caller` | false |
# | share of `dout` it zeroed (where x < 0) | `buggy_zeroed_fraction` | 0.4167 ± 1e-4 |
# | entries of dx wrong in relu(x) + tanh(x) (all with x < 0) | `branch_wrong_entries` | 10 |
# | relative error there: the tanh term is lost | `branch_rel_error` | 1.0 ± 1e-9 |
# | checking ReLU alone passes the buggy version | `buggy_alone_check_ok` | true |
# | a naive checker (backward gets its own `dout`) passes the buggy graph | `naive_check_passes_buggy_branch` | true |
# | `check_function` (backward gets a copy) catches it | `buggy_branch_check_ok` | false |
# | with the tanh term's relative error | `buggy_branch_check_rel_error` | 1.0 ± 1e-6 |
# | and passes the correct version | `correct_branch_check_ok` | true |
#
# and `activations.png`: four activations (top) and the slopes their backward passes compute (bottom).
#
# ## Exercises
#
# 1. **Predict, then run.** What does `check_function` report for ReLU at `x = 5e-9` (closer to 0 than
#    eps/100 = 1e-8)? And at `x = 2e-8`?
# 2. **Implement and check.** Write forward and backward for ELU, `y = x` if `x > 0` else `alpha (exp(x) - 1)`.
#    Cache what makes the backward cheap. Does the checker see a kink at 0 for `alpha = 1`? For `alpha = 0.5`?
# 3. **Find the bug.** `def sigmoid_backward(dy, y): dy *= y * (1 - y); return dy`. Is its result right? What
#    does it do to the caller, and in which kind of graph does that produce a wrong gradient?
# 4. **Predict.** A sigmoid unit sits behind 5 layers, each contributing at most a factor 0.25 from the sigmoid's
#    slope. What is the largest factor by which the gradient can shrink on its way back? Why does tanh do better?
#
# Answers: [answers/02_activations.md](answers/02_activations.md).

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
# # Lesson 1: a Dense layer by hand
#
# Every network in minigan, the GAN's generator and discriminator included, is a stack of *dense* (fully
# connected) layers with activations in between. In this lesson you write one dense layer yourself, forward and
# backward, and then prove that your backward pass is right with a gradient check. Nothing else in the tutorial
# is harder than this; everything else reuses it.
#
# Run it as a script (`python tutorials/01_dense_layer.py`) or open it as a notebook
# (`jupytext --to ipynb tutorials/01_dense_layer.py`). Figures and a `results.json` with the numbers the lesson
# reaches go to `tutorial_output/01_dense_layer/` under the folder you run it from.
#
# **The idea.** A dense layer maps each example (a row of `x`) to a new vector by a matrix product plus a bias:
#
# $$y = x W + b, \qquad y_{nj} = \sum_i x_{ni} W_{ij} + b_j .$$
#
# **Shapes** are the first thing to get right, and the first thing to check when something breaks:
#
# | array | shape | meaning |
# |---|---|---|
# | `x` | `(N, in)` | a batch of N examples, `in` features each |
# | `W` | `(in, out)` | one column of weights per output feature |
# | `b` | `(out,)` | one bias per output, broadcast over the batch |
# | `y` | `(N, out)` | the batch, transformed |
#
# The full derivation is in [docs/derivations.md](../docs/derivations.md#dense).

# %%
import numpy as np
import matplotlib.pyplot as plt

from minigan import functional as F
from minigan.gradcheck import check_function
from minigan.lesson import Lesson

lesson = Lesson("01_dense_layer")
rng = np.random.default_rng(0)

N, n_in, n_out = 4, 3, 2
x = rng.standard_normal((N, n_in))  # (4, 3): 4 examples, 3 features each
W = rng.standard_normal((n_in, n_out))  # (3, 2)
b = rng.standard_normal(n_out)  # (2,)

# %% [markdown]
# ## The forward pass
#
# The forward pass returns the output *and* a cache: whatever the backward pass will need. For a dense layer that
# is `x` and `W`. Returning the cache (instead of storing it in a global or on `self`) means two calls can never
# overwrite each other's activations; this is how every op in `minigan.functional` is written.

# %%
def my_dense_forward(x, W, b):
    """y = x @ W + b. Shapes: x (N, in), W (in, out), b (out,) -> y (N, out)."""
    y = x @ W + b  # (N, out); b is broadcast over the N rows
    return y, (x, W)


y, cache = my_dense_forward(x, W, b)
print("y has shape", y.shape)
print(y)

# %% [markdown]
# ## The backward pass, by the chain rule
#
# Somewhere downstream a scalar loss `L` is computed from `y`. The layer does not know `L`; it receives
# `dy = dL/dy`, an array shaped like `y` (the *upstream gradient*), and must return the gradient of `L` with
# respect to each of its inputs. Write `y_{nj} = sum_i x_{ni} W_{ij} + b_j` and apply the chain rule
# `dL/dθ = sum_{n,j} dL/dy_{nj} * dy_{nj}/dθ`:
#
# * `dy_{nj}/dW_{ij} = x_{ni}`, so `dL/dW_{ij} = sum_n x_{ni} dy_{nj}`, that is **`dW = x.T @ dy`** `(in, out)`;
# * `dy_{nj}/dx_{ni} = W_{ij}`, so `dL/dx_{ni} = sum_j dy_{nj} W_{ij}`, that is **`dx = dy @ W.T`** `(N, in)`;
# * `dy_{nj}/db_j = 1` for every row n, so **`db = dy.sum(axis=0)`** `(out,)`.
#
# A quick sanity check that costs nothing: each gradient has the shape of the thing it is the gradient of. If
# your `dW` comes out `(out, in)`, you transposed the wrong factor. The sum over the batch in `dW` and `db` is
# there because the *same* W and b were used for every example: their effects on L add up.

# %%
def my_dense_backward(dy, cache):
    """Gradients of y = x @ W + b given dy = dL/dy (N, out): returns dx (N, in), dW (in, out), db (out,)."""
    x, W = cache
    dx = dy @ W.T  # (N, out) @ (out, in) -> (N, in)
    dW = x.T @ dy  # (in, N) @ (N, out) -> (in, out)
    db = dy.sum(axis=0)  # (out,): the bias touched every row
    return dx, dW, db


dy = rng.standard_normal(y.shape)  # an arbitrary upstream gradient, shaped like y
dx, dW, db = my_dense_backward(dy, cache)
for name, grad, param in (("dx", dx, x), ("dW", dW, W), ("db", db, b)):
    print(f"{name}: shape {grad.shape} (the shape of {name[1:]} is {param.shape})")

# %% [markdown]
# ## Compare with the library
#
# `minigan.functional.dense_forward` / `dense_backward` are the same formulas, written the same way. Your version
# and the library's should agree to the last bit, or at least to rounding error.

# %%
y_lib, cache_lib = F.dense_forward(x, W, b)
dx_lib, dW_lib, db_lib = F.dense_backward(dy, cache_lib)
diff_vs_library = max(float(np.abs(a - c).max()) for a, c in ((y, y_lib), (dx, dx_lib), (dW, dW_lib), (db, db_lib)))
print(f"largest difference from minigan.functional: {diff_vs_library:.1e}")

# %% [markdown]
# ## Is the backward pass *right*? Ask the numbers
#
# Agreeing with a library shows that you copied it, not that either is correct. The independent test is a
# **gradient check**: nudge one input element by a tiny `eps` both ways and watch the loss move,
#
# $$\frac{\partial L}{\partial \theta_k} \approx \frac{L(\theta + \varepsilon e_k) - L(\theta - \varepsilon e_k)}{2\varepsilon}.$$
#
# `check_function` does this for every element of `x`, `W` and `b`, with the loss `L = sum(y * dout)` for a random
# `dout` (its gradient with respect to `y` is exactly `dout`, so `backward(dout)` must return `dL/dx`, `dL/dW`,
# `dL/db`). It works in float64 and reports, per tensor, how many elements it compared, the worst absolute error
# and the worst **relative error** `|analytic - numeric| / max(|analytic|, |numeric|)`. Lesson 4 is about this
# tool; for now read the last columns: `ok`, and a relative error around 1e-9 or smaller.

# %%
check = check_function(my_dense_forward, my_dense_backward, [x, W, b])
print(check)
worst_rel_error = max(t.max_rel_error for t in check.tensors)

# %% [markdown]
# ## What a wrong backward pass looks like
#
# The two classic dense-layer mistakes are a *mean* where the chain rule gives a *sum* (`db = dy.mean(axis=0)`:
# the bias gradient is then N times too small) and a forgotten transpose (which usually fails loudly on shapes;
# with a square W it silently computes the wrong thing). Here is the first. The checker names the tensor and the
# element, and gives both values, so you know where to look.

# %%
def wrong_dense_backward(dy, cache):
    dx, dW, _ = my_dense_backward(dy, cache)
    return dx, dW, dy.mean(axis=0)  # BUG: the bias was used by all N rows; their gradients add up


wrong = check_function(my_dense_forward, wrong_dense_backward, [x, W, b], raise_exception=False)
print(wrong)
print(wrong.failure_message())
wrong_db = wrong["db"]
print(f"analytic / numeric at the worst element: {wrong_db.analytic / wrong_db.numeric:.3f}  (1/N = {1 / N})")

# %% [markdown]
# ## A picture of what "gradient" means
#
# Hold everything fixed except one weight, `W[0, 0]`, and plot the check's loss `L = sum(y * dout)` as that weight
# moves. For a dense layer the curve is a straight line (y is linear in W), and `dW[0, 0]` from your backward pass
# is its slope. The red line drawn with that slope should lie exactly on the blue curve.

# %%
dout = rng.standard_normal(y.shape)
_, dW_dout, _ = my_dense_backward(dout, cache)
shifts = np.linspace(-2, 2, 41)
losses = []
for t in shifts:
    W_moved = W.copy()
    W_moved[0, 0] += t
    losses.append(float((my_dense_forward(x, W_moved, b)[0] * dout).sum()))
losses = np.array(losses)
L0 = float((y * dout).sum())
slope_from_plot = float(np.polyfit(shifts, losses, 1)[0])

fig, ax = plt.subplots(figsize=(5, 3.5))
ax.plot(W[0, 0] + shifts, losses, lw=3, label="L = sum(y * dout) as W[0,0] moves")
ax.plot(W[0, 0] + shifts, L0 + dW_dout[0, 0] * shifts, "r--", label=f"slope dW[0,0] = {dW_dout[0, 0]:.3f}")
ax.set_xlabel("W[0, 0]")
ax.set_ylabel("L")
ax.legend()
ax.set_title("the gradient is the slope")
lesson.save(fig, "slope.png")
print(f"slope fitted to the curve {slope_from_plot:.6f}, dW[0, 0] from backward {dW_dout[0, 0]:.6f}")

# %%
lesson.record(
    y_shape=list(y.shape), dx_shape=list(dx.shape), dW_shape=list(dW.shape), db_shape=list(db.shape),
    diff_vs_library=diff_vs_library,
    gradcheck_ok=check.ok, gradcheck_worst_rel_error=worst_rel_error,
    gradcheck_elements=sum(t.checked for t in check.tensors),
    wrong_db_caught=not wrong.ok, wrong_db_ratio=wrong_db.analytic / wrong_db.numeric,
    slope_fitted=slope_from_plot, slope_from_backward=float(dW_dout[0, 0]),
)
print(f"checked {sum(t.checked for t in check.tensors)} elements; worst relative error {worst_rel_error:.1e}")

# %% [markdown]
# ## What you should see
#
# The run prints these numbers and records them in `results.json` (the key is the name there; the test suite
# checks each row against a full run):
#
# | what | key | value |
# |---|---|---|
# | your forward/backward vs `minigan.functional` | `diff_vs_library` | < 1e-12 |
# | the gradient check passes | `gradcheck_ok` | true |
# | elements compared (12 of x, 6 of W, 2 of b) | `gradcheck_elements` | 20 |
# | worst relative error of your backward | `gradcheck_worst_rel_error` | < 1e-7 |
# | the mean-instead-of-sum bug is caught | `wrong_db_caught` | true |
# | analytic / numeric db with that bug (1/N) | `wrong_db_ratio` | 0.25 ± 1e-6 |
# | dW[0,0] from backward, the slope of `slope.png` | `slope_from_backward` | -0.6427 ± 1e-4 |
# | the slope fitted to the plotted curve | `slope_fitted` | -0.6427 ± 1e-4 |
#
# and `slope.png`, a straight line with the dashed tangent on top of it.
#
# ## Exercises
#
# 1. **Predict, then run.** Double the batch to `N = 8` (new random rows). Which gradient shapes change, which do
#    not? If every new row were a copy of an old one, what would happen to `dW` and `db`?
# 2. **Implement and check.** PyTorch stores the weight as `(out, in)` and computes `y = x @ W.T + b`. Write
#    `forward`/`backward` for that layout and check them with `check_function`.
# 3. **Break it on purpose.** Replace `dW = x.T @ dy` with `dW = (dy.T @ x).T` (still correct: why?) and then with
#    `dW = x.T @ dy / N`. What does `check_function` report for each, and what relative error do you expect?
# 4. **Predict.** The checker evaluates the loss twice per element. How many loss evaluations does it need for a
#    dense layer with `in = 784`, `out = 256`, `N = 64`? (Lesson 4 shows how it stays cheap anyway.)
#
# Answers: [answers/01_dense_layer.md](answers/01_dense_layer.md).

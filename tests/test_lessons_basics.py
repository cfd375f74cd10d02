"""Lessons 1-5 of the tutorial path each prove the lesson they teach, with the numbers they record.

Every lesson runs as a subprocess, exactly as a student runs it (``python tutorials/NN_name.py``), from a temporary
folder, and writes ``results.json`` there (``minigan.lesson``). The default run uses fast mode
(``MINIGAN_TUTORIAL_FAST=1``) and checks what each lesson claims. The slow run (``pytest -m slow``) runs each lesson
at full length and checks every row of its "What you should see" table: the table in the lesson's own prose is the
single source of the promised numbers, so the prose cannot drift from what the lesson prints.
"""

from __future__ import annotations

import json
import math
import os
import pathlib
import re
import subprocess
import sys
import time

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = REPO / "tutorials"
LESSONS = ["01_dense_layer", "02_activations", "03_stable_bce", "04_gradient_checking", "05_training_an_mlp"]


def run_lesson(name: str, out: pathlib.Path, *, fast: bool, timeout: float) -> dict:
    """Run one lesson as a script from ``out``; return its results.json plus ``_seconds`` and ``_stdout``."""
    env = dict(os.environ, MINIGAN_TUTORIAL_FAST="1" if fast else "0", MINIGAN_TUTORIAL_OUT=str(out),
               MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    # Small matrices: one BLAS thread is faster, and on a busy CI machine a thread pool per process is ruinous
    # (lesson 5 ran 15x slower with OpenBLAS's default threads on 2 shared cores). A caller's setting wins.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(TUTORIALS / f"{name}.py")], cwd=out, env=env, capture_output=True,
                          text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "Warning" not in done.stderr, f"{name} let a warning escape:\n{done.stderr[-3000:]}"
    results = json.loads((out / name / "results.json").read_text())
    assert results["lesson"] == name and results["fast"] is fast
    return dict(results, _seconds=seconds, _stdout=done.stdout)


@pytest.fixture(scope="module")
def fast_run(tmp_path_factory):
    """``fast_run(name)``: the lesson's fast-mode results, run once per test module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = run_lesson(name, tmp_path_factory.mktemp(name), fast=True, timeout=300)
        return cache[name]

    return get


# ------------------------------------------------------------------------------------------ promised numbers

ROW = re.compile(r"^# \|[^|]*\| `(?P<key>\w+)` \| (?P<value>[^|]+?) \|\s*$")


def promised(name: str) -> dict[str, str]:
    """The rows of the lesson's "What you should see" table: results.json key -> promised value (as written)."""
    text = (TUTORIALS / f"{name}.py").read_text(encoding="utf-8")
    block = text.split("# ## What you should see", 1)[1].split("# ## Exercises", 1)[0]
    rows = {}
    for line in block.splitlines():
        m = ROW.match(line)
        if m:
            rows[m["key"]] = m["value"].strip()
    return rows


def _number(text: str) -> float:
    return float(text.replace("−", "-").replace(",", ""))


def meets(actual, spec: str) -> bool:
    """Does a recorded value meet a promise? Promises read ``true``, ``nan``, ``inf``, ``< 1e-7``, ``0.97 ± 0.01``
    or ``20`` (exact)."""
    spec = spec.strip()
    if spec in ("true", "false"):
        return actual is (spec == "true")
    if isinstance(actual, bool) or actual is None:
        return False
    if spec == "nan":
        return isinstance(actual, float) and math.isnan(actual)
    if spec in ("inf", "-inf"):
        return actual == _number(spec)
    for op, test in (("≤", lambda a, b: a <= b), ("≥", lambda a, b: a >= b), ("<", lambda a, b: a < b),
                     (">", lambda a, b: a > b)):
        if spec.startswith(op):
            return test(actual, _number(spec[len(op):]))
    if "±" in spec:
        centre, tolerance = (_number(part) for part in spec.split("±"))
        return abs(actual - centre) <= tolerance
    return actual == _number(spec)


def test_meets_reads_every_form_of_promise():
    assert meets(True, "true") and not meets(False, "true") and not meets(1, "true")
    assert meets(float("nan"), "nan") and not meets(1.0, "nan")
    assert meets(float("inf"), "inf") and not meets(float("inf"), "-inf")
    assert meets(3e-9, "< 1e-7") and not meets(3e-7, "< 1e-7") and meets(0.9, "≥ 0.9")
    assert meets(0.965, "0.97 ± 0.01") and not meets(0.95, "0.97 ± 0.01")
    assert meets(20, "20") and not meets(21, "20")


@pytest.mark.parametrize("name", LESSONS)
def test_each_promise_names_a_recorded_number(name, fast_run):
    """Every row of the table parses and names a key the lesson records (in fast mode too)."""
    rows = promised(name)
    assert len(rows) >= 4, f"{name}: its 'What you should see' table has {len(rows)} rows"
    results = fast_run(name)
    missing = sorted(set(rows) - set(results))
    assert not missing, f"{name} promises {missing} but does not record them"
    assert results["_seconds"] < 120, f"{name} took {results['_seconds']:.0f} s in fast mode"


@pytest.mark.slow
@pytest.mark.parametrize("name", LESSONS)
def test_full_run_shows_what_the_lesson_promises(name, tmp_path):
    results = run_lesson(name, tmp_path, fast=False, timeout=900)
    broken = {key: (spec, results.get(key)) for key, spec in promised(name).items()
              if not meets(results.get(key), spec)}
    assert not broken, f"{name}: promised (spec, got): {broken}"
    assert results["_seconds"] < 300, f"{name} took {results['_seconds']:.0f} s at full length"


def test_every_lesson_is_a_percent_script_with_exercises_and_answers():
    for name in LESSONS:
        text = (TUTORIALS / f"{name}.py").read_text(encoding="utf-8")
        assert "# %% [markdown]" in text and "\n# %%\n" in text, name
        assert "# ## Exercises" in text and (TUTORIALS / "answers" / f"{name}.md").is_file(), name
        assert "../docs/derivations.md#" in text, f"{name} links no derivation"
        assert "plt.show()" not in text, name


# ------------------------------------------------------------------------------------------ lesson 1


def test_lesson1_hand_written_dense_layer_passes_the_gradient_check(fast_run):
    r = fast_run("01_dense_layer")
    assert r["y_shape"] == [4, 2] and r["dx_shape"] == [4, 3] and r["dW_shape"] == [3, 2] and r["db_shape"] == [2]
    assert r["diff_vs_library"] < 1e-12
    assert r["gradcheck_ok"] and r["gradcheck_worst_rel_error"] < 1e-7 and r["gradcheck_elements"] == 20
    # The planted bug (mean instead of sum in db) is caught, and is off by exactly 1/N.
    assert r["wrong_db_caught"] and r["wrong_db_ratio"] == pytest.approx(0.25, abs=1e-6)
    # The gradient is the slope of the loss along one weight.
    assert r["slope_fitted"] == pytest.approx(r["slope_from_backward"], rel=1e-6)


# ------------------------------------------------------------------------------------------ lesson 2


def test_lesson2_slopes_kinks_and_the_in_place_bug(fast_run):
    r = fast_run("02_activations")
    assert r["sigmoid_slope_at_0"] == pytest.approx(0.25) and r["tanh_slope_at_0"] == pytest.approx(1.0)
    assert r["sigmoid_slope_at_5"] < 0.01  # saturation: almost no gradient gets through
    assert r["max_worst_rel_error"] < 1e-6  # all four backward passes, away from the kink
    # At the kink: backward says 0, the central difference says 0.5; the checker counts the two exact zeros as
    # kinks, still compares the element at 3e-7, and passes.
    assert r["relu_slope_at_0"] == 0 and r["central_difference_at_0"] == pytest.approx(0.5)
    assert r["relu_kinks"] == 2 and r["relu_kink_checked"] == 4 and r["relu_kink_ok"]
    assert r["leaky_relu_kinks"] == 2
    # The in-place bug edits the caller's array; the correct version does not.
    assert r["buggy_changed_caller"] is True and r["correct_changed_caller"] is False
    assert 0 < r["buggy_zeroed_fraction"] < 1
    # With two consumers of dout, the gradient is wrong exactly where x < 0, by a relative error of 1 ...
    assert r["branch_wrong_entries"] == r["branch_negative_inputs"] > 0 and r["branch_rel_error"] == pytest.approx(1)
    # ... which a naive checker misses (the bug rewrites the checker's dout too) and check_function, which hands
    # backward a copy, catches; the correct graph passes.
    assert r["naive_check_passes_buggy_branch"] is True
    assert r["buggy_branch_check_ok"] is False and r["buggy_branch_check_rel_error"] == pytest.approx(1, abs=1e-6)
    assert r["correct_branch_check_ok"] is True


# ------------------------------------------------------------------------------------------ lesson 3


def test_lesson3_naive_bce_breaks_and_the_logit_form_does_not(fast_run):
    r = fast_run("03_stable_bce")
    # Naive BCE on float32 sigmoid outputs at z = +40: inf for a fake, NaN for a real; NaN gradients; NaN mean.
    assert r["naive_loss_plus40_fake"] == math.inf and math.isnan(r["naive_loss_plus40_real"])
    assert math.isnan(r["naive_grad_plus40_fake"]) and math.isnan(r["naive_grad_plus40_real"])
    assert math.isnan(r["naive_batch_mean"]) and r["naive_loss_17_fake"] == math.inf
    # ... while at z = -40 it survives (float32 still holds sigmoid(-40) = 4e-18): the asymmetry the lesson explains.
    assert r["naive_loss_minus40_real"] == pytest.approx(40.0, rel=1e-6)
    assert r["saturates_float32"] == pytest.approx(16.636, abs=0.002)
    assert r["saturates_float64"] == pytest.approx(36.737, abs=0.002)
    # Clipping keeps the loss finite but wrong, with zero gradient.
    assert r["clipped_loss_plus40_fake"] < 17 and r["clipped_grad_plus40_fake"] == 0
    # From logits: finite everywhere, equal to the independent closed form, gradient sigmoid(z) - y.
    assert r["stable_finite"] and r["stable_rel_error"] < 1e-6 and r["stable_grad_abs_error"] < 1e-6
    assert r["stable_loss_plus40_fake"] == pytest.approx(40.0) and r["stable_loss_minus40_real"] == pytest.approx(40.0)
    assert r["gradcheck_ok"] and r["gradcheck_abs_error"] < 1e-8


# ------------------------------------------------------------------------------------------ lesson 4


def test_lesson4_eps_relative_error_sampling_and_a_hypothesis_test(fast_run):
    r = fast_run("04_gradient_checking")
    # The sweet spot of central differences: ~u^(1/3); float64 reaches ~1e-10, float32 only ~1e-4.
    assert 1e-7 <= r["best_eps_float64"] <= 1e-4 and r["best_error_float64"] < 1e-8
    assert 1e-4 <= r["best_eps_float32"] <= 1e-1 and r["best_error_float32"] < 1e-2
    assert r["best_error_float32"] > 100 * r["best_error_float64"]
    assert r["best_error_forward_float64"] > 10 * r["best_error_float64"]  # one-sided differences are worse
    assert r["error_float32_at_1e6"] > 0.1 and r["error_float64_at_1e6"] < 1e-7  # why checks run in float64
    # atol's blind spot: a 2x-wrong tiny gradient passes by default (its relative error, floored at atol, looks
    # small); at atol=0 it fails, with the true relative error 0.5.
    assert r["tiny_wrong_passes_default"] and r["tiny_wrong_rel_error_default"] < 0.05
    assert r["tiny_wrong_fails_atol0"] and r["tiny_wrong_rel_error"] == pytest.approx(0.5, abs=1e-3)
    assert r["mlp_check_ok"] and r["mlp_kinks"] == 0
    # A bug in 0.1% of a big tensor: the sample sees it sometimes, the random direction always.
    assert r["big_dW_sampled"] == 256 and r["big_dW_total"] == 200704 and r["big_check_failed"]
    assert r["big_direction_rate"] == 1.0 and r["big_sample_rate"] < 1.0
    # The hypothesis test passes the correct SiLU on every example and catches the wrong one, shrunk to 1 element.
    assert r["hypothesis_examples"] >= 20 and r["hypothesis_wrong_caught"] and r["hypothesis_shrunk_size"] == 1


# ------------------------------------------------------------------------------------------ lesson 5


def test_lesson5_training_loop_and_three_optimizers(fast_run):
    r = fast_run("05_training_an_mlp")
    assert r["steps"] == 300
    assert abs(r["initial_loss"] - math.log(10)) < 0.5  # ten nearly equal logits before training
    assert r["model_gradcheck_ok"]
    # After the same 300 steps from the same weights on the same batches, Adam and momentum beat plain SGD ...
    assert r["test_accuracy_adam"] > r["test_accuracy_sgd"] + 0.01
    assert r["test_accuracy_momentum"] > r["test_accuracy_sgd"] + 0.01
    assert r["final_loss_adam"] < r["final_loss_sgd"] and r["final_loss_momentum"] < r["final_loss_sgd"]
    # ... and every one of them learned digits, far above chance (10%), on images it never saw.
    assert r["test_accuracy_sgd"] > 0.85 and r["test_accuracy_adam"] > 0.90 and r["test_accuracy_momentum"] > 0.90

"""Lessons 6-10 (the GAN half of the tutorial path) each prove the lesson they teach, by the numbers they record.

Each lesson runs as a student would run it (`python tutorials/NN_name.py`, from another folder), in fast mode by
default; the slow tests run the full lessons and check the numbers their "What you should see" blocks promise.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import HAVE_GPU, standin_env  # HAVE_GPU: a real CuPy and CUDA device (never the stand-in)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"


def run_lesson(name, tmp_path, fast=True, timeout=900, base_env=None):
    """Run tutorials/<name>.py in a fresh folder; return its results.json as a dict."""
    base = os.environ if base_env is None else base_env
    env = dict(base, MINIGAN_TUTORIAL_OUT=str(tmp_path), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [base.get("PYTHONPATH")] if p]))
    env["MINIGAN_TUTORIAL_FAST"] = "1" if fast else "0"
    # These networks' matrices are small: a second BLAS thread gains nothing, and on a shared 2-core machine it
    # spin-waits for a busy core (measured: a ring8 step 20 ms with one thread, 380 ms with two under load).
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    done = subprocess.run([sys.executable, str(TUTORIALS / f"{name}.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    results = json.loads((tmp_path / name / "results.json").read_text())
    assert results["lesson"] == name and results["fast"] is fast
    return results


def test_the_gan_lessons_exist_and_the_absorbed_ones_are_gone():
    for name in ("06_gan_losses", "07_gan_step_by_hand", "08_ring_and_grid", "09_digits", "10_gpu"):
        text = (TUTORIALS / f"{name}.py").read_text()
        assert "# %% [markdown]" in text and "What you should see" in text, name
        assert (TUTORIALS / "answers" / f"{name}.md").is_file(), name
    assert not (TUTORIALS / "03_gan_on_a_ring.py").exists() and not (TUTORIALS / "04_gan_draws_digits.py").exists()


# ----------------------------------------------------------------------------------------------- fast mode


def check_06(r):
    # minimax saturates where D rejects the fakes; the non-saturating slope does not
    assert r["grad_minimax_at_001"] == pytest.approx(-0.01, abs=1e-3)
    assert r["grad_nonsaturating_at_001"] == pytest.approx(-0.99, abs=1e-3)
    # the flipped fake-term sign: D learns to call the fakes real, L_D runs off to -infinity, G learns nothing
    assert r["flipped_d_fake_end"] > 0.95 and r["flipped_d_fake_end"] > r["flipped_d_fake_start"] + 0.2
    assert r["flipped_d_loss_end"] < -100 and r["flipped_high_quality"] < 0.05
    assert r["right_d_fake_end"] < 0.8
    # a gradient check passes the wrong loss; the objective check fails it and names the term
    assert r["plain_gradcheck_of_flipped_loss_ok"] is True
    assert r["objective_check_of_flipped_ok"] is False and r["objective_check_of_right_ok"] is True
    assert "L_D's fake term has the wrong sign" in r["objective_check_message"]


def check_07(r):
    assert r["bit_for_bit"] is True and r["max_abs_difference"] == 0.0 and r["num_tensors"] == 18
    assert r["d_loss_by_hand"] == r["d_loss_library"] and r["g_loss_by_hand"] == r["g_loss_library"]
    assert r["d_frozen_in_g_step"] is True
    assert r["check_gan_step_ok"] is True and r["check_gan_step_tensors"] == 18


def check_08_fast(r):
    assert r["best_ring"]["modes_covered"] >= FAST_RING_MODES_FLOOR, r["best_ring"]


def check_09_fast(r):
    # a few hundred steps draw no digits yet; G has learned the average digit, and D tells real from fake
    gaps = [q["mean_image_gap"] for q in r["quality_over_training"]]
    assert gaps[-1] < FAST_MEAN_IMAGE_GAP_SHRINK * gaps[0], gaps
    assert r["final_d_real"] > r["final_d_fake"], r
    assert r["classes_covered"] >= 1 and r["mnist_score"] >= 1.0


def check_10(r):
    assert r["gpu_available"] is HAVE_GPU and r["gpu_cells_skipped"] is (not HAVE_GPU)
    assert r["cpu_ms_per_step_batch64"] > 0 and r["cpu_ms_per_step_batch512"] > 0
    if HAVE_GPU:
        assert r["parity_max_rel_weight_difference"] < 1e-3 and r["parity_max_loss_difference"] < 1e-3
        assert r["gpu_ms_per_step_batch64"] > 0
    else:
        assert "parity_max_rel_weight_difference" not in r and "gpu_ms_per_step_batch64" not in r


#: the floors fast mode promises (see each lesson's fast settings)
FAST_RING_MODES_FLOOR = 6
FAST_MEAN_IMAGE_GAP_SHRINK = 0.5  # the average generated image at least halves its distance to the average digit

FAST = {
    "06_gan_losses": check_06,
    "07_gan_step_by_hand": check_07,
    "08_ring_and_grid": check_08_fast,
    "09_digits": check_09_fast,
    "10_gpu": check_10,
}


@pytest.mark.parametrize("name", sorted(FAST))
def test_lesson_in_fast_mode_teaches_its_lesson(name, tmp_path):
    FAST[name](run_lesson(name, tmp_path))


def test_gpu_lesson_runs_its_gpu_cells_on_the_cupy_path(tmp_path):
    """Lesson 10 with ``import cupy`` answered: the strict stand-in here (NumPy underneath, so parity is exact up to
    the order of float32 operations), a real GPU where there is one. Its GPU cells must run, not skip, and touch
    CuPy only through minigan.backend: the stand-in refuses every implicit device-to-host conversion."""
    r = run_lesson("10_gpu", tmp_path, base_env=standin_env())
    assert r["gpu_available"] is True and r["gpu_cells_skipped"] is False
    assert r["parity_max_rel_weight_difference"] < 1e-3 and r["parity_max_loss_difference"] < 1e-3
    assert r["gpu_ms_per_step_batch64"] > 0 and r["gpu_ms_per_step_batch512"] > 0


# ----------------------------------------------------------------------------------------------- full runs


@pytest.mark.slow
def test_lesson_06_full(tmp_path):
    r = run_lesson("06_gan_losses", tmp_path, fast=False)
    check_06(r)
    assert r["steps"] == 600


@pytest.mark.slow
def test_lesson_07_full(tmp_path):
    check_07(run_lesson("07_gan_step_by_hand", tmp_path, fast=False))


@pytest.mark.slow
def test_lesson_08_full_ends_where_the_best_configuration_ends(tmp_path):
    r = run_lesson("08_ring_and_grid", tmp_path, fast=False)
    best = r["best_ring"]
    assert best["modes_covered"] == 8 and best["high_quality"] > 0.90 and best["reverse_kl"] < 0.05, best
    # packing spreads the samples over the modes more evenly than a plain GAN, at the same budget
    assert r["pack2_ring"]["reverse_kl"] < r["pack1_ring"]["reverse_kl"]
    assert r["pack2_mean_reverse_kl"] < r["pack1_mean_reverse_kl"]


@pytest.mark.slow
def test_lesson_09_full_draws_every_digit(tmp_path):
    r = run_lesson("09_digits", tmp_path, fast=False)
    assert r["classes_covered"] == 10 and r["mnist_score"] > 5.0, r
    assert r["final_d_real"] > 0.5 > r["final_d_fake"] > 0.05, r


@pytest.mark.slow
def test_lesson_10_full(tmp_path):
    check_10(run_lesson("10_gpu", tmp_path, fast=False))

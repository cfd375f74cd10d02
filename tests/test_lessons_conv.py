"""Lesson 11 (convolutions by hand, the transposed convolution as conv's backward, a DCGAN) proves what it teaches,
by the numbers it records. Fast mode by default; the full run is marked slow."""

import pytest

from test_lessons_gan import TUTORIALS, run_lesson

NAME = "11_convolutions"


def test_the_lesson_has_its_prose_exercises_and_answers():
    text = (TUTORIALS / f"{NAME}.py").read_text()
    assert "# %% [markdown]" in text and "What you should see" in text and "## Exercises" in text
    assert (TUTORIALS / "answers" / f"{NAME}.md").is_file()
    assert f"[`{NAME}.py`]({NAME}.py)" in (TUTORIALS / "README.md").read_text()


def check_exact_parts(r):
    # 1. the loop, im2col and minigan's conv2d compute the same convolution (float64 rounding only)
    assert r["loop_vs_im2col"] < 1e-12 and r["loop_vs_minigan"] < 1e-12
    assert r["im2col_plain_equals_minigan"] is True and r["cols_shape"] == [27, 50]  # C*kH*kW = 27, OH*OW*N = 50
    assert r["conv2d_gradcheck_ok"] is True and r["conv2d_gradcheck_max_rel_error"] < 1e-5
    # 2. the adjoint identity <conv(u), v> = <u, conv_T(v)>, and conv_T's forward is conv's input gradient
    assert r["adjoint_rel_difference"] < 1e-12 and abs(r["adjoint_lhs"]) > 1e-3
    assert r["convT_equals_conv_input_grad"] < 1e-12
    assert r["generator_sizes"] == [7, 14, 28]


def test_lesson_11_in_fast_mode(tmp_path):
    r = run_lesson(NAME, tmp_path)
    check_exact_parts(r)
    # 3. sixty DCGAN steps draw no digits yet, but G moves towards the average digit, and D tells real from fake
    gaps = [q["mean_image_gap"] for q in r["quality_over_training"]]
    assert r["steps"] == 60 and gaps[-1] < 0.75 * gaps[0], gaps
    assert r["losses_finite"] is True and r["final_d_real"] > r["final_d_fake"], r
    assert (tmp_path / NAME / "dcgan_samples.png").stat().st_size > 0


@pytest.mark.slow
def test_lesson_11_full_draws_digits(tmp_path):
    r = run_lesson(NAME, tmp_path, fast=False, timeout=3600)
    check_exact_parts(r)
    assert r["steps"] == 1500 and r["losses_finite"] is True
    assert r["classes_covered"] >= 9 and r["mnist_score"] > 4.0, r  # measured: 10, 5.13
    assert r["final_d_real"] > 0.5 > r["final_d_fake"], r

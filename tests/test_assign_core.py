"""minigan assign: the references agree with the engine, make/check/grade/gradescope behave, bad input is scored."""

import copy
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from minigan import functional as F
from minigan import gan, nn, optim
from minigan.assignments import ASSIGNMENTS
from minigan.assignments import a1_layers as A1
from minigan.assignments import a2_losses as A2
from minigan.assignments import a3_gan_step as A3
from minigan.assignments import a4_optimizers as A4
from minigan.assignments import make as M
from minigan.assignments import report as R
from minigan.assignments.grader import grade, reference_path
from minigan.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def same(a, b, rtol=1e-12):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            same(x, y, rtol)
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12 if a.dtype == np.float64 else 1e-6)
    else:
        assert a == b


# ------------------------------------------------------------------------------ the references are the engine's


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(3))
def test_a1_a2_references_equal_minigan_functional(seed, dtype):
    rng = np.random.default_rng(seed)
    n, d_in, d_out = rng.integers(1, 7, size=3)
    x = (rng.standard_normal((n, d_in)) * 4).astype(dtype)
    x.reshape(-1)[0] = 0.0
    W, b = rng.standard_normal((d_in, d_out)).astype(dtype), rng.standard_normal(d_out).astype(dtype)
    z, y = (rng.standard_normal((n, 1)) * 30).astype(dtype), (rng.random((n, 1)) < 0.5).astype(dtype)
    p = rng.uniform(0.05, 0.95, (n, 1)).astype(dtype)
    labels = rng.integers(0, d_in, size=n)
    cases = {"dense": (x, W, b), "relu": (x,), "leaky_relu": (x, 0.2), "sigmoid": (x,), "tanh": (x,),
             "bce_with_logits": (z, y), "bce": (p, y), "mse": (x, x[::-1].copy()),
             "softmax_cross_entropy": (x * 100, labels)}
    for op, inputs in cases.items():
        ref = A1 if hasattr(A1, f"{op}_forward") else A2
        out_r, cache_r = getattr(ref, f"{op}_forward")(*copy.deepcopy(inputs))
        out_e, cache_e = getattr(F, f"{op}_forward")(*copy.deepcopy(inputs))
        same(out_r, out_e, rtol=1e-5 if dtype == np.float32 else 1e-12)
        same(cache_r, cache_e, rtol=1e-5 if dtype == np.float32 else 1e-12)
        dout = 0.7 if op in {"bce_with_logits", "bce", "mse", "softmax_cross_entropy"} else \
            rng.standard_normal(np.shape(out_e)).astype(dtype)
        same(getattr(ref, f"{op}_backward")(dout, copy.deepcopy(cache_e)),
             getattr(F, f"{op}_backward")(dout, copy.deepcopy(cache_e)), rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_a3_reference_equals_minigan_gan(seed):
    rng = np.random.default_rng(seed)
    n, k, d = rng.integers(1, 6, size=3)
    lr_, lf = rng.standard_normal((n, 1)) * 3, rng.standard_normal((n, 1)) * 3
    loss, dr, df = A3.discriminator_loss(lr_, lf)
    e_loss, e_grad = gan.discriminator_loss(np.concatenate([lr_, lf]), np.concatenate([np.ones_like(lr_),
                                                                                      np.zeros_like(lf)]))
    assert np.isclose(float(loss), float(e_loss), rtol=1e-12)
    same(np.concatenate([dr, df]), e_grad)
    with np.errstate(all="ignore"):  # the textbook formula, where it is finite
        textbook = -np.mean(np.log(1 / (1 + np.exp(-lr_)))) - np.mean(np.log(1 - 1 / (1 + np.exp(-lf))))
    assert np.isclose(float(loss), textbook, rtol=1e-9)
    for kind in gan.GENERATOR_LOSSES:
        same(tuple(np.asarray(v) for v in A3.generator_loss(lf, kind)),
             tuple(np.asarray(v) for v in gan.generator_loss(lf, kind)))

    # One step of minigan's GAN (SGD, no momentum) on the same one-layer G and D.
    G = nn.Sequential(nn.Dense(k, d, rng=1, dtype=np.float64))
    D = nn.Sequential(nn.Dense(d, 1, rng=2, dtype=np.float64))
    for m in (G, D):
        m.layers[0].b.data[...] = rng.standard_normal(m.layers[0].b.data.shape)
    Wg, bg, Wd, bd = (p.data.copy() for p in G.params() + D.params())
    model = gan.GAN(G, D, optim.SGD(G.params(), lr=0.1), optim.SGD(D.params(), lr=0.1), noise_dim=k)
    real, z_d, z_g = rng.standard_normal((n, d)), rng.standard_normal((n, k)), rng.standard_normal((n, k))
    D.zero_grad()
    model.discriminator_gradients(real, z_d)
    model.d_optimizer.step()
    G.zero_grad()
    model.generator_gradients(z_g)
    model.g_optimizer.step()
    new = A3.gan_step(real, z_d, z_g, Wg, bg, Wd, bd, 0.1)
    for name, p in zip(["Wg", "bg", "Wd", "bd"], G.params() + D.params()):
        np.testing.assert_allclose(new[name], p.data, rtol=1e-10, atol=1e-12, err_msg=name)


def test_a4_references_equal_minigan_optim():
    rng = np.random.default_rng(0)
    for Opt, kwargs in ((optim.SGD, dict(lr=0.1, momentum=0.9)), (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99)))):
        p = nn.Param(rng.standard_normal((3, 4)), "w")
        opt = Opt([p], **kwargs)
        w, a, b = p.data.copy(), np.zeros((3, 4)), np.zeros((3, 4))
        for t in range(1, 5):
            g = rng.standard_normal((3, 4))
            p.grad = g.copy()
            opt.step()
            if Opt is optim.SGD:
                w, a = A4.sgd_momentum_step(w, g, a, 0.1, 0.9)
            else:
                w, a, b = A4.adam_step(w, g, a, b, t, lr=0.01, beta1=0.8, beta2=0.99)
            np.testing.assert_allclose(w, p.data, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------------------------------ make / check / grade


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_make_verifies_reference_100_stub_0_and_is_idempotent(assignment, tmp_path):
    first = M.make(assignment, tmp_path)
    assert first["reference"][0] == first["reference"][1] > 0 and first["stub"][0] == 0
    snapshot = {f: f.read_bytes() for f in first["written"]}
    name = ASSIGNMENTS[assignment].module
    student = (tmp_path / "student" / f"{name}.py").read_text()
    assert "BEGIN SOLUTION" not in student and "NotImplementedError" in student
    assert M.surviving_solution_lines(reference_path(assignment).read_text(), student) == []
    again = M.make(assignment, tmp_path)
    assert {f: f.read_bytes() for f in again["written"]} == snapshot and again["changed"] == []
    if any(f.suffix == ".ipynb" for f in first["written"]):  # the notebook copy grades like the script
        report = grade(assignment, tmp_path / "instructor" / f"{name}.ipynb", seed=1)
        assert report.points == report.max_points


def test_make_refuses_a_leaking_or_broken_region():
    with pytest.raises(M.MakeError, match="never closed"):
        M.strip_solutions("def f():\n    ### BEGIN SOLUTION\n    return 1\n")
    leaked = M.surviving_solution_lines("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION\n",
                                        "def f():\n    return 42\n")
    assert leaked == ["return 42"]


def validate_gradescope(data: dict) -> None:
    """The shape of results.json in Gradescope's autograder specification."""
    assert isinstance(data["score"], (int, float)) and isinstance(data.get("output", ""), str)
    assert isinstance(data["tests"], list) and data["tests"]
    for t in data["tests"]:
        assert set(t) >= {"name", "score", "max_score", "status", "output", "visibility"}, t
        assert isinstance(t["name"], str) and isinstance(t["output"], str)
        assert 0 <= t["score"] <= t["max_score"] or t["max_score"] == 0
        assert t["status"] in ("passed", "failed")
        assert t["visibility"] in ("hidden", "after_due_date", "after_published", "visible")
    assert abs(sum(t["score"] for t in data["tests"]) - data["score"]) < 1e-9


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_results_json_follows_the_gradescope_spec(assignment, tmp_path):
    out = tmp_path / "results.json"
    assert main(["assign", "grade", assignment, str(reference_path(assignment)), "--seed", "3",
                 "--gradescope", str(out), "--json", str(tmp_path / "full.json")]) == 0
    data = json.loads(out.read_text())
    validate_gradescope(data)
    assert data["score"] == sum(t["max_score"] for t in data["tests"])
    hidden = [t for t in data["tests"] if "grade-time" in t["name"]]
    assert hidden and all(t["visibility"] == "after_due_date" for t in hidden)
    assert "grade-time" not in data["output"].split("The grade-time")[0]  # the visible summary leaks nothing
    assert json.loads((tmp_path / "full.json").read_text())["seed"] == 3


def test_results_json_is_written_even_when_the_grader_fails(tmp_path):
    out = tmp_path / "results.json"
    assert main(["assign", "grade", "a1", str(tmp_path / "nothing_here"), "--gradescope", str(out)]) == 2
    data = json.loads(out.read_text())
    validate_gradescope(data)
    assert data["score"] == 0 and data["tests"][0]["name"] == "autograder failed"
    assert data["tests"][1]["visibility"] == "hidden" and "Traceback" in data["tests"][1]["output"]


def test_syntax_error_scores_zero_everywhere_and_shows_the_line(tmp_path):
    bad = tmp_path / "a1_layers.py"
    bad.write_text(reference_path("a1").read_text() + "\n\ndef broken(:\n    pass\n")
    report = grade("a1", bad, seed=1)
    assert report.points == 0 and all(i.status == "error" for i in report.items)
    assert "SyntaxError at line" in R.text(report) and "def broken(:" in R.text(report)


def test_a_renamed_file_in_the_submission_folder_is_found(tmp_path):
    (tmp_path / "my homework final.py").write_text(reference_path("a2").read_text())
    (tmp_path / "notes.py").write_text("print('hello')\n")
    report = grade("a2", tmp_path, seed=1)
    assert report.points == report.max_points
    assert "my homework final.py" in report.header


def test_written_answer_is_recorded_for_the_instructor():
    report = grade("a2", reference_path("a2"), seed=1)
    answer = [i for i in report.items if i.function == "bce_question"]
    assert answer and answer[0].max_points == 0 and "log(0)" in answer[0].answer


def test_the_new_users_workflow_on_the_command_line(tmp_path):
    """make a1, fill it with a transposed dW; grade names function, tensor, worst element and the mistake; the same
    for a3 with a flipped L_D sign. Runs the real `python -m minigan` like an instructor would."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "minigan", "assign", *args], capture_output=True, text=True,
                              env=ENV, cwd=tmp_path, timeout=120)

    made = run("make", "a1", "course")
    assert made.returncode == 0, made.stderr
    stub = tmp_path / "course" / "student" / "a1_layers.py"
    check = run("check", "a1", str(stub))
    assert check.returncode == 1 and check.stdout.count("not implemented") >= 12
    filled = (tmp_path / "course" / "instructor" / "a1_layers.py").read_text()
    stub.write_text(filled.replace("dW = x.T @ dy", "dW = dy.T @ x"))
    out = run("grade", "a1", str(stub)).stdout
    assert "dense_backward       dW      0/2     FAIL" in out and "transposed" in out, out
    a3 = tmp_path / "a3_gan_step.py"
    a3.write_text(reference_path("a3").read_text().replace(
        "loss = _softplus(-logits_real).mean() + _softplus(logits_fake).mean()",
        "loss = _softplus(-logits_real).mean() - _softplus(logits_fake).mean()"))
    out = run("grade", "a3", str(a3), "--seed", "5").stdout
    assert "discriminator_loss   L_D" in out and "flipped sign of L_D's fake term" in out, out


def test_gradescope_bundle(tmp_path):
    path = M.gradescope_bundle("a1", tmp_path / "a1.zip")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        assert {"setup.sh", "run_autograder", "minigan_src/pyproject.toml",
                "minigan_src/minigan/assignments/grader.py"} <= names
        assert z.getinfo("run_autograder").external_attr >> 16 & 0o111
        run_autograder = z.read("run_autograder").decode()
        assert "assign grade a1 /autograder/submission" in run_autograder
        assert "--gradescope /autograder/results/results.json" in run_autograder
        validate_gradescope(json.loads(run_autograder.split("<<'JSON'\n")[1].split("\nJSON")[0]))
        assert 'dependencies = ["numpy>=1.23"]' in z.read("minigan_src/pyproject.toml").decode()
        assert not any(n.endswith(".npz") for n in names)
        z.extractall(tmp_path / "autograder" / "source")
    # Run the bundle's own run_autograder on a renamed submission, with /autograder moved under tmp_path and the
    # bundled source on the path in place of setup.sh's pip install; NumPy is the only third-party import allowed.
    root = tmp_path / "autograder"
    (root / "submission").mkdir()
    (root / "submission" / "homework.py").write_text(reference_path("a1").read_text())
    script = root / "run_autograder"
    script.write_text(run_autograder.replace("/autograder", str(root)).replace(
        "python3 -m minigan", f"{sys.executable} -X importtime -m minigan"))
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(root / "source" / "minigan_src")})
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert not {"matplotlib", "tqdm"} & imported and "minigan.assignments.grader" in imported
    results = json.loads((root / "results" / "results.json").read_text())
    validate_gradescope(results)
    assert results["score"] == sum(t["max_score"] for t in results["tests"]) > 0


def test_a_grading_script_without_a_main_guard_runs_once(tmp_path):
    """Children never re-import the caller's __main__ (forkserver and spawn would, by default)."""
    script = tmp_path / "grade_class.py"
    script.write_text("from minigan.assignments.grader import grade, reference_path\n"
                      "print('script body ran')\n"
                      "print(grade('a4', reference_path('a4'), seed=1).percent)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.stdout.split() == ["script", "body", "ran", "100.0"], done.stderr


def test_a_notebook_runs_cell_by_cell_like_jupyter(tmp_path):
    """A failing scratch cell costs only what it defines; the note says which cell failed."""
    source = reference_path("a4").read_text()
    head, adam = source.split("def adam_step")
    cells = [head, "x = undefined_name  # a scratch cell that fails", "def broken(:\n    pass",
             "def adam_step" + adam.replace("return w - lr", "return w + 0 * undefined_name - lr"),
             "%timeit sgd_momentum_step(1.0, 1.0, 0.0, 0.1)"]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "code", "metadata": {}, "source": c, "outputs": [], "execution_count": None}
                    for c in cells] + [{"cell_type": "markdown", "metadata": {}, "source": "notes"}]}
    path = tmp_path / "my_optimizers.ipynb"
    path.write_text(json.dumps(nb))
    report = grade("a4", path, seed=2)
    lost = {i.function for i in report.items if not i.passed}
    assert lost == {"adam_step"}, R.text(report)
    message = next(i.message for i in report.items if i.function == "adam_step" and not i.passed)
    assert "NameError" in message and "line" in message

"""The mutant gallery: each deliberately wrong implementation loses exactly the expected points, and the feedback
names the expected mistake (and never one that does not explain every failing element)."""

import ast
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from minigan.assignments import ASSIGNMENTS
from minigan.assignments import report as R
from minigan.assignments.grader import grade, reference_path
from minigan.assignments.mistakes import CATALOGUE, LESSONS

GALLERY = sorted((Path(__file__).parent / "assign_gallery").glob("a*__*.py"))


def expectation(source: str) -> dict:
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "EXPECT":
            return ast.literal_eval(node.value)
    raise AssertionError("a gallery file needs an EXPECT dict")


def grade_mutant(path: Path, tmp_path: Path):
    assignment = path.stem.split("__")[0]
    source = path.read_text()
    expect = expectation(source)
    submission = tmp_path / f"{ASSIGNMENTS[assignment].module}.py"
    submission.write_text(reference_path(assignment).read_text() + "\n\n# ---- the mutant ----\n" + source)
    return expect, grade(assignment, submission, seed=7, timeout=expect.get("timeout", 10.0))


def per_tensor(report, attr):
    out = {}
    for i in report.items:
        key = f"{i.function}:{i.tensor}"
        if attr == "lost":
            out[key] = out.get(key, 0) + i.max_points - i.points
        else:
            out.setdefault(key, set()).update(getattr(i, attr))
    return {k: v for k, v in out.items() if v} if attr == "lost" else out


@pytest.fixture(scope="module")
def graded(request, tmp_path_factory):
    """The selected mutants, graded three at a time (each grade runs its own children, two at a time): the
    children's start-up and the timeouts overlap, which halves the gallery's wall time on 2 cores."""
    selected = [item.callspec.params["path"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {p: pool.submit(grade_mutant, p, tmp_path_factory.mktemp(p.stem)) for p in selected}
        return {p: f.result() for p, f in futures.items()}


@pytest.mark.parametrize("path", GALLERY, ids=lambda p: p.stem)
def test_mutant_loses_exactly_the_expected_points_and_is_named(path, graded):
    expect, report = graded[path]
    text = R.text(report)
    assert per_tensor(report, "lost") == expect["lost"], text
    named = per_tensor(report, "mistakes")
    for key, mistake in expect.get("mistakes", {}).items():
        if mistake is None:
            assert not named[key], f"{key}: named {named[key]} although nothing in the catalogue explains it\n{text}"
        else:
            assert mistake in named[key], text
            assert CATALOGUE[mistake][0] in text and LESSONS[CATALOGUE[mistake][2]] in text
    notes = per_tensor(report, "notes")
    for key, note in expect.get("notes", {}).items():
        if note is None:  # a failing tensor carries no convention note
            assert not notes[key], text
            continue
        assert note in notes[key], text
        assert CATALOGUE[note][0] in text
    if "message" in expect:
        assert expect["message"] in text, text

"""``make``: the student version of an assignment, verified; ``gradescope``: the autograder bundle.

Solution regions use nbgrader's markers, each on a line of its own::

    ### BEGIN SOLUTION
    ...the reference code...
    ### END SOLUTION

``make`` replaces each region by ``raise NotImplementedError("<function>: <what to compute>")`` at the region's
indentation (the "what" is the first line of the function's docstring), keeping every docstring and comment outside
the regions, and refuses to finish unless the result parses, no solution line survives, the reference grades 100%
and the untouched stub grades 0% with "not implemented" on every function.
"""

from __future__ import annotations

import ast
import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

from . import ASSIGNMENTS
from .grader import grade, reference_path

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


class MakeError(RuntimeError):
    """The student version failed a check; nothing was written."""


def _summaries(source: str) -> dict[str, str]:
    """function name -> the first paragraph of its docstring on one line, without reST backquotes."""
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = (ast.get_docstring(node) or "").strip().split("\n\n")[0]
            out[node.name] = " ".join(first.split()).replace("``", "").rstrip(":") or "implement this function"
    return out


def strip_solutions(source: str) -> tuple[str, list[str]]:
    """``(student source, the solution lines removed)``."""
    summaries = _summaries(source)
    out, removed, inside, current = [], [], False, None
    for number, line in enumerate(source.splitlines(), 1):
        m = re.match(r"\s*def (\w+)\(", line)
        if m:
            current = m.group(1)
        stripped = line.strip()
        if stripped == BEGIN:
            if inside:
                raise MakeError(f"line {number}: {BEGIN} inside another solution region")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            what = f"{current}: {summaries.get(current, 'implement this')}" if current else "implement this"
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError({json.dumps(what, ensure_ascii=False)})")
        elif stripped == END:
            if not inside:
                raise MakeError(f"line {number}: {END} without a {BEGIN}")
            inside = False
        elif inside:
            removed.append(line)
        else:
            out.append(line)
    if inside:
        raise MakeError(f"a {BEGIN} is never closed")
    return "\n".join(out) + "\n", removed


def surviving_solution_lines(reference: str, student: str) -> list[str]:
    """Solution lines (code, not blank or comments) that still appear in the student file. Lines that the
    reference also has outside its regions (shared helpers) are not secrets and are ignored."""
    _, removed = strip_solutions(reference)
    outside = {ln.strip() for ln in strip_solutions(reference)[0].splitlines()}
    secret = {ln.strip() for ln in removed if ln.strip() and not ln.strip().startswith("#")} - outside
    student_lines = {ln.strip() for ln in student.splitlines()}
    markers = [m for m in (BEGIN, END) if m in student]
    return sorted(secret & student_lines) + markers


def to_notebook(source: str) -> str | None:
    """The percent-format script as a notebook (None when jupytext is not installed)."""
    try:
        import jupytext
    except ImportError:
        return None
    nb = jupytext.reads(source, fmt="py:percent")
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"  # nbformat would draw random ids: fixed ones keep make idempotent
    return jupytext.writes(nb, fmt="ipynb")


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def make(assignment: str, out, *, timeout: float = 10.0) -> dict:
    """Write ``OUT/student/`` (hand this out) and ``OUT/instructor/`` (the reference, for nbgrader); verified.

    Returns what was written and the two verification scores. Running it again rewrites nothing that is
    unchanged (the output is deterministic).
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}: choose one of {', '.join(ASSIGNMENTS)}")
    name = ASSIGNMENTS[assignment].module
    reference = reference_path(assignment).read_text(encoding="utf-8")
    student, _ = strip_solutions(reference)
    try:
        ast.parse(student)
    except SyntaxError as err:
        raise MakeError(f"the student version does not parse (line {err.lineno}: {err.msg})") from None
    leaked = surviving_solution_lines(reference, student)
    if leaked:
        raise MakeError(f"solution lines survive in the student version: {leaked[:3]}")
    with tempfile.TemporaryDirectory() as tmp:
        stub = Path(tmp) / f"{name}.py"
        stub.write_text(student, encoding="utf-8")
        ref_report = grade(assignment, reference_path(assignment), seed=0, timeout=timeout)
        stub_report = grade(assignment, stub, seed=0, timeout=timeout)
    if ref_report.points != ref_report.max_points:
        failing = [f"{i.function} {i.tensor}" for i in ref_report.items if not i.passed]
        raise MakeError(f"the reference does not grade 100% ({ref_report.points:g}/{ref_report.max_points:g}; "
                        f"failing: {', '.join(failing[:5])})")
    implemented = [f"{i.function} {i.tensor}" for i in stub_report.items if i.status != "not implemented"]
    if stub_report.points != 0 or implemented:
        raise MakeError(f"the untouched stub does not grade 0% with 'not implemented' everywhere: {implemented[:5]}")

    out = Path(out)
    written, changed = [], []
    for folder, text in (("student", student), ("instructor", reference)):
        d = out / folder
        d.mkdir(parents=True, exist_ok=True)
        files = [(d / f"{name}.py", text)]
        nb = to_notebook(text)
        if nb is not None:
            files.append((d / f"{name}.ipynb", nb))
        for path, content in files:
            written.append(path)
            if _write_if_changed(path, content):
                changed.append(path)
    return {"written": written, "changed": changed, "reference": (ref_report.points, ref_report.max_points),
            "stub": (stub_report.points, stub_report.max_points)}


# ------------------------------------------------------------------------------------------------ Gradescope

SETUP_SH = """#!/usr/bin/env bash
# Installs minigan (bundled here) with NumPy as its only dependency. Written by `minigan assign gradescope`.
set -euo pipefail
apt-get install -y python3 python3-pip >/dev/null 2>&1 || true
python3 -m pip install --quiet "numpy>=1.23"
python3 -m pip install --quiet --no-deps /autograder/source/minigan_src
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Grades /autograder/submission for {assignment}. Written by `minigan assign gradescope`.
# results.json is always written: by the grader (even when it fails), else by the fallback below.
cd /autograder
mkdir -p /autograder/results
python3 -m minigan assign grade {assignment} /autograder/submission \\
    --gradescope /autograder/results/results.json --timeout {timeout:g}
if [ ! -s /autograder/results/results.json ]; then
  cat > /autograder/results/results.json <<'JSON'
{fallback}
JSON
fi
"""

PYPROJECT = """[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "minigan"
version = "{version}"
dependencies = ["numpy>=1.23"]

[tool.setuptools.packages.find]
include = ["minigan*"]
"""


def gradescope_bundle(assignment: str, out_zip, *, timeout: float = 10.0) -> Path:
    """``OUT.zip`` with ``setup.sh`` and ``run_autograder`` at its root and minigan's source in ``minigan_src/``
    (without the bundled digits: the grader needs NumPy only)."""
    from .. import __version__
    from .report import failure_results

    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}: choose one of {', '.join(ASSIGNMENTS)}")
    package = Path(__file__).resolve().parent.parent
    fallback = json.dumps(failure_results("minigan could not start (see the autograder's stdout)", ""), indent=1)
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        def add(arcname, text, executable=False):
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o755 if executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text)

        add("setup.sh", SETUP_SH, executable=True)
        add("run_autograder", RUN_AUTOGRADER.format(assignment=assignment, timeout=timeout, fallback=fallback),
            executable=True)
        add("minigan_src/pyproject.toml", PYPROJECT.format(version=__version__))
        for f in sorted(package.rglob("*.py")):
            if "__pycache__" not in f.parts:
                add(f"minigan_src/minigan/{f.relative_to(package).as_posix()}", f.read_text(encoding="utf-8"))
    out_zip.write_bytes(buf.getvalue())
    return out_zip

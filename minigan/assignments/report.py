"""The grader's output: a text table that points at each mistake, a JSON report, Gradescope's results.json.

Feedback names a mistake from the catalogue (``mistakes.py``) only when the grader found that it explains every
failing element, and points to the lesson that teaches the idea; it never shows the reference's code.
Gradescope format: https://gradescope-autograders.readthedocs.io/en/latest/specs/ -- top-level ``score``,
``output``, ``tests`` with ``name``, ``score``, ``max_score``, ``status``, ``output``, ``visibility``; the grade-time
random cases are ``after_due_date`` (students see them once the due date has passed).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from . import ASSIGNMENTS
from .mistakes import CATALOGUE, describe

_STATUS = {"passed": "ok", "failed": "FAIL", "not implemented": "not implemented", "error": "ERROR",
           "timeout": "TIMEOUT", "written": "answer recorded"}


def _num(v) -> str:
    return "" if v is None else f"{v:.6g}"


def _worst(item) -> str:
    if item.worst_index is None:
        return ""
    return f"[{', '.join(map(str, item.worst_index))}]" if item.worst_index else "(scalar)"


def feedback_lines(item, tensors=None) -> list[str]:
    """What a failing (or noted) item says beyond its table row: the message, the named mistake, the lesson.
    ``tensors``: the names of all the tensors that share this exact feedback (printed once for all)."""
    lines = []
    names = ", ".join(tensors or [item.tensor])
    if not item.passed and item.message and item.message != "not implemented":  # the table says that already
        where = f" [{item.case}]" if item.case else ""
        lines.append(f"{item.function} {names}{where}: {item.message}")
    for key in item.mistakes:
        lines.append("    " + describe(key))
    for key in item.notes:
        if key in CATALOGUE:
            lines.append(f"{item.function} {names}: note: " + describe(key).replace("likely mistake: ", ""))
    return lines


def _grouped_feedback(items) -> list[str]:
    """Feedback lines, each distinct message once: a function that failed as a whole (not found, a timeout) says
    so in one line, not once per tensor and part."""
    groups = {}
    for i in items:
        key = (i.function, i.message if not i.passed else "", i.case if not i.passed else "", tuple(i.mistakes),
               tuple(i.notes))
        groups.setdefault(key, []).append(i)
    lines = []
    for group in groups.values():
        tensors = list(dict.fromkeys(i.tensor for i in group))
        lines += feedback_lines(group[0], tensors)
    return lines


def text(report, visible_only: bool = False) -> str:
    """The table: one line per function and tensor (its parts' points summed), then the feedback lines."""
    a = ASSIGNMENTS[report.assignment]
    items = [i for i in report.items if not visible_only or i.part == "visible"]
    points, max_points = sum(i.points for i in items), sum(i.max_points for i in items)
    pct = 100.0 * points / max_points if max_points else 0.0
    head = [f"minigan assign -- {a.name} ({a.title})", f"file: {report.file}"]
    if report.header:
        head.append(report.header)
    if report.grader_errors:
        head.append(f"the grader itself failed on {len(report.grader_errors)} function(s): a bug of minigan's "
                    "(tracebacks in --json and in a hidden Gradescope test, never shown here)")
    rows = [("function", "tensor", "points", "result", "worst element", "yours", "expected")]
    groups = {}
    for i in items:
        groups.setdefault((i.function, i.tensor), []).append(i)
    for (fn, tensor), parts in groups.items():
        bad = [p for p in parts if not p.passed]
        shown = bad[0] if bad else parts[0]
        result = _STATUS.get(shown.status, shown.status)
        if bad and len(parts) > 1:
            result += f" ({', '.join(p.part for p in bad)})"
        if any(p.notes for p in parts) and not bad:
            result = "ok (see note)"
        pts = f"{sum(p.points for p in parts):g}/{sum(p.max_points for p in parts):g}"
        rows.append((fn, tensor, pts, result, _worst(shown) if bad else "", _num(shown.yours) if bad else "",
                     _num(shown.expected) if bad else ""))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    table = ["  ".join(f"{c:<{w}}" for c, w in zip(r, widths)).rstrip() for r in rows]
    feedback = _grouped_feedback(items)
    seed = "" if visible_only or report.seed is None else f"; grade-time cases drawn with --seed {report.seed}"
    total = f"score: {points:g}/{max_points:g} ({pct:.1f}%) in {report.seconds:.1f} s{seed}"
    written = [i for i in items if i.answer]
    answers = [f"{i.function} (written answer, graded by hand):\n    {i.answer}" for i in written]
    return "\n".join(head + [""] + table + ([""] + feedback if feedback else []) + ([""] + answers if answers else [])
                     + ["", total])


def _item_output(item) -> str:
    lines = []
    if item.passed and item.status != "written":
        lines.append("passed")
    if item.worst_index is not None and not item.passed:
        lines.append(f"worst element {_worst(item)}: yours {_num(item.yours)}, expected {_num(item.expected)}")
    lines += feedback_lines(item)
    if item.answer:
        lines.append(item.answer)
    return "\n".join(lines)


def gradescope(report) -> dict:
    """Gradescope's results.json as a dict: one test per item, grade-time cases visible after the due date."""
    tests = []
    for i in report.items:
        name = f"{i.function}: {i.tensor}" + (" (grade-time random cases)" if i.part == "grade-time" else "")
        tests.append({"name": name, "score": i.points, "max_score": i.max_points,
                      "status": "passed" if i.passed else "failed", "output": _item_output(i),
                      "visibility": "after_due_date" if i.part == "grade-time" else "visible"})
    for trace in report.grader_errors:  # minigan's own failure on one function: for the instructor's eyes only
        tests.append({"name": "autograder traceback", "score": 0.0, "max_score": 0.0, "status": "failed",
                      "output": trace, "visibility": "hidden"})
    visible = text(report, visible_only=True)
    return {"score": report.points, "execution_time": round(report.seconds, 2),
            "output": visible + "\n\nThe grade-time random cases are shown after the due date.", "tests": tests}


def failure_results(message: str, trace: str, max_score: float = 0.0) -> dict:
    """results.json when the grader itself failed: score 0, a visible explanation, the traceback hidden."""
    return {"score": 0.0, "output": f"autograder failed: {message}. Your instructor has been shown the details.",
            "tests": [{"name": "autograder failed", "score": 0.0, "max_score": max_score, "status": "failed",
                       "output": message, "visibility": "visible"},
                      {"name": "autograder traceback", "score": 0.0, "max_score": 0.0, "status": "failed",
                       "output": trace, "visibility": "hidden"}]}


def write_json(data: dict, path) -> None:
    """Written atomically (a temp file, then a rename), so a half-written results.json never exists."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)

"""``minigan assign make|check|grade|gradescope``: the command line of the assignments (wired into minigan.cli)."""

from __future__ import annotations

import sys
import traceback

from . import ASSIGNMENTS

_A = ", ".join(ASSIGNMENTS)


def add_parser(sub) -> None:
    p = sub.add_parser("assign", help="classroom assignments: make student versions, self-check, grade, Gradescope",
                       description="Classroom assignments (see docs/teaching.md). Assignments: " + "; ".join(
                           f"{a.name} {a.title}" for a in ASSIGNMENTS.values()))
    s = p.add_subparsers(dest="assign_command", required=True)
    m = s.add_parser("make", help="write the student version (OUT/student/) and the reference (OUT/instructor/)")
    m.add_argument("assignment", help=_A)
    m.add_argument("out", help="output folder")
    c = s.add_parser("check", help="the student's self-check: the visible checks, fixed seeds")
    c.add_argument("assignment", help=_A)
    c.add_argument("file", help="your file (or the folder holding it)")
    g = s.add_parser("grade", help="grade a submission: visible and grade-time random cases")
    g.add_argument("assignment", help=_A)
    g.add_argument("file", help="the submitted file, or a folder holding it (a renamed file is found)")
    g.add_argument("--json", default=None, metavar="OUT", help="also write the full report as JSON")
    g.add_argument("--gradescope", default=None, metavar="RESULTS", help="write Gradescope's results.json")
    g.add_argument("--seed", type=int, default=None, help="seed of the grade-time random cases (default: fresh)")
    for q in (c, g, m):
        q.add_argument("--timeout", type=float, default=10.0, help="seconds per function (default 10)")
    b = s.add_parser("gradescope", help="write a Gradescope autograder bundle (.zip)")
    b.add_argument("assignment", help=_A)
    b.add_argument("out", help="the .zip to write")
    b.add_argument("--timeout", type=float, default=10.0, help="seconds per function (default 10)")


def run(args) -> int:
    from . import make as M
    from . import report as R
    from .grader import grade

    cmd = args.assign_command
    if cmd == "make":
        try:
            done = M.make(args.assignment, args.out, timeout=args.timeout)
        except M.MakeError as err:
            print(f"minigan assign make: refused: {err}", file=sys.stderr)
            return 1
        for f in done["written"]:
            print(f"{'wrote' if f in done['changed'] else 'unchanged'} {f}")
        print(f"verified: the reference grades {done['reference'][0]:g}/{done['reference'][1]:g}, the untouched "
              f"stub {done['stub'][0]:g}/{done['stub'][1]:g} (not implemented everywhere). Hand out "
              f"{args.out}/student/; keep {args.out}/instructor/.")
        return 0
    if cmd == "check":
        report = grade(args.assignment, args.file, hidden=False, timeout=args.timeout)
        print(R.text(report, visible_only=True))
        print("(self-check: the visible cases only; grading adds random cases drawn at grade time)")
        return 0 if report.points == report.max_points else 1
    if cmd == "grade":
        try:
            report = grade(args.assignment, args.file, seed=args.seed, timeout=args.timeout)
            table = R.text(report)
            if args.gradescope:
                R.write_json(R.gradescope(report), args.gradescope)
        except Exception as err:  # noqa: BLE001 - results.json must exist whatever happened
            if args.gradescope:
                R.write_json(R.failure_results(f"{type(err).__name__}: {err}", traceback.format_exc()),
                             args.gradescope)
                print(f"wrote {args.gradescope} (autograder failed)", file=sys.stderr)
            raise
        print(table)
        if args.json:
            R.write_json(report.to_dict(), args.json)
        return 0
    if cmd == "gradescope":
        path = M.gradescope_bundle(args.assignment, args.out, timeout=args.timeout)
        print(f"wrote {path}: upload it as the autograder of a Gradescope programming assignment; students submit "
              f"{ASSIGNMENTS[args.assignment].module}.py (or the .ipynb)")
        return 0
    raise ValueError(f"unknown assign command {cmd!r}")

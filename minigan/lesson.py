"""Small helpers the tutorials share: fast mode, where a lesson writes its figures, and the numbers it reports.

A lesson in ``tutorials/`` runs three ways: as a script (``python tutorials/01_dense_layer.py``), as a notebook
(``jupytext --to ipynb``), and in the test suite in *fast mode*, with fewer steps and less data. Fast mode is on when
the environment variable ``MINIGAN_TUTORIAL_FAST`` is ``1``; a lesson asks ``pick(full, fast)`` for each size.

Each lesson writes its figures and a ``results.json`` of the numbers it teaches into its output folder:
``$MINIGAN_TUTORIAL_OUT/<lesson>/`` if that variable is set, else ``tutorial_output/<lesson>/`` under the current
folder. The tests read ``results.json`` and check the lesson's claims against the numbers it actually reached.
"""

from __future__ import annotations

import json
import math
import os
import pathlib

FAST = os.environ.get("MINIGAN_TUTORIAL_FAST", "") == "1"


def pick(full, fast):
    """``fast`` in fast mode (the test suite), else ``full`` (a student's run)."""
    return fast if FAST else full


class Lesson:
    """One lesson's output folder and its recorded numbers.

    >>> lesson = Lesson("01_dense_layer")
    >>> lesson.record(max_rel_error=3e-9)        # a number the lesson teaches, kept in results.json
    >>> lesson.save(fig, "loss_curve.png")       # a figure, written next to results.json (and shown in a notebook)
    """

    def __init__(self, name: str):
        self.name = name
        root = pathlib.Path(os.environ.get("MINIGAN_TUTORIAL_OUT", "tutorial_output"))
        self.out = root / name
        self.out.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"lesson": name, "fast": FAST}

    def record(self, **numbers) -> None:
        """Keep numbers (floats, ints, bools, strings, lists of them) and rewrite results.json at once."""
        for key, value in numbers.items():
            self.results[key] = _plain(value)
        tmp = self.out / "results.json.tmp"
        tmp.write_text(json.dumps(self.results, indent=2, allow_nan=True))
        tmp.replace(self.out / "results.json")

    def save(self, fig, filename: str) -> pathlib.Path:
        """Write a matplotlib figure into the lesson's folder; print where it went. In a notebook the figure still
        shows inline (the caller leaves it open); in a script nothing pops up under the Agg backend."""
        path = self.out / filename
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"wrote {path}")
        return path


def _plain(value):
    """JSON-friendly copy: NumPy scalars and 0-d arrays become Python numbers, tuples become lists."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return value  # json writes NaN / Infinity; the lesson on stable BCE records exactly those
    return value

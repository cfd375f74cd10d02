"""Grade a student's file: each function in its own child process, each gradient tensor its own score item.

The submission is imported **by path** in the child (never the installed reference), so a self-check can never
pass on the solution that ships with minigan; a graded function that is really minigan's own (imported and
re-exported) is refused. A child that loops, crashes or allocates without bound zeroes its own function only.

Processes: one child per graded function, at most ``jobs`` at a time (default: the number of CPUs). They start from a
``forkserver``: a small server process that has already imported NumPy and the checks forks each child, so a child
starts in milliseconds with nothing to re-import (``spawn`` would pay NumPy's import, ~0.1-0.2 s, per function), and
the server runs no BLAS threads, so the fork is safe (forking the grader itself, whose BLAS may hold threads, can
deadlock). Where ``forkserver`` does not exist (Windows) ``spawn`` is used.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import difflib
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import traceback
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import ASSIGNMENTS
from .checks import Malformed, specs as load_specs

DEFAULT_TIMEOUT = 10.0  # seconds per function
MEMORY_LIMIT = 1 << 30  # bytes a child may allocate beyond what it starts with
VISIBLE_SEED = 0  # the visible cases are the same for everyone, every time


@dataclass
class Item:
    """One score item: one tensor of one function, on the visible cases or on the grade-time random ones."""

    function: str
    tensor: str
    part: str  # "visible" or "grade-time"
    max_points: float = 1.0
    points: float = 0.0
    status: str = "failed"  # passed | failed | not implemented | error | timeout | written
    message: str = ""
    case: str = ""
    worst_index: list | None = None
    yours: float | None = None
    expected: float | None = None
    numeric: float | None = None
    mistakes: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    answer: str | None = None

    @property
    def passed(self) -> bool:
        return self.status in ("passed", "written")


@dataclass
class Report:
    assignment: str
    file: str
    seed: int | None
    items: list = field(default_factory=list)
    seconds: float = 0.0
    header: str = ""  # e.g. the syntax error that zeroed everything
    grader_errors: list = field(default_factory=list)  # tracebacks of the grader's own failures (for the instructor)

    @property
    def points(self) -> float:
        return sum(i.points for i in self.items)

    @property
    def max_points(self) -> float:
        return sum(i.max_points for i in self.items)

    @property
    def percent(self) -> float:
        return 100.0 * self.points / self.max_points if self.max_points else 0.0

    def to_dict(self) -> dict:
        return {"assignment": self.assignment, "file": self.file, "seed": self.seed, "points": self.points,
                "max_points": self.max_points, "percent": self.percent, "seconds": self.seconds,
                "header": self.header, "grader_errors": self.grader_errors,
                "items": [asdict(i) for i in self.items]}


# ------------------------------------------------------------------------------------------- the submission


def reference_path(assignment: str) -> Path:
    return Path(__file__).with_name(ASSIGNMENTS[assignment].module + ".py")


CELL_MARK = "# %% minigan: notebook cell "


def notebook_to_source(path: Path) -> str:
    """The code cells of a notebook joined into one script (no jupytext needed), each after a ``CELL_MARK`` line;
    IPython magics and shell lines commented out. The grader runs the cells one by one, as a notebook would: a
    scratch cell that fails costs only what it defines."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    chunks, n = [], 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        n += 1
        src = cell.get("source", "")
        src = "".join(src) if isinstance(src, list) else src
        lines = [("# " + ln) if ln.lstrip().startswith(("%", "!")) else ln for ln in src.splitlines()]
        chunks.append("\n".join([f"{CELL_MARK}{n}"] + lines))
    return "\n\n".join(chunks) + "\n"


def _run_cells(source: str, path: str, scope: dict) -> list[str]:
    """Execute a notebook's cells in order (line numbers kept), each on its own; the errors, one line each."""
    errors, offset = [], 0
    for chunk in source.split("\n" + CELL_MARK):
        lines = chunk.splitlines()
        label = lines[0].replace(CELL_MARK.strip(), "").strip() if lines else "?"
        code = chunk if chunk.startswith(CELL_MARK) else "#" + chunk  # the split ate the mark: keep a comment
        padded = "\n" * offset + code  # tracebacks and syntax errors report lines of the joined file
        offset += chunk.count("\n") + 1
        try:
            exec(compile(padded, path, "exec"), scope)
        except SyntaxError as err:
            errors.append(f"cell {label.split()[-1]} does not parse (SyntaxError: {err.msg}) and was skipped")
        except Exception as err:  # noqa: BLE001 - a failing scratch cell, as in a notebook
            errors.append(f"cell {label.split()[-1]} raised {type(err).__name__}: {str(err)[:200]}")
    return errors


def find_submission(assignment: str, path) -> tuple[Path, str]:
    """The file to grade and a note: FILE itself, or in a folder the expected name or the one file that defines
    the assignment's functions (a renamed file is found and graded, with a note)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_file():
        return path, ""
    expected = ASSIGNMENTS[assignment].module
    for ext in (".py", ".ipynb"):
        if (path / (expected + ext)).is_file():
            return path / (expected + ext), ""
    names = {s.name for s in load_specs(assignment)}
    best, best_count = None, 0
    for f in sorted(list(path.rglob("*.py")) + list(path.rglob("*.ipynb"))):
        try:
            text = notebook_to_source(f) if f.suffix == ".ipynb" else f.read_text(encoding="utf-8", errors="replace")
        except (OSError, ValueError):
            continue
        count = sum(f"def {n}(" in text for n in names)
        if count > best_count:
            best, best_count = f, count
    if best is None:
        raise FileNotFoundError(f"no {expected}.py or .ipynb in {path}, and no file there defines any of "
                                f"{', '.join(sorted(names))}")
    return best, f"note: graded {best.name} (no file named {expected}.py was found)"


# ------------------------------------------------------------------------------------------- in the child


def _limit_memory():
    """Cap the child's address space at what it has now plus MEMORY_LIMIT (Linux; elsewhere no cap)."""
    try:
        import resource

        with open("/proc/self/statm") as f:
            now = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        resource.setrlimit(resource.RLIMIT_AS, (now + MEMORY_LIMIT, now + MEMORY_LIMIT))
    except (ImportError, OSError, ValueError):
        pass


def _where(err: BaseException, path: str) -> str:
    """' (line N of your file: `code`)' for the innermost frame in the submission."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == path]
    if not frames:
        return ""
    f = frames[-1]
    return f" (line {f.lineno} of your file: `{(f.line or '').strip()}`)"


def _error_message(err: BaseException, path: str, function: str = "") -> tuple[str, str]:
    if isinstance(err, NotImplementedError):
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == path]
        if function and frames and frames[-1].name != function:  # a helper of the student's, still a stub
            return "not implemented", f"not implemented (it calls {frames[-1].name}, which is not implemented yet)"
        return "not implemented", "not implemented"
    if isinstance(err, Malformed):
        return "failed", str(err)
    if isinstance(err, MemoryError):
        return "error", (f"ran out of memory (each function may allocate {MEMORY_LIMIT >> 20} MiB)"
                         f"{_where(err, path)}; an array far too large?")
    return "error", f"raised {type(err).__name__}: {str(err)[:300]}{_where(err, path)}"


def _changed(a, b) -> bool:
    if isinstance(b, np.ndarray):
        return not (isinstance(a, np.ndarray) and a.shape == b.shape and np.array_equal(a, b, equal_nan=True))
    if isinstance(b, (tuple, list)):
        return len(a) != len(b) or any(_changed(x, y) for x, y in zip(a, b))
    if isinstance(b, dict):
        return a.keys() != b.keys() or any(_changed(a[k], b[k]) for k in b)
    return False


def _close(s, e, rtol, atol):
    """Elementwise: equal within tolerance, or both NaN, or the same infinity."""
    with np.errstate(all="ignore"):
        both_finite = np.isfinite(s) & np.isfinite(e)
        near = np.abs(s - e) <= atol + rtol * np.abs(e)
        same_special = (np.isnan(s) & np.isnan(e)) | (np.isinf(s) & np.isinf(e) & (np.sign(s) == np.sign(e)))
        return np.where(both_finite, near, same_special)


def _explains(key, cand, s, e, bad, rtol, atol) -> bool:
    if cand is None:
        return False
    cand = np.asarray(cand, dtype=np.float64)
    if cand.shape != s.shape:
        return False
    if key == "overflow":
        return bool(np.all(~np.isfinite(s[bad])) and np.all(~np.isfinite(cand[bad])) and np.isfinite(e[bad]).all())
    return bool(np.all(_close(s[bad], cand[bad], 10 * rtol, 10 * atol)))


def _compare(spec, case, k, student, expected) -> dict:
    """One tensor on one case: {'ok', 'message', 'worst_index', 'yours', 'expected', 'numeric', 'mistakes', 'notes'}."""
    name = spec.tensors[k]
    res = {"ok": False, "message": "", "worst_index": None, "yours": None, "expected": None, "numeric": None,
           "mistakes": [], "notes": []}
    if student is None:
        res["message"] = f"{name} is None"
        return res
    try:
        s = np.asarray(student)
    except Exception:  # noqa: BLE001 - anything that is not array-like
        s = np.asarray(None)
    if s.dtype.kind not in "fiub":
        res["message"] = f"{name} is a {type(student).__name__}, not an array of numbers"
        return res
    e = np.asarray(expected)
    low = e.dtype == np.float32
    rtol, atol = (1e-4, 1e-6) if low else (1e-6, 1e-9)
    cands = dict(spec.candidates(case, k))
    if s.shape != e.shape:
        res["message"] = f"{name} has shape {s.shape}, expected {e.shape}"
        sf = s.astype(np.float64)
        if sf.ndim == 2 and sf.T.shape == e.shape and np.all(_close(sf.T, e, rtol, atol)):
            res["mistakes"].append("transposed")
        if sf.ndim == e.ndim + 1 and sf.shape[1:] == e.shape and np.all(_close(sf.sum(axis=0), e, rtol, atol)):
            res["mistakes"].append("not_summed")
        return res
    if s.dtype != e.dtype and e.dtype.kind == "f":
        res["message"] = f"{name} has dtype {s.dtype}, expected {e.dtype} (keep the input's dtype)"
        return res
    sf, ef = s.astype(np.float64), e.astype(np.float64)
    bad = ~_close(sf, ef, rtol, atol)
    mask, note = spec.allowed(case, k, sf, ef)
    if mask is not None:
        bad &= ~mask
        res["notes"].append(note)
    messages = []
    fd = spec.fd(case, k) if sf.size and np.all(np.isfinite(sf)) else None
    fd_check = None
    if fd is not None:  # the gradient against central differences of the reference forward (minigan.gradcheck)
        from ..gradcheck import _compare_tensor

        f, array = fd
        with np.errstate(all="ignore"):
            fd_check = _compare_tensor(f, array, sf, name, eps=1e-6, atol=1e-5, rtol=1e-3, max_elements=64,
                                       rng=np.random.default_rng(0))
        if not fd_check.passed:
            messages.append(f"finite differences disagree: at {list(fd_check.worst_index)} yours "
                            f"{fd_check.analytic:.6g}, numeric {fd_check.numeric:.6g}")
            if not bad.any():  # finite differences see what the comparison with the reference did not
                res.update(worst_index=list(fd_check.worst_index), yours=fd_check.analytic,
                           numeric=fd_check.numeric)
    props = spec.properties(case, k, student)
    if bad.any():
        with np.errstate(all="ignore"):
            excess = np.abs(sf - ef) / (atol + rtol * np.abs(ef))
        excess = np.where(bad, np.nan_to_num(excess, nan=np.inf, posinf=np.inf), -1.0)
        i = np.unravel_index(int(np.argmax(excess)), sf.shape) if sf.shape else ()
        res.update(worst_index=[int(v) for v in i], yours=float(sf[i]), expected=float(ef[i]))
        if fd_check is not None and tuple(fd_check.worst_index) == tuple(i):
            res["numeric"] = fd_check.numeric
        what = "is NaN or infinite" if not np.isfinite(sf[i]) else "differs"
        where = f" at {[int(v) for v in i]}" if sf.shape else ""
        messages.insert(0, f"{name}{where} {what}: {int(bad.sum())} of {bad.size} element(s) wrong")
        generic = {"sign": [-ef], "batch_size": [ef * f for f in {case.N, 1.0 / case.N, ef.size, 1.0 / ef.size}
                                                  if f != 1],
                   "transposed": [ef.T] if ef.ndim == 2 and ef.shape[0] == ef.shape[1] else []}
        for key, alts in generic.items():
            if any(_explains(key, a, sf, ef, bad, rtol, atol) for a in alts):
                res["mistakes"].append(key)
        specific = [key for key, cand in cands.items() if _explains(key, cand, sf, ef, bad, rtol, atol)]
        if specific:  # the function's own mistake is the better explanation than a generic one
            res["mistakes"] = specific
    messages += props
    res["message"] = "; ".join(messages)
    res["ok"] = not messages
    return res


def _calls_minigan_own(fn, function: str) -> str:
    """The minigan object a thin wrapper forwards to (``return F.dense_forward(x, W, b)``), or ''."""
    code, scope = getattr(fn, "__code__", None), getattr(fn, "__globals__", {})
    if code is None:
        return ""
    for name in code.co_names:
        value = scope.get(name)
        owner = getattr(value, "__name__", "") if isinstance(value, type(sys)) else getattr(value, "__module__", "")
        if not (owner == "minigan" or str(owner).startswith("minigan.")):
            continue
        if isinstance(value, type(sys)) and function in code.co_names and hasattr(value, function):
            return f"{owner}.{function}"
        if getattr(value, "__name__", "") == function:
            return f"{owner}.{function}"
    return ""


def _import_submission(path: str):
    """Import the file by path as module ``submission``; its folder goes on sys.path for its own helper modules."""
    import types

    sys.path.insert(0, str(Path(path).parent))
    module = types.ModuleType("submission")
    module.__file__ = path
    sys.modules["submission"] = module
    # Compiled from the text itself: no __pycache__ is written beside the student's file, and no stale .pyc (same
    # size, same second) can ever stand in for the file being graded.
    source = Path(path).read_text(encoding="utf-8", errors="replace")
    if source.startswith(CELL_MARK):  # a notebook: cell by cell
        module.__dict__["__cell_errors__"] = _run_cells(source, path, module.__dict__)
    else:
        exec(compile(source, path, "exec"), module.__dict__)
    return module


def probe_import(path: str) -> str:
    """'' when the file imports cleanly, else why not (run first, in its own child, so that a file that loops or
    crashes at import costs one timeout, not one per function)."""
    import warnings

    warnings.simplefilter("ignore")
    try:
        _import_submission(path)
    except BaseException as err:  # noqa: BLE001
        return f"importing your file {_error_message(err, path)[1]}"
    return ""


def run_function(assignment: str, path: str, function: str, seed: int | None) -> list[dict]:
    """Every check of one function (in this process); returns its items as dicts. The child's whole job."""
    spec = next(s for s in load_specs(assignment) if s.name == function)
    parts = [("visible", VISIBLE_SEED)] + ([("grade-time", seed)] if seed is not None and not spec.written else [])
    items = {(t, p): Item(function, t, p, max_points=0.0 if spec.written else 1.0) for t in spec.tensors
             for p, _ in parts}

    def fail_all(status, message, mistake=None):
        for it in items.values():
            it.status, it.message = status, message
            it.mistakes = [mistake] if mistake else []
        return [asdict(i) for i in items.values()]

    import warnings

    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    try:
        module = _import_submission(path)
    except BaseException as err:  # noqa: BLE001 - whatever the file does at import is the student's
        status, message = _error_message(err, path)
        return fail_all("error" if status != "not implemented" else status, f"importing your file {message}")
    fn = getattr(module, function, None)
    if fn is None:
        graded = {s.name for s in load_specs(assignment)}
        near = difflib.get_close_matches(function, [n for n in dir(module) if not n.startswith("__")
                                                    and n not in graded], n=1)
        hint = f" (did you mean to name {near[0]!r} {function!r}?)" if near else ""
        cells = module.__dict__.get("__cell_errors__") or []
        hint += f"; note: {'; '.join(cells)}" if cells else ""
        return fail_all("error", f"{function} not found in your file{hint}")
    owner = getattr(fn, "__module__", "") or ""
    if owner == "minigan" or owner.startswith("minigan."):
        return fail_all("error", f"{function} is {owner}.{function}, imported from the installed minigan package "
                                 "and re-exported: it is not your implementation, so it earns no points")
    if not callable(fn):
        return fail_all("error", f"{function} in your file is a {type(fn).__name__}, not a function")
    borrowed = _calls_minigan_own(fn, function)
    if borrowed:
        return fail_all("error", f"{function} calls {borrowed}, minigan's own implementation of the same "
                                 "function: it is not your implementation, so it earns no points")

    for part, base in parts:
        per_tensor = {t: [] for t in spec.tensors}  # tensor -> [(case label, result dict)]
        for case in spec.cases(base + zlib.crc32(function.encode()) % 10_000, hidden=part == "grade-time"):
            expected = spec.expected(case)
            before = copy.deepcopy(case.args)
            try:
                out = spec.call(fn, case)
            except BaseException as err:  # noqa: BLE001
                if isinstance(err, KeyboardInterrupt):
                    raise
                status, message = _error_message(err, path, function)
                for t in spec.tensors:
                    per_tensor[t].append((case.label, {"ok": False, "status": status, "message": message,
                                                       "mistakes": [], "notes": []}))
                continue
            if spec.written:
                answer = out[0]
                it = items[("answer", part)]
                ok = isinstance(answer, str) and answer.strip()
                it.status = "written" if ok else "failed"
                it.answer = answer if isinstance(answer, str) else None
                it.message = "answer recorded; graded by hand" if ok else "return your answer as a non-empty string"
                continue
            mutated = [name for name, a, b in zip(case.names, case.args, before) if _changed(a, b)]
            if mutated:
                case.args = before  # the mistakes' predictions are computed from the arguments as they were given
            call_messages = spec.extra_messages(case, out)
            for k, t in enumerate(spec.tensors):
                try:
                    res = _compare(spec, case, k, out[k], expected[k])
                except Exception as err:  # noqa: BLE001 - an exotic return value must not stop the grading
                    res = {"ok": False, "message": f"{t} could not be compared with the expected value "
                           f"({type(err).__name__}: {err})", "mistakes": [], "notes": []}
                if mutated:
                    keys = [spec.inplace_key(n) for n in mutated]
                    res["message"] = "; ".join([f"changed its argument {', '.join(mutated)} in place"]
                                               + ([res["message"]] if res["message"] else []))
                    res["ok"], res["mistakes"] = False, sorted(set(res["mistakes"]) | set(keys))
                if call_messages:
                    res["ok"] = False
                    res["message"] = "; ".join(([res["message"]] if res["message"] else []) + call_messages)
                per_tensor[t].append((case.label, res))
        if spec.written:
            for _, r in per_tensor["answer"]:  # the call itself failed (not implemented, an error)
                items[("answer", part)].status, items[("answer", part)].message = r["status"], r["message"]
            continue
        for t, results in per_tensor.items():
            it = items[(t, part)]
            failing = [(label, r) for label, r in results if not r["ok"]]
            if not failing:  # a convention note matters only where nothing is wrong; else it is noise
                it.notes = sorted({n for _, r in results for n in r.get("notes", [])})
                it.status, it.points, it.message = "passed", it.max_points, ""
                continue
            label, first = failing[0]
            it.status = first.get("status", "failed")
            it.case, it.message = label, first["message"]
            for key in ("worst_index", "yours", "expected", "numeric"):
                setattr(it, key, first.get(key))
            explained = [set(r["mistakes"]) for _, r in failing]
            common = set.intersection(*explained) if explained else set()
            it.mistakes = sorted(common)
            if len(failing) > 1 and it.status != "not implemented":
                it.message += f" (and {len(failing) - 1} more failing case(s))"
    return [asdict(i) for i in items.values()]


def _child(assignment, path, function, seed, conn):
    """The child process: no output of the student's reaches the terminal; a memory cap; the result on conn."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _limit_memory()
    try:
        conn.send(("ok", probe_import(path) if function is None else run_function(assignment, path, function, seed)))
    except BaseException:  # noqa: BLE001 - the grader's own failure, reported by the parent
        conn.send(("grader", traceback.format_exc()))
    finally:
        conn.close()


# ------------------------------------------------------------------------------------------- in the parent


_CONTEXT = None
_CONTEXT_LOCK = threading.Lock()


def _context():
    """The multiprocessing context: forkserver with NumPy and the checks preloaded (see the module docstring)."""
    global _CONTEXT
    with _CONTEXT_LOCK:
        if _CONTEXT is None:
            _CONTEXT = _make_context()
    return _CONTEXT


def _make_context():
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    from multiprocessing import forkserver

    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["numpy", "minigan.assignments.grader"])
    saved = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    for k in saved:
        os.environ[k] = "1"  # tiny matrices: one BLAS thread per child, no oversubscription
    try:
        with _main_hidden():
            forkserver.ensure_running()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return ctx


def _failed_items(spec, seed, status, message) -> list[Item]:
    parts = ["visible"] + (["grade-time"] if seed is not None and not spec.written else [])
    return [Item(spec.name, t, p, max_points=0.0 if spec.written else 1.0, status=status, message=message)
            for t in spec.tensors for p in parts]


def _syntax_error(source: str, path: Path) -> str:
    try:
        ast.parse(source, filename=str(path))
    except SyntaxError as err:
        line = (err.text or "").rstrip("\n")
        return f"your file does not parse: SyntaxError at line {err.lineno}: {err.msg}\n    {line}"
    return ""


def grade(assignment: str, path, *, seed: int | None = None, hidden: bool = True, timeout: float = DEFAULT_TIMEOUT,
          jobs: int | None = None, functions=None) -> Report:
    """Grade ``path`` (a file or a folder) for ``assignment``; ``hidden=False`` runs the visible checks only.

    ``seed`` fixes the grade-time random cases (drawn fresh when None, and recorded in the report).
    """
    if assignment not in ASSIGNMENTS:
        raise ValueError(f"unknown assignment {assignment!r}: choose one of {', '.join(ASSIGNMENTS)}")
    start = time.perf_counter()
    file, note = find_submission(assignment, path)
    if hidden and seed is None:
        seed = secrets.randbelow(1_000_000)
    seed = seed if hidden else None
    report = Report(assignment, str(file), seed, header=note)
    all_specs = [s for s in load_specs(assignment) if functions is None or s.name in functions]
    with contextlib.ExitStack() as stack:
        if file.suffix == ".ipynb":
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            source = notebook_to_source(file)
            target = tmp / (file.stem + ".py")
            target.write_text(source, encoding="utf-8")
        else:
            source, target = file.read_text(encoding="utf-8", errors="replace"), file.resolve()
        problem = "" if file.suffix == ".ipynb" else _syntax_error(source, file)  # notebooks: cell by cell
        if problem:
            report.header = "\n".join(x for x in (note, problem) if x)
            for spec in all_specs:
                report.items += _failed_items(spec, seed, "error", "your file does not parse (see above)")
        else:
            report.items = _run_all(assignment, str(target), all_specs, seed, timeout, jobs,
                                    report.grader_errors)
    report.seconds = time.perf_counter() - start
    return report


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_hidden():
    """Start children without them re-importing the caller's ``__main__``: forkserver (like spawn) would run an
    instructor's grading script again in the server, or fail on ``python - <<EOF``. They need nothing from it (the
    child's target lives in this module), so ``__main__`` is hidden while a process starts."""
    _MAIN_LOCK.acquire()  # grading from several threads at once: one hides and restores at a time
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        for k in saved:
            if k == "__spec__":
                main.__spec__ = None
            else:
                del main.__dict__[k]
        yield
    finally:
        if saved:
            main.__dict__.update(saved)
        _MAIN_LOCK.release()


def _start(proc) -> None:
    with _main_hidden():
        proc.start()


def _probe(ctx, path, timeout) -> str:
    """Import the file once in a child: '' when it imports, else the message that zeroes every function."""
    receive, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(None, path, None, None, send), daemon=True)
    _start(proc)
    send.close()
    try:
        if not receive.poll(timeout):
            proc.kill()
            return (f"importing your file did not finish within {timeout:g} s: code at the top level of the file "
                    "(outside any function) runs at import; an infinite loop there?")
        kind, payload = receive.recv()
    except (EOFError, OSError):
        return f"importing your file crashed the process running it (exit code {proc.exitcode})"
    finally:
        receive.close()
        proc.join(5)
    if kind == "grader":
        raise RuntimeError(f"the grader failed while importing the submission:\n{payload}")
    return payload


def _run_all(assignment, path, all_specs, seed, timeout, jobs, grader_errors) -> list[Item]:
    from multiprocessing.connection import wait

    ctx = _context()
    jobs = jobs or os.cpu_count() or 1
    problem = _probe(ctx, path, timeout)
    if problem:
        return [item for spec in all_specs for item in _failed_items(spec, seed, "error", problem)]
    pending, running, results = list(all_specs), {}, {}
    while pending or running:
        while pending and len(running) < jobs:
            spec = pending.pop(0)
            receive, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(assignment, path, spec.name, seed, send), daemon=True)
            _start(proc)
            send.close()
            running[receive] = (spec, proc, time.monotonic() + timeout)
        now = time.monotonic()
        ready = wait(list(running), timeout=max(0.0, min(d for _, _, d in running.values()) - now))
        for conn in ready:
            spec, proc, _ = running.pop(conn)
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                proc.join(1)
                code = proc.exitcode
                why = ("killed (out of memory?)" if code in (-9, 137) else f"exit code {code}")
                results[spec.name] = _failed_items(spec, seed, "error", f"the process running {spec.name} "
                                                   f"crashed ({why}): a crash in C code, os._exit or a kill")
                continue
            finally:
                conn.close()
            proc.join(5)
            if kind == "grader":  # a bug of minigan's: this function scores 0 with a message, the rest is graded
                grader_errors.append(payload)
                results[spec.name] = _failed_items(spec, seed, "error", f"the grader itself failed on {spec.name} "
                                                   f"({payload.strip().splitlines()[-1]}); tell your instructor")
                continue
            results[spec.name] = [Item(**d) for d in payload]
        now = time.monotonic()
        for conn, (spec, proc, deadline) in list(running.items()):
            if now >= deadline:
                proc.kill()
                proc.join(5)
                conn.close()
                del running[conn]
                results[spec.name] = _failed_items(
                    spec, seed, "timeout", f"{spec.name} did not finish within {timeout:g} s: an infinite loop, "
                    "or far too much work? (it is stopped; the other functions are graded)")
    return [item for spec in all_specs for item in results[spec.name]]

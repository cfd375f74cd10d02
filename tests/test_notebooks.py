"""Every lesson opens as a notebook, and lesson 1 runs as one, in a real Jupyter kernel.

A lesson in ``tutorials/`` is a jupytext "percent" script: ``# %%`` starts a code cell, ``# %% [markdown]`` a prose
cell. A student opens it with ``jupytext --to ipynb`` (or directly, in JupyterLab with jupytext installed). These
tests do what that student does: convert with jupytext's Python API, then execute lesson 1 with nbclient.

The kernel is the Python running these tests (``sys.executable``), described by a kernelspec written into a
temporary folder; a kernelspec installed on the machine (``python3`` from another environment, say) is never
used, so the notebook imports the same minigan as the tests. The repository root goes on the kernel's
``PYTHONPATH``, so this works with or without ``pip install -e .``.

Needs the ``teach`` tools (``pip install -e ".[test]"`` installs them); without them these tests skip and say why.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).parents[1]
LESSONS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

def _need(module: str):
    return pytest.importorskip(module, reason=f"{module} is not installed: pip install -e '.[teach]' (or '.[test]')")


def _as_notebook(path):
    jupytext = _need("jupytext")
    return jupytext.read(path, fmt="py:percent")


def test_there_are_lessons():
    assert LESSONS, "no tutorials/NN_*.py found"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_converts_to_a_notebook(path, tmp_path):
    nbformat = _need("nbformat")
    jupytext = _need("jupytext")
    ipynb = tmp_path / path.with_suffix(".ipynb").name
    jupytext.write(_as_notebook(path), ipynb, fmt="ipynb")  # what `jupytext --to ipynb` writes
    nb = nbformat.read(ipynb, as_version=4)
    nbformat.validate(nb)  # a notebook Jupyter will open
    kinds = [cell.cell_type for cell in nb.cells]
    assert "markdown" in kinds, f"{path.name}: no prose cells; start them with '# %% [markdown]'"
    assert "code" in kinds, f"{path.name}: no code cells; start them with '# %%'"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: a code cell carries outputs"
    assert any(cell.source.strip() for cell in nb.cells if cell.cell_type == "markdown"), f"{path.name}: empty prose"


def test_no_notebook_outputs_are_committed():
    """Lessons live as .py scripts only: a committed .ipynb would carry stale outputs and drift from its script.

    A student's own ``jupytext --to ipynb`` copies are fine (and ignored by git): only tracked files count.
    """
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: cannot tell committed files from a student's own")
    done = subprocess.run(["git", "ls-files", "--", "*.ipynb"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"git ls-files failed: {done.stderr.strip()}")
    assert not done.stdout.split(), f"committed notebooks: {done.stdout.split()}"


def _kernelspec(folder: pathlib.Path, env: dict) -> str:
    """Write a kernelspec that starts ``sys.executable``'s ipykernel with ``env``; return its name."""
    name = "minigan-test"
    spec = folder / "kernels" / name
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "minigan (tests)",
        "language": "python",
        "env": env,
    }))
    return name


def execute_as_notebook(path, workdir: pathlib.Path, timeout: int = 120):
    """Convert ``path`` with jupytext and run every cell in a fresh kernel, in fast mode; return the notebook.

    Cells run in the lesson's own folder, as in Jupyter (a notebook's working folder is the one it lives in);
    the lesson writes its output into ``workdir / "out"``; the kernelspec goes into ``workdir / "jupyter"``.
    """
    _need("ipykernel")
    nbclient = _need("nbclient")
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager

    nb = _as_notebook(path)
    env = {
        # the kernel imports this checkout's minigan, installed or not (kernelspec env replaces these variables)
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "MINIGAN_TUTORIAL_FAST": "1",
        "MINIGAN_TUTORIAL_OUT": str(workdir / "out"),
        "TUTORIAL_STEPS": "20",  # the legacy scripts' fast mode
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",  # figures inline, as a student sees them
    }
    name = _kernelspec(workdir / "jupyter", env)
    km = AsyncKernelManager(kernel_name=name, kernel_spec_manager=KernelSpecManager(
        kernel_dirs=[str(workdir / "jupyter" / "kernels")]))
    client = nbclient.NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()  # raises CellExecutionError, naming the cell and its traceback, if a cell fails
    finally:
        if km.has_kernel:  # we made the kernel manager, so nbclient leaves shutting it down to us
            nbclient.util.run_sync(km.shutdown_kernel)(now=True)
    return nb


def test_lesson_1_runs_as_a_notebook(tmp_path):
    found = sorted((ROOT / "tutorials").glob("01_*.py"))
    assert len(found) == 1, f"expected one lesson 1, found {[p.name for p in found]}"
    path = found[0]
    before = sorted(path.parent.rglob("*"))
    nb = execute_as_notebook(path, tmp_path)
    written = sorted(set(path.parent.rglob("*")) - set(before))
    assert not written, f"the lesson wrote into tutorials/ instead of MINIGAN_TUTORIAL_OUT: {written}"

    code = [cell for cell in nb.cells if cell.cell_type == "code" and cell.source.strip()]
    assert code and all(cell.execution_count for cell in code), "a code cell did not run"
    errors = [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert not errors, errors
    assert any(cell.outputs for cell in code), "the lesson showed nothing"

    if "minigan.lesson" in path.read_text():  # a lesson in the issue 9 format reports its numbers
        results = sorted((tmp_path / "out").glob("*/results.json"))
        assert len(results) == 1, f"expected one results.json under {tmp_path / 'out'}, found {results}"
        numbers = json.loads(results[0].read_text())
        assert numbers.get("fast") is True, "the kernel did not run the lesson in fast mode"
        recorded = {k: v for k, v in numbers.items() if k not in ("lesson", "fast")}
        assert recorded, "the lesson recorded no numbers in results.json"

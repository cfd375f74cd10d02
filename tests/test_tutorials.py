"""Every tutorial runs, start to finish, with a handful of steps."""

import os
import pathlib
import subprocess
import sys

import pytest

TUTORIALS = sorted((pathlib.Path(__file__).parents[1] / "tutorials").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.name)
def test_tutorial_runs(script, tmp_path):
    env = dict(os.environ, TUTORIAL_STEPS="20", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "gradient check" in done.stdout or "wrote" in done.stdout


def test_there_are_tutorials():
    assert len(TUTORIALS) >= 4

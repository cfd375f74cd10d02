"""Where the quality scripts put their run folders, and their removal at the end unless ``--keep``.

``pacgan_table.py`` and ``mnist_table.py`` both train runs into ``--work DIR`` (default: a fresh temporary folder)
and delete what they created when they finish or fail; this is that logic, once.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


class WorkFolder:
    """``with WorkFolder(args.work, args.keep, "minigan-mnist-") as work: out = work.run("name")``.

    ``work.path`` is ``--work`` (created if missing) or a new temporary folder named with ``prefix``. ``run(name)``
    returns ``path / name`` and remembers it. On leaving the block, unless ``keep``: a temporary folder is deleted
    whole; in a folder the user gave, only the run folders handed out are deleted, never anything else there.
    """

    def __init__(self, work: str | None, keep: bool, prefix: str):
        self.keep = keep
        self.temporary = work is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if self.temporary else Path(work)
        self.path.mkdir(parents=True, exist_ok=True)
        self.runs: list[Path] = []

    def run(self, name: str) -> Path:
        out = self.path / name
        self.runs.append(out)
        return out

    def __enter__(self) -> "WorkFolder":
        return self

    def __exit__(self, *exc) -> None:
        if self.keep:
            return
        for path in [self.path] if self.temporary else self.runs:
            shutil.rmtree(path, ignore_errors=True)

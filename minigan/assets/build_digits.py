"""Build ``minigan/assets/digits.npz``, the bundled 10,000-image MNIST subset.

Run from the repository root::

    python -m minigan.assets.build_digits [--mnist-dir DIR] [--out PATH]

It reads the verified MNIST *training* files (see :func:`minigan.data.load_mnist`;
default folder ``../shared/data/mnist`` next to the repository, or
``$MINIGAN_MNIST_DIR``), takes the first 1,000 images of every class in file
order, keeps them in their original file order and writes three arrays with
``np.savez_compressed``:

``images``        uint8 ``(10000, 28, 28)``
``labels``        uint8 ``(10000,)``
``source_index``  int32 ``(10000,)``, each image's index in the MNIST train file

The selection is deterministic, so the arrays (and the printed SHA-256 of
``images.tobytes() + labels.tobytes()``, which must equal
``minigan.data.DIGITS_SHA256``) are identical on every rebuild. The ``.npz``
bytes themselves differ between builds, because zip entries carry timestamps.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from minigan import data

PER_CLASS = 1000
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = Path(__file__).resolve().parent / "digits.npz"


def default_mnist_dir() -> Path:
    """``$MINIGAN_MNIST_DIR`` if set, else ``<repo>/../shared/data/mnist``."""
    env = os.environ.get("MINIGAN_MNIST_DIR")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data" / "mnist"


def select_digits(labels: np.ndarray, per_class: int = PER_CLASS) -> np.ndarray:
    """Indices of the first ``per_class`` examples of each class, in file order.

    Returns
    -------
    numpy.ndarray
        int32, sorted, shape ``(10 * per_class,)``.
    """
    chosen = [np.flatnonzero(labels == c)[:per_class] for c in range(data.NUM_CLASSES)]
    for c, rows in enumerate(chosen):
        if len(rows) < per_class:
            raise ValueError(f"class {c} has only {len(rows)} examples, need {per_class}")
    return np.sort(np.concatenate(chosen)).astype(np.int32)


def build(mnist_dir: os.PathLike | str | None = None,
          out_path: os.PathLike | str = DEFAULT_OUT) -> str:
    """Write the digits file and return its SHA-256 (see module docstring).

    Parameters
    ----------
    mnist_dir : path, optional
        Folder with the official MNIST train files (default
        :func:`default_mnist_dir`). Never downloads.
    out_path : path
        Where to write the ``.npz``.

    Returns
    -------
    str
        Hex SHA-256 of ``images.tobytes() + labels.tobytes()``.
    """
    mnist_dir = Path(mnist_dir) if mnist_dir is not None else default_mnist_dir()
    train_images, train_labels = data.load_mnist(
        "train", dataset="mnist", data_dir=mnist_dir, download=False)
    source_index = select_digits(train_labels)  # (10000,) int32
    images = np.ascontiguousarray(train_images[source_index])  # (10000, 28, 28) uint8
    labels = np.ascontiguousarray(train_labels[source_index])  # (10000,) uint8
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, images=images, labels=labels, source_index=source_index)
    return data.digits_digest(images, labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, default=None,
                        help=f"folder with the MNIST train files (default {default_mnist_dir()})")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"output file (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    digest = build(args.mnist_dir, args.out)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size:,} bytes)")
    print(f"SHA-256(images.tobytes() + labels.tobytes()) = {digest}")
    if digest == data.DIGITS_SHA256:
        print("matches minigan.data.DIGITS_SHA256")
    else:
        print(f"DIFFERS from minigan.data.DIGITS_SHA256 = {data.DIGITS_SHA256}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Datasets for minigan: bundled digits, MNIST / Fashion-MNIST and toy 2-D targets.

Everything the trainer needs to get real data lives here. There are three
families of data, all reached through one function, :func:`get_dataset`:

``"digits"``
    A 10,000-image subset of the MNIST training set (the first 1,000 images of
    each class, in file order) shipped inside the package as
    ``minigan/assets/digits.npz``. It needs no download and is what the
    tutorials and tests use. :func:`load_digits` reads it and checks its
    SHA-256 against :data:`DIGITS_SHA256`. ``minigan/assets/build_digits.py``
    rebuilds it from the real MNIST files.

``"mnist"`` and ``"fashion-mnist"``
    The first 59,000 of the 60,000 training images, read from the four
    official gzip-compressed IDX files by :func:`load_mnist`. The last
    :data:`VALIDATION_SIZE` (1,000) are held out: they are the validation set
    on which ``minigan.metrics`` chooses the Parzen window (Goodfellow et al.,
    2014), so a generator is never scored on images it was trained on.

``"ring8"``, ``"grid25"``, ``"moons"``, ``"spiral"``
    Cheap 2-D targets for watching a GAN train (and mode-collapse) in a single
    scatter plot. ``ring8`` is 8 Gaussians (sigma 0.01) evenly spaced on the
    unit circle, ``grid25`` is 25 Gaussians (sigma 0.05) on the grid
    {-4, -2, 0, 2, 4}^2; both have known modes (:func:`ring8_modes`,
    :func:`grid25_modes`) so mode coverage can be measured. ``moons`` and
    ``spiral`` are continuous shapes with no modes.

The IDX format
--------------
An IDX file is a tiny header followed by raw bytes::

    bytes 0-1   zero
    byte  2     element type (0x08 = unsigned byte, the only one MNIST uses)
    byte  3     number of dimensions D (3 for images, 1 for labels)
    D x 4 bytes the size of each dimension, big-endian uint32
    payload     prod(sizes) bytes, C order

so the first four bytes read as one big-endian integer ("magic number") are
0x00000803 for an image file and 0x00000801 for a label file.
:func:`read_idx` accepts gzip-compressed or raw bytes and checks all of this,
including that the payload has *exactly* the announced length. Anything wrong
raises :class:`DatasetError` (a ``ValueError``) naming the file, the problem
and the fix.

Finding, verifying and downloading files
----------------------------------------
:func:`load_mnist` looks for each file, in this order, in

1. the ``data_dir`` argument,
2. the directory in the environment variable ``MINIGAN_DATA_DIR``,
3. the user cache ``$XDG_CACHE_HOME/minigan/<dataset>/`` (default
   ``~/.cache/minigan/<dataset>/``),

and in the first two accepts the files either directly in the folder or in a
``<dataset>/`` subfolder (so ``data_dir="data"`` finds ``data/mnist/...``).

Every file is checked before use: structurally (above) and by MD5. A file
passes if the MD5 of the file as stored matches the published MD5 of the
official ``.gz`` download, *or* the MD5 of its uncompressed content matches
the published MD5 of the raw IDX file (known for MNIST only). The second rule
means a re-compressed copy of MNIST is accepted too. The known values are in
:data:`KNOWN_MD5`.

If a file is not found anywhere and ``download=True``, it is downloaded once
into the cache directory, trying each URL prefix in :data:`MIRRORS` in turn.
A download goes to a temporary file in the cache directory, is verified, and
only then renamed into place with ``os.replace`` (atomic), so an interrupted
or bad download can never leave a half-written file under the real name. A
mirror that fails (network error or a bad file) is skipped; if all fail, the
:class:`DatasetError` lists each mirror's failure and says where to put the
files by hand.

A file that *is* found but fails verification is never used and never
silently replaced: :func:`load_mnist` raises :class:`DatasetError` naming the
file and asking you to delete or replace it (then, for the cache, running
again re-downloads it). Parsed arrays are cached in memory only, keyed by
path, size and modification time; arrays returned by :func:`load_mnist` and
:func:`load_digits` are shared and read-only, so ``.copy()`` them before
editing in place.

Batches and exact resumption
----------------------------
:meth:`Dataset.batch` is a *pure function* of ``(seed, step, batch_size)``:
it keeps no iterator state. For image data, step ``s`` belongs to epoch
``e = s // batches_per_epoch`` (the incomplete last batch of an epoch is
dropped), epoch ``e`` is shuffled by the permutation drawn from
``np.random.default_rng([seed, e])``, and the batch is the
``s % batches_per_epoch``-th slice of that permutation. For 2-D data the batch
is simply ``batch_size`` fresh samples from ``np.random.default_rng([seed,
step])``. Because no state has to be saved, a training run restored from a
checkpoint at step ``s`` sees exactly the batches it would have seen had it
never stopped: resuming is bit-for-bit exact. (Only the current epoch's
permutation is cached, as a speed-up; it never changes the result.)

Batches are ``float32`` arrays of shape ``(batch_size, dim)``. Images are
flattened to ``dim = 784`` and scaled for the generator's output activation:
``scale="tanh"`` maps pixels to [-1, 1], ``scale="sigmoid"`` to [0, 1]. 2-D
data is used as is (``Dataset.scale`` is ``None``). :meth:`Dataset.to_images`
undoes the image scaling for plotting, and :meth:`Dataset.real_samples` draws
a fixed set of real examples for evaluation.

Data licence: MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges (CC BY-SA
3.0); Fashion-MNIST is by Zalando Research (MIT licence).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import itertools
import operator
import os
import shutil
import sys
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import Callable, Union

import numpy as np

__all__ = [
    "DatasetError",
    "VALIDATION_SIZE",
    "read_idx",
    "read_verified_idx",
    "load_mnist",
    "download_file",
    "load_digits",
    "digits_digest",
    "cache_dir",
    "search_dirs",
    "images_to_model_scale",
    "ring8_modes",
    "grid25_modes",
    "sample_ring8",
    "sample_grid25",
    "sample_moons",
    "sample_spiral",
    "Dataset",
    "ImageDataset",
    "ToyDataset",
    "get_dataset",
    "DATASET_NAMES",
    "KNOWN_MD5",
    "MIRRORS",
    "DIGITS_SHA256",
]


class DatasetError(ValueError):
    """A dataset file is missing, corrupt or fails verification.

    The message always names the file, says what was wrong and what to do.
    """


# --------------------------------------------------------------------------
# Constants: file names, checksums, mirrors
# --------------------------------------------------------------------------

IMAGE_SIDE = 28
IMAGE_SHAPE = (IMAGE_SIDE, IMAGE_SIDE)
IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE  # 784
NUM_CLASSES = 10

#: split -> (images file, labels file). Both datasets use the same names.
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
ALL_FILES = SPLIT_FILES["train"] + SPLIT_FILES["test"]

#: dataset -> file name -> {"gz": MD5 of the official .gz, "raw": MD5 of the
#: uncompressed IDX content}. ``None`` means "not known". A file is accepted
#: if either known value matches.
KNOWN_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": {
            "gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "raw": "6bbc9ace898e44ae57da46a324031adb",
        },
        "train-labels-idx1-ubyte.gz": {
            "gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "raw": "a25bea736e30d166cdddb491f175f624",
        },
        "t10k-images-idx3-ubyte.gz": {
            "gz": "9fb629c4189551a2d022fa330f9573f3",
            "raw": "2646ac647ad5339dbf082846283269ea",
        },
        "t10k-labels-idx1-ubyte.gz": {
            "gz": "ec29112dd5afa0611ce80d1b7f02629c",
            "raw": "27ae3e4e09519cfbb04c329615203637",
        },
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": {"gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "raw": None},
        "train-labels-idx1-ubyte.gz": {"gz": "25c81989df183df01b3e8a0aad5dffbe", "raw": None},
        "t10k-images-idx3-ubyte.gz": {"gz": "bef4ecab320f06d8554ea6380940ec79", "raw": None},
        "t10k-labels-idx1-ubyte.gz": {"gz": "bb300cfdad3c16e7a12a480ee83cd310", "raw": None},
    },
}

#: dataset -> URL prefixes tried in order (file name is appended).
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": [
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
}

#: Seconds to wait for a mirror before giving up on it.
DEFAULT_TIMEOUT = 30.0

#: SHA-256 of ``images.tobytes() + labels.tobytes()`` of the bundled digits.
DIGITS_SHA256 = "1952f3ce518e1e602a0ddc59b86b62219cb612823e1094d70e88725c2abaf07b"

DIGITS_PATH = Path(__file__).resolve().parent / "assets" / "digits.npz"

RING8_SIGMA = 0.01
GRID25_SIGMA = 0.05

PathLike = Union[str, os.PathLike]


# --------------------------------------------------------------------------
# IDX parsing
# --------------------------------------------------------------------------

_GZIP_MAGIC = b"\x1f\x8b"
_UBYTE = 0x08
_MAGIC_KIND = {1: "labels", 3: "images"}  # ndim -> what the file holds


def _fail(source: str, problem: str, fix: str) -> DatasetError:
    """Build a DatasetError with the standard 'file: problem. fix' message."""
    return DatasetError(f"{source}: {problem}. {fix}")


def _delete_hint(source: str) -> str:
    return (
        f"Delete {source} (a missing file is downloaded again when download=True) "
        "or replace it with a good copy of the official file"
    )


def _read_source(path_or_bytes) -> tuple[bytes, str]:
    """Return (file bytes, printable name) for a path or a bytes object."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    path = Path(path_or_bytes)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise _fail(str(path), f"cannot read the file ({exc})", "Check the path") from exc


def _decompress(blob: bytes, source: str) -> bytes:
    """Gunzip ``blob`` if it starts with the gzip magic, else return it."""
    if not blob.startswith(_GZIP_MAGIC):
        return blob
    try:
        return gzip.decompress(blob)
    except (OSError, EOFError, zlib.error) as exc:
        raise _fail(
            source, f"bad or truncated gzip data ({exc})", _delete_hint(source)
        ) from exc


def _parse_idx(raw: bytes, source: str, ndim: int | None) -> np.ndarray:
    """Parse uncompressed IDX bytes into a uint8 array (see module docstring)."""
    fix = _delete_hint(source)
    if len(raw) < 4:
        raise _fail(source, f"only {len(raw)} bytes, too short for an IDX header", fix)
    magic = int.from_bytes(raw[:4], "big")
    dims = raw[3]
    if raw[:2] != b"\0\0" or raw[2] != _UBYTE or dims not in _MAGIC_KIND:
        raise _fail(
            source,
            f"wrong magic number 0x{magic:08X} (expected 0x00000803 for images or "
            "0x00000801 for labels); this is not an MNIST-style IDX file",
            fix,
        )
    if ndim is not None and dims != ndim:
        raise _fail(
            source,
            f"holds {_MAGIC_KIND[dims]} (magic 0x{magic:08X}) but {_MAGIC_KIND[ndim]} "
            "were expected; the file may be misnamed",
            fix,
        )
    header_len = 4 + 4 * dims
    if len(raw) < header_len:
        raise _fail(source, "truncated header", fix)
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)
    )
    expected = int(np.prod(shape, dtype=np.int64))
    got = len(raw) - header_len
    if got != expected:
        what = "truncated" if got < expected else "has trailing bytes"
        raise _fail(
            source,
            f"payload {what}: header announces shape {shape} = {expected} bytes "
            f"but {got} bytes follow the header",
            fix,
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_len).reshape(shape).copy()


def read_idx(path_or_bytes, *, ndim: int | None = None) -> np.ndarray:
    """Read a (gzip-compressed or raw) uint8 IDX file.

    Parameters
    ----------
    path_or_bytes : str, os.PathLike or bytes
        A file path, or the file's bytes. Gzip is detected from the content,
        not from the file name.
    ndim : {None, 1, 3}, optional
        If given, require a label file (1) or an image file (3).

    Returns
    -------
    numpy.ndarray
        uint8 array with the shape in the header, e.g. ``(N, 28, 28)`` for
        images or ``(N,)`` for labels.

    Raises
    ------
    DatasetError
        Bad gzip data, wrong magic number, truncated header, or a payload
        whose length differs from the announced shape.
    """
    blob, source = _read_source(path_or_bytes)
    return _parse_idx(_decompress(blob, source), source, ndim)


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _check_dataset(dataset: str) -> str:
    if dataset not in KNOWN_MD5:
        raise ValueError(
            f"unknown dataset {dataset!r}; expected one of {sorted(KNOWN_MD5)}"
        )
    return dataset


def _check_md5(blob: bytes, raw: bytes, source: str, dataset: str, filename: str) -> None:
    """Accept if the file's MD5 or its content's MD5 matches a known value."""
    known = KNOWN_MD5[dataset].get(filename)
    if known is None:
        raise _fail(
            source,
            f"no known checksum for a {dataset} file called {filename!r}",
            f"Use one of the official names: {', '.join(ALL_FILES)}",
        )
    file_md5 = _md5(blob)
    if known.get("gz") and file_md5 == known["gz"]:
        return
    raw_md5 = file_md5 if raw is blob else _md5(raw)
    if known.get("raw") and raw_md5 == known["raw"]:
        return
    expected = " or ".join(
        f"{kind} MD5 {value}" for kind, value in known.items() if value
    )
    raise _fail(
        source,
        f"checksum mismatch for {dataset} {filename}: file MD5 {file_md5}, "
        f"uncompressed MD5 {raw_md5}, expected {expected}. The file is corrupt, "
        "or belongs to another dataset (MNIST and Fashion-MNIST use the same file names)",
        _delete_hint(source),
    )


def read_verified_idx(
    path: PathLike, dataset: str = "mnist", filename: str | None = None,
    *, ndim: int | None = None,
) -> np.ndarray:
    """Read an IDX file and verify it against :data:`KNOWN_MD5`.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    dataset : {"mnist", "fashion-mnist"}
        Which checksum table to use.
    filename : str, optional
        Official file name to look up (default: ``path``'s own name).
    ndim : {None, 1, 3}, optional
        Required number of dimensions, see :func:`read_idx`.

    Returns
    -------
    numpy.ndarray
        The parsed uint8 array.

    Raises
    ------
    DatasetError
        On any structural problem or checksum mismatch.
    """
    _check_dataset(dataset)
    blob, source = _read_source(path)
    raw = _decompress(blob, source)
    array = _parse_idx(raw, source, ndim)  # structure first: clearer messages
    _check_md5(blob, raw, source, dataset, filename or Path(path).name)
    return array


# In-memory cache of verified arrays: (path, size, mtime_ns, dataset) -> array.
_PARSED: dict[tuple, np.ndarray] = {}


def _load_verified(path: Path, dataset: str, filename: str, ndim: int) -> np.ndarray:
    """:func:`read_verified_idx` with an in-memory cache; result is read-only."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, dataset, filename)
    if key not in _PARSED:
        array = read_verified_idx(path, dataset, filename, ndim=ndim)
        array.flags.writeable = False
        _PARSED[key] = array
    return _PARSED[key]


# --------------------------------------------------------------------------
# Finding and downloading MNIST / Fashion-MNIST
# --------------------------------------------------------------------------


def cache_dir(dataset: str = "mnist") -> Path:
    """Return the download cache for ``dataset``.

    ``$XDG_CACHE_HOME/minigan/<dataset>`` if ``XDG_CACHE_HOME`` is set,
    else ``~/.cache/minigan/<dataset>``. The folder is not created here.
    """
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "minigan" / dataset


def search_dirs(dataset: str = "mnist", data_dir: PathLike | None = None) -> list[Path]:
    """Folders searched for ``dataset``'s files, in lookup order.

    ``data_dir`` then ``$MINIGAN_DATA_DIR`` (each as ``<dir>/<dataset>/``
    first, then ``<dir>/`` itself), then :func:`cache_dir`.
    """
    dirs = []
    for base in (data_dir, os.environ.get("MINIGAN_DATA_DIR")):
        if base:
            dirs += [Path(base) / dataset, Path(base)]
    dirs.append(cache_dir(dataset))
    return list(dict.fromkeys(dirs))  # drop duplicates, keep order


def _find_file(dataset: str, filename: str, data_dir: PathLike | None) -> Path | None:
    for folder in search_dirs(dataset, data_dir):
        if (folder / filename).is_file():
            return folder / filename
    return None


def _manual_hint(dataset: str) -> str:
    mirrors = ", ".join(MIRRORS.get(dataset, [])) or "(none configured)"
    return (
        f"download the 4 files {', '.join(ALL_FILES)} by hand "
        f"(for example from {mirrors}) and put them, still gzip-compressed, in "
        f"{cache_dir(dataset)} or in a folder you pass as data_dir= (--data-dir) "
        "or set in the MINIGAN_DATA_DIR environment variable"
    )


def _fetch(url: str, dest_path: PathLike, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Download ``url`` into the existing file ``dest_path`` (overwritten).

    Tests replace this function (or :data:`MIRRORS`) to stay offline.
    """
    request = urllib.request.Request(url, headers={"User-Agent": "minigan-data/0.1"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        with open(dest_path, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 16)


def download_file(
    dataset: str, filename: str, target_dir: PathLike | None = None,
    *, timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download one official file into ``target_dir`` (default: the cache).

    Each mirror in ``MIRRORS[dataset]`` is tried in turn. The file is written
    to a temporary name in ``target_dir``, verified with
    :func:`read_verified_idx` and then atomically renamed into place.

    Returns
    -------
    pathlib.Path
        Path of the verified file.

    Raises
    ------
    DatasetError
        If every mirror fails; the message lists each failure.
    """
    _check_dataset(dataset)
    target = Path(target_dir) if target_dir is not None else cache_dir(dataset)
    final = target / filename
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _fail(str(target), f"cannot create the cache folder ({exc})",
                    f"Instead, {_manual_hint(dataset)}") from exc
    failures = []
    for prefix in MIRRORS.get(dataset, []):
        url = prefix + filename
        fd, tmp_name = tempfile.mkstemp(dir=target, prefix=f".{filename}.", suffix=".part")
        os.close(fd)
        try:
            print(f"minigan: downloading {url}", file=sys.stderr)
            _fetch(url, tmp_name, timeout)
            read_verified_idx(tmp_name, dataset, filename)
            os.replace(tmp_name, final)
            return final
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # DatasetError is a ValueError; URLError and timeouts are OSErrors.
            failures.append(f"  {url}: {type(exc).__name__}: {exc}")
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)
    tried = "\n".join(failures) or "  (no mirrors configured)"
    raise DatasetError(
        f"could not download {dataset} file {filename} into {target}; every mirror "
        f"failed:\n{tried}\nTo install the files yourself, {_manual_hint(dataset)}."
    )


def load_mnist(
    split: str = "train", *, dataset: str = "mnist", data_dir: PathLike | None = None,
    download: bool = True, timeout: float = DEFAULT_TIMEOUT,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST or Fashion-MNIST from the official IDX files.

    Parameters
    ----------
    split : {"train", "test"}
        Training (60,000) or test (10,000) examples.
    dataset : {"mnist", "fashion-mnist"}
        Which dataset.
    data_dir : str or os.PathLike, optional
        Folder searched first (the files may be in it or in
        ``<data_dir>/<dataset>/``). See :func:`search_dirs` for the full order.
    download : bool
        Download missing files into :func:`cache_dir` (once).
    timeout : float
        Seconds to wait for each mirror.

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(N, 28, 28)``, read-only.
    labels : numpy.ndarray
        uint8, shape ``(N,)``, values 0-9, read-only.

    Raises
    ------
    DatasetError
        A file is missing (and ``download=False``), corrupt, fails its
        checksum, or could not be downloaded. Corrupt files are never used or
        deleted automatically: delete the named file and run again.
    """
    _check_dataset(dataset)
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; expected 'train' or 'test'")
    arrays = []
    for filename, ndim in zip(SPLIT_FILES[split], (3, 1)):
        path = _find_file(dataset, filename, data_dir)
        if path is None and not download:
            searched = ", ".join(str(d) for d in search_dirs(dataset, data_dir))
            raise DatasetError(
                f"{filename}: {dataset} file not found (searched {searched}). "
                f"Pass download=True, or {_manual_hint(dataset)}."
            )
        if path is None:
            path = download_file(dataset, filename, timeout=timeout)
        arrays.append(_load_verified(path, dataset, filename, ndim))
    images, labels = arrays  # (N, 28, 28), (N,)
    _check_pair(images, labels, dataset, split)
    return images, labels


def _check_pair(images: np.ndarray, labels: np.ndarray, dataset: str, split: str) -> None:
    """Check that an image file and a label file belong together."""
    names = " / ".join(SPLIT_FILES[split])
    if images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"{dataset} {split} images are {images.shape[1:]}, not 28x28 ({names}). "
            "Replace the files with the official ones"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{dataset} {split}: {len(images)} images but {len(labels)} labels "
            f"({names}). Replace the files with the official ones"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise DatasetError(
            f"{dataset} {split}: label {labels.max()} is not a class 0-9 ({names}). "
            "Replace the files with the official ones"
        )


# --------------------------------------------------------------------------
# Bundled digits
# --------------------------------------------------------------------------


def digits_digest(images: np.ndarray, labels: np.ndarray) -> str:
    """SHA-256 hex digest of ``images.tobytes() + labels.tobytes()`` (C order)."""
    sha = hashlib.sha256()
    sha.update(np.ascontiguousarray(images).tobytes())
    sha.update(np.ascontiguousarray(labels).tobytes())
    return sha.hexdigest()


@functools.lru_cache(maxsize=1)
def _load_digits_cached(path: str) -> tuple[np.ndarray, np.ndarray]:
    fix = "Reinstall minigan (or rebuild it with: python -m minigan.assets.build_digits)"
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
    except (OSError, KeyError, ValueError, zlib.error) as exc:
        raise _fail(path, f"cannot read the bundled digits ({exc})", fix) from exc
    digest = digits_digest(images, labels)
    if digest != DIGITS_SHA256:
        raise _fail(path, f"checksum mismatch (SHA-256 {digest}, expected "
                    f"{DIGITS_SHA256}); the bundled file is corrupt", fix)
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Load the bundled 10,000-image MNIST subset (no download needed).

    Returns
    -------
    images : numpy.ndarray
        uint8, shape ``(10000, 28, 28)``, read-only.
    labels : numpy.ndarray
        uint8, shape ``(10000,)``, 1,000 of each class 0-9, read-only.

    Raises
    ------
    DatasetError
        If ``minigan/assets/digits.npz`` is missing or fails its SHA-256 check.
    """
    return _load_digits_cached(str(DIGITS_PATH))


# --------------------------------------------------------------------------
# Scaling between uint8 pixels and the model's range
# --------------------------------------------------------------------------

SCALES = ("tanh", "sigmoid")


def _check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {SCALES}")
    return scale


def images_to_model_scale(images: np.ndarray, scale: str = "tanh") -> np.ndarray:
    """Flatten uint8 images and map them to the generator's output range.

    Parameters
    ----------
    images : numpy.ndarray
        uint8, shape ``(N, 28, 28)`` or ``(N, 784)``.
    scale : {"tanh", "sigmoid"}
        ``"tanh"``: 0..255 -> [-1, 1]; ``"sigmoid"``: 0..255 -> [0, 1].
        Both end points are hit exactly.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(N, 784)``.
    """
    _check_scale(scale)
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype} (already scaled?)")
    x = images.reshape(len(images), -1).astype(np.float32)  # (N, 784)
    if scale == "tanh":
        return (x - np.float32(127.5)) / np.float32(127.5)
    return x / np.float32(255.0)


def _to_numpy(x) -> np.ndarray:
    """Bring a NumPy or CuPy array to the host as a NumPy array."""
    if not isinstance(x, np.ndarray) and hasattr(x, "get"):
        x = x.get()  # CuPy -> NumPy
    return np.asarray(x)


# --------------------------------------------------------------------------
# Toy 2-D targets
# --------------------------------------------------------------------------


def ring8_modes() -> np.ndarray:
    """Means of ``ring8``: 8 points on the unit circle at angles 2*pi*k/8, shape (8, 2)."""
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (8, 2) float64


def grid25_modes() -> np.ndarray:
    """Means of ``grid25``: the grid {-4, -2, 0, 2, 4}^2, shape (25, 2)."""
    ticks = [-4.0, -2.0, 0.0, 2.0, 4.0]
    return np.array(list(itertools.product(ticks, ticks)))  # (25, 2) float64


def _sample_mixture(n: int, rng: np.random.Generator, modes: np.ndarray,
                    sigma: float) -> np.ndarray:
    """n samples of an equal-weight isotropic Gaussian mixture, float32 (n, 2)."""
    which = rng.integers(len(modes), size=n)  # (n,)
    points = modes[which] + sigma * rng.standard_normal((n, 2))
    return points.astype(np.float32)


def sample_ring8(n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of 8 Gaussians (sigma 0.01) on the unit circle, float32 (n, 2)."""
    return _sample_mixture(n, rng, ring8_modes(), RING8_SIGMA)


def sample_grid25(n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of 25 Gaussians (sigma 0.05) on {-4..4 step 2}^2, float32 (n, 2)."""
    return _sample_mixture(n, rng, grid25_modes(), GRID25_SIGMA)


def sample_moons(n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """n samples of two interleaved half circles, centred at 0, float32 (n, 2)."""
    t = rng.uniform(0.0, np.pi, size=n)  # (n,) position along each half circle
    lower = rng.random(n) < 0.5  # (n,) which moon
    x = np.where(lower, 1.0 - np.cos(t), np.cos(t)) - 0.5
    y = np.where(lower, 0.5 - np.sin(t), np.sin(t)) - 0.25
    points = np.stack([x, y], axis=1) + noise * rng.standard_normal((n, 2))
    return points.astype(np.float32)


def sample_spiral(n: int, rng: np.random.Generator, noise: float = 0.02,
                  turns: float = 1.5) -> np.ndarray:
    """n samples along an Archimedean spiral of radius <= 1, float32 (n, 2).

    The angle is ``sqrt(u) * 2*pi*turns`` with u uniform, which spreads the
    points roughly evenly along the curve (arc length grows like angle^2).
    """
    theta_max = 2 * np.pi * turns
    theta = np.sqrt(rng.random(n)) * theta_max  # (n,)
    radius = theta / theta_max
    points = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1)
    points += noise * rng.standard_normal((n, 2))
    return points.astype(np.float32)


# --------------------------------------------------------------------------
# Dataset objects for the trainer
# --------------------------------------------------------------------------


def _check_batch_args(step, batch_size) -> tuple[int, int]:
    step, batch_size = operator.index(step), operator.index(batch_size)
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return step, batch_size


def _check_seed(seed) -> int:
    seed = operator.index(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return seed


def _eval_rng(seed: int) -> np.random.Generator:
    """Generator for real_samples, independent of every training-batch stream.

    The spawn key pads the entropy to a different length than the
    ``[seed, step]`` keys used by :meth:`Dataset.batch`, so the streams can
    never coincide.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))


class Dataset:
    """What the trainer needs from a dataset (see the module docstring).

    Attributes
    ----------
    name : str
        Name given to :func:`get_dataset`.
    kind : {"image", "2d"}
    dim : int
        Features per example: 784 for images, 2 for 2-D data.
    image_shape : tuple or None
        ``(28, 28)`` for images, else ``None``.
    modes : numpy.ndarray or None
        ``(K, 2)`` mixture means for ``ring8`` / ``grid25``, else ``None``.
    sigma : float or None
        Standard deviation of each mixture component, else ``None``.
    scale : {"tanh", "sigmoid"} or None
        Range of image batches; ``None`` for 2-D data (used unscaled).
    seed : int
        Seed of the batch stream.
    num_examples : int or None
        Size of a finite dataset; ``None`` for infinite 2-D samplers.
    """

    name: str
    kind: str
    dim: int
    image_shape: tuple | None = None
    modes: np.ndarray | None = None
    sigma: float | None = None
    scale: str | None = None
    seed: int = 0
    num_examples: int | None = None

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        """Return batch number ``step``: float32 ``(batch_size, dim)``.

        A pure function of ``(seed, step, batch_size)``; see the module docstring.
        """
        raise NotImplementedError

    def real_samples(self, n: int, seed: int = 0) -> np.ndarray:
        """Return ``n`` real examples in model scale, float32 ``(n, dim)``.

        Depends only on ``n`` and ``seed`` (not on the training seed), so
        runs with different seeds are evaluated on the same reference set.
        """
        raise NotImplementedError

    def to_images(self, x) -> np.ndarray:
        """Map model-scale ``(n, 784)`` data to float32 ``(n, 28, 28)`` in [0, 1]."""
        raise TypeError(f"dataset {self.name!r} is 2-D data, not images")

    def batches_per_epoch(self, batch_size: int) -> int | None:
        """Full batches per epoch (``None`` for infinite 2-D samplers)."""
        return None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, "
                f"dim={self.dim}, num_examples={self.num_examples}, seed={self.seed})")


class ImageDataset(Dataset):
    """A finite set of 28x28 uint8 images, served in shuffled epochs.

    Parameters
    ----------
    name : str
        Display name.
    images : numpy.ndarray
        uint8, shape ``(N, 28, 28)``. Kept as uint8; each batch is scaled
        when it is drawn (4x less memory than storing floats).
    labels : numpy.ndarray, optional
        uint8 ``(N,)``, kept as ``self.labels`` (not used for batches).
    scale : {"tanh", "sigmoid"}
        Output range of batches, see :func:`images_to_model_scale`.
    seed : int
        Non-negative seed of the shuffling.
    """

    kind = "image"
    dim = IMAGE_DIM
    image_shape = IMAGE_SHAPE

    def __init__(self, name: str, images: np.ndarray, labels: np.ndarray | None = None,
                 *, scale: str = "tanh", seed: int = 0):
        if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"expected uint8 images of shape (N, 28, 28), got "
                             f"{images.dtype} {images.shape}")
        self.name = name
        self.scale = _check_scale(scale)
        self.seed = _check_seed(seed)
        self.labels = labels
        self.num_examples = len(images)
        self._flat = images.reshape(len(images), IMAGE_DIM)  # (N, 784) uint8 view
        self._perm_cache: tuple[int, np.ndarray] | None = None  # (epoch, perm)

    def batches_per_epoch(self, batch_size: int) -> int:
        count = self.num_examples // operator.index(batch_size)
        if count == 0:
            raise ValueError(f"batch_size {batch_size} exceeds the {self.num_examples} "
                             f"examples of {self.name!r}")
        return count

    def _permutation(self, epoch: int) -> np.ndarray:
        """Shuffle order of ``epoch``; only the latest epoch is cached."""
        if self._perm_cache is None or self._perm_cache[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._perm_cache = (epoch, rng.permutation(self.num_examples))
        return self._perm_cache[1]

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        step, batch_size = _check_batch_args(step, batch_size)
        epoch, index = divmod(step, self.batches_per_epoch(batch_size))
        rows = self._permutation(epoch)[index * batch_size:(index + 1) * batch_size]
        return images_to_model_scale(self._flat[rows], self.scale)  # (B, 784) float32

    def real_samples(self, n: int, seed: int = 0) -> np.ndarray:
        n = operator.index(n)
        if not 0 <= n <= self.num_examples:
            raise ValueError(f"n must be in [0, {self.num_examples}], got {n}")
        rows = _eval_rng(_check_seed(seed)).choice(self.num_examples, size=n,
                                                   replace=False)
        return images_to_model_scale(self._flat[rows], self.scale)  # (n, 784) float32

    def to_images(self, x) -> np.ndarray:
        x = _to_numpy(x).astype(np.float32, copy=False).reshape(-1, *IMAGE_SHAPE)
        if self.scale == "tanh":
            x = (x + np.float32(1.0)) * np.float32(0.5)
        return np.clip(x, 0.0, 1.0)  # (n, 28, 28) float32


class ToyDataset(Dataset):
    """An infinite 2-D sampler (ring8, grid25, moons, spiral).

    Parameters
    ----------
    name : str
        Display name.
    sampler : callable
        ``sampler(n, rng) -> float32 (n, 2)``.
    modes : numpy.ndarray, optional
        ``(K, 2)`` mixture means, for mode-coverage metrics.
    sigma : float, optional
        Component standard deviation.
    seed : int
        Non-negative seed of the batch stream.
    """

    kind = "2d"
    dim = 2

    def __init__(self, name: str, sampler: Callable[[int, np.random.Generator], np.ndarray],
                 *, modes: np.ndarray | None = None, sigma: float | None = None,
                 seed: int = 0):
        self.name = name
        self.sampler = sampler
        self.modes = modes
        self.sigma = sigma
        self.seed = _check_seed(seed)

    def batch(self, step: int, batch_size: int) -> np.ndarray:
        step, batch_size = _check_batch_args(step, batch_size)
        rng = np.random.default_rng([self.seed, step])
        return self.sampler(batch_size, rng).astype(np.float32, copy=False)  # (B, 2)

    def real_samples(self, n: int, seed: int = 0) -> np.ndarray:
        rng = _eval_rng(_check_seed(seed))
        return self.sampler(operator.index(n), rng).astype(np.float32, copy=False)


_TOYS = {
    "ring8": (sample_ring8, ring8_modes, RING8_SIGMA),
    "grid25": (sample_grid25, grid25_modes, GRID25_SIGMA),
    "moons": (sample_moons, None, None),
    "spiral": (sample_spiral, None, None),
}

#: Training images held out of ``get_dataset("mnist")`` / ``("fashion-mnist")``: the last ones of the training file,
#: the Parzen-window validation set of ``minigan.metrics``.
VALIDATION_SIZE = 1_000

#: Every name accepted by :func:`get_dataset`.
DATASET_NAMES = ("digits", "mnist", "fashion-mnist") + tuple(_TOYS)


def get_dataset(name: str, *, data_dir: PathLike | None = None, scale: str = "tanh",
                seed: int = 0, download: bool = True) -> Dataset:
    """Build the :class:`Dataset` called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`: ``"digits"``, ``"mnist"``,
        ``"fashion-mnist"`` (training split less the last
        :data:`VALIDATION_SIZE` images), ``"ring8"``, ``"grid25"``,
        ``"moons"``, ``"spiral"``.
    data_dir : str or os.PathLike, optional
        Passed to :func:`load_mnist` (MNIST / Fashion-MNIST only).
    scale : {"tanh", "sigmoid"}
        Range of image batches. Checked but unused for 2-D data.
    seed : int
        Non-negative seed of the batch stream.
    download : bool
        Passed to :func:`load_mnist`.

    Returns
    -------
    Dataset
        An :class:`ImageDataset` or a :class:`ToyDataset`.
    """
    _check_scale(scale)
    if name == "digits":
        images, labels = load_digits()
    elif name in ("mnist", "fashion-mnist"):
        images, labels = load_mnist("train", dataset=name, data_dir=data_dir,
                                    download=download)
        images, labels = images[:-VALIDATION_SIZE], labels[:-VALIDATION_SIZE]  # held out
    elif name in _TOYS:
        sampler, modes_fn, sigma = _TOYS[name]
        modes = modes_fn() if modes_fn else None
        return ToyDataset(name, sampler, modes=modes, sigma=sigma, seed=seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    return ImageDataset(name, images, labels, scale=scale, seed=seed)

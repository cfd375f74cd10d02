"""The MNIST / Fashion-MNIST files: reading, verifying, finding and downloading them.

:func:`load_mnist` returns the images and labels of one split of MNIST or
Fashion-MNIST, read from the four official gzip-compressed IDX files.
``minigan.data`` builds its ``"mnist"`` and ``"fashion-mnist"`` datasets on it
(and re-exports the public names of this module, so ``minigan.data.load_mnist``
works too).

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
into the cache directory by `pooch <https://www.fatiando.org/pooch>`_, trying
each URL prefix in :data:`MIRRORS` in turn. pooch streams the download into a
temporary file in the cache directory, checks it against the official ``.gz``
MD5 (where known) and only then moves it into place, so an interrupted or bad
download can never leave a half-written file under the real name; a network
error or a hash mismatch is retried :data:`DOWNLOAD_RETRIES` times. The file
is then checked as above (structure, and the raw MD5 rule). A mirror that
fails (network error or a bad file) is skipped; if all fail, the
:class:`DatasetError` lists each mirror's failure and says where to put the
files by hand. The cache stays where it is documented on every OS
(``$XDG_CACHE_HOME/minigan`` or ``~/.cache/minigan``: what ``pooch.os_cache``
gives on Linux), so ``--data-dir``, ``MINIGAN_DATA_DIR`` and an offline
machine with the files in place never need the network or pooch.

A file that *is* found but fails verification is never used and never
silently replaced: :func:`load_mnist` raises :class:`DatasetError` naming the
file and asking you to delete or replace it (then, for the cache, running
again re-downloads it). Parsed arrays are cached in memory only, keyed by
path, size and modification time; arrays returned by :func:`load_mnist` are
shared and read-only, so ``.copy()`` them before editing in place.

Data licence: MNIST is by Y. LeCun, C. Cortes and C. J. C. Burges (CC BY-SA
3.0); Fashion-MNIST is by Zalando Research (MIT licence).
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Union

import numpy as np

__all__ = [
    "DatasetError",
    "read_idx",
    "read_verified_idx",
    "load_mnist",
    "download_file",
    "cache_dir",
    "search_dirs",
    "KNOWN_MD5",
    "MIRRORS",
    "DEFAULT_TIMEOUT",
    "DOWNLOAD_RETRIES",
    "SPLIT_FILES",
    "ALL_FILES",
    "IMAGE_SIDE",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
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

#: Extra attempts pooch makes at one mirror after a network error or a hash mismatch (waiting 1 s, 2 s, ...).
DOWNLOAD_RETRIES = 2

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
    """Download ``url`` into the file ``dest_path`` (overwritten): pooch's downloaders for http(s) and ftp, a plain
    copy for ``file://`` URLs (a local mirror; the tests use one to stay offline).

    pooch calls this for each attempt (see :func:`download_file`); tests may replace it to stay offline.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme == "file":
        shutil.copyfile(urllib.request.url2pathname(urllib.parse.urlsplit(url).path), dest_path)
        return
    import pooch  # imported only to download: reading files needs no network library

    if scheme in ("http", "https"):
        downloader = pooch.HTTPDownloader(progressbar=False, timeout=timeout,
                                          headers={"User-Agent": "minigan-data/0.1"})
    elif scheme == "ftp":
        downloader = pooch.FTPDownloader(progressbar=False, timeout=timeout)
    else:
        raise ValueError(f"unsupported URL scheme {scheme!r} in {url}")
    downloader(url, str(dest_path), None)


def download_file(
    dataset: str, filename: str, target_dir: PathLike | None = None,
    *, timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download one official file into ``target_dir`` (default: the cache) with pooch.

    Each mirror in ``MIRRORS[dataset]`` is tried in turn. pooch writes the file to a temporary name in
    ``target_dir``, checks the official ``.gz`` MD5 when :data:`KNOWN_MD5` has one (retrying a failed or
    mismatching download :data:`DOWNLOAD_RETRIES` times) and moves it into place; then
    :func:`read_verified_idx` checks its structure and checksum, and a file that fails is deleted before the next
    mirror is tried.

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
    known = KNOWN_MD5[dataset].get(filename) or {}
    known_hash = f"md5:{known['gz']}" if known.get("gz") else None  # else read_verified_idx checks the raw MD5
    failures = []
    for prefix in MIRRORS.get(dataset, []):
        url = prefix + filename
        try:
            import pooch

            mirror = pooch.create(path=target, base_url=prefix, registry={filename: known_hash},
                                  retry_if_failed=DOWNLOAD_RETRIES)
            mirror.fetch(filename, downloader=lambda u, out, _pooch: _fetch(u, out, timeout))
            read_verified_idx(final, dataset, filename)
            return final
        except (OSError, http.client.HTTPException, ValueError, ImportError) as exc:
            # DatasetError and pooch's hash mismatch are ValueErrors; network errors (requests') are OSErrors.
            failures.append(f"  {url}: {type(exc).__name__}: {exc}")
            final.unlink(missing_ok=True)  # a bad file must not be found, or used, next time
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

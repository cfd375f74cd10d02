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

The MNIST / Fashion-MNIST *files* (the IDX format, checksums, where they are
looked for and how they are downloaded) are handled by ``minigan.mnist_files``;
this module re-exports its public names (:func:`load_mnist`,
:class:`DatasetError`, ...), so ``minigan.data.load_mnist`` keeps working.
Arrays returned by :func:`load_mnist` and :func:`load_digits` are shared and
read-only, so ``.copy()`` them before editing in place.

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
import hashlib
import itertools
import operator
import zlib
from pathlib import Path
from typing import Callable

import numpy as np

from . import validate as V
from .mnist_files import (
    ALL_FILES,
    DEFAULT_TIMEOUT,
    IMAGE_SHAPE,
    IMAGE_SIDE,
    KNOWN_MD5,
    MIRRORS,
    NUM_CLASSES,
    SPLIT_FILES,
    DatasetError,
    PathLike,
    _fail,
    cache_dir,
    download_file,
    load_mnist,
    read_idx,
    read_verified_idx,
    search_dirs,
)

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
    # constants of minigan.mnist_files that other code reads as minigan.data.X
    "SPLIT_FILES",
    "ALL_FILES",
    "NUM_CLASSES",
    "DEFAULT_TIMEOUT",
]

IMAGE_DIM = IMAGE_SIDE * IMAGE_SIDE  # 784

#: SHA-256 of ``images.tobytes() + labels.tobytes()`` of the bundled digits.
DIGITS_SHA256 = "1952f3ce518e1e602a0ddc59b86b62219cb612823e1094d70e88725c2abaf07b"

DIGITS_PATH = Path(__file__).resolve().parent / "assets" / "digits.npz"

RING8_SIGMA = 0.01
GRID25_SIGMA = 0.05


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
    if getattr(images, "dtype", None) != np.uint8:
        raise TypeError(f"images_to_model_scale: expected uint8 images, got {getattr(images, 'dtype', type(images))} "
                        "(already scaled?)")
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
    step = V.integer("Dataset.batch", "step", step, minimum=0)
    return step, V.integer("Dataset.batch", "batch_size", batch_size, minimum=1)


def _check_seed(seed) -> int:
    return V.integer("dataset", "seed", seed, minimum=0)


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
        n = V.integer("Dataset.real_samples", "n", n, minimum=0)
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
        n = V.integer("Dataset.real_samples", "n", n, minimum=0)
        return self.sampler(n, rng).astype(np.float32, copy=False)


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

"""How good is a GAN? Sample-quality and mode-coverage metrics for the 2-D toys and for MNIST.

Two families of numbers, each shown beside a reference point:

**Toy 2-D mixtures** (``ring8``, ``grid25``), as in VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018).
A sample is *high quality* when it lies within ``3 sigma`` of its nearest mode; we report the fraction of such
samples, how many modes they reach, and how far their spread over the modes is from uniform (:func:`toy_metrics`).

**MNIST images** (flattened ``(n, 784)`` float32 in [0, 1]). A small MLP trained with minigan itself
(``minigan/assets/classifier.npz``, see ``minigan/assets/train_classifier.py``) labels and embeds the images:

* :func:`class_histogram`, :func:`classes_covered`, :func:`histogram_kl_to_uniform` -- mode coverage over the 10
  digits;
* :func:`mnist_score` -- the Inception-score formula (Salimans et al., 2016) with the MNIST classifier;
* :func:`classifier_fid` -- the Frechet distance (Heusel et al., 2017) between Gaussians fitted to the classifier's
  penultimate-layer features;
* :func:`parzen_log_likelihood` -- the Gaussian Parzen-window log-likelihood of Goodfellow et al. (2014).

:func:`image_metrics` computes all of them, :func:`real_ceiling` computes them for real MNIST images (the best a
generator can hope for), and :func:`format_table` prints a markdown table.

Every function accepts NumPy or CuPy arrays (``xp = xp_of(x)``) and returns plain Python floats, ints and lists,
so results go straight into ``json.dump``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from . import data, nn
from .backend import backend_of, to_device, to_numpy, xp_of

__all__ = [
    "toy_metrics",
    "histogram_kl_to_uniform",
    "Classifier",
    "build_classifier_mlp",
    "load_classifier",
    "CLASSIFIER_PATH",
    "class_histogram",
    "classes_covered",
    "mnist_score",
    "confident_fraction",
    "CONFIDENT_THRESHOLD",
    "gaussian_stats",
    "frechet_distance",
    "classifier_fid",
    "parzen_log_likelihood",
    "select_parzen_sigma",
    "PARZEN_SIGMAS",
    "image_metrics",
    "real_ceiling",
    "format_table",
]

NUM_CLASSES = 10
IMAGE_DIM = 784
CLASSIFIER_PATH = Path(__file__).resolve().parent / "assets" / "classifier.npz"
#: The sigma grid searched by :func:`select_parzen_sigma`: 10 values from 0.1 to 1, log-spaced.
PARZEN_SIGMAS = np.logspace(-1, 0, 10)
#: Goodfellow et al. (2014): 10,000 generated samples, sigma chosen on 1,000 validation images.
PARZEN_SAMPLES = 10_000
PARZEN_VALIDATION = data.VALIDATION_SIZE  # the training images get_dataset holds out


# ====================================================================================================== toy 2-D


def histogram_kl_to_uniform(counts) -> float:
    """KL divergence from a histogram to the uniform distribution over its K bins.

    ``KL(p || U) = sum_k p_k log(p_k / (1/K)) = sum_k p_k log(K p_k)`` with ``p = counts / sum(counts)``; bins with
    ``p_k = 0`` contribute 0 (the limit of ``p log p``). It is 0 for equal counts and ``log K`` when everything
    falls in one bin.

    An empty histogram (no counts at all) has no distribution; we return ``log K``, the value of total collapse onto
    one bin, so that "nothing usable" never scores better than "one mode" and the result stays a finite,
    JSON-ready number.
    """
    counts = np.asarray(to_numpy(counts), dtype=np.float64)  # (K,)
    k, total = len(counts), counts.sum()
    if total == 0:
        return math.log(k)
    p = counts[counts > 0] / total  # the nonzero probabilities
    return float(np.sum(p * np.log(k * p)))


def toy_metrics(samples, modes, sigma: float) -> dict:
    """Mode coverage of 2-D samples from a Gaussian-mixture target (VEEGAN / PacGAN protocol).

    Each sample is assigned to its nearest mode. It is *high quality* (HQ) when that distance is at most
    ``3 * sigma``, where ``sigma`` is the standard deviation of the target's mixture components.

    Parameters
    ----------
    samples : array, shape (n, 2)
        Generated points (NumPy or CuPy). Callers use n = 2,500.
    modes : array, shape (K, 2)
        Centres of the target mixture, e.g. ``minigan.data.ring8_modes()``.
    sigma : float
        Standard deviation of each mixture component (0.01 for ring8, 0.05 for grid25).

    Returns
    -------
    dict
        ``high_quality``: fraction of HQ samples; ``modes_covered``: number of modes that are the nearest mode of at
        least one HQ sample; ``reverse_kl``: :func:`histogram_kl_to_uniform` of the HQ counts (0 is perfect,
        ``log K`` is total collapse; also ``log K`` when no sample is HQ); ``counts``: HQ samples per mode;
        ``num_modes`` (K) and ``num_samples`` (n).
    """
    xp = xp_of(samples)
    x = xp.asarray(samples, dtype=xp.float64)  # (n, 2)
    centres = xp.asarray(to_numpy(modes), dtype=xp.float64)  # (K, 2)
    if x.ndim != 2 or x.shape[1] != centres.shape[1] or len(x) == 0:
        raise ValueError(f"toy_metrics: samples must be (n >= 1, {centres.shape[1]}), got {tuple(x.shape)}")
    sq_dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # (n, K)
    nearest = sq_dist.argmin(axis=1)  # (n,)
    dist = xp.sqrt(sq_dist[xp.arange(len(x)), nearest])  # (n,) distance to the nearest mode
    hq = dist <= 3 * sigma  # (n,)
    counts = to_numpy(xp.bincount(nearest[hq], minlength=len(centres))).astype(int)  # (K,)
    return {
        "high_quality": int(to_numpy(hq.sum())) / len(x),
        "modes_covered": int((counts > 0).sum()),
        "reverse_kl": histogram_kl_to_uniform(counts),
        "counts": counts.tolist(),
        "num_modes": int(len(centres)),
        "num_samples": int(len(x)),
    }


# ====================================================================================================== classifier


def build_classifier_mlp(widths, rng=None) -> nn.Sequential:
    """``Dense, ReLU, Dense, ReLU, ..., Dense``: an MLP with the given layer widths, logits out.

    ``widths = (784, 512, 256, 10)`` gives ``Dense(784->512), ReLU, Dense(512->256), ReLU, Dense(256->10)``.
    """
    widths = [int(w) for w in widths]
    layers = []
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Dense(fan_in, fan_out, rng=rng, init="he"))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class Classifier:
    """The MNIST evaluation classifier: an MLP whose last hidden layer is the feature space of the FID.

    Inputs are images in [0, 1], flattened to ``(n, 784)``; they are processed ``chunk_size`` rows at a time, so
    memory stays bounded for any n. Each chunk is moved to the classifier's backend; outputs live there too
    (``clf.to("cupy")`` runs it on the GPU).

    Attributes
    ----------
    model : minigan.nn.Sequential
    architecture : tuple of int
        Layer widths, e.g. ``(784, 512, 256, 10)``.
    test_accuracy : float
        Accuracy on the 10,000 MNIST test images, measured when it was trained.
    """

    def __init__(self, model: nn.Sequential, architecture, test_accuracy: float = float("nan"),
                 chunk_size: int = 1000):
        self.model = model.eval()
        self.architecture = tuple(int(w) for w in architecture)
        self.test_accuracy = float(test_accuracy)
        self.chunk_size = int(chunk_size)

    def __repr__(self) -> str:
        widths = "-".join(str(w) for w in self.architecture)
        return f"Classifier({widths}, test_accuracy={self.test_accuracy:.4f}, backend={self.backend})"

    @property
    def backend(self) -> str:
        return backend_of(self.model.params()[0].data)

    @property
    def feature_dim(self) -> int:
        return self.architecture[-2]

    def to(self, backend: str) -> "Classifier":
        """Move the weights to ``"numpy"`` or ``"cupy"`` (in place); returns self."""
        self.model.to(backend)
        return self

    def _run(self, x01, layers):
        """Apply ``layers`` to ``x01`` (n, 784) chunk by chunk; the concatenated outputs."""
        if x01.ndim != 2 or x01.shape[1] != self.architecture[0] or len(x01) == 0:
            raise ValueError(f"Classifier: expected images flattened to (n >= 1, {self.architecture[0]}), got "
                             f"{tuple(x01.shape)}; use x.reshape(len(x), -1)")
        outputs = []
        for start in range(0, len(x01), self.chunk_size):
            h = to_device(x01[start:start + self.chunk_size], self.backend).astype(np.float32, copy=False)
            for layer in layers:
                h = layer.forward(h)
            outputs.append(h)  # (chunk, width)
        return xp_of(outputs[0]).concatenate(outputs, axis=0)

    def logits(self, x01):
        """Class scores, shape (n, 10), float32."""
        return self._run(x01, self.model.layers)

    def probs(self, x01):
        """``p(y | x) = softmax(logits)``, shape (n, 10), float64 (rows sum to 1)."""
        z = self.logits(x01).astype(np.float64)  # (n, 10)
        e = xp_of(z).exp(z - z.max(axis=1, keepdims=True))  # (n, 10), no overflow
        return e / e.sum(axis=1, keepdims=True)

    def features(self, x01):
        """Penultimate activations (the last hidden ReLU output), shape (n, d), float32; d = 256 here."""
        return self._run(x01, self.model.layers[:-1])

    def predict(self, x01):
        """The most likely digit for each image, shape (n,), int."""
        return self.logits(x01).argmax(axis=1)


def load_classifier(path=None) -> Classifier:
    """Read ``classifier.npz`` (arrays only, ``allow_pickle=False``) and rebuild the classifier on the host.

    The file holds the ``Sequential`` state dict (``"0.W"``, ``"0.b"``, ``"2.W"``, ...), ``architecture`` (the layer
    widths) and ``test_accuracy``. Default path: :data:`CLASSIFIER_PATH`.
    """
    path = Path(path) if path is not None else CLASSIFIER_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: classifier weights not found; build them with "
                                "python -m minigan.assets.train_classifier")
    with np.load(path, allow_pickle=False) as f:
        arrays = {name: f[name] for name in f.files}
    architecture = arrays.pop("architecture")
    test_accuracy = float(arrays.pop("test_accuracy"))
    model = build_classifier_mlp(architecture, rng=0)
    model.load_state_dict(arrays)
    return Classifier(model, architecture, test_accuracy)


# ====================================================================================================== class coverage


def class_histogram(labels, num_classes: int = NUM_CLASSES) -> list[int]:
    """How many images were assigned to each class: ``counts[c] = #{i : labels[i] = c}``, a list of ints."""
    xp = xp_of(labels)
    return to_numpy(xp.bincount(labels.astype(xp.int64).ravel(), minlength=num_classes)).astype(int).tolist()


def classes_covered(counts, min_count: int = 1) -> int:
    """Number of classes with at least ``min_count`` images."""
    return int((np.asarray(counts) >= min_count).sum())


def mnist_score(probs) -> float:
    """The Inception-score formula with the MNIST classifier: ``exp(E_x KL(p(y|x) || p(y)))``.

    ``p(y) = mean_x p(y|x)`` is the marginal class distribution of the sample. The score is 1 when every image gets
    the same prediction (or the classifier is unsure of all of them) and at most 10, reached when each prediction is
    one-hot and the 10 classes are equally frequent. Computed in float64; rows of ``probs`` are renormalised to sum
    to 1. In ``p log p`` a zero probability contributes 0, so ``log`` is only evaluated at
    ``max(p, tiny)`` -- the clip changes no term where ``p > 0``.

    Parameters
    ----------
    probs : array, shape (n, C)
        ``p(y | x)`` for each image, e.g. ``Classifier.probs(x)``.
    """
    xp = xp_of(probs)
    p = xp.asarray(probs, dtype=xp.float64)  # (n, C)
    p = p / p.sum(axis=1, keepdims=True)
    marginal = p.mean(axis=0, keepdims=True)  # (1, C); > 0 wherever some p(y|x) > 0
    tiny = np.finfo(np.float64).tiny
    log_p = xp.log(xp.maximum(p, tiny))  # (n, C)
    log_marginal = xp.log(xp.maximum(marginal, tiny))  # (1, C)
    kl = (p * (log_p - log_marginal)).sum(axis=1)  # (n,) KL(p(y|x) || p(y))
    return float(math.exp(float(to_numpy(kl.mean()))))


#: A sample counts as *confidently read* when the classifier gives its top digit at least this probability. At 0.9,
#: 96.0% of the 10,000 real MNIST test images qualify, and the classifier is right on 99.8% of those (at 0.5: 99.7%
#: qualify, 98.9% right; at 0.99: 88.0%, 99.99% right): a threshold a real digit passes and a reading that is
#: almost always correct when it does.
CONFIDENT_THRESHOLD = 0.9


def confident_fraction(probs, threshold: float = CONFIDENT_THRESHOLD) -> float:
    """The fraction of images whose most likely class has probability at least ``threshold``.

    ``mean_x [max_y p(y|x) >= threshold]``: "how often does an independent digit reader read a sample with
    confidence", the question a person asks looking at a grid. Unlike the MNIST score it does not reward class
    balance (report it beside ``classes_covered`` and ``class_kl``), and unlike the FID it reads each image on its
    own, so a grid of blurry or half-formed digits scores low even when their features average out like real ones.

    It is no test of realism on its own: an MLP classifier extrapolates, and this one reads about 60% of
    uniform-noise images confidently as a "0" (blank images: 0%). Such failures show in the class balance, which
    is why the target is stated as confident %, classes covered and class KL together.

    Parameters
    ----------
    probs : array, shape (n, C)
        ``p(y | x)`` for each image (rows sum to 1), e.g. ``Classifier.probs(x)``.
    threshold : float
        In (0, 1]; default :data:`CONFIDENT_THRESHOLD` (0.9).
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"confident_fraction: threshold must lie in (0, 1], got {threshold!r}")
    xp = xp_of(probs)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError(f"confident_fraction: expected probabilities of shape (n >= 1, classes), got "
                         f"{tuple(probs.shape)}")
    top = xp.asarray(probs, dtype=xp.float64).max(axis=1)  # (n,)
    return float(to_numpy((top >= threshold).mean()))


# ====================================================================================================== FID


def gaussian_stats(features):
    """Mean ``mu`` (d,) and unbiased covariance ``C`` (d, d) of ``features`` (n, d), in float64."""
    xp = xp_of(features)
    x = xp.asarray(features, dtype=xp.float64)  # (n, d)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"gaussian_stats: need features of shape (n >= 2, d), got {tuple(x.shape)}")
    mu = x.mean(axis=0)  # (d,)
    centred = x - mu  # (n, d)
    return mu, centred.T @ centred / (len(x) - 1)  # (d,), (d, d)


def _sqrtm_psd(c):
    """Symmetric square root of a symmetric positive semi-definite matrix: ``V diag(sqrt(w)) V^T``.

    Rounding can make the smallest eigenvalues ``w`` slightly negative; they are clipped to 0.
    """
    xp = xp_of(c)
    w, v = xp.linalg.eigh(c)  # (d,), (d, d)
    return (v * xp.sqrt(xp.maximum(w, 0.0))) @ v.T  # (d, d)


def frechet_distance(mu_a, cov_a, mu_b, cov_b) -> float:
    """Frechet (2-Wasserstein) distance between ``N(mu_a, C_a)`` and ``N(mu_b, C_b)``, squared.

    ``d^2 = ||mu_a - mu_b||^2 + Tr(C_a + C_b - 2 (C_a C_b)^{1/2})``.

    ``C_a C_b`` is not symmetric, but it is similar to the symmetric PSD matrix ``M = C_a^{1/2} C_b C_a^{1/2}``
    (``C_a C_b = C_a^{1/2} M C_a^{-1/2}``), so both have the same eigenvalues ``lambda_i >= 0`` and
    ``Tr (C_a C_b)^{1/2} = sum_i sqrt(lambda_i)``. Two symmetric eigendecompositions (``eigh``), no SciPy and no
    complex numbers. The result is clipped at 0: it is a squared distance, and rounding can leave ``-1e-12``.
    """
    xp = xp_of(mu_a, cov_a, mu_b, cov_b)
    sqrt_a = _sqrtm_psd(cov_a)  # (d, d)
    m = sqrt_a @ cov_b @ sqrt_a  # (d, d), symmetric PSD up to rounding
    lam = xp.linalg.eigvalsh((m + m.T) / 2)  # (d,)
    trace_sqrt = xp.sqrt(xp.maximum(lam, 0.0)).sum()
    diff = mu_a - mu_b  # (d,)
    d2 = diff @ diff + xp.trace(cov_a) + xp.trace(cov_b) - 2 * trace_sqrt
    return max(float(to_numpy(d2)), 0.0)


def classifier_fid(feat_a, feat_b) -> float:
    """FID in the classifier's feature space: :func:`frechet_distance` of Gaussians fitted to two feature sets.

    Parameters
    ----------
    feat_a, feat_b : array, shapes (n_a, d) and (n_b, d)
        E.g. ``clf.features(fake01)`` and ``clf.features(real01)``. 0 for identical sets; lower is better.

    Like every FID, the estimate is biased upwards for small samples (real 1,000 vs 1,000 scores about 16 where
    10,000 vs 10,000 scores about 1.3), so compare numbers only at equal sample sizes: :func:`image_metrics` uses
    all given images against the 10,000 test images.
    """
    return frechet_distance(*gaussian_stats(feat_a), *gaussian_stats(feat_b))


# ====================================================================================================== Parzen window


def _parzen_log_densities(samples, test, sigmas, batch: int = 500):
    """``log p_sigma(x)`` for every test point and every sigma: shape (n_test, len(sigmas)), float64.

    One GEMM per chunk of test points gives all squared distances; each sigma then needs only a log-sum-exp, so a
    whole grid of sigmas costs little more than one.
    """
    xp = xp_of(samples, test)
    s = xp.asarray(samples, dtype=xp.float64)  # (N, d)
    n, d = s.shape
    s_sq = (s * s).sum(axis=1)  # (N,)
    sigmas = [float(sigma) for sigma in np.atleast_1d(to_numpy(sigmas))]
    out = xp.empty((len(test), len(sigmas)), dtype=xp.float64)  # (n_test, S)
    for start in range(0, len(test), batch):
        x = xp.asarray(test[start:start + batch], dtype=xp.float64)  # (b, d)
        sq_dist = (x * x).sum(axis=1)[:, None] - 2 * (x @ s.T) + s_sq[None, :]  # (b, N)
        xp.maximum(sq_dist, 0.0, out=sq_dist)  # ||x - s||^2 >= 0; the expansion can round below
        nearest = sq_dist.min(axis=1, keepdims=True)  # (b, 1), gives the largest exponent
        for j, sigma in enumerate(sigmas):
            scale = 1.0 / (2.0 * sigma * sigma)
            # logsumexp_i(-scale * dist_i), shifted by its maximum -scale * nearest so no exp underflows to all-0
            lse = -scale * nearest[:, 0] + xp.log(xp.exp(-scale * (sq_dist - nearest)).sum(axis=1))  # (b,)
            out[start:start + len(x), j] = lse - math.log(n) - 0.5 * d * math.log(2 * math.pi * sigma * sigma)
    return out


def parzen_log_likelihood(samples, test, sigma: float, batch: int = 500) -> tuple[float, float]:
    """Mean log-likelihood of ``test`` under a Gaussian Parzen window on ``samples`` (Goodfellow et al., 2014).

    The density is an equal mixture of isotropic Gaussians of width ``sigma``, one on each of the N samples::

        log p(x) = logsumexp_i( -||x - s_i||^2 / (2 sigma^2) ) - log N - (d / 2) log(2 pi sigma^2)

    Squared distances come from one matrix product per chunk of test points,
    ``||x||^2 - 2 x.s + ||s||^2``, and everything is accumulated in float64.

    Parzen-window estimates are known to be unreliable in high dimensions: they can rank models wrongly and even
    score a model above the true data (Theis, van den Oord & Bethge, 2016, "A note on the evaluation of generative
    models"). The number is reported because it is the published anchor: Goodfellow et al. (2014) give
    225 +- 2 nats for their GAN on MNIST.

    Parameters
    ----------
    samples : array, shape (N, d)
        Generated points (the protocol uses 10,000).
    test : array, shape (M, d)
        Held-out data (the 10,000 MNIST test images).
    sigma : float
        Window width, e.g. from :func:`select_parzen_sigma`.
    batch : int
        Test points per GEMM; memory is about ``3 * batch * N * 8`` bytes.

    Returns
    -------
    mean, standard_error : float
        ``mean(log p(x))`` and ``std(log p(x)) / sqrt(M)``.
    """
    ll = _parzen_log_densities(samples, test, [sigma], batch)[:, 0]  # (M,)
    return float(to_numpy(ll.mean())), float(to_numpy(ll.std())) / math.sqrt(len(ll))


def select_parzen_sigma(samples, validation, sigmas=PARZEN_SIGMAS, batch: int = 500) -> float:
    """The window width in ``sigmas`` that maximises the mean Parzen log-likelihood of ``validation``.

    Goodfellow et al. (2014) choose sigma by cross-validation on 1,000 held-out images; the default grid is
    ``np.logspace(-1, 0, 10)``.
    """
    sigmas = np.atleast_1d(np.asarray(sigmas, dtype=np.float64))
    mean_ll = to_numpy(_parzen_log_densities(samples, validation, sigmas, batch).mean(axis=0))  # (S,)
    return float(sigmas[int(np.argmax(mean_ll))])


# ====================================================================================================== all together


def _as_images(x, name: str):
    """Check that ``x`` is (n, 784) with values in [0, 1]; return it as float32."""
    if x.ndim != 2 or x.shape[1] != IMAGE_DIM:
        raise ValueError(f"{name}: expected images flattened to (n, {IMAGE_DIM}), got {tuple(x.shape)}")
    x = x.astype(np.float32, copy=False)
    lo, hi = float(to_numpy(x.min())), float(to_numpy(x.max()))
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"{name}: pixel values must lie in [0, 1], got [{lo:.3g}, {hi:.3g}]. Images from a tanh "
                         "generator are in [-1, 1]: pass (x + 1) / 2.")
    return x


def image_metrics(fake01, *, real_test01, real_train01=None, validation01=None, classifier=None,
                  parzen: bool = True, parzen_samples: int = PARZEN_SAMPLES, parzen_sigmas=PARZEN_SIGMAS) -> dict:
    """All MNIST metrics for a set of images (generated, or real for a reference point).

    Parameters
    ----------
    fake01 : array, shape (n, 784)
        The images to judge, in [0, 1].
    real_test01 : array, shape (m, 784)
        The 10,000 MNIST test images: FID reference and Parzen test set.
    real_train01 : array, shape (60000, 784), optional
        The MNIST training images; its last 1,000 are the Parzen validation set when ``validation01`` is not given.
    validation01 : array, shape (v, 784), optional
        Held-out real images on which the Parzen sigma is chosen.
    classifier : Classifier, optional
        Default :func:`load_classifier`, run on ``fake01``'s backend.
    parzen : bool
        Also compute the Parzen log-likelihood (needs ``validation01`` or ``real_train01``).
    parzen_samples : int
        How many of ``fake01`` form the Parzen window (Goodfellow et al.: 10,000).
    parzen_sigmas : array
        The grid for :func:`select_parzen_sigma`.

    Returns
    -------
    dict
        ``num_samples``; ``class_counts`` (predicted digits), ``classes_covered`` (out of 10), ``class_kl``
        (:func:`histogram_kl_to_uniform` of ``class_counts``); ``mnist_score``; ``fid`` (fake features vs test
        features); and with ``parzen``: ``parzen_ll``, ``parzen_se``, ``parzen_sigma``, ``parzen_samples``.
    """
    backend = backend_of(fake01)
    fake = _as_images(fake01, "fake01")  # (n, 784)
    real_test = _as_images(to_device(real_test01, backend), "real_test01")  # (m, 784)
    if classifier is None:
        classifier = load_classifier().to(backend)
    probs = classifier.probs(fake)  # (n, 10)
    counts = class_histogram(probs.argmax(axis=1))
    result = {
        "num_samples": int(len(fake)),
        "class_counts": counts,
        "classes_covered": classes_covered(counts),
        "class_kl": histogram_kl_to_uniform(counts),
        "mnist_score": mnist_score(probs),
        "confident": confident_fraction(probs),
        "fid": classifier_fid(classifier.features(fake), classifier.features(real_test)),
    }
    if parzen:
        if validation01 is None:
            if real_train01 is None:
                raise ValueError("image_metrics: Parzen needs validation images; pass validation01 or real_train01 "
                                 "(its last 1,000 images are used), or parzen=False")
            validation01 = real_train01[-PARZEN_VALIDATION:]
        validation = _as_images(to_device(validation01, backend), "validation01")  # (v, 784)
        window = fake[:parzen_samples]  # (N, 784)
        sigma = select_parzen_sigma(window, validation, parzen_sigmas)
        mean, se = parzen_log_likelihood(window, real_test, sigma)
        result.update(parzen_ll=mean, parzen_se=se, parzen_sigma=sigma, parzen_samples=int(len(window)))
    return result


def _load_split01(split: str, data_dir, download: bool) -> np.ndarray:
    from . import data  # only real_ceiling reads files

    images, _ = data.load_mnist(split, data_dir=data_dir, download=download)
    return images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)  # (N, 784)


def _cache_path(classifier: Classifier, n: int, parzen: bool) -> Path:
    """``$XDG_CACHE_HOME/minigan/real_ceiling-<hash>.json``, keyed by the classifier's weights and the settings."""
    digest = hashlib.sha256(f"v2 n={n} parzen={parzen}".encode())  # v2: with "confident"
    for name, value in sorted(classifier.model.state_dict().items()):
        digest.update(name.encode() + np.ascontiguousarray(value).tobytes())
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "minigan"
    return root / f"real_ceiling-{digest.hexdigest()[:16]}.json"


def real_ceiling(data_dir=None, *, classifier=None, num_samples: int = 10_000, parzen: bool = True,
                 cache: bool = True, download: bool = True) -> dict:
    """The metrics of real data: the reference every generated-sample number is shown beside.

    The first ``num_samples`` MNIST training images play the generated set (they come from the first 59,000, which
    ``get_dataset("mnist")`` trains on: the last ``data.VALIDATION_SIZE`` = 1,000 are held out); they are scored against the 10,000 test images exactly as :func:`image_metrics` scores a
    generator, with the Parzen sigma chosen on the last 1,000 training images. The result is cached as JSON in
    ``$XDG_CACHE_HOME/minigan/`` (default ``~/.cache/minigan/``), keyed by the classifier weights and the settings;
    ``cache=False`` neither reads nor writes it.

    Returns
    -------
    dict
        As :func:`image_metrics`, plus ``classifier_test_accuracy``.
    """
    classifier = classifier if classifier is not None else load_classifier()
    path = _cache_path(classifier, num_samples, parzen) if cache else None
    if path is not None and path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            pass  # unreadable cache: recompute and overwrite
    train = _load_split01("train", data_dir, download)  # (60000, 784)
    test = _load_split01("test", data_dir, download)  # (10000, 784)
    result = image_metrics(train[:num_samples], real_test01=test, real_train01=train, classifier=classifier,
                           parzen=parzen)
    accuracy = classifier.test_accuracy
    result["classifier_test_accuracy"] = accuracy if math.isfinite(accuracy) else None  # None: not recorded
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(result, indent=1))
        except OSError:
            pass  # a read-only home is no reason to fail
    return result


# ====================================================================================================== printing

_COLUMNS = [  # (header, keys needed, how to show them)
    ("HQ %", ("high_quality",), lambda r: f"{100 * r['high_quality']:.1f}"),
    ("modes", ("modes_covered", "num_modes"), lambda r: f"{r['modes_covered']}/{r['num_modes']}"),
    ("reverse KL", ("reverse_kl",), lambda r: f"{r['reverse_kl']:.3f}"),
    ("classes", ("classes_covered",), lambda r: f"{r['classes_covered']}/{NUM_CLASSES}"),
    ("class KL", ("class_kl",), lambda r: f"{r['class_kl']:.4f}"),
    ("MNIST score", ("mnist_score",), lambda r: f"{r['mnist_score']:.2f}"),
    ("confident %", ("confident",), lambda r: f"{100 * r['confident']:.1f}"),
    ("FID", ("fid",), lambda r: f"{r['fid']:.2f}"),
    ("Parzen LL", ("parzen_ll", "parzen_se"), lambda r: f"{r['parzen_ll']:.1f} ± {r['parzen_se']:.1f}"),
]


def format_table(rows: dict) -> str:
    """A markdown table with one row per named metrics dict (toy or image); a column appears when any row has it."""
    columns = [c for c in _COLUMNS if any(all(k in r for k in c[1]) for r in rows.values())]
    lines = ["| " + " | ".join(["model"] + [c[0] for c in columns]) + " |",
             "|" + "---|" * (len(columns) + 1)]
    for name, r in rows.items():
        cells = [show(r) if all(k in r for k in keys) else "-" for _, keys, show in columns]
        lines.append("| " + " | ".join([str(name)] + cells) + " |")
    return "\n".join(lines)

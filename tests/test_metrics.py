"""Tests for minigan.metrics: known answers for every formula, then the classifier on real MNIST (skips without it)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from minigan import data, metrics
from minigan.backend import to_numpy

RING8_SIGMA = 0.01
GRID25_SIGMA = 0.05


def shared_mnist_dir() -> Path:
    env = os.environ.get("MINIGAN_MNIST_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def mnist():
    """Real MNIST as float32 (n, 784) in [0, 1]: train images, test images, test labels."""
    path = shared_mnist_dir()
    if not (path / data.SPLIT_FILES["train"][0]).is_file():
        pytest.skip(f"real MNIST files not found in {path} (set MINIGAN_MNIST_DIR)")
    train, _ = data.load_mnist("train", data_dir=path, download=False)
    test, test_labels = data.load_mnist("test", data_dir=path, download=False)
    scale = np.float32(255.0)
    return (train.reshape(-1, 784).astype(np.float32) / scale,
            test.reshape(-1, 784).astype(np.float32) / scale, test_labels.astype(np.int64))


@pytest.fixture(scope="module")
def classifier():
    return metrics.load_classifier()


@pytest.fixture(scope="module")
def ceiling(mnist, classifier):
    """The real-data reference without Parzen (the full one, with Parzen, is a slow test)."""
    return metrics.real_ceiling(shared_mnist_dir(), classifier=classifier, parzen=False, cache=False, download=False)


def assert_json_ready(result):
    assert json.loads(json.dumps(result, allow_nan=False)) == result


# ====================================================================================================== toy 2-D


def test_samples_exactly_at_the_modes_are_perfect():
    modes = data.ring8_modes()
    samples = np.repeat(modes, 10, axis=0)  # 10 samples on each of the 8 modes
    result = metrics.toy_metrics(samples, modes, RING8_SIGMA)
    assert result["high_quality"] == 1.0
    assert result["modes_covered"] == 8
    assert result["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert result["counts"] == [10] * 8
    assert (result["num_modes"], result["num_samples"]) == (8, 80)
    assert_json_ready(result)


def test_collapse_onto_one_mode_gives_log_k():
    modes = data.ring8_modes()
    samples = np.repeat(modes[3:4], 50, axis=0)
    result = metrics.toy_metrics(samples, modes, RING8_SIGMA)
    assert result["modes_covered"] == 1
    assert result["reverse_kl"] == pytest.approx(math.log(8))
    assert result["counts"] == [0, 0, 0, 50, 0, 0, 0, 0]


def test_samples_far_from_every_mode_are_not_high_quality():
    modes = data.grid25_modes()
    samples = np.full((100, 2), 1.0)  # halfway between grid points: 1.41 from the nearest mode
    result = metrics.toy_metrics(samples, modes, GRID25_SIGMA)
    assert result["high_quality"] == 0.0
    assert result["modes_covered"] == 0
    assert result["counts"] == [0] * 25
    assert result["reverse_kl"] == pytest.approx(math.log(25))  # the documented value for "no HQ sample"


def test_high_quality_threshold_is_three_sigma(rng):
    modes = data.grid25_modes()
    directions = rng.standard_normal((25, 2))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    inside = modes + 2.9 * GRID25_SIGMA * directions
    outside = modes + 3.1 * GRID25_SIGMA * directions
    result = metrics.toy_metrics(np.concatenate([inside, outside]), modes, GRID25_SIGMA)
    assert result["high_quality"] == 0.5
    assert result["modes_covered"] == 25
    assert result["counts"] == [1] * 25


def test_reverse_kl_of_a_known_histogram():
    # p = (1/2, 1/4, 1/4, 0): KL to uniform over 4 = 1/2 log 2 + 2 * 1/4 log 1 = 0.5 log 2
    assert metrics.histogram_kl_to_uniform([2, 1, 1, 0]) == pytest.approx(0.5 * math.log(2))


def test_toy_metrics_on_each_backend(xp, rng):
    modes = data.ring8_modes()
    samples = data.sample_ring8(2500, rng)
    expected = metrics.toy_metrics(samples, modes, RING8_SIGMA)
    result = metrics.toy_metrics(xp.asarray(samples), modes, RING8_SIGMA)
    assert result == expected
    assert result["modes_covered"] == 8 and result["high_quality"] > 0.98
    assert_json_ready(result)


# ====================================================================================================== Parzen


def parzen_by_loop(samples, x, sigma):
    """log p(x) written out term by term, as in the paper."""
    n, d = samples.shape
    kernels = [math.exp(-float(np.sum((x - s) ** 2)) / (2 * sigma**2)) for s in samples]
    return math.log(sum(kernels) / n) - d / 2 * math.log(2 * math.pi * sigma**2)


def test_parzen_matches_a_direct_loop():
    samples = np.array([[0.0, 0.0], [1.0, 0.5], [-0.3, 0.8]])
    test = np.array([[0.2, 0.1], [0.9, 0.9]])
    sigma = 0.7
    expected = [parzen_by_loop(samples, x, sigma) for x in test]
    mean, se = metrics.parzen_log_likelihood(samples, test, sigma)
    assert mean == pytest.approx(np.mean(expected), rel=1e-12)
    assert se == pytest.approx(np.std(expected) / math.sqrt(2), rel=1e-9)


def test_parzen_is_stable_for_a_narrow_window():
    # one sample, far away: every kernel underflows in a naive exp, but log p is exact
    samples, test, sigma = np.zeros((1, 3)), np.full((1, 3), 2.0), 0.01
    expected = -12.0 / (2 * sigma**2) - 1.5 * math.log(2 * math.pi * sigma**2)
    mean, _ = metrics.parzen_log_likelihood(samples, test, sigma)
    assert mean == pytest.approx(expected, rel=1e-12)


def test_parzen_does_not_depend_on_the_chunk_size(rng):
    samples, test = rng.random((50, 6)), rng.random((37, 6))
    assert metrics.parzen_log_likelihood(samples, test, 0.3, batch=5) == pytest.approx(
        metrics.parzen_log_likelihood(samples, test, 0.3, batch=1000), rel=1e-12)


def test_parzen_on_each_backend(xp, rng):
    samples, test = rng.random((40, 5)).astype(np.float32), rng.random((30, 5)).astype(np.float32)
    expected = metrics.parzen_log_likelihood(samples, test, 0.25)
    got = metrics.parzen_log_likelihood(xp.asarray(samples), xp.asarray(test), 0.25)
    assert got == pytest.approx(expected, rel=1e-9)


def test_sigma_selection_finds_the_noise_width(rng):
    # validation points = well-separated centres + N(0, 0.2^2 I) noise; the likelihood peaks at sigma = 0.2
    centres = 10.0 * rng.standard_normal((20, 8))
    validation = centres[rng.integers(20, size=2000)] + 0.2 * rng.standard_normal((2000, 8))
    assert metrics.select_parzen_sigma(centres, validation, sigmas=[0.05, 0.1, 0.2, 0.4, 0.8]) == 0.2


# ====================================================================================================== FID


def with_exact_moments(z, mean, cov):
    """Affinely map the rows of z so that their sample mean and (unbiased) covariance are exactly mean and cov."""
    z = z - z.mean(axis=0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False)))
    return z @ whiten.T @ np.linalg.cholesky(cov).T + mean


def test_fid_of_identical_sets_is_zero(rng):
    feats = rng.standard_normal((500, 16)) @ rng.standard_normal((16, 16))
    assert metrics.classifier_fid(feats, feats) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_two_diagonal_gaussians_matches_the_closed_form(rng):
    # diagonal covariances commute: d^2 = ||mu_a - mu_b||^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
    d = 6
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    var_a, var_b = rng.uniform(0.1, 3.0, d), rng.uniform(0.1, 3.0, d)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum((np.sqrt(var_a) - np.sqrt(var_b)) ** 2)
    assert metrics.frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b)) == pytest.approx(expected, rel=1e-10)
    feat_a = with_exact_moments(rng.standard_normal((400, d)), mu_a, np.diag(var_a))
    feat_b = with_exact_moments(rng.standard_normal((300, d)), mu_b, np.diag(var_b))
    assert metrics.classifier_fid(feat_a, feat_b) == pytest.approx(expected, rel=1e-8)


def test_fid_is_symmetric_and_rotation_invariant(rng):
    d = 5
    cov_a = np.cov(rng.standard_normal((50, d)), rowvar=False)
    cov_b = np.cov(rng.standard_normal((50, d)) * 2, rowvar=False)
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    fid = metrics.frechet_distance(mu_a, cov_a, mu_b, cov_b)
    assert metrics.frechet_distance(mu_b, cov_b, mu_a, cov_a) == pytest.approx(fid, rel=1e-9)
    assert metrics.frechet_distance(q @ mu_a, q @ cov_a @ q.T, q @ mu_b, q @ cov_b @ q.T) == pytest.approx(fid, rel=1e-9)


def test_fid_handles_singular_covariances(rng):
    # rank-2 features in 6-d (dead ReLU units make real feature covariances singular)
    a = rng.standard_normal((200, 2)) @ rng.standard_normal((2, 6))
    b = rng.standard_normal((200, 2)) @ rng.standard_normal((2, 6))
    fid = metrics.classifier_fid(a, b)
    assert math.isfinite(fid) and fid >= 0


def test_fid_on_each_backend(xp, rng):
    a, b = rng.standard_normal((300, 8)), rng.standard_normal((300, 8)) + 0.5
    assert metrics.classifier_fid(xp.asarray(a), xp.asarray(b)) == pytest.approx(metrics.classifier_fid(a, b),
                                                                                  rel=1e-9)


# ====================================================================================================== class metrics


def test_mnist_score_of_confident_uniform_predictions_is_ten():
    assert metrics.mnist_score(np.eye(10)) == pytest.approx(10.0, rel=1e-12)


def test_mnist_score_of_identical_predictions_is_one(rng):
    p = rng.dirichlet(np.ones(10))
    assert metrics.mnist_score(np.tile(p, (7, 1))) == pytest.approx(1.0, rel=1e-12)
    assert metrics.mnist_score(np.tile(np.eye(10)[4], (7, 1))) == pytest.approx(1.0, rel=1e-12)  # zeros: no warning


def test_mnist_score_of_two_confident_classes_is_two():
    assert metrics.mnist_score(np.eye(10)[[1, 7, 1, 7]]) == pytest.approx(2.0, rel=1e-12)


def test_mnist_score_on_each_backend(xp, rng):
    p = rng.dirichlet(np.full(10, 0.3), size=64)
    assert metrics.mnist_score(xp.asarray(p)) == pytest.approx(metrics.mnist_score(p), rel=1e-12)


def test_class_histogram_and_coverage():
    counts = metrics.class_histogram(np.array([0, 0, 3, 9, 3, 3]))
    assert counts == [2, 0, 0, 3, 0, 0, 0, 0, 0, 1]
    assert metrics.classes_covered(counts) == 3
    assert metrics.classes_covered(counts, min_count=2) == 2


def test_format_table_shows_every_row_and_column():
    rows = {
        "GAN": {"classes_covered": 9, "class_kl": 0.1, "mnist_score": 8.5, "fid": 12.3, "parzen_ll": 200.0,
                "parzen_se": 2.0},
        "ring8": {"high_quality": 0.9, "modes_covered": 7, "num_modes": 8, "reverse_kl": 0.2},
    }
    table = metrics.format_table(rows)
    lines = table.splitlines()
    assert len(lines) == 4 and lines[1].startswith("|---")
    assert "| GAN |" in lines[2] and "9/10" in lines[2] and "200.0 ± 2.0" in lines[2]
    assert "| ring8 |" in lines[3] and "7/8" in lines[3] and "90.0" in lines[3]
    assert all(line.count("|") == lines[0].count("|") for line in lines)


# ====================================================================================================== classifier


def test_classifier_file_holds_arrays_only_and_is_small(classifier):
    path = metrics.CLASSIFIER_PATH
    assert path.stat().st_size < 2.5e6
    with np.load(path, allow_pickle=False) as f:
        names = set(f.files)
        assert f["architecture"].tolist() == list(classifier.architecture)
    assert names == set(classifier.model.state_dict()) | {"architecture", "test_accuracy"}
    assert classifier.architecture[0] == 784 and classifier.architecture[-1] == 10
    assert classifier.test_accuracy >= 0.98


def test_classifier_outputs_do_not_depend_on_the_chunk_size(classifier, rng):
    x = rng.random((37, 784)).astype(np.float32)
    small = metrics.Classifier(classifier.model, classifier.architecture, chunk_size=8)
    np.testing.assert_allclose(small.features(x), classifier.features(x), rtol=1e-5, atol=1e-5)  # GEMM blocking
    probs = classifier.probs(x)
    assert probs.shape == (37, 10) and np.allclose(probs.sum(axis=1), 1.0)
    assert classifier.features(x).shape == (37, classifier.feature_dim)
    np.testing.assert_array_equal(classifier.predict(x), probs.argmax(axis=1))


def test_classifier_on_each_backend(backend_name, rng):
    x = rng.random((20, 784)).astype(np.float32)
    host = metrics.load_classifier()
    moved = metrics.load_classifier().to(backend_name)
    assert moved.backend == backend_name
    np.testing.assert_allclose(to_numpy(moved.probs(x)), host.probs(x), rtol=1e-4, atol=1e-6)


def test_classifier_accuracy_on_real_mnist(mnist, classifier):
    _, test, labels = mnist
    accuracy = float(np.mean(classifier.predict(test) == labels))
    assert accuracy >= 0.98
    assert accuracy == pytest.approx(classifier.test_accuracy, abs=1e-4)


def test_real_test_images_cover_every_class_and_score_like_the_ceiling(mnist, classifier, ceiling):
    _, test, _ = mnist
    result = metrics.image_metrics(test, real_test01=test, classifier=classifier, parzen=False)
    assert result["classes_covered"] == 10
    assert result["class_kl"] < 0.01
    assert result["mnist_score"] == pytest.approx(ceiling["mnist_score"], abs=0.25)
    assert result["fid"] == pytest.approx(0.0, abs=1e-6)  # the test set against itself
    assert_json_ready(result)


def test_real_ceiling_is_a_sensible_reference(ceiling):
    assert ceiling["num_samples"] == 10_000
    assert ceiling["classes_covered"] == 10
    assert ceiling["class_kl"] < 0.01
    assert ceiling["mnist_score"] > 9.0
    assert 0 < ceiling["fid"] < 5
    assert "parzen_ll" not in ceiling
    assert_json_ready(ceiling)


@pytest.mark.slow
def test_full_real_ceiling_with_parzen(mnist, classifier):
    full = metrics.real_ceiling(shared_mnist_dir(), classifier=classifier, cache=False, download=False)
    assert full["parzen_samples"] == 10_000
    assert full["parzen_sigma"] in [pytest.approx(s) for s in metrics.PARZEN_SIGMAS]
    assert 200 < full["parzen_ll"] < 300 and 0 < full["parzen_se"] < 5  # Goodfellow et al.'s GAN: 225 +- 2
    assert_json_ready(full)


def test_real_images_beat_noise_on_every_metric(mnist, classifier, rng):
    train, test, _ = mnist
    noise = rng.random((1000, 784)).astype(np.float32)
    kwargs = dict(real_test01=test[:1000], real_train01=train, classifier=classifier, parzen_samples=800)
    real = metrics.image_metrics(train[:1000], **kwargs)
    fake = metrics.image_metrics(noise, **kwargs)
    assert 10 * real["fid"] < fake["fid"]
    assert real["parzen_ll"] > fake["parzen_ll"]
    assert real["mnist_score"] > fake["mnist_score"]
    assert real["parzen_samples"] == 800 and real["num_samples"] == 1000
    assert_json_ready(real)
    assert_json_ready(fake)


def test_image_metrics_rejects_tanh_scaled_images(classifier):
    x = np.linspace(-1, 1, 20 * 784, dtype=np.float32).reshape(20, 784)
    with pytest.raises(ValueError, match=r"\(x \+ 1\) / 2"):
        metrics.image_metrics(x, real_test01=np.zeros((20, 784), np.float32), classifier=classifier, parzen=False)


def test_image_metrics_needs_validation_images_for_parzen(classifier):
    x = np.zeros((20, 784), np.float32)
    with pytest.raises(ValueError, match="validation01"):
        metrics.image_metrics(x, real_test01=x, classifier=classifier)


def test_real_ceiling_is_cached(mnist, classifier, ceiling, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = metrics.real_ceiling(shared_mnist_dir(), classifier=classifier, parzen=False, download=False)
    assert list((tmp_path / "minigan").glob("real_ceiling-*.json"))
    monkeypatch.setattr(metrics, "image_metrics", None)  # a second call must not recompute
    assert metrics.real_ceiling(shared_mnist_dir(), classifier=classifier, parzen=False, download=False) == first
    assert first["mnist_score"] == pytest.approx(ceiling["mnist_score"])


def test_real_ceiling_docstring_names_the_training_images_get_dataset_uses():
    """The docstring once said the first 50,000; get_dataset('mnist') trains on all but the last VALIDATION_SIZE."""
    trained_on = 60_000 - data.VALIDATION_SIZE
    assert f"first {trained_on:,}" in metrics.real_ceiling.__doc__ and "50,000" not in metrics.real_ceiling.__doc__

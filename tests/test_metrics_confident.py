"""``metrics.confident_fraction``: how often the digit classifier reads a sample with confidence (the issue-13 target).

Known answers on constructed probabilities, then the classifier on real digits, blank images and noise: real digits
must score high, blank images 0, and noise -- which this MLP classifier reads confidently as a "0" more often than
not -- must be given away by the class balance reported beside it.
"""

from __future__ import annotations

import numpy as np
import pytest

from minigan import data, metrics
from test_metrics import shared_mnist_dir


def test_fraction_of_rows_whose_top_probability_reaches_the_threshold():
    probs = np.array([[0.95, 0.05, 0.0],
                      [0.05, 0.90, 0.05],  # exactly at the threshold: counts
                      [0.1, 0.0, 0.9 - 1e-9],  # just below: does not
                      [0.5, 0.25, 0.25]])
    assert metrics.confident_fraction(probs, threshold=0.9) == 0.5
    assert metrics.confident_fraction(probs, threshold=0.5) == 1.0
    assert metrics.confident_fraction(probs, threshold=0.95) == 0.25
    assert metrics.CONFIDENT_THRESHOLD == 0.9 and metrics.confident_fraction(probs) == 0.5


def test_uniform_probabilities_are_never_confident_and_one_hot_always():
    assert metrics.confident_fraction(np.full((7, 10), 0.1)) == 0.0
    assert metrics.confident_fraction(np.eye(10)[[3, 3, 1]]) == 1.0


def test_on_each_backend(xp, rng):
    p = rng.dirichlet(np.full(10, 0.03), size=200)
    expected = float((p.max(axis=1) >= 0.9).mean())
    assert 0.1 < expected < 0.9  # the data exercise both sides of the threshold
    assert metrics.confident_fraction(xp.asarray(p)) == expected


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_threshold_outside_0_1_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold must lie in"):
        metrics.confident_fraction(np.eye(3), threshold)


@pytest.mark.parametrize("shape", [(0, 10), (10,)])
def test_wrong_shapes_are_refused(shape):
    with pytest.raises(ValueError, match="expected probabilities of shape"):
        metrics.confident_fraction(np.zeros(shape))


@pytest.fixture(scope="module")
def classifier():
    return metrics.load_classifier()


def test_bundled_real_digits_are_read_confidently_and_blank_images_are_not(classifier):
    digits = data.get_dataset("digits", scale="sigmoid")  # the 10,000 real digits the default run trains on
    real = digits.batch(0, 2000).reshape(2000, -1)  # (2000, 784) in [0, 1]
    probs = classifier.probs(real)
    assert metrics.confident_fraction(probs) > 0.93  # 96% on the MNIST test set
    assert metrics.confident_fraction(classifier.probs(np.zeros((50, 784), np.float32))) == 0.0


def test_noise_is_given_away_by_the_class_balance(classifier, rng):
    """The classifier reads many uniform-noise images confidently (as "0"): confident % alone would be fooled,
    the classes covered and class KL reported with it are not."""
    noise = rng.random((1000, 784)).astype(np.float32)
    probs = classifier.probs(noise)
    counts = metrics.class_histogram(probs.argmax(axis=1))
    assert metrics.confident_fraction(probs) > 0.3  # the weakness, pinned so the docstring stays true
    assert metrics.classes_covered(counts, min_count=50) <= 2 and metrics.histogram_kl_to_uniform(counts) > 1.5


def test_real_mnist_test_images_give_the_documented_96_percent(classifier):
    path = shared_mnist_dir()
    if not (path / data.SPLIT_FILES["test"][0]).is_file():
        pytest.skip(f"real MNIST files not found in {path} (set MINIGAN_MNIST_DIR)")
    test, _ = data.load_mnist("test", data_dir=path, download=False)
    probs = classifier.probs(test.reshape(len(test), -1).astype(np.float32) / np.float32(255))
    assert metrics.confident_fraction(probs) == pytest.approx(0.9603, abs=5e-4)


def test_image_metrics_and_the_table_report_it(classifier, rng):
    digits = data.get_dataset("digits", scale="sigmoid")
    real = digits.batch(0, 300).reshape(300, -1)
    result = metrics.image_metrics(real, real_test01=digits.batch(1, 300).reshape(300, -1), classifier=classifier,
                                   parzen=False)
    assert result["confident"] == metrics.confident_fraction(classifier.probs(real))
    table = metrics.format_table({"real": result})
    assert "confident %" in table.splitlines()[0] and f"{100 * result['confident']:.1f}" in table.splitlines()[2]

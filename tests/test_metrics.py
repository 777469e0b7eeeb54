"""Metrics on small known inputs."""

import numpy as np
import pytest

from genaug import metrics
from genaug.errors import GenaugError


def _gauss(n, shift=0.0, seed=0, dim=8):
    return np.random.default_rng(seed).normal(shift, 1.0, (n, dim))


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_shift():
    a = _gauss(500)
    assert metrics.frechet_distance(a, a) < 1e-6
    near, far = metrics.frechet_distance(a, _gauss(500, 0.5, 1)), metrics.frechet_distance(a, _gauss(500, 2.0, 1))
    assert 0 < near < far
    assert abs(far - 8 * 2.0**2) < 4  # mean term dominates: d * shift^2


def test_kid_near_zero_for_same_distribution():
    same = metrics.kernel_distance(_gauss(400), _gauss(400, seed=1), subset_size=200)
    shifted = metrics.kernel_distance(_gauss(400), _gauss(400, 1.0, 1), subset_size=200)
    assert abs(same) < 0.05 < shifted


def test_precision_recall_density_coverage():
    real = _gauss(300)
    assert metrics.precision_recall(real, real, k=3) == (1.0, 1.0)
    far = _gauss(300, 10.0, 1)
    assert metrics.precision_recall(real, far, k=3) == (0.0, 0.0)
    density, coverage = metrics.density_coverage(real, real, k=5)
    assert coverage == 1.0 and density >= 1.0
    assert metrics.density_coverage(real, far, k=5) == (0.0, 0.0)


def test_memorisation_flags_a_copied_training_set():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (200, 6, 6, 1), dtype=np.uint8)
    holdout = rng.integers(0, 256, (100, 6, 6, 1), dtype=np.uint8)
    copied = metrics.memorisation(train[:100], train, holdout, copy_threshold=0.1)
    assert copied["near_copies"] == 100 and copied["synthetic_to_train_median"] == 0.0
    assert copied["closer_to_train_share"] > 0.6  # about 0.75: half are in the matched subset (distance 0)
    fresh = metrics.memorisation(rng.integers(0, 256, (100, 6, 6, 1), dtype=np.uint8), train, holdout, 0.1)
    assert fresh["near_copies"] == 0 and 0.3 < fresh["closer_to_train_share"] < 0.7


def test_memorisation_guard_default_threshold_and_copies():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
    test = rng.integers(0, 256, (20, 4, 4, 1), dtype=np.uint8)
    threshold = metrics.default_min_distance(train, test)
    assert threshold > 0
    distances = metrics.nearest_distances(np.concatenate([train[:3], test[:3]]), train)
    assert np.allclose(distances[:3], 0) and (distances[3:] > 0).all()


def test_the_held_out_guard_distance_measures_a_seeded_tenth_of_train_against_the_rest():
    train = np.random.default_rng(0).integers(0, 256, (50, 4, 4, 1), dtype=np.uint8)
    order = np.random.default_rng(3).permutation(50)
    expected = metrics.default_min_distance(train[order[5:]], train[order[:5]])
    assert metrics.held_out_min_distance(train, seed=3) == expected > 0
    assert metrics.held_out_min_distance(train, seed=4) != expected  # the seed picks the tenth
    assert metrics.held_out_min_distance(train[:2]) > 0  # one held out, one left: the smallest that works
    with pytest.raises(GenaugError, match="needs two training images, got 1"):
        metrics.held_out_min_distance(train[:1])


def test_the_paired_interval_resamples_examples_together_and_scores_as_the_metric_does():
    truth = np.arange(40) % 4
    first = truth.copy()
    second = np.where(np.arange(40) < 10, truth + 1, truth)  # 10 of 40 wrong: score(second) - score(first) = -0.25
    examples = np.arange(40) % 20  # two seeds' predictions of 20 examples
    for metric in metrics.METRICS:
        low, high = metrics.paired_interval(metric, truth, first, second, examples, seed=0)
        assert (
            low < high < 0 and low < metrics.score(metric, second, truth) - metrics.score(metric, first, truth) < high
        )
        assert metrics.paired_interval(metric, truth, first, first, examples, seed=0) == (0.0, 0.0)
        assert metrics.paired_interval(metric, truth, first, second, examples, seed=0) == (low, high)  # seeded
    # One example of twenty apart is inside the noise.
    one = np.where(np.arange(40) == 0, truth + 1, truth)
    low, high = metrics.paired_interval("accuracy", truth, one, first, examples, seed=0)
    assert low == 0 < high
    # Unit weights give the metric itself.
    weights = np.ones((1, 40))
    for metric in metrics.METRICS:
        scored = metrics._weighted_scores(metric, weights, second == truth, truth)[0]
        assert scored == pytest.approx(metrics.score(metric, second, truth))

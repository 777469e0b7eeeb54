"""Classic augmentation: reproducible for a seed, geometric only, for any image shape."""

import numpy as np
import pytest
import tensorflow as tf

from genaug.augment import augment_batches, augmented_copies


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    digits_like = rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    photos_like = rng.integers(0, 256, (40, 16, 12, 3), dtype=np.uint8)  # not square, 3 channels
    return digits_like, photos_like


def test_copies_are_reproducible_and_seed_dependent(images):
    for x in images:
        first, again, other = augmented_copies(x, 2, seed=3), augmented_copies(x, 2, seed=3), augmented_copies(x, 2, 4)
        assert first.shape == (2 * len(x), *x.shape[1:]) and first.dtype == np.uint8
        np.testing.assert_array_equal(first, again)
        assert (first != other).any()
        assert (first[: len(x)] != x).mean() > 0.3  # the images really move


def test_a_blank_image_stays_blank(images):
    """Geometric only, edges filled with the nearest pixel: no colour or value shifts."""
    blank = np.full((5, 8, 8, 1), 200, np.uint8)
    np.testing.assert_array_equal(augmented_copies(blank, 3, seed=0), np.full((15, 8, 8, 1), 200, np.uint8))
    assert augmented_copies(blank, 0).shape == (0, 8, 8, 1)


def test_batches_keep_labels_and_weights_and_replay_for_a_seed(images):
    x = images[1].astype(np.float32)
    batches = tf.data.Dataset.from_tensor_slices((x, np.arange(40), np.ones(40, np.float32))).batch(16)

    def run(seed):
        return [[t.numpy() for t in batch] for batch in augment_batches(batches, seed)]

    first, again = run(7), run(7)
    assert [len(b) for b in first] == [3, 3, 3]
    for (a, _, weights), (b, _, _) in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(weights, 1.0)
        assert a.min() >= 0 and a.max() <= 255
    np.testing.assert_array_equal(np.concatenate([labels for _, labels, _ in first]), np.arange(40))
    assert not np.array_equal(first[0][0], x[:16])

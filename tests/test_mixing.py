"""Tests of genaug.mix and as_supervised on small known inputs."""

import numpy as np
import pytest
import tensorflow as tf

from genaug.errors import GenaugError
from genaug.mixing import as_supervised, mix
from genaug.policy import Policy, class_balancing_weights


def _source(n, label_offset=0, value=0):
    images = np.full((n, 4, 4, 1), value, np.uint8)
    labels = (np.arange(n) % 3 + label_offset).astype(np.int64)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


def _columns(ds) -> dict[str, np.ndarray]:
    """A finite stream's elements as one array per key (batched: element by element is ~50x slower)."""
    parts = list(ds.batch(4096).as_numpy_iterator())
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}


def _flags(ds):
    return _columns(ds)["is_synthetic"].astype(bool)


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.75])
def test_fraction_mode_hits_the_fraction(fraction):
    mixed = mix(_source(2000), _source(2000, value=255), synthetic_fraction=fraction, seed=0)
    flags = _flags(mixed)
    assert len(flags) == round(2000 / (1 - fraction))
    assert abs(flags.mean() - fraction) < 0.03


def test_fraction_extremes():
    assert not _flags(mix(_source(50), _source(30), synthetic_fraction=0.0, seed=0)).any()
    only = _flags(mix(_source(50), _source(30), synthetic_fraction=1.0, seed=0))
    assert only.all() and len(only) == 30


def test_exact_mode_is_exact_and_evenly_interleaved():
    mixed = mix(_source(90), _source(50), synthetic_count=30, seed=0)
    flags = _flags(mixed)
    assert len(flags) == 120 and flags.sum() == 30
    assert np.array_equal(flags, _flags(mix(_source(90), _source(50), synthetic_count=30, seed=7)))
    assert np.diff(np.flatnonzero(flags)).max() <= 4  # one synthetic every 4 elements


def test_is_synthetic_matches_the_source_and_survives_batching():
    mixed = mix(_source(100, value=0), _source(100, value=255), synthetic_fraction=0.5, seed=1)
    for element in mixed.as_numpy_iterator():
        assert element["is_synthetic"] == (element["image"][0, 0, 0] == 255)
    batch = next(iter(mixed.batch(16)))
    assert batch["is_synthetic"].dtype == tf.bool and batch["is_synthetic"].shape == (16,)


def test_same_seed_same_order():
    def order(seed):
        ds = mix(_source(60), _source(60, label_offset=3), synthetic_fraction=0.5, seed=seed)
        return [int(e["label"]) for e in ds.as_numpy_iterator()]

    assert order(3) == order(3) and order(3) != order(4)


def test_synthetic_weight_and_supervised_batches():
    mixed = mix(_source(40), _source(40, value=255), synthetic_fraction=0.5, seed=0, synthetic_weight=0.25)
    x, y, w = next(iter(as_supervised(mixed, batch_size=8, seed=0)))
    assert x.dtype == tf.float32 and x.shape == (8, 4, 4, 1) and y.dtype == tf.int64
    synthetic = x[:, 0, 0, 0].numpy() == 255
    assert np.allclose(w.numpy(), np.where(synthetic, 0.25, 1.0))


def _labelled(labels, value):
    labels = np.asarray(labels, np.int64)
    images = np.full((len(labels), 4, 4, 1), value, np.uint8)
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})


@pytest.mark.parametrize("ratio", [0.0, 1.0, 3.0])
def test_a_class_balanced_policy_makes_every_class_weigh_the_same(ratio):
    # Real: 300 / 60 / 0 of classes 0-2; synthetic: 0 / 100 / 200 (a fill up to the largest, and one class more).
    real = _labelled([0] * 300 + [1] * 60, 0)
    synthetic = _labelled([1] * 100 + [2] * 200, 255)
    policy = Policy(synthetic_ratio=ratio, synthetic_weight=0.5, class_balanced=True)
    weight, labels, synthetic_flags = [], [], []
    for _ in range(3):  # three passes, so that the sampled shares sit near the expected ones
        for element in mix(real, synthetic, policy=policy, seed=_).as_numpy_iterator():
            weight.append(element["sample_weight"] / (0.5 if element["is_synthetic"] else 1.0))
            labels.append(element["label"])
            synthetic_flags.append(element["is_synthetic"])
    weight, labels = np.array(weight), np.array(labels)
    totals = np.bincount(labels, weights=weight) / len(labels)  # each class's weight per example of the stream
    present = np.unique(labels)
    assert len(present) == (2 if ratio == 0 else 3)
    assert np.allclose(totals[present], 1 / len(present), atol=0.03)
    # Without class_balanced the same policy weighs only by source.
    plain = mix(real, synthetic, policy=Policy(synthetic_ratio=ratio, synthetic_weight=0.5), seed=0)
    assert {float(e["sample_weight"]) for e in plain.as_numpy_iterator()} <= {0.5, 1.0}


def _long_tailed():
    """Real 300 / 60 / 6 of classes 0-2 (a long tail) and a synthetic fill of 240 / 294 for classes 1-2."""
    return _labelled([0] * 300 + [1] * 60 + [2] * 6, 0), _labelled([1] * 240 + [2] * 294, 255)


@pytest.mark.parametrize("ratio", [0.0, 1.0])
def test_a_real_balanced_policy_oversamples_the_real_images(ratio):
    """Random oversampling inside the stream: the real elements come class by class, equally often, every real
    image among them; the synthetic ones are drawn as they are."""
    real, synthetic = _long_tailed()
    policy = Policy(synthetic_ratio=ratio, real_balanced=True)
    elements = _columns(mix(real, synthetic, policy=policy, seed=0))
    flags, labels = elements["is_synthetic"].astype(bool), elements["label"]
    assert len(labels) == round(366 * (1 + ratio))  # as long as without balancing
    real_labels = labels[~flags]
    assert np.allclose(np.bincount(real_labels) / len(real_labels), 1 / 3, atol=0.05)
    if ratio:
        assert abs(np.mean(labels[flags] == 2) - 294 / 534) < 0.06
    again = _columns(mix(real, synthetic, policy=policy, seed=0))["label"]
    assert np.array_equal(again, labels)  # seeded


def test_real_and_class_balanced_together_weigh_every_class_the_same():
    """Oversampled real images and class-balancing weights on the synthetic ones: over the whole stream every
    class weighs the same."""
    real, synthetic = _long_tailed()
    both = Policy(synthetic_ratio=1.0, real_balanced=True, class_balanced=True)
    weighed = [_columns(mix(real, synthetic, policy=both, seed=seed)) for seed in range(3)]
    labels = np.concatenate([w["label"] for w in weighed])
    weights = np.concatenate([w["sample_weight"] for w in weighed])
    totals = np.bincount(labels, weights=weights) / len(labels)
    assert np.allclose(totals, 1 / 3, atol=0.05)


def test_class_balancing_weights():
    assert np.allclose(class_balancing_weights([300, 100, 0]), [2 / 3, 2.0, 0.0])
    assert np.allclose(class_balancing_weights([0.25, 0.25, 0.5]), [4 / 3, 4 / 3, 2 / 3])


def test_class_weights_top_up_chosen_classes():
    mixed = mix(_source(300), _source(300, label_offset=3), synthetic_fraction=0.5, seed=0, class_weights={4: 1.0})
    labels = np.array([int(e["label"]) for e in mixed.as_numpy_iterator() if e["is_synthetic"]])
    assert set(labels.tolist()) == {4}


@pytest.mark.parametrize("mode", ["all", "within", "across"])
def test_mixup_mixes_images_and_labels(mode):
    mixed = mix(_source(64, value=0), _source(64, value=200, label_offset=3), synthetic_count=64, seed=0)
    x, y = next(iter(as_supervised(mixed, batch_size=32, seed=0, num_classes=6, mixup_alpha=0.4, mixup=mode)))
    assert y.shape == (32, 6) and np.allclose(y.numpy().sum(axis=1), 1.0)
    pixel = x[:, 0, 0, 0].numpy()
    if mode == "within":  # partners share the source: images stay pure 0 or 200
        assert set(np.round(pixel).tolist()) <= {0.0, 200.0}
    if mode == "across":  # every example with a partner from the other source is a blend
        assert ((pixel > 0) & (pixel < 200)).mean() > 0.8


def test_cutmix_pastes_a_box_and_mixes_labels_by_its_area():
    from genaug.policy import Policy

    mixed = mix(_source(64, value=0), _source(64, value=200, label_offset=3), synthetic_count=64, seed=0)
    policy = Policy(synthetic_ratio=1.0, cutmix_alpha=1.0)
    x, y = next(iter(as_supervised(mixed, batch_size=32, seed=0, num_classes=6, policy=policy)))
    x, y = x.numpy(), y.numpy()
    assert y.shape == (32, 6) and np.allclose(y.sum(axis=1), 1.0)
    assert set(np.unique(x).tolist()) <= {0.0, 200.0}  # pasted, not blended
    share_200 = (x == 200).mean(axis=(1, 2, 3))
    assert np.allclose(y[:, 3:].sum(axis=1), share_200, atol=1e-6)  # labels follow the pixels' sources
    assert ((share_200 > 0) & (share_200 < 1)).mean() > 0
    again = next(iter(as_supervised(mixed, batch_size=32, seed=0, num_classes=6, policy=policy)))
    assert np.array_equal(again[0].numpy(), x)
    with pytest.raises(GenaugError, match="need num_classes"):
        as_supervised(mixed, batch_size=32, seed=0, policy=policy)


def test_a_mixup_policy_trains_the_recipe_on_soft_labels():
    from genaug.classifier import ClassifierTrainer
    from genaug.policy import Policy

    mixed = mix(_source(64, value=0), _source(64, value=200, label_offset=3), synthetic_count=64, seed=0)
    policy = Policy(synthetic_ratio=1.0, mixup_alpha=0.2, noise=0.05)
    batches = as_supervised(mixed, batch_size=16, seed=0, num_classes=6, policy=policy)
    x, y = next(iter(batches))
    assert y.shape == (16, 6) and not set(np.unique(x.numpy()).tolist()) <= {0.0, 200.0}  # noise added
    trainer = ClassifierTrainer((4, 4, 1), 6, steps=3)
    soft = trainer.fit(batches, seed=0)
    hard = trainer.fit(as_supervised(mixed, batch_size=16, seed=0), seed=0)
    assert soft is not hard and soft.loss.__class__.__name__ == "CategoricalCrossentropy"


def test_mixup_pipeline_works_with_tfds_loaded_synthetic(smoke_runs, tmp_path):
    from genaug import load_dataset, load_synthetic, sample

    sample(smoke_runs["cvae"], tmp_path / "syn", per_class=5, progress=False, min_distance=None)
    synthetic, _ = load_synthetic(tmp_path / "syn")
    real, _ = load_dataset("digits", "test")
    mixed = mix(real, synthetic, synthetic_count=50, seed=0)
    x, y = next(iter(as_supervised(mixed, batch_size=500, seed=0)))
    assert x.shape == (500, 8, 8, 1) and len(y) == 500


def test_bad_arguments():
    with pytest.raises(GenaugError, match="exactly one of synthetic_fraction and synthetic_count"):
        mix(_source(4), _source(4), seed=0)
    with pytest.raises(GenaugError, match="synthetic_fraction must be in"):
        mix(_source(4), _source(4), synthetic_fraction=1.5, seed=0)
    with pytest.raises(GenaugError, match="synthetic_count 9 must be in"):
        mix(_source(4), _source(4), synthetic_count=9, seed=0)
    with pytest.raises(GenaugError, match="finite"):
        mix(_source(4).repeat(), _source(4), synthetic_count=1, seed=0)
    with pytest.raises(GenaugError, match="synthetic_fraction 0.5 needs synthetic examples"):
        mix(_source(4), _source(0), synthetic_fraction=0.5, seed=0)
    assert len(list(mix(_source(4), _source(0), synthetic_fraction=0.0, seed=0))) == 4  # real only needs none
    with pytest.raises(GenaugError, match="class_weights or a class-balanced policy"):
        mix(_source(4), _source(4), policy=Policy(class_balanced=True), class_weights={1: 1.0}, seed=0)


def test_arrays_dataset_order_depends_on_its_seed_alone():
    """The oracle's and fidelity's training order: the same whatever global seed ran before, a new
    permutation of every example on each pass."""
    import keras

    from genaug.classifier import arrays_dataset

    x, y = np.arange(20, dtype=np.uint8).reshape(20, 1, 1, 1), np.arange(20)

    def labels(seed: int) -> np.ndarray:
        batches = arrays_dataset(x, y, batch_size=8, seed=seed).take(5)  # 40 examples: two passes
        return np.concatenate([b for _, b in batches.as_numpy_iterator()])

    tf.random.set_seed(None)  # a fresh process: no global seed
    orders = [labels(3)]
    for earlier in (1, 2):
        keras.utils.set_random_seed(earlier)
        orders.append(labels(3))
    assert all((order == orders[0]).all() for order in orders)
    first, second = orders[0][:20], orders[0][20:]
    assert sorted(first) == sorted(second) == list(range(20)) and (first != second).any()
    assert (labels(4) != orders[0]).any()


@pytest.mark.parametrize("steps", [3, 50, 63])
def test_the_classifier_trains_exactly_its_step_budget(steps):
    """Not a whole number of Keras executions (50 steps each): 3 asked steps once trained 50."""
    from genaug.classifier import ClassifierTrainer, arrays_dataset

    x, y = np.zeros((10, 4, 4, 1), np.uint8), np.arange(10) % 2
    trainer = ClassifierTrainer((4, 4, 1), 2, steps=steps)
    for seed in (0, 1):  # a second fit starts from a fresh optimizer, so it counts from zero again
        assert int(trainer.fit(arrays_dataset(x, y, batch_size=4, seed=seed), seed=seed).optimizer.iterations) == steps


def test_seeding_keeps_the_compiled_step_and_seeds_as_keras_does(monkeypatch):
    """genaug's seeding gives the draws, weights and order Keras's own gives, without clearing TensorFlow's
    caches (which made every fit instantiate its compiled step again)."""
    import random

    import keras
    from tensorflow.python import pywrap_tfe

    from genaug import classifier
    from genaug.classifier import ClassifierTrainer, arrays_dataset
    from genaug.startup import set_random_seed

    def draws():
        order = list(tf.data.Dataset.range(20).shuffle(20, seed=1).as_numpy_iterator())
        weights = keras.initializers.GlorotUniform()((3, 3)).numpy().tolist()
        return order, weights, keras.random.uniform((2,)).numpy().tolist(), np.random.random(), random.random()

    keras.utils.set_random_seed(3)
    expected = draws()
    set_random_seed(7)
    set_random_seed(3)
    assert draws() == expected

    x, y = np.random.default_rng(0).integers(0, 256, (40, 4, 4, 1), np.uint8), np.arange(40) % 2
    trainer = ClassifierTrainer((4, 4, 1), 2, steps=5)

    def weights_after(seed, seeding):
        seeding(seed)  # as evaluate's fits do, before their pipeline reads the global seed
        model = trainer.fit(arrays_dataset(x, y, batch_size=8, seed=seed).shuffle(8, seed=seed), seed=seed)
        return [w.numpy() for w in model.weights]

    cleared = []
    monkeypatch.setattr(pywrap_tfe, "TFE_ContextClearCaches", lambda handle: cleared.append(handle))
    ours = [weights_after(seed, set_random_seed) for seed in (1, 2)]
    assert not cleared
    monkeypatch.setattr(classifier, "set_random_seed", keras.utils.set_random_seed)
    theirs = [weights_after(seed, keras.utils.set_random_seed) for seed in (1, 2)]
    assert cleared  # Keras's seeding clears them: the check above would have seen it
    for a, b in zip(ours, theirs, strict=True):
        for wa, wb in zip(a, b, strict=True):
            np.testing.assert_array_equal(wa, wb)

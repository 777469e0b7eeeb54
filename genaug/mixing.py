"""Mixing real and synthetic ``tf.data`` pipelines for downstream classifiers.

Every mixed element is ``{"image": uint8[H,W,C], "label": int64[], "is_synthetic": bool[]}`` (plus
``"sample_weight": float32[]`` when a synthetic weight or class balancing is asked for); the mark is never dropped.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from genaug.augment import augment_batches
from genaug.errors import GenaugError
from genaug.policy import Policy, class_balancing_weights


def _tagged(dataset: tf.data.Dataset, synthetic: bool, weight: float | None) -> tf.data.Dataset:
    def tag(element):
        out = {"image": element["image"], "label": element["label"], "is_synthetic": tf.constant(synthetic)}
        if weight is not None:
            out["sample_weight"] = tf.constant(weight if synthetic else 1.0, tf.float32)
        return out

    return dataset.map(tag, num_parallel_calls=tf.data.AUTOTUNE)


def _size(dataset: tf.data.Dataset) -> int:
    size = int(dataset.cardinality())
    if size == tf.data.INFINITE_CARDINALITY:
        raise GenaugError("mix needs finite datasets (do not .repeat() them first)")
    return size if size >= 0 else int(dataset.reduce(0, lambda count, _: count + 1))


def mix(
    real: tf.data.Dataset,
    synthetic: tf.data.Dataset,
    *,
    synthetic_fraction: float | None = None,
    synthetic_count: int | None = None,
    seed: int,
    synthetic_weight: float | None = None,
    class_weights: dict[int, float] | None = None,
    policy: Policy | None = None,
) -> tf.data.Dataset:
    """Mixes real and synthetic examples into one finite dataset, tagging each with ``is_synthetic``.

    Two modes:
      * ``synthetic_fraction=f``: each element is synthetic with probability ``f``
        (``tf.data.Dataset.sample_from_datasets``, seeded); the pass holds ``n_real / (1 - f)``
        elements so real data is seen about once (``f = 1`` gives ``n_synthetic`` synthetic elements).
      * ``synthetic_count=k``: exactly ``k`` synthetic examples interleaved evenly with all real ones
        (``choose_from_datasets`` with a fixed selector): the same order every time.

    Args:
        real: ``{"image", "label"}`` elements.
        synthetic: ``{"image", "label"}`` elements (e.g. from :func:`genaug.load_synthetic`).
        synthetic_fraction: probability that an element is synthetic, in [0, 1].
        synthetic_count: exact number of synthetic elements instead.
        seed: seeds the sampling and the reshuffles of repeated sources.
        synthetic_weight: adds ``"sample_weight"`` (this for synthetic, 1 for real).
        class_weights: ``{label: weight}`` relative sampling weights within the synthetic stream
            (fraction mode), e.g. to top up rare classes; classes not named get weight 0.
        policy: a :class:`genaug.policy.Policy` instead of ``synthetic_fraction`` and ``synthetic_weight``
            (its fraction is ``ratio / (1 + ratio)``; its ``min_confidence`` filters the synthetic stream by
            each element's ``confidence``; its ``class_balanced`` weighs each element by its class's share of
            the stream; its ``real_balanced`` draws the real elements class by class, equally often; pass it to
            :func:`as_supervised` too).

    Returns:
        A finite dataset of tagged elements (shuffle and batch it with :func:`as_supervised`).

    Example:
        >>> mixed = mix(real_ds, syn_ds, synthetic_fraction=0.5, seed=0)
        >>> model.fit(as_supervised(mixed, batch_size=64, seed=0), epochs=10)
    """
    if policy is not None:
        if synthetic_fraction is not None or synthetic_count is not None or synthetic_weight is not None:
            raise GenaugError("give a policy or synthetic_fraction/synthetic_count/synthetic_weight, not both")
        if policy.class_balanced and class_weights is not None:
            raise GenaugError("give class_weights or a class-balanced policy, not both")
        synthetic, synthetic_fraction, synthetic_weight = _as_policy_says(synthetic, policy)
    if (synthetic_fraction is None) == (synthetic_count is None):
        raise GenaugError("give exactly one of synthetic_fraction and synthetic_count")
    n_real, n_syn = _size(real), _size(synthetic)
    real_t = _tagged(real, False, synthetic_weight)
    syn_t = _tagged(synthetic, True, synthetic_weight)
    if synthetic_count is not None:
        return _interleaved(real_t, syn_t, n_real, n_syn, synthetic_count)
    f = float(synthetic_fraction)
    if not 0.0 <= f <= 1.0:
        raise GenaugError(f"synthetic_fraction must be in [0, 1], got {f}")
    if f > 0.0 and not n_syn:
        raise GenaugError(f"synthetic_fraction {f} needs synthetic examples, and the synthetic dataset is empty")
    if class_weights is not None:
        syn_t = _class_weighted(syn_t, class_weights, seed)
    elif n_syn:
        syn_t = syn_t.shuffle(n_syn, seed=seed).repeat()
    real_t, real_shares = _balanced_real(real, real_t, n_real, policy, seed)
    if f == 1.0:
        mixed = syn_t.take(n_syn)
    elif f == 0.0:
        mixed = real_t.take(n_real)
    else:
        mixed = tf.data.Dataset.sample_from_datasets(
            [real_t.shuffle(n_real, seed=seed).repeat(), syn_t], weights=[1.0 - f, f], seed=seed
        ).take(round(n_real / (1.0 - f)))
    if policy is None or not policy.class_balanced:
        return mixed
    return _weighted_by_class(mixed, class_balancing_weights(_stream_shares(real_shares, _label_shares(synthetic), f)))


def _stream_shares(real_shares: np.ndarray, synthetic_shares: np.ndarray, fraction: float) -> np.ndarray:
    """Each class's share of a stream drawing synthetic elements with probability ``fraction``."""
    size = max(len(real_shares), len(synthetic_shares))
    padded = [np.pad(shares, (0, size - len(shares))) for shares in (real_shares, synthetic_shares)]
    return padded[0] * (1.0 - fraction) + padded[1] * fraction


def _balanced_real(real, real_t, n_real: int, policy: Policy | None, seed: int):
    """The real stream as the policy's ``real_balanced`` draws it, and its class shares (``None`` unless a class
    balancing needs them)."""
    if policy is None or not (policy.class_balanced or policy.real_balanced):
        return real_t, None
    if not policy.real_balanced:
        return real_t, _label_shares(real)
    oversampled, counts = _oversampled(real_t, n_real, seed)
    return oversampled, (counts > 0) / (counts > 0).sum()


def _oversampled(real_t: tf.data.Dataset, n_real: int, seed: int) -> tuple[tf.data.Dataset, np.ndarray]:
    """An endless stream of ``real_t``'s elements with every class present equally often (each class's elements
    reshuffled and repeated: random oversampling), and the number of elements of each label."""
    # Read once and split by class in memory: a filter per class re-scans all of ``real_t`` on every pass over
    # that class (a class of 10 among 2,478 images: 250 elements read per element kept), which made a
    # long-tailed fit's input pipeline ~50x slower. Each class keeps its elements in ``real_t``'s order.
    whole = real_t.batch(max(1, n_real)).get_single_element()
    labels = whole["label"].numpy()
    counts = np.bincount(labels)
    streams = []
    for k in np.flatnonzero(counts):
        members = np.flatnonzero(labels == k)
        part = tf.data.Dataset.from_tensor_slices({key: tf.gather(v, members) for key, v in whole.items()})
        streams.append(part.shuffle(len(members), seed=seed + int(k)).repeat())
    weights = [1.0 / len(streams)] * len(streams)
    return tf.data.Dataset.sample_from_datasets(streams, weights=weights, seed=seed), counts


def _label_shares(dataset: tf.data.Dataset) -> np.ndarray:
    """Each label's share of ``dataset``'s elements (index = label; zeros when it is empty)."""
    labels = [batch for batch in dataset.map(lambda e: e["label"]).batch(8192).as_numpy_iterator()]
    counts = np.bincount(np.concatenate(labels)) if labels else np.zeros(1)
    return counts / max(counts.sum(), 1)


def _weighted_by_class(dataset: tf.data.Dataset, weights: np.ndarray) -> tf.data.Dataset:
    """Every element's ``sample_weight`` (1 when it has none) times its class's weight."""
    table = tf.constant(weights, tf.float32)

    def weigh(element):
        base = element.get("sample_weight", tf.constant(1.0, tf.float32))
        return {**element, "sample_weight": base * tf.gather(table, element["label"])}

    return dataset.map(weigh, num_parallel_calls=tf.data.AUTOTUNE)


def _as_policy_says(synthetic: tf.data.Dataset, policy: Policy) -> tuple[tf.data.Dataset, float, float | None]:
    """The synthetic stream filtered by the policy's ``min_confidence``, its synthetic fraction and weight."""
    weight = None if policy.synthetic_weight == 1.0 else policy.synthetic_weight
    if policy.min_confidence is not None:
        if "confidence" not in synthetic.element_spec:
            raise GenaugError(
                "the policy's min_confidence needs synthetic elements with a 'confidence' (a set sampled with "
                "--min-confidence; load_synthetic gives it)"
            )
        synthetic = synthetic.filter(lambda e: e["confidence"] >= policy.min_confidence)
    return synthetic, policy.synthetic_fraction, weight


def _interleaved(real_t: tf.data.Dataset, syn_t: tf.data.Dataset, n_real: int, n_syn: int, count: int):
    """All real elements with exactly ``count`` synthetic ones spread evenly between them, in a fixed order."""
    if not 0 <= count <= n_syn:
        raise GenaugError(f"synthetic_count {count} must be in [0, {n_syn}] (synthetic size)")
    total = n_real + count
    positions = np.arange(1, total + 1)
    # Bresenham: the i-th element is synthetic when the running share of synthetic ones steps up.
    selector = (positions * count // total - (positions - 1) * count // total).astype(np.int64)
    selected = tf.data.Dataset.from_tensor_slices(selector)
    return tf.data.Dataset.choose_from_datasets([real_t, syn_t.take(count)], selected)


def _class_weighted(syn_t: tf.data.Dataset, class_weights: dict[int, float], seed: int) -> tf.data.Dataset:
    labels = sorted(int(k) for k, w in class_weights.items() if w > 0)
    if not labels:
        raise GenaugError("class_weights gives no class a positive weight")
    streams = [
        syn_t.filter(lambda e, label=label: tf.equal(e["label"], label)).shuffle(1024, seed=seed + label).repeat()
        for label in labels
    ]
    weights = [float(class_weights[label]) for label in labels]
    return tf.data.Dataset.sample_from_datasets(streams, weights=weights, seed=seed)


def as_supervised(
    dataset: tf.data.Dataset,
    batch_size: int,
    *,
    seed: int = 0,
    shuffle: bool = True,
    cache: bool = True,
    num_classes: int | None = None,
    mixup_alpha: float | None = None,
    mixup: str = "all",
    policy: Policy | None = None,
) -> tf.data.Dataset:
    """Batches for ``keras.Model.fit``: cache -> shuffle -> batch -> vectorised map -> prefetch.

    Yields ``(image float32 [0, 255], label)`` or, when elements carry ``"sample_weight"``,
    ``(image, label, sample_weight)``. With ``mixup_alpha`` (needs ``num_classes``), images and one-hot
    labels are mixed with lambda ~ Beta(a, a) per example, with a partner from any source
    (``mixup="all"``), the same source (``"within"``) or the other source (``"across"``); labels are then
    float one-hot vectors (use ``CategoricalCrossentropy``). A ``policy`` adds its mixup or cutmix (it
    then needs ``num_classes``), then its classic augmentation and pixel noise of every batch
    (:func:`genaug.augment.augment_batches`).
    """
    if mixup not in ("all", "within", "across"):
        raise GenaugError(f"mixup {mixup!r}: expected all, within or across")
    cutmix_alpha = None
    if policy is not None and policy.soft_labels:
        if mixup_alpha is not None:
            raise GenaugError("give a policy or mixup_alpha, not both")
        mixup_alpha, cutmix_alpha = policy.mixup_alpha or None, policy.cutmix_alpha or None
    if (mixup_alpha is not None or cutmix_alpha is not None) and not num_classes:
        raise GenaugError("mixup and cutmix need num_classes")
    if cache:
        dataset = dataset.cache()
    if shuffle:
        dataset = dataset.shuffle(4096, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    weighted = "sample_weight" in dataset.element_spec

    def to_supervised(index, batch):
        images = tf.cast(batch["image"], tf.float32)
        labels = batch["label"]
        if mixup_alpha is not None:
            images, labels = _mixup(images, labels, batch["is_synthetic"], index, num_classes, mixup_alpha, mixup, seed)
        if cutmix_alpha is not None:
            images, labels = _cutmix(images, labels, index, num_classes, cutmix_alpha, seed)
        return (images, labels, batch["sample_weight"]) if weighted else (images, labels)

    batches = dataset.enumerate().map(to_supervised, num_parallel_calls=tf.data.AUTOTUNE)
    if policy is not None:
        batches = augment_batches(batches, seed, strength=policy.augmentation, noise=policy.noise)
    return batches.prefetch(tf.data.AUTOTUNE)


def _beta(key, batch, alpha):
    """``batch`` draws of Beta(alpha, alpha), stateless from ``key``."""
    gamma_a = tf.random.stateless_gamma([batch], seed=key, alpha=alpha)
    gamma_b = tf.random.stateless_gamma([batch], seed=key + 1, alpha=alpha)
    return gamma_a / (gamma_a + gamma_b)


def _cutmix(images, labels, index, num_classes, alpha, seed):
    """Each image gets a box (area share 1 - lambda, lambda ~ Beta(a, a)) of a random partner pasted in;
    its one-hot label is mixed by the box's actual area, clipped at the edges."""
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    key = tf.stack([tf.cast(seed, tf.int64), index]) + 7  # draws of their own, apart from mixup's
    cut = tf.sqrt(1.0 - _beta(key, batch, alpha))
    centre = tf.random.stateless_uniform([batch, 2], seed=key + 2)
    partner = tf.argmax(tf.random.stateless_uniform([batch, batch], seed=key + 3), axis=1, output_type=tf.int32)
    size = tf.cast(tf.stack([height, width]), tf.float32)
    low = tf.clip_by_value(tf.round((centre - cut[:, None] / 2) * size), 0.0, size)
    high = tf.clip_by_value(tf.round((centre + cut[:, None] / 2) * size), 0.0, size)
    rows = tf.range(tf.cast(height, tf.float32))[None, :]
    cols = tf.range(tf.cast(width, tf.float32))[None, :]
    in_rows = (rows >= low[:, :1]) & (rows < high[:, :1])
    in_cols = (cols >= low[:, 1:]) & (cols < high[:, 1:])
    box = tf.cast(in_rows[:, :, None] & in_cols[:, None, :], tf.float32)[..., None]  # [b, h, w, 1]
    mixed_images = (1.0 - box) * images + box * tf.gather(images, partner)
    kept = 1.0 - tf.reduce_mean(box, axis=[1, 2, 3])
    one_hot = tf.one_hot(labels, num_classes)
    mixed_labels = kept[:, None] * one_hot + (1.0 - kept[:, None]) * tf.gather(one_hot, partner)
    return mixed_images, mixed_labels


def _mixup(images, labels, is_synthetic, index, num_classes, alpha, mode, seed):
    batch = tf.shape(images)[0]
    key = tf.stack([tf.cast(seed, tf.int64), index])
    lam = _beta(key, batch, alpha)
    scores = tf.random.stateless_uniform([batch, batch], seed=key + 2)
    if mode != "all":
        same = tf.equal(is_synthetic[:, None], is_synthetic[None, :])
        allowed = same if mode == "within" else tf.logical_not(same)
        scores = tf.where(allowed, scores, -1.0)
    partner = tf.argmax(scores, axis=1, output_type=tf.int32)
    # No allowed partner (e.g. a one-source batch with mode "across"): keep the example unmixed.
    partner = tf.where(tf.reduce_max(scores, axis=1) < 0, tf.range(batch), partner)
    one_hot = tf.one_hot(labels, num_classes)
    lam_x = lam[:, None, None, None]
    mixed_images = lam_x * images + (1.0 - lam_x) * tf.gather(images, partner)
    mixed_labels = lam[:, None] * one_hot + (1.0 - lam[:, None]) * tf.gather(one_hot, partner)
    return mixed_images, mixed_labels

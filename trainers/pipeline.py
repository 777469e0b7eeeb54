"""The training input pipeline: deterministic per-epoch order, so a resumed run sees the same batches."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from genaug.errors import GenaugError
from genaug.startup import input_pipeline_options
from models.scaling import to_model_range


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped)."""
    steps = num_examples // batch_size
    if steps == 0:
        raise GenaugError(f"batch size {batch_size} is larger than the {num_examples} training examples")
    return steps


def training_dataset(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, epoch: tf.Variable, class_balance: float = 0.0
) -> tuple[tf.data.Dataset, int]:
    """One epoch of batches of ``{"image": float32 [-1, 1], "label": int64}``, finite, of known length.

    Each new iterator yields the epoch ``epoch`` holds when it starts (:class:`EpochClock` keeps it), in a
    stateless shuffle keyed by ``(seed, epoch)``: the order does not depend on how many epochs ran before
    in this process, so a resumed run sees the same batches. Finite epochs let Keras run
    ``steps_per_execution`` steps at a time whatever the epoch length: the last execution of an epoch
    stops where the epoch ends. The last partial batch is dropped (GAN and BN statistics prefer equal
    batches). Scaling runs once per batch, vectorised. With ``class_balance`` b > 0 an epoch is as many
    draws with replacement, an example of class c drawn with probability in proportion to n_c^-b (keyed by
    ``(seed, epoch)`` too).

    Returns:
        The dataset and the number of steps per epoch.
    """
    n = len(y)
    steps = steps_per_epoch(n, batch_size)
    images, labels = tf.constant(x), tf.constant(y)

    log_weights = None
    if class_balance > 0:
        counts = np.bincount(y)
        log_weights = tf.constant(-class_balance * np.log(counts[y])[None], tf.float32)

    def epoch_order(_):
        key = tf.stack([seed, epoch.read_value()])
        if log_weights is None:
            order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=key)
        else:
            order = tf.random.stateless_categorical(log_weights, n, seed=key, dtype=tf.int64)[0]
        return tf.data.Dataset.from_tensor_slices(order[: steps * batch_size])

    def gather(index):
        return {"image": to_model_range(tf.gather(images, index)), "label": tf.gather(labels, index)}

    dataset = (
        tf.data.Dataset.range(1)
        .flat_map(epoch_order)
        .batch(batch_size, drop_remainder=True)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .apply(tf.data.experimental.assert_cardinality(steps))
        .prefetch(tf.data.AUTOTUNE)
        .with_options(input_pipeline_options())
    )
    return dataset, steps

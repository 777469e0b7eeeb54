"""The training input pipeline: deterministic per-epoch order, so a resumed run sees the same batches."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from genaug.errors import GenaugError
from models.scaling import to_model_range


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial batch is dropped)."""
    steps = num_examples // batch_size
    if steps == 0:
        raise GenaugError(f"batch size {batch_size} is larger than the {num_examples} training examples")
    return steps


def execution_length(steps: int, requested: int) -> int:
    """The largest divisor of ``steps`` (per epoch) not above ``requested``: the ``steps_per_execution``
    to compile with. Keras runs whole executions, so one straddling an epoch's end would shift every
    later epoch's batches and break per-epoch callbacks and resume."""
    return max(d for d in range(1, min(requested, steps) + 1) if steps % d == 0)


def training_dataset(
    x: np.ndarray, y: np.ndarray, *, batch_size: int, seed: int, start_epoch: int, epochs: int
) -> tuple[tf.data.Dataset, int]:
    """Batches of ``{"image": float32 [-1, 1], "label": int64}`` for epochs ``start_epoch..epochs-1``.

    Epoch ``e``'s order is a stateless shuffle keyed by ``(seed, e)``, so it does not depend on
    how many epochs ran before in this process. The last partial batch of each epoch is dropped
    (GAN and BN statistics prefer equal batches). Scaling runs once per batch, vectorised.

    Returns:
        The dataset and the number of steps per epoch.
    """
    n = len(y)
    steps = steps_per_epoch(n, batch_size)
    images, labels = tf.constant(x), tf.constant(y)

    def epoch_order(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        return tf.data.Dataset.from_tensor_slices(order[: steps * batch_size])

    def gather(index):
        return {"image": to_model_range(tf.gather(images, index)), "label": tf.gather(labels, index)}

    dataset = (
        tf.data.Dataset.range(start_epoch, epochs)
        .flat_map(epoch_order)
        .batch(batch_size, drop_remainder=True)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    return dataset, steps

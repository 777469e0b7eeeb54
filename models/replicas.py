"""``tf.distribute`` details of a train step: loss scaling, and logs a multi-worker ``fit`` can reduce."""

import tensorflow as tf


def per_replica(loss):
    """A per-replica batch-mean loss scaled so that the summed gradients equal the global-batch mean."""
    return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)


def step_logs(metrics) -> dict:
    """What a train or test step returns: each metric's result.

    Under ``MultiWorkerMirroredStrategy``, Keras 3 reduces step logs with ``strategy.reduce("MEAN", v,
    axis=0)``, which fails on scalars (tensorflow#72388); there each result is a 1-element vector, which
    that reduce averages over the workers back to a scalar.
    """
    results = {m.name: m.result() for m in metrics}
    if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        results = {name: tf.reshape(value, [1]) for name, value in results.items()}
    return results

"""Loss scaling for ``tf.distribute``: Keras optimizers sum gradients over replicas."""

import tensorflow as tf


def per_replica(loss):
    """A per-replica batch-mean loss scaled so that the summed gradients equal the global-batch mean."""
    return loss / tf.cast(tf.distribute.get_strategy().num_replicas_in_sync, loss.dtype)

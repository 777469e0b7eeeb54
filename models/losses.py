"""Adversarial losses on discriminator logits (float32), and the gradient regularisers of D.

Each loss returns a batch mean; ``train_step`` divides by the number of replicas because
Keras optimizers sum gradients across replicas.
"""

import tensorflow as tf
from keras import ops

GAN_LOSSES = ("ns", "hinge", "wgan-gp", "lsgan")


def discriminator_loss(kind: str, real_logits, fake_logits):
    """D's loss for ``kind`` in :data:`GAN_LOSSES` (for ``wgan-gp`` the penalty is added separately)."""
    if kind == "ns":
        return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
    if kind == "hinge":
        return ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))
    if kind == "wgan-gp":
        return ops.mean(fake_logits) - ops.mean(real_logits)
    if kind == "lsgan":
        return 0.5 * ops.mean(ops.square(real_logits - 1.0)) + 0.5 * ops.mean(ops.square(fake_logits))
    raise ValueError(f"unknown GAN loss {kind!r}: expected one of {', '.join(GAN_LOSSES)}")


def generator_loss(kind: str, fake_logits):
    """G's loss: non-saturating for ``ns``, ``-D(G(z))`` for hinge and WGAN, least squares for lsgan."""
    if kind == "ns":
        return ops.mean(ops.softplus(-fake_logits))
    if kind in ("hinge", "wgan-gp"):
        return -ops.mean(fake_logits)
    if kind == "lsgan":
        return 0.5 * ops.mean(ops.square(fake_logits - 1.0))
    raise ValueError(f"unknown GAN loss {kind!r}: expected one of {', '.join(GAN_LOSSES)}")


def squared_gradient_norm(critic, images):
    """Per-example ``||d critic(images) / d images||^2`` in float32 (``critic`` maps images to logits).

    A gradient inside a loss needs a tape of its own: TensorFlow, not ``keras.ops``."""
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = critic(images)
    grads = tf.cast(tape.gradient(logits, images), tf.float32)
    return tf.reduce_sum(tf.square(grads), axis=[1, 2, 3])


def gradient_penalty(critic, interpolated):
    """WGAN-GP: ``mean((||grad D(x_hat)|| - 1)^2)`` at ``x_hat = interpolated`` (real + alpha (fake - real)).

    The epsilon keeps the norm's gradient finite where the input gradient is exactly zero.
    """
    norm = ops.sqrt(squared_gradient_norm(critic, interpolated) + 1e-12)
    return ops.mean(ops.square(norm - 1.0))


def r1_penalty(critic, real):
    """R1 (Mescheder et al., 2018): ``mean(||grad D(real)||^2) / 2``, multiplied by gamma by the caller."""
    return 0.5 * ops.mean(squared_gradient_norm(critic, real))


def coverage_penalty(real, fake, real_labels=None, fake_labels=None):
    """Mean squared pixel distance from each real image to the nearest fake of its label in the batch.

    An in-batch form of implicit maximum likelihood estimation (Li & Malik, 2018): G pays for every
    training image that none of its samples comes near, the modes an adversarial loss alone lets it
    drop. Conditional callers give both label vectors; every real label must occur among the fakes.
    """
    real = ops.reshape(ops.cast(real, "float32"), (ops.shape(real)[0], -1))
    fake = ops.reshape(ops.cast(fake, "float32"), (ops.shape(fake)[0], -1))
    distances = (
        ops.sum(ops.square(real), axis=1)[:, None]
        + ops.sum(ops.square(fake), axis=1)[None, :]
        - 2.0 * ops.matmul(real, ops.transpose(fake))
    )
    if real_labels is not None:
        distances = ops.where(ops.equal(real_labels[:, None], fake_labels[None, :]), distances, float("inf"))
    return ops.mean(ops.maximum(ops.min(distances, axis=1), 0.0)) / ops.cast(ops.shape(real)[1], "float32")

"""SimCLR (Chen et al., 2020): an encoder learnt from unlabelled images alone, by contrasting augmented views.

genaug pretrains its FixMatch teacher's network this way on the labelled and unlabelled images together
(labels unused) before FixMatch starts: with 10 labels per class the labels alone cannot shape the
features, and 10,000 unlabelled images can. On Fashion-MNIST (10,000 images, 80 labels, three label draws)
2,500 FixMatch steps from a 3,000-5,000-step SimCLR encoder labelled the unlabelled images 79.3 / 77.3 / 78.7 %
right against 77.2 / 74.7 / 75.5 % from random weights (docs/experiments.md).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from models.diffaugment import diff_augment
from models.fixmatch import MIRRORED, STRONG, build_teacher_network


@keras.saving.register_keras_serializable(package="genaug")
class SimCLR(keras.Model):
    """The teacher's encoder (:func:`models.fixmatch.build_teacher_network` without logits) and a
    projection head, trained so that two strongly augmented views of an image project close together and
    far from every other view in the batch (the NT-Xent loss at ``temperature``).

    Args:
        image_shape: ``(H, W, C)`` of the images.
        width: the encoder's filters at the first scale (FixMatch's ``width``).
        projection_dim: size of the projections the loss compares.
        temperature: the softmax temperature of the similarities.
        flip: mirror views at random too (right for clothes, wrong for digits).
        seed: seed of the augmentations.

    Example:
        >>> simclr = SimCLR((28, 28, 1), flip=True)
        >>> simclr.compile()
        >>> simclr.fit(images, steps_per_epoch=3000)  # batches of images only, float [-1, 1]
        >>> teacher.start_from(simclr.encoder)  # a FixMatch of the same width
    """

    TRAINING_DEFAULTS = {"learning_rate": 1e-3}

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        width: int = 32,
        projection_dim: int = 64,
        temperature: float = 0.2,
        flip: bool = False,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if temperature <= 0:
            raise ValueError(f"temperature must be above 0, got {temperature}")
        self.image_shape, self.width, self.projection_dim = tuple(image_shape), width, projection_dim
        self.temperature, self.flip, self.seed = temperature, flip, seed
        self.encoder = build_teacher_network(self.image_shape, None, width, self.dtype_policy)
        self.projection = keras.Sequential(
            [
                layers.Dense(4 * width, activation="relu", dtype=self.dtype_policy),
                layers.Dense(projection_dim, dtype="float32"),  # the similarities need float32
            ],
            name="projection",
        )
        self.projection.build(self.encoder.output.shape)
        self.views = STRONG + MIRRORED if flip else STRONG
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="contrastive_loss")
        self.built = True  # its networks are built above

    @property
    def metrics(self):
        return [self.loss_tracker]

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer or keras.optimizers.Adam(**self.TRAINING_DEFAULTS), **kwargs)
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))

    def call(self, images, training=False):
        return self.encoder(images, training=training)

    def contrastive_loss(self, images, training=False):
        """NT-Xent: each view's cross-entropy of picking its partner among the batch's other 2B - 1 views."""
        views = ops.concatenate(
            [
                diff_augment(images, self.views, self.seed_generator),
                diff_augment(images, self.views, self.seed_generator),
            ]
        )
        z = self.projection(self.encoder(views, training=training), training=training)
        z = z / ops.maximum(ops.norm(z, axis=-1, keepdims=True), 1e-12)
        batch = ops.shape(images)[0]
        similarity = ops.matmul(z, ops.transpose(z)) / self.temperature - 1e9 * ops.eye(2 * batch)  # not itself
        partners = ops.concatenate([ops.arange(batch) + batch, ops.arange(batch)])
        return ops.mean(keras.losses.sparse_categorical_crossentropy(partners, similarity, from_logits=True))

    def train_step(self, images):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = self.contrastive_loss(images, training=True)
        variables = self.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.loss_tracker.update_state(loss)
        return {"contrastive_loss": self.loss_tracker.result()}

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "width": self.width,
            "projection_dim": self.projection_dim,
            "temperature": self.temperature,
            "flip": self.flip,
            "seed": self.seed,
        }

"""FixMatch (Sohn et al., 2020): a classifier that learns from a few labelled and many unlabelled images.

genaug's teacher for scarce labels: it pseudo-labels the unlabelled images a conditional generator then
learns from. Label spreading on raw pixels is right on 8x8 digits and wrong on real-size images
(Fashion-MNIST: 63-65 %); a network trained for consistency under strong augmentation is not.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from models.diffaugment import diff_augment

WEAK = ("translation",)
STRONG = ("color", "translation", "cutout")
MIRRORED = ("flip",)  # added to both for data whose classes look the same mirrored


def build_teacher_network(
    image_shape: tuple[int, int, int], num_classes: int | None, width: int = 32, dtype=None
) -> keras.Model:
    """A small VGG-style CNN (two convolutions per scale, global average pooling) from images in [-1, 1] to
    float32 logits, computing in ``dtype`` (a Keras dtype policy; ``None``: the global one). Without
    ``num_classes``: the same network up to its pooled features (an encoder, :mod:`models.simclr`'s), whose
    weights are the first ones of the classifier's."""
    image = keras.Input(image_shape, name="image")
    h = image
    for scale, filters in enumerate((width, 2 * width, 4 * width)):
        for _ in range(2 if scale < 2 else 1):
            h = layers.Conv2D(filters, 3, padding="same", activation="relu", dtype=dtype)(h)
        if scale < 2:
            h = layers.MaxPooling2D(dtype=dtype)(h)
    h = layers.GlobalAveragePooling2D(dtype=dtype)(h)
    if num_classes is None:
        return keras.Model(image, h, name="teacher_encoder")
    # Logits in float32 under any precision policy: the softmax, its threshold and the moving averages need it
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(h)
    return keras.Model(image, logits, name="teacher_network")


@keras.saving.register_keras_serializable(package="genaug")
class FixMatch(keras.Model):
    """FixMatch around :func:`build_teacher_network`, with an exponential moving average of its weights.

    Each step: cross-entropy on weakly augmented labelled images (random translation); the network's own
    prediction on a weakly augmented unlabelled image becomes that image's label when its probability is
    at least ``threshold``, and the strongly augmented copy (colour, translation, cutout) is trained
    towards it. The moving average (``ema_decay``) is what :meth:`call` uses outside training: it scores
    better than the raw weights, and it is what labels.

    Args:
        image_shape: ``(H, W, C)`` of the images.
        num_classes: number of labels.
        width: filters at the first scale.
        threshold: confidence at which an unlabelled image's prediction becomes its label.
        unlabeled_weight: weight of the unlabelled images' loss.
        ema_decay: decay of the weights' moving average.
        flip: mirror images at random too (right for clothes, wrong for digits).
        distribution_alignment: divide the unlabelled images' predictions by their running mean
            (ReMixMatch), so that pseudo-labels do not collapse onto the easy classes.
        seed: seed of the augmentations.

    Example:
        >>> teacher = FixMatch((28, 28, 1), 10)
        >>> teacher.compile()
        >>> teacher.fit(batches, steps_per_epoch=1000)  # ((x_l, y_l), x_u): x float [-1, 1], y int
        >>> probabilities = keras.ops.softmax(teacher.predict(x_test))
    """

    TRAINING_DEFAULTS = {"learning_rate": 3e-3}

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        num_classes: int,
        width: int = 32,
        threshold: float = 0.95,
        unlabeled_weight: float = 1.0,
        ema_decay: float = 0.99,
        distribution_alignment: bool = True,
        flip: bool = False,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not 0 < threshold <= 1 or not 0 <= ema_decay < 1:
            raise ValueError(f"threshold {threshold} must be in (0, 1] and ema_decay {ema_decay} in [0, 1)")
        self.image_shape, self.num_classes, self.width = tuple(image_shape), num_classes, width
        self.threshold, self.unlabeled_weight, self.ema_decay, self.seed = threshold, unlabeled_weight, ema_decay, seed
        # The model's own dtype policy (saved in its config), so that a loaded teacher computes as it trained
        self.network = build_teacher_network(self.image_shape, num_classes, width, self.dtype_policy)
        self.ema_network = build_teacher_network(self.image_shape, num_classes, width, self.dtype_policy)
        self.ema_network.set_weights(self.network.get_weights())
        self.distribution_alignment, self.flip = distribution_alignment, flip
        self.weak, self.strong = (WEAK + MIRRORED, STRONG + MIRRORED) if flip else (WEAK, STRONG)
        self.unlabeled_distribution = self.add_weight(
            shape=(num_classes,), initializer=keras.initializers.Constant(1 / num_classes), trainable=False
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("labelled_loss", "unlabeled_loss", "confident_share")
        }

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, optimizer=None, **kwargs):
        super().compile(optimizer=optimizer or keras.optimizers.Adam(**self.TRAINING_DEFAULTS), **kwargs)
        # Slots now, not in the first step (which then traced twice), and so a loaded file restores them.
        self.optimizer.build(self.network.trainable_variables)

    def compile_from_config(self, config):
        # keras.Model's version refuses to run for a custom compile(); this one is a plain extension.
        self.compile(**keras.saving.deserialize_keras_object(config))

    def call(self, images, training=False):
        return self.network(images, training=True) if training else self.ema_network(images, training=False)

    def start_from(self, encoder: keras.Model) -> None:
        """Starts the network and its moving average from ``encoder``'s weights (a pretrained
        ``build_teacher_network(..., num_classes=None)``); the logits layer keeps its initialisation."""
        features = encoder.get_weights()
        for network in (self.network, self.ema_network):
            network.set_weights(features + network.get_weights()[len(features) :])

    def train_step(self, data):
        import tensorflow as tf

        (labelled, labels), unlabeled = data
        batch = ops.shape(labelled)[0]
        # Pseudo-labels: the network's confident predictions on weakly augmented unlabelled images
        weak = diff_augment(unlabeled, self.weak, self.seed_generator)
        probabilities = ops.stop_gradient(ops.softmax(self.network(weak, training=False)))
        if self.distribution_alignment:  # ReMixMatch: every class as often as in the labelled data
            self.unlabeled_distribution.assign(
                0.99 * self.unlabeled_distribution + 0.01 * ops.mean(probabilities, axis=0)
            )
            probabilities = probabilities / self.unlabeled_distribution
            probabilities = probabilities / ops.sum(probabilities, axis=-1, keepdims=True)
        confidence, pseudo = ops.max(probabilities, axis=-1), ops.argmax(probabilities, axis=-1)
        confident = ops.cast(confidence >= self.threshold, "float32")
        # Train on weakly augmented labelled and strongly augmented unlabelled images in one pass
        inputs = ops.concatenate(
            [
                diff_augment(labelled, self.weak, self.seed_generator),
                diff_augment(unlabeled, self.strong, self.seed_generator),
            ]
        )
        with tf.GradientTape() as tape:
            logits = self.network(inputs, training=True)
            labelled_loss = ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits[:batch], from_logits=True)
            )
            unlabeled_loss = ops.mean(
                confident * keras.losses.sparse_categorical_crossentropy(pseudo, logits[batch:], from_logits=True)
            )
            loss = labelled_loss + self.unlabeled_weight * unlabeled_loss
        variables = self.network.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        # The moving average of every weight, batch-norm statistics included
        for average, current in zip(self.ema_network.variables, self.network.variables, strict=True):
            average.assign(self.ema_decay * average + (1 - self.ema_decay) * current)
        for name, value in (
            ("labelled_loss", labelled_loss),
            ("unlabeled_loss", unlabeled_loss),
            ("confident_share", ops.mean(confident)),
        ):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def get_config(self):
        return {
            **super().get_config(),
            "image_shape": self.image_shape,
            "num_classes": self.num_classes,
            "width": self.width,
            "threshold": self.threshold,
            "unlabeled_weight": self.unlabeled_weight,
            "ema_decay": self.ema_decay,
            "distribution_alignment": self.distribution_alignment,
            "flip": self.flip,
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="genaug")
class TeacherEnsemble(keras.Model):
    """Several trained teacher networks as one: :meth:`call` gives the logarithm of their mean class
    probabilities, so that a softmax of it is that mean (what labels, as one teacher's softmax does).

    Three FixMatch teachers from other initialisations on the same labels, averaged, labelled Fashion-MNIST's
    test split 1.1 points better than the mean member and varied less across label draws (docs/experiments.md).

    Args:
        members: models from images to float32 logits (:func:`build_teacher_network`'s, e.g. FixMatch's
            ``ema_network``), all of the same input shape and classes.

    Example:
        >>> ensemble = TeacherEnsemble([teacher.ema_network for teacher in teachers])
        >>> probabilities = keras.ops.softmax(ensemble(x))
    """

    def __init__(self, members: list[keras.Model], **kwargs):
        super().__init__(**kwargs)
        if not members:
            raise ValueError("a teacher ensemble needs at least one member")
        self.members = list(members)

    def call(self, images, training=False):
        probabilities = ops.stack([ops.softmax(member(images, training=False)) for member in self.members])
        return ops.log(ops.mean(probabilities, axis=0))

    def get_config(self):
        members = [keras.saving.serialize_keras_object(member) for member in self.members]
        return {**super().get_config(), "members": members}

    @classmethod
    def from_config(cls, config):
        members = [keras.saving.deserialize_keras_object(member) for member in config.pop("members")]
        return cls(members, **config)

"""The small CNN classifier recipe used as the sampler's oracle and as evaluate's downstream model.

Recipe (fixed, so numbers are comparable): uint8 input rescaled to [-1, 1]; conv 32 (3x3) ReLU;
conv 64 (3x3, stride 2) ReLU; conv 128 (3x3, stride 2) ReLU; flatten; dense 128 ReLU (the
``features`` layer); dropout 0.3; dense logits. Adam 1e-3, batch 64, sparse cross-entropy (categorical
cross-entropy for the soft labels of mixup and cutmix).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from genaug.startup import input_pipeline_options, set_random_seed

FEATURES_LAYER = "features"
# Tiny models are dominated by per-step dispatch; running 50 steps per call made training ~4x faster.
STEPS_PER_EXECUTION = 50


def build_classifier(image_shape: tuple[int, int, int], num_classes: int, *, soft_labels: bool = False) -> keras.Model:
    """The recipe above as a functional model taking uint8 images and giving logits, compiled with
    Adam(1e-3) and sparse cross-entropy, or categorical cross-entropy for one-hot or soft label vectors
    when ``soft_labels`` (so ``fit`` works at once)."""
    model = _network(image_shape, num_classes)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=(
            keras.losses.CategoricalCrossentropy(from_logits=True)
            if soft_labels
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        ),
        weighted_metrics=["accuracy"],
        steps_per_execution=STEPS_PER_EXECUTION,
    )
    # The metrics' state now: without a distribution strategy Keras creates it inside the first traced
    # step, and a first trace that creates variables is traced twice (0.7 s more per first fit).
    blank = np.zeros((1, *image_shape), np.uint8)
    label = np.zeros((1, num_classes), np.float32) if soft_labels else np.zeros((1,), np.int64)
    model.compute_metrics(blank, label, model(blank))
    model.reset_metrics()
    return model


def _network(image_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """The recipe's layers, uncompiled; their initial weights come from the global seed."""
    image = keras.Input(image_shape, name="image")
    h = layers.Rescaling(1 / 127.5, offset=-1.0)(image)
    h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2D(128, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Dense(128, activation="relu", name=FEATURES_LAYER)(layers.Flatten()(h))
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(h))
    return keras.Model(image, logits, name="classifier")


class ClassifierTrainer:
    """Trains the recipe from one seed after another with one compiled model.

    Each :meth:`fit` first gives the model the weights, dropout RNG state and optimizer state of a fresh
    model built from that seed, so the result is the fresh model's; only the compiled training step is
    kept. That saves tracing a new step per seed (about a second each, and TensorFlow's retracing warnings).
    Batches with label vectors (mixup, cutmix) train a second compiled model with categorical cross-entropy.
    """

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, *, steps: int):
        self.image_shape, self.num_classes, self.steps = tuple(image_shape), num_classes, steps
        self._compiled = {}  # soft labels? -> (compiled model, its optimizer's fresh state)

    def _model(self, soft_labels: bool) -> tuple[keras.Model, list[np.ndarray]]:
        if soft_labels not in self._compiled:
            model = build_classifier(self.image_shape, self.num_classes, soft_labels=soft_labels)
            model.optimizer.build(model.trainable_variables)
            self._compiled[soft_labels] = model, [v.numpy() for v in model.optimizer.variables]
        return self._compiled[soft_labels]

    def fit(self, train: tf.data.Dataset, *, seed: int) -> keras.Model:
        """The model trained on ``train`` from ``seed`` (the same object every call: use it before the next).

        Args:
            train: batches of ``(x, y)`` or ``(x, y, sample_weight)``, x uint8 or float in [0, 255], y
                integer labels or label vectors (mixup, cutmix); repeated as needed.
            seed: seeds initialisation and dropout (shuffling is the dataset's).
        """
        model, fresh_optimizer = self._model(soft_labels=train.element_spec[1].shape.rank == 2)
        set_random_seed(seed)
        fresh = _network(self.image_shape, self.num_classes)  # only its initial weights are used
        for variable, value in zip(model.variables, fresh.variables, strict=True):
            variable.assign(value)
        for variable, value in zip(model.optimizer.variables, fresh_optimizer, strict=True):
            variable.assign(value)
        # Exactly ``steps`` batches: Keras runs whole executions of STEPS_PER_EXECUTION steps on an endless
        # dataset (20 asked steps trained 50, 631 trained 650); a finite one ends the last execution early.
        batches = train.repeat().take(self.steps).with_options(input_pipeline_options())
        model.fit(batches, steps_per_epoch=self.steps, epochs=1, shuffle=False, verbose=0)
        return model


def train_classifier(
    train: tf.data.Dataset,
    image_shape: tuple[int, int, int],
    num_classes: int,
    *,
    seed: int,
    steps: int,
) -> keras.Model:
    """Trains the recipe from a seed for a fixed number of steps (a fair budget across data mixes).

    Args:
        train: batches of ``(x, y)`` or ``(x, y, sample_weight)``, x uint8 or float in [0, 255];
            repeated as needed.
        image_shape: ``(H, W, C)``.
        num_classes: number of labels.
        seed: seeds initialisation and dropout (shuffling is the dataset's).
        steps: gradient steps.
    """
    return ClassifierTrainer(image_shape, num_classes, steps=steps).fit(train, seed=seed)


def arrays_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int = 64, seed: int = 0) -> tf.data.Dataset:
    """Endless ``(x, y)`` batches from in-memory arrays, reshuffled every pass, in an order that is a
    function of ``seed`` alone. (``Dataset.shuffle(seed=...)`` also reads TensorFlow's global seed, so the
    same call gave another order, and another oracle, after whatever had run earlier in the process.)"""
    images, labels = tf.constant(x), tf.constant(y)

    def one_pass(index: tf.Tensor) -> tf.data.Dataset:
        key = tf.stack([tf.constant(seed, tf.int64), index])
        return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(tf.range(len(y)), key))

    picks = tf.data.Dataset.counter().flat_map(one_pass).batch(batch_size)
    return picks.map(lambda i: (tf.gather(images, i), tf.gather(labels, i)))


def predict_proba(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Class probabilities (float32 N x classes) for uint8 images."""
    classes = model.output.shape[-1]
    return _in_batches(lambda x: keras.ops.softmax(model(x, training=False)), images, batch_size, classes)


def penultimate_features(model: keras.Model, images: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """The ``features`` layer's activations (float64 N x 128): the domain feature space for fidelity."""
    extractor = keras.Model(model.input, model.get_layer(FEATURES_LAYER).output)
    width = extractor.output.shape[-1]
    return _in_batches(lambda x: extractor(x, training=False), images, batch_size, width).astype(np.float64)


def _in_batches(forward, images: np.ndarray, batch_size: int, width: int) -> np.ndarray:
    """``forward`` over ``images`` in batches, called eagerly: a one-off pass gains nothing from tracing a
    graph (and a graph per model makes TensorFlow warn about retracing)."""
    parts = [keras.ops.convert_to_numpy(forward(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, width), np.float32)

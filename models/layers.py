"""Small custom layers the networks need (registered, so ``.keras`` files load in safe mode)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="genaug")
class ProjectionHead(keras.layers.Layer):
    """The output of a projection discriminator (Miyato & Koyama, 2018).

    ``logit = w . phi(x) + b + embed(y) . phi(x)``: the label enters as an inner product with the
    features, which conditions D far more stably on small data than concatenating label planes.

    Args:
        num_classes: number of labels; ``None`` for an unconditional head.
        spectral_norm: wrap the dense output in spectral normalisation.
    """

    def __init__(self, num_classes: int | None = None, spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.spectral_norm = spectral_norm
        dense = keras.layers.Dense(1, name="linear", dtype=self.dtype_policy)
        self.linear = keras.layers.SpectralNormalization(dense) if spectral_norm else dense
        self.embedding = None  # its width is the feature width, known in build()

    def build(self, input_shape):
        features_shape = input_shape[0] if self.num_classes else input_shape
        self.linear.build(features_shape)
        if self.num_classes:
            self.embedding = keras.layers.Embedding(
                self.num_classes, features_shape[-1], name="class_embedding", dtype=self.dtype_policy
            )
            self.embedding.build(input_shape[1])

    def call(self, inputs):
        if not self.num_classes:
            return self.linear(inputs)
        features, labels = inputs
        features = ops.cast(features, self.compute_dtype)
        projection = ops.sum(self.embedding(labels) * features, axis=-1, keepdims=True)
        # SpectralNormalization may compute in float32 under mixed precision: meet in one dtype.
        return ops.cast(self.linear(features), self.compute_dtype) + projection

    def compute_output_shape(self, input_shape):
        features_shape = input_shape[0] if self.num_classes else input_shape
        return (*features_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "spectral_norm": self.spectral_norm}

"""Small custom layers the networks need (registered, so ``.keras`` files load in safe mode)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="genaug")
class LatentSlice(keras.layers.Layer):
    """Columns ``start:stop`` of a latent batch (the part of ``z`` a block reads)."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        self.start, self.stop = start, stop

    def call(self, z):
        return z[:, self.start : self.stop]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.stop - self.start)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package="genaug")
class NoiseInjection(keras.layers.Layer):
    """Per-pixel noise added to a feature map, scaled per channel by a learnt weight that starts at zero
    (StyleGAN, Karras et al. 2019): ``h + scale[c] * noise[y, x]``.

    The noise is not drawn inside the layer: it is ``H * W`` columns of the generator's input ``z`` from
    ``start`` on, so an image stays a pure function of its latent draw (the sampler's seeds).
    """

    def __init__(self, start: int, **kwargs):
        super().__init__(**kwargs)
        self.start = start

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[0][-1],), initializer="zeros", name="noise_scale")

    def call(self, inputs):
        h, z = inputs
        height, width = h.shape[1], h.shape[2]
        noise = ops.reshape(z[:, self.start : self.start + height * width], (-1, height, width, 1))
        return h + ops.cast(noise, h.dtype) * ops.cast(self.scale, h.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "start": self.start}


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

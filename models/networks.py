"""Convolutional networks for any square image size from 8x8 to 64x64, built from arguments alone.

A size ``S`` is ``base * 2**n`` with base 4 (8, 16, 32, 64) or base 7 (28, 56): the generator
starts from a ``base x base`` map and doubles ``n`` times; the discriminator/encoder mirror it.
"""

from __future__ import annotations

import keras
from keras import layers

from models.layers import LatentSlice, NoiseInjection, ProjectionHead
from models.shapes import upsampling_plan

MAX_FILTERS = 512


def _filters(base_filters: int, level: int) -> int:
    return min(base_filters * 2**level, MAX_FILTERS)


def _maybe_sn(layer: layers.Layer, spectral_norm: bool) -> layers.Layer:
    return layers.SpectralNormalization(layer) if spectral_norm else layer


def noise_dims(image_shape: tuple[int, int, int]) -> int:
    """Latent columns :func:`build_generator` reads as per-pixel noise with ``noise_injection``: one map
    per upsampling block, ``2S x 2S`` up to the image size."""
    base, n = upsampling_plan(image_shape)
    return sum((base * 2 ** (level + 1)) ** 2 for level in range(n))


def build_generator(
    image_shape: tuple[int, int, int],
    latent_dim: int,
    num_classes: int | None = None,
    base_filters: int = 64,
    output_activation: str | None = "tanh",
    name: str = "generator",
    noise_injection: bool = False,
) -> keras.Model:
    """z (and a label) -> image. Dense to a ``base x base`` map, then n x (upsample 2x, conv, BN, ReLU).

    Args:
        image_shape: output ``(H, W, C)``.
        latent_dim: size of z.
        num_classes: if set, the network also takes an int label, embedded and joined to z.
        base_filters: filters of the last block; each earlier block doubles it (up to 512).
        output_activation: ``"tanh"`` for images in [-1, 1], or ``None`` for pre-activations.
        name: the model name.
        noise_injection: after each upsampling block's convolution, add per-pixel noise scaled by a learnt
            per-channel weight (:class:`models.layers.NoiseInjection`); the noise is read from
            :func:`noise_dims` extra columns of ``z``, after the ``latent_dim`` that feed the dense layer.

    Returns:
        A functional model taking ``z`` or ``[z, label]``; its output is float32 in any precision policy.
    """
    base, n = upsampling_plan(image_shape)
    extra = noise_dims(image_shape) if noise_injection else 0
    z = keras.Input((latent_dim + extra,), name="z")
    inputs, h = [z], LatentSlice(0, latent_dim, name="style")(z) if extra else z
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        h = layers.Concatenate()([h, layers.Embedding(num_classes, latent_dim, name="label_embedding")(label)])
    h = layers.Dense(base * base * _filters(base_filters, n), use_bias=False)(h)
    h = layers.Reshape((base, base, _filters(base_filters, n)))(h)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    start = latent_dim
    for level in reversed(range(n)):
        h = layers.UpSampling2D(interpolation="nearest")(h)
        h = layers.Conv2D(_filters(base_filters, level), 3, padding="same", use_bias=False)(h)
        if noise_injection:
            h = NoiseInjection(start)([h, z])
            start += h.shape[1] * h.shape[2]
        h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.Conv2D(image_shape[-1], 3, padding="same", name="to_pixels")(h)
    out = layers.Activation(output_activation or "linear", dtype="float32", name="pixels")(h)
    return keras.Model(inputs if num_classes else z, out, name=name)


def build_discriminator(
    image_shape: tuple[int, int, int],
    num_classes: int | None = None,
    base_filters: int = 64,
    spectral_norm: bool = False,
    dropout: float = 0.0,
    name: str = "discriminator",
) -> keras.Model:
    """image (and a label) -> one float32 logit. Conv, then n x (strided conv, LeakyReLU), projection head.

    No batch norm: it couples examples within a batch, which breaks gradient penalties and R1.
    """
    _, n = upsampling_plan(image_shape)
    image = keras.Input(image_shape, name="image")
    h = _maybe_sn(layers.Conv2D(base_filters, 3, padding="same"), spectral_norm)(image)
    h = layers.LeakyReLU(negative_slope=0.2)(h)
    for level in range(1, n + 1):
        conv = layers.Conv2D(_filters(base_filters, level), 4, strides=2, padding="same")
        h = layers.LeakyReLU(negative_slope=0.2)(_maybe_sn(conv, spectral_norm)(h))
    features = layers.Flatten()(h)
    if dropout:
        features = layers.Dropout(dropout)(features)
    inputs = [image]
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        logit = ProjectionHead(num_classes, spectral_norm, dtype="float32")([features, label])
    else:
        logit = ProjectionHead(None, spectral_norm, dtype="float32")(features)
    return keras.Model(inputs if num_classes else image, logit, name=name)


def build_encoder(
    image_shape: tuple[int, int, int],
    latent_dim: int,
    num_classes: int | None = None,
    base_filters: int = 32,
    name: str = "encoder",
) -> keras.Model:
    """image (and a label) -> (z_mean, z_log_var), both float32."""
    _, n = upsampling_plan(image_shape)
    image = keras.Input(image_shape, name="image")
    h = layers.Conv2D(base_filters, 3, padding="same", activation="relu")(image)
    for level in range(1, n + 1):
        h = layers.Conv2D(_filters(base_filters, level), 4, strides=2, padding="same", activation="relu")(h)
    h = layers.Flatten()(h)
    inputs = [image]
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        h = layers.Concatenate()([h, layers.Embedding(num_classes, 32, name="label_embedding")(label)])
    h = layers.Dense(256, activation="relu")(h)
    z_mean = layers.Dense(latent_dim, dtype="float32", name="z_mean")(h)
    z_log_var = layers.Dense(latent_dim, dtype="float32", name="z_log_var")(h)
    return keras.Model(inputs if num_classes else image, [z_mean, z_log_var], name=name)

"""Plain re-implementations of two keras-io recipes, the baselines of ``bench_train.py``.

Written from the published descriptions of keras-io's ``conditional_gan.py`` and ``vae.py``, with their
habits kept on purpose: one-hot labels concatenated to G's latent and as planes to D's input, a fresh
generator forward for each of the D and G updates, ``compile()`` defaults (one step per execution), an
uncached ``from_tensor_slices -> shuffle(1024) -> batch`` pipeline, images in [0, 1] with a sigmoid.
Only the image size is a parameter (keras-io fixes 28): G starts from ``size/4 x size/4``.

``genaug_gan_networks``/``genaug_vae_networks`` are the same layers in the interface genaug's models
take (integer labels in, images in [-1, 1] or pre-activations out), so a benchmark can train the
reference's architecture with genaug's ``train_step``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

LATENT_DIM = 128  # conditional_gan.py
VAE_LATENT_DIM = 2  # vae.py
LEARNING_RATE = 3e-4  # conditional_gan.py (vae.py uses Adam's default 1e-3)


def _gan_generator_layers(size: int, latent_dim: int, num_classes: int, output_activation: str) -> list:
    channels = latent_dim + num_classes
    return [
        layers.Dense((size // 4) * (size // 4) * channels),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Reshape((size // 4, size // 4, channels)),
        layers.Conv2DTranspose(128, 4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(128, 4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(1, 7, padding="same", activation=output_activation),
    ]


def _gan_discriminator_layers() -> list:
    return [
        layers.Conv2D(64, 3, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(128, 3, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.GlobalMaxPooling2D(),
        layers.Dense(1),
    ]


def _stack(h, stack):
    for layer in stack:
        h = layer(h)
    return h


class ReferenceConditionalGAN(keras.Model):
    """keras-io ``ConditionalGAN``: takes ``(images in [0, 1], one-hot labels)`` batches."""

    def __init__(self, size: int, num_classes: int = 10, latent_dim: int = LATENT_DIM, seed: int = 1337):
        super().__init__()
        self.size, self.num_classes, self.latent_dim = size, num_classes, latent_dim
        self.generator = keras.Sequential(
            [keras.Input((latent_dim + num_classes,)), *_gan_generator_layers(size, latent_dim, num_classes, "sigmoid")]
        )
        self.discriminator = keras.Sequential(
            [keras.Input((size, size, 1 + num_classes)), *_gan_discriminator_layers()]
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.gen_loss_tracker = keras.metrics.Mean(name="generator_loss")
        self.disc_loss_tracker = keras.metrics.Mean(name="discriminator_loss")

    @property
    def metrics(self):
        return [self.gen_loss_tracker, self.disc_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn

    def train_step(self, data):
        real_images, one_hot_labels = data
        planes = ops.repeat(one_hot_labels[:, :, None, None], repeats=[self.size * self.size])
        planes = ops.reshape(planes, (-1, self.size, self.size, self.num_classes))
        batch_size = ops.shape(real_images)[0]

        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        generated = self.generator(ops.concatenate([z, one_hot_labels], axis=1))
        combined = ops.concatenate(
            [ops.concatenate([generated, planes], -1), ops.concatenate([real_images, planes], -1)], axis=0
        )
        targets = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(targets, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights, strict=True))

        z = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            fake = self.generator(ops.concatenate([z, one_hot_labels], axis=1))
            g_loss = self.loss_fn(ops.zeros((batch_size, 1)), self.discriminator(ops.concatenate([fake, planes], -1)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights, strict=True))

        self.gen_loss_tracker.update_state(g_loss)
        self.disc_loss_tracker.update_state(d_loss)
        return {"g_loss": self.gen_loss_tracker.result(), "d_loss": self.disc_loss_tracker.result()}

    def generate(self, labels: np.ndarray, seed: int = 0) -> np.ndarray:
        """uint8 images for integer ``labels``."""
        z = np.random.default_rng(seed).standard_normal((len(labels), self.latent_dim)).astype("float32")
        one_hot = np.eye(self.num_classes, dtype="float32")[labels]
        images = self.generator.predict(np.concatenate([z, one_hot], 1), batch_size=512, verbose=0)
        return np.clip(np.round(images * 255), 0, 255).astype(np.uint8)


def compiled_reference_gan(size: int, num_classes: int = 10) -> ReferenceConditionalGAN:
    gan = ReferenceConditionalGAN(size, num_classes)
    gan.compile(
        d_optimizer=keras.optimizers.Adam(LEARNING_RATE),
        g_optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss_fn=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    return gan


def reference_gan_dataset(x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int) -> tf.data.Dataset:
    """keras-io's pipeline: float images in [0, 1] and one-hot labels, shuffled and batched."""
    images = x.astype("float32") / 255.0
    one_hot = keras.utils.to_categorical(y, num_classes)
    return tf.data.Dataset.from_tensor_slices((images, one_hot)).shuffle(buffer_size=1024).batch(batch_size)


def _vae_encoder_layers() -> list:
    return [
        layers.Conv2D(32, 3, activation="relu", strides=2, padding="same"),
        layers.Conv2D(64, 3, activation="relu", strides=2, padding="same"),
        layers.Flatten(),
        layers.Dense(16, activation="relu"),
    ]


def _vae_decoder_layers(size: int, output_activation: str | None) -> list:
    return [
        layers.Dense((size // 4) * (size // 4) * 64, activation="relu"),
        layers.Reshape((size // 4, size // 4, 64)),
        layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same"),
        layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same"),
        layers.Conv2DTranspose(1, 3, activation=output_activation, padding="same"),
    ]


def _encoder(size: int, latent_dim: int) -> keras.Model:
    image = keras.Input((size, size, 1))
    h = _stack(image, _vae_encoder_layers())
    return keras.Model(
        image, [layers.Dense(latent_dim, name="z_mean")(h), layers.Dense(latent_dim, name="z_log_var")(h)]
    )


class ReferenceVAE(keras.Model):
    """keras-io ``VAE``: sigmoid decoder, per-pixel BCE summed over the image, KL summed over z."""

    def __init__(self, size: int, latent_dim: int = VAE_LATENT_DIM, seed: int = 1337):
        super().__init__()
        self.encoder = _encoder(size, latent_dim)
        self.decoder = keras.Sequential([keras.Input((latent_dim,)), *_vae_decoder_layers(size, "sigmoid")])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var = self.encoder(data)
            epsilon = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
            reconstruction = self.decoder(z_mean + ops.exp(0.5 * z_log_var) * epsilon)
            reconstruction_loss = ops.mean(ops.sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


def compiled_reference_vae(size: int) -> ReferenceVAE:
    vae = ReferenceVAE(size)
    vae.compile(optimizer=keras.optimizers.Adam())
    return vae


def genaug_gan_networks(size: int, num_classes: int = 10, latent_dim: int = LATENT_DIM) -> tuple:
    """The reference's G and D taking integer labels, for ``ConditionalDCGAN(generator=, discriminator=)``."""
    z, label = keras.Input((latent_dim,), name="z"), keras.Input((), dtype="int32", name="label")
    one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot")(label)
    h = layers.Concatenate()([z, one_hot])
    generator = keras.Model([z, label], _stack(h, _gan_generator_layers(size, latent_dim, num_classes, "tanh")))
    image, d_label = keras.Input((size, size, 1), name="image"), keras.Input((), dtype="int32", name="label")
    planes = layers.Reshape((1, 1, num_classes))(layers.CategoryEncoding(num_classes, output_mode="one_hot")(d_label))
    h = layers.Concatenate()([image, layers.UpSampling2D(size)(planes)])
    discriminator = keras.Model([image, d_label], _stack(h, _gan_discriminator_layers()))
    return generator, discriminator


def genaug_vae_networks(size: int, latent_dim: int = VAE_LATENT_DIM) -> tuple:
    """The reference's encoder and decoder (pre-activation output), for ``VAE(encoder=, decoder=)``."""
    z = keras.Input((latent_dim,))
    return _encoder(size, latent_dim), keras.Model(z, _stack(z, _vae_decoder_layers(size, None)))

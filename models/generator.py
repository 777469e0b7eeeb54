"""``SyntheticGenerator``: what a trained model exports for sampling (``generator.keras``)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from models.scaling import from_model_range


def add_prior_weights(layer: keras.Layer, latent_dim: int, num_classes: int | None) -> tuple:
    """``(mean, scale)`` variables of a per-class Gaussian latent prior on ``layer``, initialised to
    N(0, I): zero means and identity scales, one component per class (one when unconditional)."""
    components, eye = num_classes or 1, np.eye(latent_dim, dtype="float32")
    mean = layer.add_weight(shape=(components, latent_dim), initializer="zeros", trainable=False, name="prior_mean")
    scale = layer.add_weight(
        shape=(components, latent_dim, latent_dim),
        initializer=lambda shape, dtype: np.broadcast_to(eye, shape),
        trainable=False,
        name="prior_scale",
    )
    return mean, scale


@keras.saving.register_keras_serializable(package="genaug")
class SyntheticGenerator(keras.Model):
    """A generator network plus what sampling needs to know: latent size, classes, output range and
    the latent distribution.

    Latents are ``mean[k] + scale[k] @ eps`` with ``eps`` standard normal and ``k`` the label (0 when
    unconditional). The prior is standard normal (zero means, identity scales) unless a model fitted
    one (see :meth:`VAE.fit_latent_prior`); it is saved with the weights.

    Args:
        network: a model taking ``z`` or ``[z, label]``.
        latent_dim: size of z.
        num_classes: number of classes the network is conditioned on, or ``None`` (unconditional).
        output_activation: applied to the network's output to reach [-1, 1]: ``"tanh"`` for a VAE
            decoder's pre-activations, ``None`` when the network already ends in tanh.

    Example:
        >>> images, labels = generator.generate(20, labels=[3] * 20, seed=7)  # uint8 NxHxWxC
    """

    def __init__(
        self,
        network: keras.Model,
        latent_dim: int,
        num_classes: int | None = None,
        output_activation: str | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.network = network
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        self.output_activation = output_activation
        self.prior_mean, self.prior_scale = add_prior_weights(self, latent_dim, num_classes)
        self.built = True

    @property
    def image_shape(self) -> tuple[int, int, int]:
        z_shape = (None, self.latent_dim)
        shape = self.network.compute_output_shape([z_shape, (None,)] if self.num_classes else z_shape)
        return tuple(shape[1:])

    def call(self, inputs, training=False):
        images = self.network(inputs, training=training)
        return ops.tanh(images) if self.output_activation == "tanh" else images

    def latents(self, n: int, seed: int, truncation: float | None = None, temperature: float = 1.0):
        """``n`` latent vectors, a pure function of ``seed``: standard normal, optionally truncated
        (values beyond ``truncation`` resampled) and scaled by ``temperature``."""
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, self.latent_dim)).astype(np.float32)
        if truncation is not None:
            if truncation <= 0:
                raise ValueError(f"truncation must be positive, got {truncation}")
            outside = np.abs(z) > truncation
            while outside.any():
                z[outside] = rng.standard_normal(int(outside.sum())).astype(np.float32)
                outside = np.abs(z) > truncation
        return z * np.float32(temperature)

    def network_inputs(
        self, n: int, labels=None, *, seed: int = 0, truncation: float | None = None, temperature: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """What :meth:`generate` feeds the network, for callers that run the forward pass themselves.

        Returns:
            ``(z float32[n, latent_dim], codes int32[n] or None, labels int64[n] or None)``.
        """
        if self.num_classes:
            labels = np.arange(n) % self.num_classes if labels is None else np.asarray(labels)
            if labels.shape != (n,) or labels.min(initial=0) < 0 or labels.max(initial=0) >= self.num_classes:
                raise ValueError(f"labels must be {n} integers in [0, {self.num_classes})")
            labels = labels.astype(np.int64)
        elif labels is not None:
            raise ValueError("this generator is unconditional: labels must be None")
        z = self._from_prior(self.latents(n, seed, truncation, temperature), labels)
        return z, (labels.astype(np.int32) if self.num_classes else None), labels

    def _from_prior(self, eps: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        mean, scale = ops.convert_to_numpy(self.prior_mean), ops.convert_to_numpy(self.prior_scale)
        if not mean.any() and (scale == np.eye(self.latent_dim)).all():
            return eps  # the standard prior, bit for bit
        k = labels if labels is not None else np.zeros(len(eps), np.int64)
        return (mean[k] + np.einsum("nij,nj->ni", scale[k], eps)).astype(np.float32)

    def generate(
        self,
        n: int,
        labels=None,
        *,
        seed: int = 0,
        truncation: float | None = None,
        temperature: float = 1.0,
        batch_size: int = 512,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Generates ``n`` uint8 images; the same arguments always give the same images.

        Args:
            n: number of images.
            labels: conditioning labels (length ``n``) for a conditional generator; default cycles
                through the classes. Must be ``None`` for an unconditional one.
            seed: seed of the latent vectors.
            truncation: resample standardised latent values whose magnitude exceeds this (the
                truncation trick).
            temperature: scale of the standardised latent vectors.
            batch_size: images per forward pass (does not change the result).

        Returns:
            ``(images uint8[n, H, W, C], labels int64[n] or None)``.
        """
        z, codes, labels = self.network_inputs(n, labels, seed=seed, truncation=truncation, temperature=temperature)
        out = np.empty((n, *self.image_shape), np.uint8)
        if 0 < n <= batch_size:  # one pass: run eagerly, a traced graph would be used once
            out[:] = from_model_range(self(self._inputs(z, codes), training=False))
            return out, labels
        for start in range(0, n, batch_size):
            z_part = z[start : start + batch_size]
            size = len(z_part)
            # The last batch is padded to the full size, so the compiled step is traced for one shape only.
            padding = [(0, batch_size - size)]
            z_part = np.pad(z_part, padding + [(0, 0)])
            code_part = None if codes is None else np.pad(codes[start : start + batch_size], padding)
            out[start : start + size] = from_model_range(self.predict_on_batch(self._inputs(z_part, code_part)))[:size]
        return out, labels

    def _inputs(self, z, codes):
        return z if codes is None else [z, codes]

    def get_config(self):
        return {
            **super().get_config(),
            "network": keras.saving.serialize_keras_object(self.network),
            "latent_dim": self.latent_dim,
            "num_classes": self.num_classes,
            "output_activation": self.output_activation,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)

"""Variational autoencoders (Kingma & Welling, 2014), unconditional and class-conditional."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from models.base import GenerativeModel, adam, require_classes
from models.generator import SyntheticGenerator, add_prior_weights
from models.networks import build_encoder, build_generator
from models.replicas import per_replica, step_logs

LATENT_PRIORS = ("fitted", "standard")


@keras.saving.register_keras_serializable(package="genaug")
class VAE(GenerativeModel):
    """A convolutional VAE on images in [-1, 1] with a Bernoulli likelihood.

    The decoder outputs pre-activations ``a``; the image is ``tanh(a)`` and the likelihood of the
    pixel intensity ``(x + 1) / 2`` is Bernoulli with logits ``2a`` (since ``tanh(a) = 2 sigmoid(2a) - 1``),
    so reconstruction is a numerically stable cross-entropy. Loss = reconstruction + beta * KL.

    Sampling draws from N(0, I) until :meth:`fit_latent_prior` fits a Gaussian per class to the
    encoded training images (ex-post density estimation, Ghosh et al. 2020): with beta < 1 the
    codes the decoder learned from drift away from N(0, I), and sampling where they are is better.
    ``genaug train`` calls it after ``fit`` when ``latent_prior == "fitted"``; so should you.

    The defaults are the tuned ones ``genaug train`` uses (the experiments are in docs/experiments.md),
    and ``compile()`` without an optimizer uses :attr:`TRAINING_DEFAULTS`.

    Args:
        image_shape: ``(H, W, C)``; any size the networks support (8..64).
        latent_dim: size of z.
        num_classes: classes to condition encoder and decoder on, or ``None``.
        base_filters: width of the networks.
        beta: weight of the KL term.
        latent_prior: how samples are drawn after training: ``"fitted"`` (a Gaussian per class fitted
            by :meth:`fit_latent_prior`) or ``"standard"`` (N(0, I)).
        prior_spread: how much :meth:`fit_latent_prior` widens the fitted Gaussians.
        seed: seed of the reparameterisation noise.
        encoder: your own encoder instead of the built one: ``image`` (or ``[image, label]``) ->
            ``[z_mean, z_log_var]``, both float32 of size ``latent_dim``.
        decoder: your own decoder: ``z`` (or ``[z, label]``) -> float32 pre-activations ``a`` (the
            image is ``tanh(a)``). ``base_filters`` then does not apply.

    Example:
        >>> vae = VAE((8, 8, 1))
        >>> vae.compile()  # Adam with TRAINING_DEFAULTS
        >>> vae.fit(train_ds, epochs=1)  # elements {"image": float [-1, 1], "label": int}
        >>> vae.fit_latent_prior(train_images)  # float [-1, 1]; add labels when conditional
        >>> images, _ = vae.generate(16, seed=0)
    """

    NETWORKS = ("encoder", "decoder")

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 16,
        num_classes: int | None = None,
        base_filters: int = 32,
        beta: float = 0.25,
        latent_prior: str = "fitted",
        prior_spread: float = 1.5,
        seed: int = 0,
        encoder: keras.Model | None = None,
        decoder: keras.Model | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if latent_prior not in LATENT_PRIORS:
            raise ValueError(f"latent_prior {latent_prior!r}: expected one of {', '.join(LATENT_PRIORS)}")
        if prior_spread <= 0:
            raise ValueError(f"prior_spread must be positive, got {prior_spread}")
        image_shape = tuple(image_shape)
        self._keep_arguments(locals())
        self.encoder = encoder or build_encoder(self.image_shape, latent_dim, num_classes, base_filters)
        self.decoder = decoder or build_generator(
            self.image_shape, latent_dim, num_classes, base_filters, output_activation=None, name="decoder"
        )
        self.seed_generator = keras.random.SeedGenerator(seed)
        # The sampling prior handed to the exported generator (standard until fit_latent_prior).
        self.prior_mean, self.prior_scale = add_prior_weights(self, latent_dim, num_classes)
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True

    #: What ``compile()`` and ``genaug train`` use unless told otherwise (``fit`` takes the epochs).
    # ``genaug train`` stops at whichever of ``epochs`` and ``max_steps`` comes first (unless given epochs).
    TRAINING_DEFAULTS = {
        "epochs": 150,
        "max_steps": 3500,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "beta_1": 0.9,
        "beta_2": 0.999,
    }

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def compile(self, optimizer: keras.optimizers.Optimizer | None = None, **kwargs):
        """``keras.Model.compile``; ``optimizer`` defaults to Adam with :attr:`TRAINING_DEFAULTS`."""
        super().compile(optimizer=optimizer or adam(self.TRAINING_DEFAULTS, "learning_rate"), **kwargs)
        # Slots now, not in the first step (which then traced twice), and so a loaded file restores them.
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config):
        # keras.Model's version refuses to run for a custom compile(); this one is a plain extension.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)

    def _with_label(self, first, labels):
        return [first, labels] if self.num_classes else first

    def _elbo_terms(self, data, training: bool):
        images, labels = data["image"], data.get("label")
        z_mean, z_log_var = self.encoder(self._with_label(images, labels), training=training)
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        z = z_mean + ops.exp(0.5 * z_log_var) * eps
        pre_activation = ops.cast(self.decoder(self._with_label(z, labels), training=training), "float32")
        targets = (ops.cast(images, "float32") + 1.0) / 2.0
        cross_entropy = ops.binary_crossentropy(targets, 2.0 * pre_activation, from_logits=True)
        reconstruction = ops.mean(ops.sum(cross_entropy, axis=[1, 2, 3]))
        kl = ops.mean(-0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1))
        return reconstruction + self.beta * kl, reconstruction, kl

    def _track(self, total, reconstruction, kl):
        self.total_loss_tracker.update_state(total)
        self.reconstruction_loss_tracker.update_state(reconstruction)
        self.kl_loss_tracker.update_state(kl)
        return step_logs(self.metrics)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, reconstruction, kl = self._elbo_terms(data, training=True)
            scaled = self.optimizer.scale_loss(per_replica(total))
        grads = tape.gradient(scaled, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        return self._track(total, reconstruction, kl)

    def test_step(self, data):
        return self._track(*self._elbo_terms(data, training=False))

    def call(self, inputs, training=False):
        """Reconstructs ``inputs`` (a dict with ``image`` and, if conditional, ``label``) in [-1, 1]."""
        labels = inputs.get("label")
        z_mean, _ = self.encoder(self._with_label(inputs["image"], labels), training=training)
        return ops.tanh(self.decoder(self._with_label(z_mean, labels), training=training))

    def export_generator(self) -> SyntheticGenerator:
        """The decoder and latent prior as a standalone sampler (shares the decoder with this model)."""
        generator = SyntheticGenerator(self.decoder, self.latent_dim, self.num_classes, output_activation="tanh")
        generator.prior_mean.assign(self.prior_mean)
        generator.prior_scale.assign(self.prior_scale)
        return generator

    def posterior_means(self, images, labels=None, batch_size: int = 512) -> np.ndarray:
        """The encoder's means (float32[N, latent_dim]) of ``images`` (float, in [-1, 1]); a conditional
        model needs their ``labels``."""
        if self.num_classes and labels is None:
            raise ValueError("posterior_means needs the labels of a conditional model's images")
        images = np.asarray(images, np.float32)
        labels = np.asarray(labels, np.int64) if self.num_classes else np.zeros(len(images), np.int64)
        # Eager passes: a graph traced for this one call would only make TensorFlow warn about retracing.
        parts = [slice(i, i + batch_size) for i in range(0, len(images), batch_size)]
        means = [ops.convert_to_numpy(self.encoder(self._with_label(images[p], labels[p]))[0]) for p in parts]
        return np.concatenate(means) if means else np.zeros((0, self.latent_dim), np.float32)

    def finish_training(self, images, labels) -> None:
        """Fits the sampling prior when ``latent_prior`` is ``"fitted"`` (see :meth:`fit_latent_prior`)."""
        if self.latent_prior == "fitted":
            self.fit_latent_prior(images, labels)

    def fit_latent_prior(self, images, labels=None, spread: float | None = None, batch_size: int = 512) -> None:
        """Fits the sampling prior: a full-covariance Gaussian per class (one when unconditional, whose
        ``labels`` are then ignored) to the posterior means of ``images`` (float, in [-1, 1]), with
        Ledoit-Wolf shrinkage so that a class with fewer images than latent dimensions still gets a
        well-conditioned covariance.

        ``spread`` (default: the model's ``prior_spread``) widens each Gaussian's standard deviations:
        posterior means are shrunk towards their class centre, so a Gaussian fitted to them is narrower
        than the codes really are."""
        spread = self.prior_spread if spread is None else spread
        if spread <= 0:
            raise ValueError(f"spread must be positive, got {spread}")
        from sklearn.covariance import LedoitWolf

        if self.num_classes and labels is None:
            raise ValueError("fit_latent_prior needs the labels of a conditional model's images")
        groups = np.asarray(labels, np.int64) if self.num_classes else np.zeros(len(images), np.int64)
        z_mean = self.posterior_means(images, labels, batch_size)
        means, scales = [], []
        for k in range(self.num_classes or 1):
            members = z_mean[groups == k]
            if len(members) < 2:
                raise ValueError(f"fit_latent_prior needs at least 2 images of class {k}, got {len(members)}")
            covariance = LedoitWolf().fit(members).covariance_
            means.append(members.mean(axis=0))
            scales.append(spread * np.linalg.cholesky(covariance + 1e-6 * np.eye(self.latent_dim)))
        self.prior_mean.assign(np.stack(means).astype(np.float32))
        self.prior_scale.assign(np.stack(scales).astype(np.float32))


@keras.saving.register_keras_serializable(package="genaug")
class ConditionalVAE(VAE):
    """A :class:`VAE` whose encoder and decoder both see the label; ``num_classes`` is required."""

    def __init__(self, image_shape, num_classes: int, **kwargs):
        require_classes("ConditionalVAE", num_classes)
        super().__init__(image_shape, num_classes=num_classes, **kwargs)

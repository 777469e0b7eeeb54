"""Deep convolutional GANs (Radford et al., 2016) with the options small data needs."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from models import losses
from models.base import GenerativeModel, adam, clone_network, require_classes
from models.diffaugment import diff_augment
from models.generator import SyntheticGenerator
from models.networks import build_discriminator, build_generator
from models.replicas import per_replica, step_logs


def _loss_scaled(optimizer: keras.optimizers.Optimizer, policy_name: str) -> keras.optimizers.Optimizer:
    """Wraps ``optimizer`` for float16 compute so small gradients do not underflow."""
    if policy_name == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def _unwrapped(optimizer):
    return optimizer.inner_optimizer if isinstance(optimizer, keras.optimizers.LossScaleOptimizer) else optimizer


@keras.saving.register_keras_serializable(package="genaug")
class DCGAN(GenerativeModel):
    """A DCGAN whose ``train_step`` does one simultaneous D and G update from one generator forward.

    Both tapes watch the same fake batch, so each step costs one G forward; G's gradient is taken
    through D's weights before D's update of the same step is applied.

    The defaults are the tuned ones ``genaug train`` uses (the experiments are in docs/experiments.md),
    and ``compile()`` without optimizers uses :attr:`TRAINING_DEFAULTS`. The losses and regularisers
    that lost those trials on small data stay available: ``hinge`` and ``lsgan`` (other stable losses,
    worth a try on larger images), ``wgan-gp`` (when D overpowers G), ``r1_gamma`` (a penalty on D's
    gradient at real images; use it without spectral norm), ``d_dropout`` (D memorising a tiny set).

    Args:
        image_shape: ``(H, W, C)``, 8..64 pixels square.
        latent_dim: size of z.
        num_classes: if set, G embeds the label and D is a projection discriminator.
        g_filters: generator width.
        d_filters: discriminator width.
        loss: ``"ns"`` (non-saturating, default), ``"hinge"``, ``"wgan-gp"`` or ``"lsgan"``.
        spectral_norm: spectral normalisation on D's layers.
        diffaugment: DiffAugment policy, some of ``("color", "translation", "cutout")``.
        ema_decay: keep an exponential moving average of G's weights (used for sampling); 0 = off.
        r1_gamma: weight of the R1 penalty on real images; 0 = off.
        gp_weight: weight of the gradient penalty of ``wgan-gp``.
        d_dropout: dropout on D's features.
        coverage: weight in G's loss of :func:`models.losses.coverage_penalty`, which pulls the nearest
            fake toward each real image of the batch; 0 = off.
        fakes_per_real: fakes generated per real image in each step (in one forward pass, all seen by D):
            more candidates for the coverage term.
        noise_injection: StyleGAN-style per-pixel noise in G's blocks (:func:`models.networks.build_generator`);
            G's input, and the exported generator's latent size, grow by the noise columns.
        seed: seed of every random draw in training.
        generator: your own generator network instead of the built one: a functional model taking
            ``z`` (or ``[z, label]`` when conditional) and returning float32 images in [-1, 1].
        discriminator: your own discriminator: ``image`` (or ``[image, label]``) -> one float32 logit.
            ``g_filters``, ``d_filters``, ``spectral_norm`` and ``d_dropout`` then do not apply.

    Example:
        >>> gan = ConditionalDCGAN((8, 8, 1), num_classes=10)
        >>> gan.compile()  # Adam for D and G with TRAINING_DEFAULTS
        >>> gan.fit(train_ds, epochs=1)  # elements {"image": float [-1, 1], "label": int}
        >>> images, labels = gan.generate(10, labels=range(10), seed=0)
    """

    NETWORKS = ("generator", "discriminator")

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = 64,
        num_classes: int | None = None,
        g_filters: int = 32,
        d_filters: int = 64,
        loss: str = "ns",
        spectral_norm: bool = True,
        diffaugment: tuple[str, ...] = (),
        ema_decay: float = 0.99,
        r1_gamma: float = 0.0,
        gp_weight: float = 10.0,
        d_dropout: float = 0.0,
        coverage: float = 3.0,
        fakes_per_real: int = 2,
        noise_injection: bool = False,
        seed: int = 0,
        generator: keras.Model | None = None,
        discriminator: keras.Model | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in losses.GAN_LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}: expected one of {', '.join(losses.GAN_LOSSES)}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}")
        if coverage < 0:
            raise ValueError(f"coverage must be >= 0, got {coverage}")
        if fakes_per_real < 1:
            raise ValueError(f"fakes_per_real must be >= 1, got {fakes_per_real}")
        if noise_injection and generator is not None:
            raise ValueError("noise_injection builds its own generator; give one or the other")
        image_shape, diffaugment = tuple(image_shape), tuple(diffaugment)
        self._keep_arguments(locals())
        self.generator = generator or build_generator(
            self.image_shape, latent_dim, num_classes, g_filters, noise_injection=noise_injection
        )
        self.input_dim = self.generator.input_shape[0][-1] if num_classes else self.generator.input_shape[-1]
        self.discriminator = discriminator or build_discriminator(
            self.image_shape, num_classes, d_filters, spectral_norm, d_dropout
        )
        self.ema_generator = None
        if ema_decay:
            self.ema_generator = clone_network(self.generator, "ema_generator")
            # Left "trainable" so its weights list in the generator's order; no optimizer touches it.
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.d_optimizer = self.g_optimizer = None
        self.built = True

    #: What ``compile()`` and ``genaug train`` use unless told otherwise (``fit`` takes the epochs).
    OPTIMIZERS = {"d_optimizer": "d_learning_rate", "g_optimizer": "g_learning_rate"}
    TRAINING_DEFAULTS = {
        "epochs": 300,
        "max_steps": 6500,  # whichever comes first, unless given epochs
        "batch_size": 64,
        "g_learning_rate": 5e-4,
        "d_learning_rate": 3e-4,
        "beta_1": 0.5,
        "beta_2": 0.999,
    }

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def compile(
        self,
        d_optimizer: keras.optimizers.Optimizer | None = None,
        g_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs,
    ):
        """Sets D's and G's optimizers (default: Adam with :attr:`TRAINING_DEFAULTS`; loss-scaled under
        ``mixed_float16``); other arguments, such as ``jit_compile`` and ``steps_per_execution``, go to
        ``keras.Model.compile``."""
        d_optimizer = d_optimizer or adam(self.TRAINING_DEFAULTS, "d_learning_rate")
        g_optimizer = g_optimizer or adam(self.TRAINING_DEFAULTS, "g_learning_rate")
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = _loss_scaled(d_optimizer, self.dtype_policy.name)
        self.g_optimizer = _loss_scaled(g_optimizer, self.dtype_policy.name)
        # Slots now, not in the first step: a tf.function whose first trace creates variables is traced
        # twice, which doubled the time to a GAN's first batch (4.2 -> 2.1 s on tiny networks). It also
        # lets a loaded file restore both optimizers' state.
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    def get_compile_config(self):
        return {
            "d_optimizer": keras.saving.serialize_keras_object(_unwrapped(self.d_optimizer)),
            "g_optimizer": keras.saving.serialize_keras_object(_unwrapped(self.g_optimizer)),
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
        }

    def compile_from_config(self, config):
        config = dict(config)
        d_optimizer = keras.saving.deserialize_keras_object(config.pop("d_optimizer"))
        g_optimizer = keras.saving.deserialize_keras_object(config.pop("g_optimizer"))
        self.compile(d_optimizer=d_optimizer, g_optimizer=g_optimizer, **config)

    def _conditioned(self, inputs, labels):
        """A network's input: ``inputs`` alone, or ``[inputs, labels]`` for a conditional model."""
        return [inputs, labels] if self.num_classes else inputs

    def _discriminate(self, images, labels):
        """D's logits for ``images`` (DiffAugment-ed first when on)."""
        if self.diffaugment:
            images = diff_augment(images, self.diffaugment, self.seed_generator)
        return self.discriminator(self._conditioned(images, labels), training=True)

    def train_step(self, data):
        real = ops.cast(data["image"], "float32")
        labels = data["label"] if self.num_classes else None
        batch = ops.shape(real)[0]
        # Each real image brings `fakes_per_real` fakes of its label.
        fake_labels = ops.tile(labels, (self.fakes_per_real,)) if self.num_classes else None
        z = keras.random.normal((self.fakes_per_real * batch, self.input_dim), seed=self.seed_generator)

        # One generator forward serves both players: each tape watches the same fake batch.
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator(self._conditioned(z, fake_labels), training=True)
            real_logits = self._discriminate(real, labels)
            fake_logits = self._discriminate(fake, fake_labels)

            # The discriminator's loss
            d_loss = losses.discriminator_loss(self.loss, real_logits, fake_logits)
            if self.loss == "wgan-gp":  # pairs each real image with the first fake of its label
                alpha = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator)
                interpolated = real + alpha * (ops.stop_gradient(fake[:batch]) - real)
                d_loss += self.gp_weight * losses.gradient_penalty(
                    lambda images: self._discriminate(images, labels), interpolated
                )
            if self.r1_gamma:
                d_loss += self.r1_gamma * losses.r1_penalty(lambda images: self._discriminate(images, labels), real)

            # The generator's loss
            g_loss = losses.generator_loss(self.loss, fake_logits)
            if self.coverage:
                g_loss += self.coverage * losses.coverage_penalty(real, fake, labels, fake_labels)

            d_scaled = self.d_optimizer.scale_loss(per_replica(d_loss))
            g_scaled = self.g_optimizer.scale_loss(per_replica(g_loss))

        # Both gradients are taken before either update, so G's goes through D as it was this step.
        d_weights = self.discriminator.trainable_weights
        g_weights = self.generator.trainable_weights
        d_grads = d_tape.gradient(d_scaled, d_weights)
        g_grads = g_tape.gradient(g_scaled, g_weights)

        # Train the discriminator
        self.d_optimizer.apply(d_grads, d_weights)

        # Train the generator (and its moving average, which sampling uses)
        self.g_optimizer.apply(g_grads, g_weights)
        if self.ema_generator is not None:
            self._update_ema()

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(ops.mean(real_logits))
        self.d_fake_tracker.update_state(ops.mean(fake_logits))
        return step_logs(self.metrics)

    def _update_ema(self):
        decay = self.ema_decay
        for average, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            if weight.trainable:
                average.assign(decay * average + (1.0 - decay) * ops.cast(weight, average.dtype))
            else:  # batch-norm statistics are copied, not averaged
                average.assign(weight)

    def call(self, inputs, training=False):
        """``G(z)`` or ``G([z, labels])`` in [-1, 1], from the EMA generator when there is one."""
        generator = self.ema_generator if self.ema_generator is not None else self.generator
        return generator(inputs, training=training)

    def export_generator(self) -> SyntheticGenerator:
        """The (EMA) generator as a standalone sampler (shares weights with this model)."""
        network = self.ema_generator if self.ema_generator is not None else self.generator
        return SyntheticGenerator(network, self.input_dim, self.num_classes)


@keras.saving.register_keras_serializable(package="genaug")
class ConditionalDCGAN(DCGAN):
    """A :class:`DCGAN` with a label-embedding generator and a projection discriminator."""

    def __init__(self, image_shape, num_classes: int, **kwargs):
        require_classes("ConditionalDCGAN", num_classes)
        super().__init__(image_shape, num_classes=num_classes, **kwargs)

"""Fast tests of the four models on tiny networks (8x8 digits-sized data)."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import shared_directory

import models
from models import DCGAN, VAE, ConditionalDCGAN, ConditionalVAE, SyntheticGenerator, losses
from models.diffaugment import diff_augment
from models.networks import build_discriminator, build_encoder, build_generator
from models.shapes import upsampling_plan

TINY_GAN = dict(latent_dim=4, g_filters=8, d_filters=8)
TINY_VAE = dict(latent_dim=4, base_filters=8)


def _data(shape=(8, 8, 1), n=32, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (n, *shape)).astype("float32")
    labels = (np.arange(n) % classes).astype("int64")
    return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels}).batch(8)


def _compiled(model, **kwargs):
    model.compile(**kwargs)  # the models' default optimisers
    return model


def _round_trip(model, path):
    """Saves ``model``, loads it back in safe mode and checks it generates the same images."""
    model.save(path)
    loaded = models.load_model(path)
    assert type(loaded) is type(model)
    assert np.array_equal(model.generate(8, seed=2)[0], loaded.generate(8, seed=2)[0])
    return loaded


def _finite(history):
    return all(np.isfinite(v).all() for v in history.history.values())


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_network_shapes(size, channels):
    shape = (size, size, channels)
    g = build_generator(shape, latent_dim=4, num_classes=3, base_filters=4)
    assert g([np.zeros((2, 4)), np.array([0, 2])]).shape == (2, *shape)
    d = build_discriminator(shape, num_classes=3, base_filters=4, spectral_norm=True)
    assert d([np.zeros((2, *shape)), np.array([0, 2])]).shape == (2, 1)
    z_mean, z_log_var = build_encoder(shape, latent_dim=4, base_filters=4)(np.zeros((2, *shape)))
    assert z_mean.shape == z_log_var.shape == (2, 4)


@pytest.mark.parametrize("shape", [(12, 12, 1), (8, 16, 1), (8, 8, 2), (4, 4, 1)])
def test_unsupported_shapes_are_named(shape):
    with pytest.raises(ValueError, match="unsupported"):
        upsampling_plan(shape)


@pytest.mark.parametrize(
    "model",
    [
        lambda: VAE((8, 8, 1), **TINY_VAE),
        lambda: ConditionalVAE((8, 8, 1), num_classes=3, **TINY_VAE),
        pytest.param(lambda: DCGAN((8, 8, 1), **TINY_GAN), marks=pytest.mark.slow),
        pytest.param(
            lambda: ConditionalDCGAN((8, 8, 1), num_classes=3, ema_decay=0.9, spectral_norm=True, **TINY_GAN),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["vae", "cvae", "dcgan", "cdcgan"],
)
def test_each_model_trains_generates_saves_and_loads(model, tmp_path, recwarn):
    model = _compiled(model())
    assert _finite(model.fit(_data(), epochs=1, shuffle=False, verbose=0))
    images, labels = model.generate(6, seed=1)
    assert images.dtype == np.uint8 and images.shape == (6, 8, 8, 1)
    assert (labels is None) == (model.num_classes is None)
    loaded = _round_trip(model, tmp_path / "model.keras")
    assert not [w for w in recwarn if "compile" in str(w.message)]  # compiles again, silently
    for name in ("d_optimizer", "g_optimizer") if hasattr(model, "d_optimizer") else ("optimizer",):
        saved, restored = getattr(model, name), getattr(loaded, name)  # the optimisers' state, for resuming
        assert int(restored.iterations) == int(saved.iterations) == 4
        for a, b in zip(saved.variables, restored.variables, strict=True):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert _finite(loaded.fit(_data(), epochs=1, shuffle=False, verbose=0))
    # The generator alone exports and reloads for sampling.
    assert isinstance(_round_trip(model.export_generator(), tmp_path / "generator.keras"), SyntheticGenerator)


@pytest.mark.parametrize(
    "loss", ["ns", *(pytest.param(loss, marks=pytest.mark.slow) for loss in ("hinge", "wgan-gp", "lsgan"))]
)
def test_gan_losses_give_finite_steps(loss):
    # Two fakes per real image: D sees twice as many fakes, and wgan-gp pairs reals with the first half.
    model = _compiled(ConditionalDCGAN((8, 8, 1), num_classes=3, loss=loss, fakes_per_real=2, **TINY_GAN))
    history = model.fit(_data(), epochs=1, shuffle=False, verbose=0)
    assert _finite(history) and set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}


@pytest.mark.slow
def test_gan_small_data_options_together():
    model = ConditionalDCGAN(
        (8, 8, 1),
        num_classes=3,
        spectral_norm=True,
        diffaugment=("color", "translation", "cutout"),
        ema_decay=0.9,
        r1_gamma=1.0,
        d_dropout=0.2,
        coverage=1.0,
        fakes_per_real=2,
        **TINY_GAN,
    )
    before = [w.numpy().copy() for w in model.ema_generator.trainable_weights]
    assert _finite(_compiled(model).fit(_data(), epochs=1, shuffle=False, verbose=0))
    after = model.ema_generator.trainable_weights
    assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after, strict=True))
    # The EMA lags the live generator, so the sampling weights differ from the trained ones.
    assert not np.allclose(after[0].numpy(), model.generator.trainable_weights[0].numpy())


def test_coverage_penalty_finds_the_nearest_fake_of_the_same_label():
    real = tf.constant([[0.0, 0.0], [1.0, 1.0]])
    fake = real[::-1]  # each real image has an exact copy among the fakes, under the other label
    assert float(losses.coverage_penalty(real, fake)) == 0.0
    assert float(losses.coverage_penalty(real, fake, tf.constant([0, 0]), tf.constant([0, 0]))) == 0.0
    # Labels 0 and 1: each real image may only use the fake of its own label, at squared distance 2
    # over 2 pixels.
    assert float(losses.coverage_penalty(real, fake, tf.constant([0, 1]), tf.constant([0, 1]))) == pytest.approx(1.0)


@pytest.mark.slow
def test_unconditional_gan_trains_with_coverage():
    model = _compiled(DCGAN((8, 8, 1), coverage=1.0, fakes_per_real=2, **TINY_GAN))
    assert _finite(model.fit(_data(), epochs=1, shuffle=False, verbose=0))


def test_each_player_is_updated_by_its_own_optimizer():
    # Without spectral norm, which rewrites D's kernels in every training call.
    model = ConditionalDCGAN((8, 8, 1), num_classes=3, spectral_norm=False, **TINY_GAN)
    model.compile(d_optimizer=keras.optimizers.SGD(0.0), g_optimizer=keras.optimizers.SGD(0.1))
    d_before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
    g_before = [w.numpy().copy() for w in model.generator.trainable_weights]
    model.fit(_data(), epochs=1, shuffle=False, verbose=0)
    assert all(
        np.array_equal(b, w.numpy()) for b, w in zip(d_before, model.discriminator.trainable_weights, strict=True)
    )
    assert not all(
        np.array_equal(b, w.numpy()) for b, w in zip(g_before, model.generator.trainable_weights, strict=True)
    )


def test_diffaugment_shapes_and_effects():
    images = tf.ones((4, 8, 8, 1)) * 0.5
    seed = keras.random.SeedGenerator(0)
    cut = diff_augment(images, ("cutout",), seed)
    assert cut.shape == images.shape and bool(tf.reduce_any(cut == 0.0))
    moved = diff_augment(images, ("translation",), seed)
    assert moved.shape == images.shape
    assert set(np.unique(moved.numpy())) <= {0.0, 0.5}
    with pytest.raises(ValueError, match="unknown DiffAugment policy 'blur'"):
        diff_augment(images, ("blur",), seed)


def test_conditional_generate_honours_labels():
    model = ConditionalDCGAN((8, 8, 1), num_classes=3, **TINY_GAN)
    images, labels = model.generate(6, labels=[2, 2, 2, 0, 0, 0], seed=4)
    assert labels.tolist() == [2, 2, 2, 0, 0, 0] and images.shape == (6, 8, 8, 1)
    # Same latent vectors, different label -> different images: the label reaches the network.
    z = model.export_generator().latents(2, seed=9)
    a = model.generator([z, np.array([0, 0])]).numpy()
    b = model.generator([z, np.array([1, 1])]).numpy()
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match=r"labels must be 2 integers in \[0, 3\)"):
        model.generate(2, labels=[0, 3])


def test_generate_is_deterministic_and_batch_independent():
    model = ConditionalVAE((8, 8, 1), num_classes=3, **TINY_VAE)
    first, _ = model.generate(10, seed=5, batch_size=3)
    second, _ = model.generate(10, seed=5, batch_size=10)
    other, _ = model.generate(10, seed=6)
    assert np.array_equal(first, second) and not np.array_equal(first, other)
    truncated = model.export_generator().latents(1000, seed=0, truncation=0.5)
    assert np.abs(truncated).max() <= 0.5


def test_vae_fit_with_validation_and_evaluate():
    model = _compiled(ConditionalVAE((8, 8, 1), num_classes=3, **TINY_VAE))
    history = model.fit(_data(), validation_data=_data(seed=1), epochs=2, shuffle=False, verbose=0)
    assert {"val_loss", "val_reconstruction_loss", "val_kl_loss"} <= set(history.history)
    results = model.evaluate(_data(seed=2), return_dict=True, verbose=0)
    assert np.isfinite(results["loss"])
    assert model({"image": np.zeros((2, 8, 8, 1)), "label": np.array([0, 1])}).shape == (2, 8, 8, 1)


@pytest.mark.parametrize("model_cls", [ConditionalVAE, ConditionalDCGAN])
def test_the_training_step_lowers_to_xla(model_cls):
    # What compile(jit_compile=True) runs, lowered to XLA's HLO: this fails on any op of the step without an
    # XLA kernel, which is what a GPU needs. (Compiling that HLO for this CPU cost 5-10 s a model more.)
    tiny = TINY_VAE if model_cls is ConditionalVAE else TINY_GAN
    model = _compiled(model_cls((8, 8, 1), num_classes=3, **tiny), jit_compile=True)
    step = tf.function(model.train_step, jit_compile=True)
    hlo = step.experimental_get_compiler_ir(next(iter(_data())))(stage="hlo")
    assert "ENTRY" in hlo


# One fresh interpreter for the tests that change process-wide state (two logical CPUs, which must be
# declared before TensorFlow starts, and the global precision policy): one TensorFlow start, not two.
ISOLATED = """
import numpy as np, keras, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from models import ConditionalDCGAN, ConditionalVAE
def data():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    return tf.data.Dataset.from_tensor_slices({"image": x, "label": np.arange(16) % 3}).batch(16)
def update_norm(model):
    before = [w.numpy().copy() for w in model.trainable_weights]
    model.fit(data(), epochs=1, shuffle=False, verbose=0)
    return float(np.sqrt(sum(((w.numpy() - b) ** 2).sum() for w, b in zip(model.trainable_weights, before))))

# Mirrored over two replicas against one: the loss is scaled by the global batch.
norms = {}
for name, strategy in (("one", tf.distribute.get_strategy()),
                       ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
    with strategy.scope():
        keras.utils.set_random_seed(0)
        gan = ConditionalDCGAN((8, 8, 1), num_classes=3, latent_dim=4, g_filters=8, d_filters=8, ema_decay=0.5)
        gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
        keras.utils.set_random_seed(0)
        vae = ConditionalVAE((8, 8, 1), num_classes=3, latent_dim=4, base_filters=8)
        vae.compile(optimizer=keras.optimizers.SGD(0.01))
    assert strategy.num_replicas_in_sync == (2 if name == "mirrored" else 1)
    d_before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    update_norm(gan)  # also runs the EMA update in replica context
    d_step = np.sqrt(sum(((w.numpy() - b) ** 2).sum()
                         for w, b in zip(gan.discriminator.trainable_weights, d_before)))
    norms[name] = (update_norm(vae), d_step)
print("mirrored", norms["mirrored"][0] / norms["one"][0], norms["mirrored"][1] / norms["one"][1])

# float32 against mixed_float16: the loss is scaled and the gradients unscaled.
norms = {}
for policy in ("float32", "mixed_float16"):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)  # the same initial weights under both policies
    gan = ConditionalDCGAN((8, 8, 1), num_classes=3, latent_dim=4, g_filters=8, d_filters=8)
    gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    assert gan(([np.zeros((1, 4)), np.zeros(1)])).dtype == "float32"
    norms[policy] = update_norm(gan)
    if policy == "mixed_float16":
        assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
        vae = ConditionalVAE((8, 8, 1), num_classes=3, latent_dim=4, base_filters=8)
        vae.compile(optimizer=keras.optimizers.SGD(0.01))
        assert isinstance(vae.optimizer, keras.optimizers.LossScaleOptimizer)
        assert np.isfinite(vae.fit(data(), epochs=1, shuffle=False, verbose=0).history["loss"][-1])
print("mixed", norms["mixed_float16"] / norms["float32"])
"""


@pytest.fixture(scope="session")
def isolated(tmp_path_factory) -> dict[str, list[float]]:
    """The ratios :data:`ISOLATED` prints, by name (run once, whichever workers ask)."""

    def build(directory):
        result = subprocess.run([sys.executable, "-c", ISOLATED], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        (directory / "stdout.txt").write_text(result.stdout)

    stdout = (shared_directory(tmp_path_factory, "isolated_models", build) / "stdout.txt").read_text()
    lines = [line.split() for line in stdout.splitlines() if line]
    return {name: [float(v) for v in values] for name, *values in lines}


@pytest.mark.slow  # a subprocess: keeps the fast loop under 90 s
def test_mixed_precision_step_is_loss_scaled(isolated):
    # Without scale_loss/unscaling, updates would be ~32768x off (or skipped); float16 rounding moves them a little.
    (ratio,) = isolated["mixed"]
    assert 0.9 < ratio < 1.1


@pytest.mark.slow
def test_mirrored_strategy_scales_loss_by_global_batch(isolated):
    # Summing two replicas' unscaled gradients would double the update. (G is left out of the
    # comparison: its batch norm sees per-replica batches, which legitimately changes its gradient.)
    vae_ratio, d_ratio = isolated["mirrored"]
    assert 0.8 < vae_ratio < 1.25 and 0.8 < d_ratio < 1.25


def _one_hot_generator(latent_dim=4, classes=3):
    """A keras-io style conditional generator: one-hot label concatenated to z."""
    z, label = keras.Input((latent_dim,)), keras.Input((), dtype="int32")
    h = keras.layers.Concatenate()([z, keras.layers.CategoryEncoding(classes, output_mode="one_hot")(label)])
    h = keras.layers.Reshape((2, 2, 4))(keras.layers.Dense(16)(h))
    h = keras.layers.Conv2DTranspose(4, 4, strides=4, padding="same")(h)
    return keras.Model([z, label], keras.layers.Conv2D(1, 3, padding="same", activation="tanh")(h))


def _label_plane_discriminator(classes=3):
    """A keras-io style conditional discriminator: one-hot label planes concatenated to the image."""
    image, label = keras.Input((8, 8, 1)), keras.Input((), dtype="int32")
    planes = keras.layers.Reshape((1, 1, classes))(keras.layers.CategoryEncoding(classes, output_mode="one_hot")(label))
    h = keras.layers.Concatenate()([image, keras.layers.UpSampling2D(8)(planes)])
    h = keras.layers.GlobalMaxPooling2D()(keras.layers.Conv2D(4, 3, strides=2, padding="same")(h))
    return keras.Model([image, label], keras.layers.Dense(1)(h))


def test_own_networks_train_save_and_load(tmp_path):
    generator, discriminator = _one_hot_generator(), _label_plane_discriminator()
    gan = _compiled(
        ConditionalDCGAN((8, 8, 1), 3, latent_dim=4, ema_decay=0.9, generator=generator, discriminator=discriminator)
    )
    assert gan.generator is generator and gan.discriminator is discriminator
    assert _finite(gan.fit(_data(), epochs=1, shuffle=False, verbose=0))
    decoder = keras.Sequential([keras.Input((4,)), keras.layers.Dense(64), keras.layers.Reshape((8, 8, 1))])
    vae = _compiled(VAE((8, 8, 1), latent_dim=4, base_filters=8, decoder=decoder))
    assert vae.decoder is decoder
    assert _finite(vae.fit(_data(), epochs=1, shuffle=False, verbose=0))
    for model in (gan, vae):
        _round_trip(model, tmp_path / "m.keras")


def test_fitted_latent_prior_is_per_class_and_saved(tmp_path):
    vae = _compiled(ConditionalVAE((8, 8, 1), num_classes=3, **TINY_VAE))
    images = np.random.default_rng(0).uniform(-1, 1, (60, 8, 8, 1)).astype("float32")
    labels = np.arange(60) % 3
    standard = vae.generate(9, seed=0)[0]
    vae.fit_latent_prior(images, labels, spread=1.0)
    z_mean, _ = vae.encoder.predict([images, labels], verbose=0)
    np.testing.assert_allclose(vae.prior_mean.numpy()[1], z_mean[labels == 1].mean(axis=0), rtol=1e-5, atol=1e-6)
    scale = vae.prior_scale.numpy()
    vae.fit_latent_prior(images, labels)  # the model's prior_spread
    np.testing.assert_allclose(vae.prior_scale.numpy(), vae.prior_spread * scale, rtol=1e-5)
    generator = vae.export_generator()
    assert not np.array_equal(generator.generate(9, seed=0)[0], standard)
    _round_trip(generator, tmp_path / "generator.keras")
    with pytest.raises(ValueError, match="needs the labels"):
        vae.fit_latent_prior(images)
    with pytest.raises(ValueError, match="at least 2 images of class 2"):
        vae.fit_latent_prior(images[:4], np.array([0, 1, 1, 0]))


def test_noise_injection_reads_its_noise_from_z_and_learns_its_scale(tmp_path):
    from models.networks import noise_dims

    assert noise_dims((8, 8, 1)) == 64 and noise_dims((28, 28, 1)) == 14 * 14 + 28 * 28
    model = _compiled(ConditionalDCGAN((8, 8, 1), num_classes=3, noise_injection=True, ema_decay=0.0, **TINY_GAN))
    generator = model.export_generator()
    assert generator.latent_dim == 4 + 64
    z, codes, _ = generator.network_inputs(4, [0, 1, 2, 0], seed=0)
    # Scales start at zero: the noise columns change nothing until training moves them.
    noisy = z.copy()
    noisy[:, 4:] = 5.0
    assert np.allclose(generator([z, codes]), generator([noisy, codes]), atol=1e-6)
    model.fit(_data(), epochs=1, shuffle=False, verbose=0)
    scales = [w for w in model.generator.weights if "noise_scale" in w.path]
    assert len(scales) == 1 and np.abs(scales[0].numpy()).max() > 0
    assert not np.allclose(generator([z, codes]), generator([noisy, codes]), atol=1e-6)
    _round_trip(model, tmp_path / "model.keras")
    with pytest.raises(ValueError, match="noise_injection builds its own generator"):
        ConditionalDCGAN((8, 8, 1), num_classes=3, noise_injection=True, generator=model.generator, **TINY_GAN)


def test_the_registry_says_what_each_kind_can_do():
    from models import MODEL_CAPABILITIES, MODEL_KINDS, MODELS
    from trainers.config import is_conditional

    assert MODEL_CAPABILITIES.keys() == MODEL_KINDS.keys()
    for kind, cls in MODELS.items():
        assert ("conditional" in MODEL_CAPABILITIES[kind]) == is_conditional(cls), kind
        assert ("encoder" in MODEL_CAPABILITIES[kind]) == hasattr(cls, "posterior_means"), kind
        assert set(cls.OPTIMIZERS.values()) <= set(cls.TRAINING_DEFAULTS), kind

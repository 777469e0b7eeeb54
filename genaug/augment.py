"""Classic augmentation: small random translations, rotations and zooms (``keras.layers`` preprocessing).

The route a user has without any generator, and the yardstick ``evaluate`` puts beside synthetic data.
Safe for any image data: geometric only (no colour operations), edges filled with the nearest pixel.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

#: Largest shift (fraction of the side), rotation (degrees) and zoom (fraction) of the default policy.
CLASSIC = {"translation": 0.1, "rotation": 10.0, "zoom": 0.1}


def classic_augmentation(
    seed: int = 0,
    *,
    translation: float = CLASSIC["translation"],
    rotation: float = CLASSIC["rotation"],
    zoom: float = CLASSIC["zoom"],
) -> keras.Sequential:
    """Random translation, rotation and zoom for batches of images (float, any range), as one layer.

    Each layer has its own seed derived from ``seed``, so a fresh layer replays the same draws.
    """
    fill = {"fill_mode": "nearest"}
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(translation, translation, seed=seed, **fill),
            keras.layers.RandomRotation(rotation / 360.0, seed=seed + 1, **fill),
            keras.layers.RandomZoom(zoom, zoom, seed=seed + 2, **fill),
        ],
        name="classic_augmentation",
    )


def _scaled(seed: int, strength: float) -> keras.Sequential:
    return classic_augmentation(seed, **{name: value * strength for name, value in CLASSIC.items()})


def augment_batches(
    dataset: tf.data.Dataset, seed: int = 0, strength: float = 1.0, noise: float = 0.0
) -> tf.data.Dataset:
    """``(image, label[, weight])`` batches with :func:`classic_augmentation` applied to the images, its
    magnitudes scaled by ``strength`` (0: none), then Gaussian pixel noise of standard deviation ``noise``
    (a fraction of the pixel range; 0: none).

    The map runs sequentially so that the layers' random draws come in a fixed order (reproducible for a
    seed); it is one vectorised call per batch, which keeps it cheap.
    """
    steps = [_scaled(seed, strength)] if strength > 0 else []
    if noise > 0:
        # GaussianNoise takes a standard deviation in [0, 1]: apply it on the unit pixel range.
        scale = keras.layers.Rescaling
        steps += [scale(1 / 255.0), keras.layers.GaussianNoise(noise, seed=seed + 3), scale(255.0)]
    if not steps:
        return dataset
    augmentation = keras.Sequential(steps, name="augmentation")

    def augment(images, *rest):
        return (tf.clip_by_value(augmentation(images, training=True), 0.0, 255.0), *rest)

    return dataset.map(augment).prefetch(tf.data.AUTOTUNE)


def augmented_copies(
    images: np.ndarray, copies: int, seed: int = 0, batch_size: int = 1024, strength: float = 1.0
) -> np.ndarray:
    """``copies`` augmented versions of each uint8 image (copy-major, uint8), for models fitted on arrays;
    the magnitudes scaled by ``strength``."""
    augmentation = _scaled(seed, strength)
    stacked = np.concatenate([images] * copies) if copies else images[:0]
    parts = [
        keras.ops.convert_to_numpy(augmentation(stacked[i : i + batch_size].astype(np.float32), training=True))
        for i in range(0, len(stacked), batch_size)
    ]
    out = np.concatenate(parts) if parts else stacked.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)

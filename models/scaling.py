"""The one place where pixels change range: uint8 [0, 255] <-> float [-1, 1] (tanh's range)."""

import keras
import numpy as np


def to_model_range(images):
    """uint8 images (any backend tensor) -> float32 in [-1, 1]."""
    return keras.ops.cast(images, "float32") / 127.5 - 1.0


def pixels_from_model_range(images):
    """Float images in [-1, 1] -> uint8 tensor in [0, 255] (rounded half to even, clipped); usable inside a
    compiled function (the sampler's fused draw)."""
    pixels = (keras.ops.cast(images, "float32") + 1.0) * 127.5
    return keras.ops.cast(keras.ops.clip(keras.ops.round(pixels), 0.0, 255.0), "uint8")


def from_model_range(images) -> np.ndarray:
    """Float images in [-1, 1] -> uint8 numpy array in [0, 255] (rounded, clipped)."""
    return keras.ops.convert_to_numpy(pixels_from_model_range(images))

"""The one place where pixels change range: uint8 [0, 255] <-> float [-1, 1] (tanh's range)."""

import keras
import numpy as np


def to_model_range(images):
    """uint8 images (any backend tensor) -> float32 in [-1, 1]."""
    return keras.ops.cast(images, "float32") / 127.5 - 1.0


def from_model_range(images) -> np.ndarray:
    """Float images in [-1, 1] -> uint8 numpy array in [0, 255] (rounded, clipped)."""
    pixels = (keras.ops.convert_to_numpy(images).astype(np.float32) + 1.0) * 127.5
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)

"""DiffAugment (Zhao et al., 2020): differentiable colour, translation and cutout for images in [-1, 1].

Applied to real and fake images alike, in both D and G steps, so D cannot memorise a small dataset
while G still receives gradients through the augmentation.
"""

import keras
from keras import ops

POLICIES = ("color", "translation", "cutout", "flip")


def diff_augment(images, policy: tuple[str, ...], seed_generator: keras.random.SeedGenerator):
    """Applies each augmentation named in ``policy`` with per-example random parameters."""
    for name in policy:
        if name == "color":
            images = _color(images, seed_generator)
        elif name == "translation":
            images = _translation(images, seed_generator)
        elif name == "cutout":
            images = _cutout(images, seed_generator)
        elif name == "flip":
            images = _flip(images, seed_generator)
        else:
            raise ValueError(f"unknown DiffAugment policy {name!r}: expected some of {', '.join(POLICIES)}")
    return images


def _uniform(images, seed_generator, minval=0.0, maxval=1.0):
    batch = ops.shape(images)[0]
    return keras.random.uniform((batch, 1, 1, 1), minval, maxval, dtype=images.dtype, seed=seed_generator)


def _color(x, seed_generator):
    x = x + _uniform(x, seed_generator, -0.5, 0.5)  # brightness
    channel_mean = ops.mean(x, axis=-1, keepdims=True)
    x = (x - channel_mean) * _uniform(x, seed_generator, 0.0, 2.0) + channel_mean  # saturation
    pixel_mean = ops.mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - pixel_mean) * _uniform(x, seed_generator, 0.5, 1.5) + pixel_mean  # contrast


def _translation(x, seed_generator, ratio: float = 0.125):
    height, width = x.shape[1], x.shape[2]
    shift_h, shift_w = max(1, int(height * ratio + 0.5)), max(1, int(width * ratio + 0.5))
    batch = ops.shape(x)[0]
    dy = keras.random.randint((batch, 1), -shift_h, shift_h + 1, seed=seed_generator)
    dx = keras.random.randint((batch, 1), -shift_w, shift_w + 1, seed=seed_generator)
    rows = ops.clip(ops.arange(height)[None, :] + dy, -1, height) + 1  # index into the padded image
    cols = ops.clip(ops.arange(width)[None, :] + dx, -1, width) + 1
    padded = ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]])  # shifted-in pixels are zero (mid-grey)
    # Per-example gathers as products with one-hot selection matrices (exact: one 1 per row).
    pick_rows = ops.one_hot(rows, height + 2, dtype=x.dtype)
    pick_cols = ops.one_hot(cols, width + 2, dtype=x.dtype)
    x = ops.einsum("bip,bpqc->biqc", pick_rows, padded)
    return ops.einsum("bjq,biqc->bijc", pick_cols, x)


def _cutout(x, seed_generator, ratio: float = 0.5):
    """Zeroes one ``ratio``-sized box per image whose centre is anywhere in the image."""
    height, width = x.shape[1], x.shape[2]
    cut_h, cut_w = max(1, int(height * ratio + 0.5)), max(1, int(width * ratio + 0.5))
    batch = ops.shape(x)[0]
    top = keras.random.randint((batch, 1, 1), -(cut_h // 2), height - cut_h // 2, seed=seed_generator)
    left = keras.random.randint((batch, 1, 1), -(cut_w // 2), width - cut_w // 2, seed=seed_generator)
    rows = ops.arange(height)[None, :, None]
    cols = ops.arange(width)[None, None, :]
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)
    return x * ops.cast(ops.logical_not(inside), x.dtype)[..., None]


def _flip(x, seed_generator):
    """Mirrors half the images left to right (for data whose classes are symmetric: clothes, not digits)."""
    mirrored = _uniform(x, seed_generator) < 0.5
    return ops.where(mirrored, ops.flip(x, axis=2), x)

"""Image grids for eyes: sample sheets in runs, TensorBoard and reports."""

from __future__ import annotations

import io
import os

import numpy as np

from genaug import atomic


def image_grid(images: np.ndarray, cols: int, scale: int = 1, pad: int = 1) -> np.ndarray:
    """Tiles uint8 NxHxWxC images row-major into one uint8 image, upscaled ``scale`` x (nearest)."""
    n, height, width, channels = images.shape
    rows = -(-n // cols)
    cell_h, cell_w = height * scale + pad, width * scale + pad
    grid = np.full((rows * cell_h + pad, cols * cell_w + pad, channels), 255, np.uint8)
    big = images.repeat(scale, axis=1).repeat(scale, axis=2)
    for i, image in enumerate(big):
        r, c = divmod(i, cols)
        grid[pad + r * cell_h : (r + 1) * cell_h, pad + c * cell_w : (c + 1) * cell_w] = image
    return grid


def default_scale(image_size: int) -> int:
    """Upscale factor that makes a cell about 32 pixels (8x8 digits -> 4x)."""
    return max(1, 32 // image_size)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Writes a uint8 HxWx1 or HxWx3 image as PNG, atomically."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    atomic.write_bytes(path, buffer.getvalue())

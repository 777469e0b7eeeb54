"""Image grids for eyes: sample sheets in runs, TensorBoard and reports."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence

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


def labelled_grid(blocks: dict[str, np.ndarray], row_names: Sequence[str], scale: int = 1) -> np.ndarray:
    """Blocks of images side by side, each titled, one row per name in ``row_names`` written at the left and
    a red divider between blocks: what a reader needs to tell real from synthetic, and which class is which.

    Args:
        blocks: title -> uint8 images R x C x H x W x channels (the same R rows, one per name, in every block).
        row_names: the R row names (class names).
        scale: upscale factor of every image (nearest).

    Returns:
        An RGB uint8 image.
    """
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=12)
    tiles = [image_grid(b.reshape(-1, *b.shape[2:]), cols=b.shape[1], scale=scale) for b in blocks.values()]
    tiles = [np.repeat(t, 3, axis=-1) if t.shape[-1] == 1 else t for t in tiles]
    margin = 8 + max((font.getlength(str(name)) for name in row_names), default=0)
    title, divider = 18, 4
    width = int(margin) + sum(t.shape[1] for t in tiles) + divider * (len(tiles) - 1)
    canvas = Image.new("RGB", (width, title + max(t.shape[0] for t in tiles)), "white")
    draw = ImageDraw.Draw(canvas)
    x = int(margin)
    for k, (name, tile) in enumerate(zip(blocks, tiles, strict=True)):
        canvas.paste(Image.fromarray(tile), (x, title))
        draw.text((x + tile.shape[1] / 2, title / 2), name, fill="black", font=font, anchor="mm")
        x += tile.shape[1]
        if k < len(tiles) - 1:
            draw.rectangle([x, 0, x + divider - 1, canvas.height], fill=(200, 30, 30))
            x += divider
    cell = next(iter(blocks.values())).shape[2] * scale + 1  # image_grid's cell height (1 pixel of padding)
    for r, name in enumerate(row_names):
        draw.text((margin - 4, title + 1 + r * cell + cell / 2), str(name), fill="black", font=font, anchor="rm")
    return np.asarray(canvas)

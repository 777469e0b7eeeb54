"""Which image shapes the networks support, without importing Keras (the CLI checks before TensorFlow starts)."""

from __future__ import annotations


def upsampling_plan(image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """``(base, n)`` with ``image size == base * 2**n``; raises ValueError for unsupported shapes."""
    height, width, channels = image_shape
    if height != width or channels not in (1, 3):
        raise ValueError(f"image shape {tuple(image_shape)} unsupported: need square HxWx1 or HxWx3")
    for base in (4, 7):
        n, size = 0, base
        while size < height:
            size, n = size * 2, n + 1
        if size == height and n >= 1:
            return base, n
    raise ValueError(f"image size {height} unsupported: need 4*2**n (8..64) or 7*2**n (28, 56)")

"""A small real-looking dataset where genaug's synthetic data does not help: faint oriented stripes in noise.

Two classes of 16x16 grey images, 200 each: a sinusoidal grating tilted +-20 degrees from vertical (plus
jitter), random frequency and phase, amplitude 14 under Gaussian noise of sigma 45. The default cvae
collapses to the mean image here (KL ~0), so synthetic-only accuracy is chance and mixing it in does not
help: the case where ``genaug tune`` must decline the synthetic data.

Run: python benchmarks/make_stripes.py OUT.npz   (then genaug train --data npz:OUT.npz ...)
"""

import sys

import numpy as np


def stripes(n: int = 400, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = np.empty((n, size, size), np.uint8), np.arange(n) % 2
    for i in range(n):
        angle = np.pi / 2 + (np.pi / 9 if y[i] else -np.pi / 9) + rng.normal(0, 0.2)
        freq, phase = rng.uniform(1.2, 1.8), rng.uniform(0, 2 * np.pi)
        grating = np.sin(freq * (np.cos(angle) * xx + np.sin(angle) * yy) + phase)
        x[i] = np.clip(128 + 14 * grating + rng.normal(0, 45, (size, size)), 0, 255).astype(np.uint8)
    return x, y


if __name__ == "__main__":
    images, labels = stripes()
    np.savez(sys.argv[1], x=images, y=labels, class_names=np.array(["left", "right"]))

"""Candidate images for the sampler, drawn and scored in one compiled function per batch.

One ``tf.function`` runs the generator, turns its output into uint8 pixels, asks the oracle for class
probabilities and measures each image's distance to its nearest training image (a matrix product
against the training set in fixed-size chunks, so memory does not grow with the training set). On
this project's 2-core CPU the filtered sampler runs at 0.40x of the generator's forward pass alone, the
oracle's own forward pass being most of the difference (docs/performance.md); on a GPU nothing leaves
the device until the batch is done.
"""

from __future__ import annotations

import concurrent.futures

import numpy as np
import tensorflow as tf

from models.scaling import pixels_from_model_range

BATCH_SIZE = 1024  # images per call
IN_FLIGHT = 3  # batches computed at once (same results as one at a time; ~20 % more images/s on 2 cores)
REFERENCE_CHUNK = 4096  # training images per distance chunk: batch x chunk floats at a time


class Candidates:
    """Draws ``n`` candidates and scores them.

    Args:
        generator: a :class:`models.SyntheticGenerator`.
        oracle: a classifier taking uint8 images and giving logits, or ``None`` (no probabilities).
        reference: uint8 training images to measure distances to, or ``None`` (no distances).
        latents: where codes come from instead of the generator's prior: a function of ``(labels, seed)``
            (:class:`genaug.latents.AttentionLatents`), or ``None``.
    """

    def __init__(self, generator, oracle=None, reference: np.ndarray | None = None, latents=None):
        self.generator, self.oracle, self.latents = generator, oracle, latents
        self._chunks = None if reference is None else _reference_chunks(reference)
        z_spec = tf.TensorSpec([None, generator.latent_dim], tf.float32)
        conditional = generator.num_classes is not None
        specs = [z_spec, tf.TensorSpec([None], tf.int32)] if conditional else [z_spec]
        # Traced once, for any batch size; called as a concrete function, so that a new Candidates per
        # sample() call does not count as retracing one function (TensorFlow would warn after five).
        self._step = tf.function(self._forward, autograph=False).get_concrete_function(*specs)
        self._pool = concurrent.futures.ThreadPoolExecutor(IN_FLIGHT, thread_name_prefix="genaug-candidates")

    def _forward(self, z, codes=None):
        out = self.generator([z, codes] if codes is not None else z, training=False)
        images = pixels_from_model_range(out)
        result = {"images": images}
        if self.oracle is not None:
            result["probs"] = tf.nn.softmax(tf.cast(self.oracle(images, training=False), tf.float32))
        if self._chunks is not None:
            result["distances"] = _nearest(
                tf.cast(tf.reshape(images, (tf.shape(images)[0], -1)), tf.float32), *self._chunks
            )
        return result

    def __call__(self, n: int, labels: np.ndarray | None, **latent_settings) -> dict[str, np.ndarray]:
        """``{"images": uint8[n,H,W,C], "probs": float32[n,K] (with an oracle), "distances": float32[n]
        (with reference images)}``; ``latent_settings`` are :meth:`SyntheticGenerator.network_inputs`'s."""
        if self.latents is not None:
            z, codes = self.latents(labels, latent_settings["seed"]), labels.astype(np.int32)
        else:
            z, codes, _ = self.generator.network_inputs(n, labels, **latent_settings)

        def batch(start: int) -> dict[str, np.ndarray]:
            inputs = [tf.constant(z[start : start + BATCH_SIZE])]
            if codes is not None:
                inputs.append(tf.constant(codes[start : start + BATCH_SIZE]))
            return {k: v.numpy() for k, v in self._step(*inputs).items()}

        # TensorFlow releases the GIL: batches in flight together keep both cores of a small CPU busy.
        parts = list(self._pool.map(batch, range(0, n, BATCH_SIZE)))
        if not parts:
            return {"images": np.zeros((0, *self.generator.image_shape), np.uint8)}
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _reference_chunks(reference: np.ndarray) -> tuple[tf.Tensor, tf.Tensor]:
    """Training images as ``[chunks, chunk, D]`` in [0, 1] (chunk at most :data:`REFERENCE_CHUNK`) with
    their squared norms; padding rows get an infinite norm so they are never nearest."""
    flat = reference.reshape(len(reference), -1).astype(np.float32) / 255.0
    chunk = min(REFERENCE_CHUNK, len(flat))
    rows = -len(flat) % chunk
    squared = np.concatenate([(flat**2).sum(axis=1), np.full(rows, np.inf, np.float32)])
    flat = np.concatenate([flat, np.zeros((rows, flat.shape[1]), np.float32)])
    shape = (-1, chunk, flat.shape[1])
    return tf.constant(flat.reshape(shape)), tf.constant(squared.reshape(shape[:2]))


def _nearest(pixels: tf.Tensor, chunks: tf.Tensor, squared: tf.Tensor) -> tf.Tensor:
    """L2 distance (pixels in [0, 1]) from each row of ``pixels`` (0..255) to its nearest reference row."""
    x = pixels / 255.0
    x_sq = tf.reduce_sum(x * x, axis=1, keepdims=True)

    def closer(best, chunk):
        ref, ref_sq = chunk
        d2 = x_sq - 2.0 * tf.matmul(x, ref, transpose_b=True) + ref_sq[None, :]
        return tf.minimum(best, tf.reduce_min(d2, axis=1))

    best = tf.foldl(closer, (chunks, squared), initializer=tf.fill([tf.shape(x)[0]], np.float32(np.inf)))
    return tf.sqrt(tf.maximum(best, 0.0))

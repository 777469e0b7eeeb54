"""Throughput of the mixed tf.data pipeline against the real-only pipeline, measured side by side.

Both pipelines serve the same number of elements through ``as_supervised`` (cache -> shuffle ->
batch 64 -> vectorised map -> prefetch) from MNIST-sized in-memory sources (60,000 real and 60,000
synthetic 28x28x1 images); the mixed one adds ``genaug.mix(..., synthetic_fraction=0.5)``. A third
line reads the synthetic half from TFDS shards written by genaug's shard writer.

Run: python benchmarks/bench_mix.py     (last line: JSON with mix_vs_real)
"""

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from genaug import shards  # noqa: E402
from genaug.mixing import as_supervised, mix  # noqa: E402

N, BATCH, ROUNDS = 60_000, 64, 3


def source(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, N).astype(np.int64)
    return x, y, tf.data.Dataset.from_tensor_slices({"image": x, "label": y})


def rate(dataset, elements):
    """Elements/s over ``elements`` elements, after one warm-up pass that fills the cache."""
    batches = elements // BATCH
    for _ in dataset.take(batches):
        pass
    start = time.perf_counter()
    for _ in dataset.take(batches):
        pass
    return batches * BATCH / (time.perf_counter() - start)


def main():
    _, _, real = source(0)
    syn_x, syn_y, synthetic = source(1)
    elements = 2 * N  # one pass of the mixed stream at fraction 0.5
    real_only = as_supervised(real, BATCH, seed=0).repeat()
    mixed = as_supervised(mix(real, synthetic, synthetic_fraction=0.5, seed=0), BATCH, seed=0).repeat()
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(4):
            part = slice(k * N // 4, (k + 1) * N // 4)
            shards.write_shard(Path(tmp) / shards.shard_name(k, 4), syn_x[part], syn_y[part])
        schema = shards.features((28, 28, 1), [str(i) for i in range(10)])
        shards.write_metadata(Path(tmp), schema, [N // 4] * 4, 0, "benchmark")
        import tensorflow_datasets as tfds

        syn_tfds = tfds.builder_from_directory(tmp).as_dataset(split="train")
        mixed_tfds = as_supervised(mix(real, syn_tfds, synthetic_fraction=0.5, seed=0), BATCH, seed=0).repeat()
        results = {"real": [], "mixed": [], "mixed_tfds": []}
        for _ in range(ROUNDS):  # interleaved rounds, so drift in machine load hits all alike
            results["real"].append(rate(real_only, elements))
            results["mixed"].append(rate(mixed, elements))
            results["mixed_tfds"].append(rate(mixed_tfds, elements))
    best = {k: max(v) for k, v in results.items()}
    print(f"{'pipeline':<28} {'elements/s':>12}")
    for name, value in best.items():
        print(f"{name:<28} {value:>12,.0f}")
    summary = {
        "mix_vs_real": best["mixed"] / best["real"],
        "mix_tfds_vs_real": best["mixed_tfds"] / best["real"],
        "real_elements_per_s": best["real"],
        "mixed_elements_per_s": best["mixed"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Throughput of the mixed tf.data pipeline against the real-only pipeline, measured side by side.

Both pipelines serve the same number of elements through ``as_supervised`` (cache -> shuffle ->
batch 64 -> vectorised map -> prefetch) from MNIST-sized in-memory sources (60,000 real and 60,000
synthetic 28x28x1 images); the mixed one adds ``genaug.mix(..., synthetic_fraction=0.5)``. A third and a fourth read the
synthetic half from TFDS shards written by genaug's shard writer, through ``genaug.load_synthetic``
(the disk path every user takes) and through TFDS's own reader.

Run: python benchmarks/bench_mix.py     (last line: JSON with mix_vs_real, mix_disk_vs_real)
"""

import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import genaug  # noqa: E402
from genaug import atomic, shards  # noqa: E402
from genaug.manifest import MANIFEST  # noqa: E402
from genaug.mixing import as_supervised, mix  # noqa: E402
from genaug.synthetic import shard_name  # noqa: E402

N, BATCH, ROUNDS = 60_000, 64, 3


def source(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, N).astype(np.int64)
    return x, y, tf.data.Dataset.from_tensor_slices({"image": x, "label": y})


def write_synthetic_set(out: Path, x: np.ndarray, y: np.ndarray, num_shards: int = 4) -> None:
    """The synthetic half as genaug's sampler lays it out: TFDS shards, metadata and a manifest."""
    entries = []
    for k in range(num_shards):
        part = slice(k * len(x) // num_shards, (k + 1) * len(x) // num_shards)
        name = shard_name(k, num_shards)
        entries.append(
            {"file": name, "examples": len(y[part]), "sha256": shards.write_shard(out / name, x[part], y[part])}
        )
    classes = [str(i) for i in range(10)]
    schema = shards.features(x.shape[1:], classes)
    shards.write_metadata(out, schema, [e["examples"] for e in entries], 0, "benchmark")
    source = {"image_shape": list(x.shape[1:]), "class_names": classes, "train_indices": None}
    counts = np.bincount(y, minlength=10).tolist()
    manifest = {"source": source, "num_examples": len(y), "counts_per_class": counts, "shards": entries}
    atomic.write_json(out / MANIFEST, manifest)


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
        write_synthetic_set(Path(tmp), syn_x, syn_y)
        import tensorflow_datasets as tfds

        sources = {
            "mixed_disk": genaug.load_synthetic(tmp)[0],  # genaug's reader: batched parsing
            "mixed_tfds": tfds.builder_from_directory(tmp).as_dataset(split="train"),  # TFDS's own reader
        }
        pipelines = {"real": real_only, "mixed": mixed}
        for name, syn in sources.items():
            pipelines[name] = as_supervised(mix(real, syn, synthetic_fraction=0.5, seed=0), BATCH, seed=0).repeat()
        results = {name: [] for name in pipelines}
        for _ in range(ROUNDS):  # interleaved rounds, so drift in machine load hits all alike
            for name, pipeline in pipelines.items():
                results[name].append(rate(pipeline, elements))
    best = {k: max(v) for k, v in results.items()}
    print(f"{'pipeline':<28} {'elements/s':>12}")
    for name, value in best.items():
        print(f"{name:<28} {value:>12,.0f}")
    summary = {
        "mix_vs_real": best["mixed"] / best["real"],
        "mix_disk_vs_real": best["mixed_disk"] / best["real"],
        "mix_tfds_vs_real": best["mixed_tfds"] / best["real"],
        "real_elements_per_s": best["real"],
        "mixed_elements_per_s": best["mixed"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

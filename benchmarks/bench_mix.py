"""Throughput of the mixed tf.data pipeline against the real-only pipeline, measured side by side.

Both pipelines serve the same number of elements through ``as_supervised`` (cache -> shuffle ->
batch 64 -> vectorised map -> prefetch) from MNIST-sized in-memory sources (60,000 real and 60,000
synthetic 28x28x1 images); the mixed one adds ``genaug.mix(..., synthetic_fraction=0.5)``. A third and a fourth read the
synthetic half from TFDS shards written by genaug's shard writer, through ``genaug.load_synthetic``
(the disk path every user takes) and through TFDS's own reader. Last, the first pass (before any cache) of a
long-tailed real source (ratio 100) mixed with its real half oversampled to class balance (``real_balanced``),
against the same source mixed plainly.

Run: python benchmarks/bench_mix.py     (last line: JSON with mix_vs_real, mix_disk_vs_real, balanced_vs_plain)
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
from genaug import shards  # noqa: E402
from genaug.data import long_tailed_subset  # noqa: E402
from genaug.manifest import MANIFEST_VERSION, Filters, GeneratorRef, Manifest, ShardEntry, SourceRef  # noqa: E402
from genaug.mixing import as_supervised, mix  # noqa: E402
from genaug.policy import Policy  # noqa: E402
from genaug.synthetic import metadata_files, shard_name  # noqa: E402

N, BATCH, ROUNDS = 60_000, 64, 3


def source(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (N, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, N).astype(np.int64)
    return x, y, tf.data.Dataset.from_tensor_slices({"image": x, "label": y})


def write_synthetic_set(out: Path, x: np.ndarray, y: np.ndarray, num_shards: int = 4) -> None:
    """The synthetic half as genaug's sampler lays it out: TFDS shards, metadata and a manifest (no generator:
    its references name the benchmark)."""
    entries = []
    for k in range(num_shards):
        part = slice(k * len(x) // num_shards, (k + 1) * len(x) // num_shards)
        name = shard_name(k, num_shards)
        entries.append(ShardEntry(name, len(y[part]), shards.write_shard(out / name, x[part], y[part])))
    classes = tuple(str(i) for i in range(10))
    schema = shards.features(x.shape[1:], classes)
    shards.write_metadata(out, schema, [e.examples for e in entries], 0, "benchmark")
    counts = np.bincount(y, minlength=10).tolist()
    Manifest(
        genaug_version=genaug.__version__,
        generator=GeneratorRef(run="benchmark", sha256="", model="none", run_seed=0),
        source=SourceRef("benchmark", "train", classes, tuple(x.shape[1:]), None, dataset_fingerprint=""),
        seed=0,
        settings={},
        num_examples=len(y),
        counts_per_class=counts,
        filters=Filters(counts, counts, [0] * 10, [0] * 10, [1.0] * 10),
        shards=entries,
        manifest_version=MANIFEST_VERSION,
        metadata={name: shards.sha256_file(out / name) for name in metadata_files(out)},
    ).write(out)


def rate(dataset, elements):
    """Elements/s over ``elements`` elements, after one warm-up pass that fills the cache."""
    batches = elements // BATCH
    for _ in dataset.take(batches):
        pass
    start = time.perf_counter()
    for _ in dataset.take(batches):
        pass
    return batches * BATCH / (time.perf_counter() - start)


def first_pass(real, synthetic, policy) -> float:
    """Elements/s of one pass through a freshly built mixed stream: nothing cached yet, as in a fit's first epoch."""
    start, count = time.perf_counter(), 0
    for batch in mix(real, synthetic, policy=policy, seed=0).batch(BATCH):
        count += len(batch["label"])
    return count / (time.perf_counter() - start)


def balanced_rates(real_x, real_y, synthetic) -> dict[str, float]:
    """The best of ROUNDS first passes, plain and real-balanced, over a long-tailed subset of the real source."""
    keep = long_tailed_subset(real_y, 100, int(np.bincount(real_y).min()))
    tail = tf.data.Dataset.from_tensor_slices({"image": real_x[keep], "label": real_y[keep]})
    policies = {"plain": Policy(synthetic_ratio=1.0), "balanced": Policy(synthetic_ratio=1.0, real_balanced=True)}
    return {name: max(first_pass(tail, synthetic, p) for _ in range(ROUNDS)) for name, p in policies.items()}


def main():
    real_x, real_y, real = source(0)
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
    best.update({f"long_tailed_{k}_first_pass": v for k, v in balanced_rates(real_x, real_y, synthetic).items()})
    print(f"{'pipeline':<28} {'elements/s':>12}")
    for name, value in best.items():
        print(f"{name:<28} {value:>12,.0f}")
    summary = {
        "mix_vs_real": best["mixed"] / best["real"],
        "mix_disk_vs_real": best["mixed_disk"] / best["real"],
        "mix_tfds_vs_real": best["mixed_tfds"] / best["real"],
        "balanced_vs_plain": best["long_tailed_balanced_first_pass"] / best["long_tailed_plain_first_pass"],
        "real_elements_per_s": best["real"],
        "mixed_elements_per_s": best["mixed"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Sampler throughput against the generator's forward pass, and memory flatness in N.

In one run, best of three interleaved rounds: (1) forward-only images/s of the generator (batch 512,
latents precomputed); (2) the sampler's end-to-end images/s writing TFDS shards (N = 100k), filters off
and then on (oracle confidence >= 0.5 and the memorisation guard); (3) peak RSS of fresh processes
sampling N = 10k and N = 100k (filters off). The generator is the default conditional VAE trained
briefly on digits (speed does not depend on quality).

Run: python benchmarks/bench_sample.py   (last line: JSON with sample_vs_forward, filtered_vs_forward, ...)
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

BATCH = 512
ROUNDS = 3


def train_generator(root: Path) -> Path:
    import genaug
    from trainers import config as cfg

    config = cfg.from_dict(
        {"model": {"kind": "cvae"}, "optim": {"epochs": 5}, "run": {"out": str(root / "run"), "quiet": True}}
    )
    return genaug.train(config).directory


def forward_rate(run: Path, n: int) -> float:
    import keras

    import models  # noqa: F401

    generator = keras.models.load_model(run / "generator.keras")
    z = generator.latents(n, seed=0)
    labels = (np.arange(n) % 10).astype(np.int32)
    generator.predict_on_batch([z[:BATCH], labels[:BATCH]])  # trace once
    start = time.perf_counter()
    for i in range(0, n, BATCH):
        generator.predict_on_batch([z[i : i + BATCH], labels[i : i + BATCH]])
    return n / (time.perf_counter() - start)


def sample_rate(run: Path, out: Path, n: int, filters: bool) -> float:
    import genaug

    kwargs = {"min_confidence": 0.5, "min_distance": "auto"} if filters else {"min_distance": None}
    if filters:  # train the oracle outside the timing
        genaug.sample(run, out.with_name(out.name + "_warm"), per_class=1, progress=False, **kwargs)
    start = time.perf_counter()
    genaug.sample(run, out, per_class=n // 10, progress=False, **kwargs)
    return n / (time.perf_counter() - start)


def child(run: str, out: str, n: int) -> None:
    """Samples n images in this fresh process and prints its peak RSS in MiB."""
    import genaug

    genaug.sample(run, out, per_class=n // 10, min_distance=None, progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def peak_rss(run: Path, out: Path, n: int) -> float:
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(run), str(out), str(n)], capture_output=True, text=True, check=True
    )
    return float(result.stdout.strip().splitlines()[-1])


def main():
    n = 100_000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = train_generator(root)
        rates = {"forward": [], "off": [], "on": []}
        for r in range(ROUNDS):  # interleaved rounds, best of each: drift in machine load hits all alike
            rates["forward"].append(forward_rate(run, n))
            rates["off"].append(sample_rate(run, root / f"off{r}", n, filters=False))
            rates["on"].append(sample_rate(run, root / f"on{r}", n, filters=True))
        forward, end_to_end, filtered = (max(rates[k]) for k in ("forward", "off", "on"))
        rss = {size: peak_rss(run, root / f"rss_{size}", size) for size in (10_000, 100_000)}
    print(f"{'what':<40} {'value':>12}")
    print(f"{'generator forward only (images/s)':<40} {forward:>12,.0f}")
    print(f"{'sampler, filters off (images/s)':<40} {end_to_end:>12,.0f}")
    print(f"{'sampler, filters on (images/s)':<40} {filtered:>12,.0f}")
    print(f"{'peak RSS, N=10k (MiB)':<40} {rss[10_000]:>12,.0f}")
    print(f"{'peak RSS, N=100k (MiB)':<40} {rss[100_000]:>12,.0f}")
    print(
        json.dumps(
            {
                "sample_vs_forward": end_to_end / forward,
                "filtered_vs_forward": filtered / forward,
                "rss_100k_over_10k": rss[100_000] / rss[10_000],
                "forward_images_per_s": forward,
                "sample_images_per_s": end_to_end,
            }
        )
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        main()

"""Scaling out, measured on this machine: Beam sampling, multi-worker training, awkward epoch lengths.

In one run:
(1) sampling throughput (images/s, filters off, N = 1M in 100 shards) in-process against the Beam
    DirectRunner with 1 worker and with 2 worker processes; the shards must be byte-identical;
(2) training the default conditional VAE on digits for 10 epochs in one process against two local
    workers under MultiWorkerMirroredStrategy (TF_CONFIG), same global batch: training seconds from
    run.json and wall seconds of the whole command;
(3) one 937-step epoch (MNIST's length at batch 64, a prime) at one step per execution, what genaug
    ran before, against 32 per execution (29 x 32 + 9), what it runs now.

Run: python benchmarks/bench_scale.py   (needs the beam extra; last line: one JSON object)
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N_IMAGES, SHARDS, TRAIN_EPOCHS, PRIME_STEPS, BATCH = 1_000_000, 100, 10, 937, 64
TWO_WORKERS = "--runner=DirectRunner --direct_num_workers=2 --direct_running_mode=multi_processing"


def train(out: Path, strategy: str | None = None, env: dict | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "genaug", "train", "--data", "digits", "--model", "cvae", "--quiet"]
    command += ["--epochs", str(TRAIN_EPOCHS), "--out", str(out)]
    if strategy:
        command += ["--strategy", strategy]
    return subprocess.Popen(command, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL)


def timed(processes: list[subprocess.Popen]) -> float:
    """Wall seconds until every process has exited (successfully)."""
    start = time.perf_counter()
    for p in processes:
        if p.wait() != 0:
            raise SystemExit(f"a training process failed: {p.args}")
    return time.perf_counter() - start


def training_cost(root: Path) -> dict:
    """Seconds of training (run.json) and of the whole command, one process against two workers."""
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    tasks = [{"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})} for i in (0, 1)]
    wall = {
        "single": timed([train(root / "single")]),
        "multi": timed([train(root / "multi", "multi_worker", env) for env in tasks]),
    }
    result = {}
    for name in ("single", "multi"):
        result[f"{name}_train_s"] = json.loads((root / name / "run.json").read_text())["timings"]["seconds"]
        result[f"{name}_wall_s"] = wall[name]
    return result


def sampling_rates(root: Path) -> dict:
    """Images/s in-process and through Beam with 1 and 2 workers, with identical shards checked."""
    import genaug
    from genaug.synthetic import SyntheticDataset

    run = root / "single"
    settings = dict(num=N_IMAGES, num_shards=SHARDS, seed=0, min_distance=None, progress=False)
    runs = {"local": {}, "beam_1": {"runner": "beam"}, "beam_2": {"runner": "beam", "beam_options": TWO_WORKERS}}
    rates, shards = {}, {}
    for name, how in runs.items():
        start = time.perf_counter()
        genaug.sample(run, root / name, **settings, **how)
        rates[name] = N_IMAGES / (time.perf_counter() - start)
        shards[name] = SyntheticDataset.open(root / name).manifest.to_json()["shards"]
    if not shards["local"] == shards["beam_1"] == shards["beam_2"]:
        raise SystemExit("Beam's shards differ from the local runner's")
    return rates


def execution_rates() -> dict:
    """Images/s of one 937-step epoch at 1 and at 32 steps per execution (default cvae on digits)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import genaug
    from trainers import config as cfg
    from trainers.pipeline import training_dataset
    from trainers.training import build_model, compile_model

    train = genaug.load_arrays("digits", "train")
    index = np.resize(np.arange(len(train.y)), PRIME_STEPS * BATCH)
    x, y = train.x[index], train.y[index]
    config = cfg.resolve(cfg.from_dict({"model": {"kind": "cvae"}}))
    rates = {}
    for spe in (1, 32):
        keras.utils.set_random_seed(0)
        model = build_model(config, (8, 8, 1), 10)
        compile_model(model, config, jit=False, steps_per_execution=spe)
        data, steps = training_dataset(x, y, batch_size=BATCH, seed=0, epoch=tf.Variable(0, dtype=tf.int64))
        model.fit(data.take(2 * spe), epochs=1, verbose=0, shuffle=False)  # trace the full and the partial execution
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        rates[spe] = steps * BATCH / (time.perf_counter() - start)
    return rates


def main() -> None:
    from genaug.startup import start_tensorflow

    start_tensorflow(show_native_log=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        training = training_cost(root)
        sampling = sampling_rates(root)
    executions = execution_rates()
    rows = [
        ("sampling in-process (images/s)", sampling["local"]),
        ("sampling, Beam DirectRunner, 1 worker (images/s)", sampling["beam_1"]),
        ("sampling, Beam DirectRunner, 2 workers (images/s)", sampling["beam_2"]),
        (f"training {TRAIN_EPOCHS} epochs, one process (s)", training["single_train_s"]),
        (f"training {TRAIN_EPOCHS} epochs, two workers (s)", training["multi_train_s"]),
        ("whole command, one process (s)", training["single_wall_s"]),
        ("whole command, two workers (s)", training["multi_wall_s"]),
        (f"{PRIME_STEPS}-step epoch, 1 step per execution (images/s)", executions[1]),
        (f"{PRIME_STEPS}-step epoch, 32 steps per execution (images/s)", executions[32]),
    ]
    for what, value in rows:
        print(f"{what:<58} {value:>12,.1f}")
    print(
        json.dumps(
            {
                "beam_1_vs_local": sampling["beam_1"] / sampling["local"],
                "beam_2_vs_local": sampling["beam_2"] / sampling["local"],
                "multi_worker_train_time_vs_single": training["multi_train_s"] / training["single_train_s"],
                "prime_epoch_32_vs_1_per_execution": executions[32] / executions[1],
                **{f"sampling_{k}_images_per_s": v for k, v in sampling.items()},
                **training,
            }
        )
    )


if __name__ == "__main__":
    main()

"""Multi-worker training: two local worker processes under MultiWorkerMirroredStrategy (TF_CONFIG)."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

EPOCHS = 8
STEPS_PER_EPOCH = 200 // 32  # 20 digits per class, global batch 32
RUN_FILES = {
    ".genaug",
    "checkpoints",
    "config.json",
    "generator.keras",
    "history.csv",
    "logs",
    "model.keras",
    "run.json",
    "samples",
}
# One worker: a cvae on 20 digits per class, global batch 32, recording the batch each replica sees.
WORKER = r"""
import sys
import numpy as np
import tensorflow as tf
import models
from trainers import PRESETS, train
from trainers import config as cfg

out, epochs, weights, batches = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
step = models.ConditionalVAE.train_step
def recording_step(self, data):
    tf.print(tf.shape(data["image"])[0], output_stream="file://" + batches)
    return step(self, data)
models.ConditionalVAE.train_step = recording_step
raw = {
    "data": {"labels_per_class": 20, "unlabeled": "none"},
    "model": {"kind": "cvae"},
    "optim": {"epochs": epochs, "batch_size": 32},
    "run": {"out": out, "quiet": True, "strategy": "multi_worker", "sample_every": 1000},
}
run = train(cfg.from_dict(raw, PRESETS["smoke"]))
np.savez(weights, **{w.path: w.numpy() for w in run.model.weights})
"""


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start(tmp_path, out, name):
    """Starts two workers (index 0 is the chief) training into ``out``; returns the processes."""
    cluster = {"worker": [f"localhost:{p}" for p in _free_ports(2)]}
    scratch = tmp_path / "scratch"  # the workers' temporary directories
    scratch.mkdir(exist_ok=True)
    processes = []
    for index in range(2):
        env = dict(os.environ, TMPDIR=str(scratch), TF_CPP_MIN_LOG_LEVEL="3")
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        files = [str(tmp_path / f"{name}-{index}-{kind}") for kind in ("weights.npz", "batches.txt")]
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, str(out), str(EPOCHS), *files],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    return processes


def _finish(processes):
    for p in processes:
        output, _ = p.communicate(timeout=600)
        assert p.returncode == 0, output[-3000:]


def _weights(path):
    with np.load(path) as f:
        return {name: f[name] for name in f.files}


@pytest.mark.slow
def test_two_workers_train_as_one_and_resume_after_both_are_killed(tmp_path):
    out, batches = tmp_path / "run", [tmp_path / f"run-{i}-batches.txt" for i in (0, 1)]
    processes = _start(tmp_path, out, "run")
    state = out / "checkpoints" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 2):
        time.sleep(0.02)
    for p in processes:  # both workers, mid-run
        p.send_signal(signal.SIGKILL)
        p.communicate()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 2 <= killed_at < EPOCHS, "the kill must land mid-run"
    steps_before = [len(path.read_text().split()) for path in batches]
    left_by_the_kill = set((tmp_path / "scratch").iterdir())

    _finish(_start(tmp_path, out, "run"))  # both started again: they resume from the chief's checkpoint
    for path, before in zip(batches, steps_before, strict=True):
        steps = path.read_text().split()
        assert len(steps) - before == (EPOCHS - killed_at) * STEPS_PER_EPOCH  # from the checkpoint, not from 0
        assert set(steps) == {"16"}  # the global batch of 32 is split: each replica trains on 16 per step
    chief, other = _weights(tmp_path / "run-0-weights.npz"), _weights(tmp_path / "run-1-weights.npz")
    assert chief.keys() == other.keys()
    for name in chief:
        np.testing.assert_array_equal(chief[name], other[name], err_msg=name)  # both end with the same model
    # Only the chief writes the run directory; the other worker's temporary directory is deleted.
    assert {p.name for p in out.iterdir()} == RUN_FILES
    assert set((tmp_path / "scratch").iterdir()) == left_by_the_kill
    with open(out / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(EPOCHS))
    record = json.loads((out / "run.json").read_text())
    assert record["strategy"] == "CollectiveAllReduceStrategy" and record["replicas"] == 2  # MultiWorkerMirrored

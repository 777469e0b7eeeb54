"""Object storage: runs and synthetic sets on a ``tf.io.gfile`` URI, ``ram://`` standing in for ``gs://`` (the
``ram`` fixture); every byte must equal the same job's on local disk. Reports on ``ram://``: test_evaluation;
a tuning resumed there: test_tuning."""

import io

import numpy as np
from conftest import all_files

from genaug import storage


def test_paths_keep_their_scheme():
    path = storage.path("ram://bucket/set") / "manifest.json"
    assert str(path) == "ram://bucket/set/manifest.json"
    assert path.parent.name == "set" and path.name == "manifest.json"
    assert str(storage.path("gs://bucket/set")) == "gs://bucket/set"
    assert storage.is_remote("gs://b/x") and not storage.is_remote("runs/x") and not storage.is_remote("C:/x")


def test_sample_to_ram_is_byte_identical_to_local_and_verifies(smoke_runs, tmp_path, ram, run_cli):
    import tensorflow_datasets as tfds

    from genaug import load_synthetic, sample, verify

    settings = dict(per_class=6, seed=4, num_shards=2, progress=False)
    sample(smoke_runs["cvae"], tmp_path / "syn", **settings)
    manifest = sample(smoke_runs["cvae"], ram, **settings)
    local = all_files(tmp_path / "syn")
    assert all_files(ram) == local and len(local) > 4
    assert verify(ram).counts_per_class == manifest.counts_per_class
    assert run_cli("verify", ram)[0] == 0
    images, info = load_synthetic(ram)
    assert sum(1 for _ in images) == 60 and info.num_classes == 10
    tfds_read = tfds.builder_from_directory(ram).as_dataset(split="train")
    assert sum(1 for _ in tfds_read) == 60


def test_the_beam_runner_writes_the_local_runners_bytes_to_ram(smoke_runs, tmp_path, ram):
    from genaug import sample

    settings = dict(per_class=4, seed=2, num_shards=3, progress=False)
    sample(smoke_runs["cvae"], tmp_path / "syn", **settings)
    sample(smoke_runs["cvae"], ram, runner="beam", **settings)
    beamed = all_files(ram)
    assert beamed.pop(".genaug/beam.log") is not None
    assert beamed == all_files(tmp_path / "syn")


def test_a_run_trains_resumes_and_samples_on_ram(tmp_path, ram):
    from conftest import smoke_config

    from genaug import sample, verify
    from genaug.runs import RunDirectory
    from trainers import train

    taught = {"unlabeled": "auto", "teacher": "spreading"}  # pseudo_labels.npz, written and read on resume
    for out in (tmp_path / "run", f"{ram}/run"):
        train(smoke_config(out, model={"kind": "cvae"}, data=taught, optim={"epochs": 1}))
        train(smoke_config(out, model={"kind": "cvae"}, data=taught, optim={"epochs": 2}))  # resumed
    here, there = all_files(tmp_path / "run"), all_files(f"{ram}/run")

    def named(files):  # TensorBoard names its event files by time, host and process
        return {name.rsplit("/events.out.", 1)[0] for name in files}

    assert named(there) == named(here) >= {"logs/train", "samples/epoch_0002.png", "pseudo_labels.npz"}
    # npz files carry zip timestamps, and the teacher's account its seconds: compare what was taught
    pseudo = [np.load(io.BytesIO(files["pseudo_labels.npz"])) for files in (here, there)]
    assert all(np.array_equal(pseudo[0][key], pseudo[1][key]) for key in ("labels", "confidence"))
    # The same training, to float32 round-off: oneDNN's kernels may sum in another order for differently
    # aligned buffers, so the resumed epoch's losses can differ in the last bits (as in test_trainers' resume).
    histories = [np.loadtxt(io.StringIO(files["history.csv"].decode().replace("NA", "nan")), delimiter=",", skiprows=1)
                 for files in (here, there)]  # fmt: skip
    assert histories[0].shape[0] == 2 and np.allclose(*histories, rtol=1e-5, equal_nan=True)
    generators = [RunDirectory.open(out).generator for out in (tmp_path / "run", f"{ram}/run")]
    for a, b in zip(generators[0].weights, generators[1].weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    manifest = sample(f"{ram}/run", f"{ram}/syn", per_class=3, seed=0, min_distance=None, progress=False)
    assert verify(f"{ram}/syn").counts_per_class == manifest.counts_per_class == [3] * 10

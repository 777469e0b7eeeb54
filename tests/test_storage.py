"""Object storage: runs, synthetic sets, reports and policies on a ``tf.io.gfile`` URI. TensorFlow's in-memory
``ram://`` file system stands in for ``gs://`` (same code path: genaug.storage, epath, tf.io.gfile); every
byte must equal the same job's on local disk."""

import itertools

import pytest

from genaug import storage

_names = itertools.count()


@pytest.fixture
def ram():
    """A fresh ``ram://`` directory (the in-memory file system lives as long as the process)."""
    return f"ram://genaug-test-{next(_names)}"


def _files(root) -> dict[str, bytes]:
    """Every file under ``root`` (local or URI) by relative path, except genaug's lock files."""
    root = storage.path(root)
    found, pending = {}, [root]
    while pending:
        for entry in pending.pop().iterdir():
            relative = entry.relative_to(root).as_posix()
            if entry.is_dir():
                pending.append(entry)
            elif not relative.startswith(".genaug/lock"):
                found[relative] = entry.read_bytes()
    return found


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
    local = _files(tmp_path / "syn")
    assert _files(ram) == local and len(local) > 4
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
    beamed = _files(ram)
    assert beamed.pop(".genaug/beam.log") is not None
    assert beamed == _files(tmp_path / "syn")


def test_evaluate_reads_a_ram_set_and_writes_its_report_there(smoke_runs, tmp_path, ram):
    from genaug import Report, evaluate, sample

    sample(smoke_runs["cvae"], f"{ram}/syn", per_class=5, seed=1, progress=False)
    sample(smoke_runs["cvae"], tmp_path / "syn", per_class=5, seed=1, progress=False)
    settings = dict(seeds=1, fractions=(0.5,), steps=10, progress=False)
    here = evaluate("digits", tmp_path / "syn", tmp_path / "report", **settings)
    there = evaluate("digits", f"{ram}/syn", f"{ram}/report", **settings)
    assert there.utility == here.utility and Report.read(f"{ram}/report").utility == here.utility
    assert set(_files(f"{ram}/report")) == set(_files(tmp_path / "report"))


def test_a_run_trains_resumes_and_samples_on_ram(tmp_path, ram):
    from conftest import smoke_config

    from genaug import sample
    from genaug.runs import RunDirectory
    from genaug.sampler import generator_fingerprint
    from trainers import train

    for out in (tmp_path / "run", f"{ram}/run"):
        train(smoke_config(out, model={"kind": "cvae"}, optim={"epochs": 1}))
        train(smoke_config(out, model={"kind": "cvae"}, optim={"epochs": 2}))  # resumed
    here, there = _files(tmp_path / "run"), _files(f"{ram}/run")

    def named(files):  # TensorBoard names its event files by time, host and process
        return {name.rsplit("/events.out.", 1)[0] for name in files}

    assert named(there) == named(here) >= {"logs/train", "samples/epoch_0002.png", "checkpoints/state.json"}
    assert there["history.csv"] == here["history.csv"] and there["history.csv"].count(b"\n") == 3
    fingerprints = {generator_fingerprint(RunDirectory.open(out).generator) for out in (tmp_path / "run", f"{ram}/run")}
    assert len(fingerprints) == 1  # .keras files differ only in their zip timestamps
    settings = dict(per_class=3, seed=0, min_distance=None, progress=False)
    sample(f"{ram}/run", f"{ram}/syn", **settings)
    sample(tmp_path / "run", tmp_path / "syn", **settings)
    shards = {name: data for name, data in _files(tmp_path / "syn").items() if ".tfrecord-" in name}
    assert shards and all(_files(f"{ram}/syn")[name] == data for name, data in shards.items())


def test_tune_on_ram_resumes_and_chooses_what_it_chooses_locally(smoke_runs, tmp_path, ram):
    from genaug import Policy, sample, tune

    sample(smoke_runs["cvae"], tmp_path / "syn", per_class=5, seed=1, progress=False)
    sample(smoke_runs["cvae"], f"{ram}/syn", per_class=5, seed=1, progress=False)
    tiny = {"folds": 2, "seeds": 0, "steps": 10, "progress": False}
    here = tune("digits", [tmp_path / "syn"], tmp_path / "tuned", trials=3, **tiny)
    tune("digits", [f"{ram}/syn"], f"{ram}/tuned", trials=2, **tiny)
    there = tune("digits", [f"{ram}/syn"], f"{ram}/tuned", trials=3, **tiny)  # resumed from the stored journal
    assert there.policy == here.policy and there.trials == 3
    assert _files(f"{ram}/tuned")["trials.csv"] == _files(tmp_path / "tuned")["trials.csv"]
    assert Policy.load(f"{ram}/tuned/policy.json") == Policy.load(tmp_path / "tuned" / "policy.json")

"""Sampler and shard tests on tiny smoke runs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from genaug import shard_writer, shards
from genaug.errors import GenaugError
from genaug.sampler import class_counts, sample


def _bytes(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.glob("genaug_synthetic-*"))}


def test_sample_is_loadable_by_tfds_with_real_class_names(smoke_runs, tmp_path):
    manifest = sample(smoke_runs["cvae"], tmp_path / "syn", per_class=20, seed=1, progress=False)
    assert manifest.num_examples == 200 and manifest.counts_per_class == [20] * 10
    builder = tfds.builder_from_directory(str(tmp_path / "syn"))
    assert builder.info.features["label"].names == [str(i) for i in range(10)]
    ds = builder.as_dataset(split="train")
    assert ds.element_spec["image"].dtype == tf.uint8 and tuple(ds.element_spec["image"].shape) == (8, 8, 1)
    assert ds.element_spec["label"].dtype == tf.int64
    labels = np.concatenate([b["label"] for b in tfds.as_numpy(ds.batch(500))])
    assert np.bincount(labels).tolist() == [20] * 10
    same, info = shards.load_synthetic(tmp_path / "syn")
    assert info.class_counts == (20,) * 10 and same.element_spec == ds.element_spec
    for key in ("genaug_version", "generator", "source", "seed", "settings", "filters", "shards"):
        assert key in manifest.to_json()
    assert len(manifest.generator.sha256) == 64 and manifest.source.dataset == "digits"


def test_labels_follow_the_conditioning(smoke_runs, tmp_path):
    """Each stored image is what the generator makes for its stored label (same latent draw)."""
    import keras

    sample(smoke_runs["cvae"], tmp_path / "s", per_class=3, seed=2, min_distance=None, progress=False)
    ds, _ = shards.load_synthetic(tmp_path / "s")
    stored = next(iter(tfds.as_numpy(ds.batch(100))))
    generator = keras.models.load_model(smoke_runs["cvae"] / "generator.keras")
    plan = shard_writer.label_plan((3,) * 10, seed=2, num_shards=1)[0]
    assert stored["label"].tolist() == plan.tolist()
    draw_seed = int(np.random.SeedSequence([2, 0, 0]).generate_state(1)[0])
    expected, _ = generator.generate(30, plan, seed=draw_seed)
    assert np.array_equal(stored["image"], expected)


def test_same_seed_same_bytes_other_seed_other_bytes(smoke_runs, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        sample(smoke_runs["cvae"], tmp_path / name, per_class=10, seed=seed, num_shards=3, progress=False)
    assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")
    assert _bytes(tmp_path / "a") != _bytes(tmp_path / "c")
    assert len(_bytes(tmp_path / "a")) == 3


def test_workers_share_shards_and_the_last_one_finalizes(smoke_runs, tmp_path, caplog):
    caplog.set_level("INFO", logger="genaug")
    run = smoke_runs["cvae"]
    sample(run, tmp_path / "one", per_class=10, seed=5, num_shards=4, progress=False)
    settings = dict(per_class=10, seed=5, num_shards=4, num_workers=2, progress=False)
    first = sample(run, tmp_path / "many", worker_index=1, **settings)
    assert first is None and "2/4 shards present" in caplog.text
    assert not (tmp_path / "many" / "manifest.json").exists()
    last = sample(run, tmp_path / "many", worker_index=0, **settings)
    assert last.num_examples == 100
    assert _bytes(tmp_path / "one") == _bytes(tmp_path / "many")


def test_rerun_rewrites_only_bad_shards(smoke_runs, tmp_path):
    out = tmp_path / "syn"
    sample(smoke_runs["cvae"], out, per_class=10, seed=6, num_shards=3, progress=False)
    before = _bytes(out)
    names = sorted(before)
    (out / names[0]).write_bytes(b"half-written")
    (out / names[1]).unlink()
    mtime = (out / names[2]).stat().st_mtime_ns
    sample(smoke_runs["cvae"], out, per_class=10, seed=6, num_shards=3, progress=False)
    assert _bytes(out) == before and (out / names[2]).stat().st_mtime_ns == mtime


def test_unconditional_generator_is_labelled_by_the_oracle(smoke_runs, tmp_path):
    run = shutil.copytree(smoke_runs["vae"], tmp_path / "run")
    (run / "oracle.keras").unlink()  # the shared run has one: this run trains and keeps its own
    manifest = sample(run, tmp_path / "syn", per_class=5, seed=0, progress=False)
    assert manifest.counts_per_class == [5] * 10
    assert (run / "oracle.keras").is_file()
    assert sum(manifest.filters.drawn) >= 50  # more drawn than kept: classes fill unevenly


def test_min_confidence_filter_records_rejections(smoke_runs, tmp_path):
    manifest = sample(smoke_runs["cvae"], tmp_path / "syn", per_class=5, seed=0, min_confidence=0.15, progress=False)
    filters = manifest.filters
    assert sum(filters.accepted) == 50
    assert sum(filters.drawn) == 50 + sum(filters.rejected_low_confidence) + sum(filters.rejected_too_close)
    assert manifest.settings["min_confidence"] == 0.15


def test_a_confidence_filter_at_read_time_equals_one_at_sampling_time(smoke_runs, tmp_path):
    """Sampled once keeping every image (min_confidence 0) and once at 0.6, same seed: the first set read
    with min_confidence 0.6 keeps exactly the slots whose first draw passed the sampler's filter."""
    from genaug.synthetic import SyntheticDataset

    settings = dict(per_class=20, seed=3, min_distance=None, progress=False)
    everything = sample(smoke_runs["cvae"], tmp_path / "all", min_confidence=0.0, **settings)
    sample(smoke_runs["cvae"], tmp_path / "filtered", min_confidence=0.6, **settings)
    assert everything.features == ["confidence", "image", "label"] and everything.manifest_version == 3
    kept_all, filtered = SyntheticDataset.open(tmp_path / "all"), SyntheticDataset.open(tmp_path / "filtered")
    a, b = (list(s.as_dataset().as_numpy_iterator()) for s in (kept_all, filtered))
    confident = np.array([e["confidence"] >= 0.6 for e in a])
    first_draw_kept = np.array([np.array_equal(x["image"], y["image"]) for x, y in zip(a, b, strict=True)])
    assert 0 < confident.sum() < len(a) and np.array_equal(confident, first_draw_kept)
    x, y = kept_all.arrays(min_confidence=0.6)
    assert np.array_equal(x, np.stack([e["image"] for e in a])[confident]) and len(y) == confident.sum()
    assert len(filtered.arrays(min_confidence=0.6)[1]) == 200  # everything it holds passed at sampling time
    # The stored confidence is the oracle's probability of the label.
    import keras

    oracle = keras.models.load_model(smoke_runs["cvae"] / "oracle.keras")
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(oracle.predict(np.stack([e["image"] for e in a]), verbose=0)))
    stored = np.array([e["confidence"] for e in a])
    np.testing.assert_allclose(stored, probs[np.arange(len(a)), [e["label"] for e in a]], atol=1e-5)


def test_sets_without_confidence_load_but_cannot_be_filtered_by_it(smoke_runs, tmp_path):
    from genaug.synthetic import SyntheticDataset

    manifest = sample(smoke_runs["cvae"], tmp_path / "syn", per_class=2, progress=False)
    assert manifest.features == ["image", "label"]  # no oracle ran, so no confidence (and 0.1.0's bytes)
    synthetic = SyntheticDataset.open(tmp_path / "syn")
    assert not synthetic.has_confidence and len(synthetic.arrays()[1]) == 20
    with pytest.raises(GenaugError, match="stores no oracle confidence, so min_confidence cannot filter it"):
        synthetic.arrays(min_confidence=0.5)


def test_a_class_that_cannot_be_filled_is_a_clear_error(smoke_runs, tmp_path):
    with pytest.raises(GenaugError, match=r"class \d could not be filled .* lower min_confidence or min_distance"):
        sample(smoke_runs["cvae"], tmp_path / "syn", per_class=2, min_distance=1e6, progress=False)


def test_class_counts():
    assert class_counts(3, per_class=4) == (4, 4, 4)
    assert class_counts(3, num=10) == (4, 3, 3)
    assert class_counts(3, num=10, class_balance="match", prior=(10, 30, 60)) == (1, 3, 6)
    assert class_counts(3, class_balance={"b": 5, "2": 1}, class_names=("a", "b", "c")) == (0, 5, 1)
    with pytest.raises(GenaugError, match="^per_class must be at least 1, got 0"):  # the Python argument
        class_counts(3, per_class=0)
    with pytest.raises(GenaugError, match="^give exactly one of per_class and num$"):
        class_counts(3, per_class=1, num=3)
    with pytest.raises(GenaugError, match="unknown class 'z'"):
        class_counts(3, class_balance={"z": 1}, class_names=("a", "b", "c"))


def test_bad_runs_and_outputs(smoke_runs, tmp_path, run_cli):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    code, _, err = run_cli("sample", empty, "--out", tmp_path / "x", "--per-class", "2")
    assert code == 1 and "not a finished genaug run" in err
    code, _, err = run_cli("sample", smoke_runs["cvae"], "--out", tmp_path / "x", "--per-class", "-1")
    assert code == 1 and "--per-class must be at least 1, got -1" in err  # the CLI names the flag
    code, _, err = run_cli("sample", smoke_runs["cvae"], "--out", tmp_path / "x", "--num", "9", "--shards", "10")
    assert code == 1 and "--shards must be between 1 and the number of images (9), got 10" in err
    out = tmp_path / "syn"
    assert run_cli("sample", smoke_runs["cvae"], "--out", out, "--per-class", "2", "--quiet")[0] == 0
    code, _, err = run_cli("sample", smoke_runs["cvae"], "--out", out, "--per-class", "2", "--seed", "9")
    assert code == 1 and "holds a different synthetic dataset (differs in seed); pass --overwrite" in err
    assert (
        run_cli(
            "sample",
            smoke_runs["cvae"],
            "--out",
            out,
            "--per-class",
            "2",
            "--seed",
            "9",
            "--overwrite",
            "--quiet",
        )[0]
        == 0
    )
    assert json.loads((out / "manifest.json").read_text())["seed"] == 9


def test_generator_disagreeing_with_the_dataset(smoke_runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_runs["cvae"], run)
    info = json.loads((run / "run.json").read_text())
    info["dataset"]["class_names"] = ["a", "b", "c"]
    (run / "run.json").write_text(json.dumps(info))
    with pytest.raises(GenaugError, match="generator has 10 classes but the dataset has 3"):
        sample(run, tmp_path / "syn", per_class=1, progress=False)


@pytest.mark.slow
def test_sigkill_and_resume_gives_the_uninterrupted_result(smoke_runs, tmp_path, run_cli):
    """Only the run that is killed runs in a process of its own; the uninterrupted one and the resume run
    here (a shard is a pure function of generator, seed, index and settings, whichever process writes it)."""
    arguments = [
        "sample",
        str(smoke_runs["cvae"]),
        "--per-class",
        "300",
        "--shards",
        "60",
        "--seed",
        "11",
        "--min-distance",
        "off",
        "--quiet",
        "--out",
    ]
    code, _, err = run_cli(*arguments, tmp_path / "whole")
    assert code == 0, err
    command = [sys.executable, "-m", "genaug", *arguments, str(tmp_path / "cut")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = tmp_path / "cut" / ".genaug"
    deadline = time.time() + 300
    while time.time() < deadline and len(list(state.glob("shard-*.json"))) < 5:
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "cut" / "manifest.json").exists(), "the kill must land mid-run"
    code, _, err = run_cli(*arguments, tmp_path / "cut")
    assert code == 0, err
    assert _bytes(tmp_path / "cut") == _bytes(tmp_path / "whole")
    whole = json.loads((tmp_path / "whole" / "manifest.json").read_text())
    cut = json.loads((tmp_path / "cut" / "manifest.json").read_text())
    assert whole["shards"] == cut["shards"]
    assert not list((tmp_path / "cut").glob(".*tmp*"))


def test_fused_candidates_match_the_generator_and_numpy_distances(smoke_runs, monkeypatch):
    from genaug import candidates
    from genaug.metrics import nearest_distances
    from genaug.runs import RunDirectory

    run = RunDirectory.open(smoke_runs["cvae"])
    reference = run.training_images()[0]
    monkeypatch.setattr(candidates, "REFERENCE_CHUNK", 7)  # several chunks and a padded last one
    monkeypatch.setattr(candidates, "BATCH_SIZE", 16)  # several batches in flight
    labels = np.arange(50) % 10
    drawn = candidates.Candidates(run.generator, None, reference)(50, labels, seed=4)
    images, _ = run.generator.generate(50, labels, seed=4)
    assert np.array_equal(drawn["images"], images)
    assert np.allclose(drawn["distances"], nearest_distances(images, reference), atol=1e-4)


def test_sampling_again_and_again_does_not_warn_about_retracing(smoke_runs, tmp_path, caplog):
    for i in range(6):
        sample(smoke_runs["cvae"], tmp_path / f"syn{i}", per_class=2, seed=i, progress=False)
    assert "retracing" not in caplog.text

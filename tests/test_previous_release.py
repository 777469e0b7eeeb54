"""A run directory and a synthetic set written by the previous release (genaug 0.1.0, main at 663e90e:
a 2-epoch smoke cvae on 5 digits per class, then 3 images per class) still load, verify and sample."""

import shutil
from pathlib import Path

import numpy as np

import genaug

FIXTURE = Path(__file__).parent / "fixtures" / "previous_release"


def test_previous_synthetic_set_loads_and_verifies():
    manifest = genaug.verify(FIXTURE / "syn")
    assert manifest.num_examples == 30 and manifest.manifest_version == 1
    dataset, info = genaug.load_synthetic(FIXTURE / "syn")
    labels = np.array([int(e["label"]) for e in dataset])
    assert info.class_names == tuple(str(d) for d in range(10))
    assert np.bincount(labels).tolist() == [3] * 10


def test_previous_run_directory_samples_the_same_shards(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(FIXTURE / "run", run)
    manifest = genaug.sample(run, tmp_path / "syn", per_class=3, seed=0, progress=False)
    old = genaug.verify(FIXTURE / "syn")
    assert [s.sha256 for s in manifest.shards] == [s.sha256 for s in old.shards]
    assert manifest.source.train_indices == old.source.train_indices

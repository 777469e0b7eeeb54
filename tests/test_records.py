"""The typed records: run directories, synthetic datasets, claiming an output directory, shard names."""

import json
import shutil
from pathlib import Path

import pytest

from genaug.errors import ArgumentError, GenaugError
from genaug.records import RunDirectory, SyntheticDataset, claim_directory, shard_name

PREVIOUS = Path(__file__).parent / "fixtures" / "previous_release"


def test_run_directory_reads_what_train_wrote():
    run = RunDirectory.open(PREVIOUS / "run")
    assert run.record.model == "cvae" and run.record.seed == 0
    assert run.record.dataset.class_names == tuple(str(d) for d in range(10))
    examples = run.labelled_examples()
    assert len(examples.y) == 50 and examples.indices.tolist() == run.record.train_indices
    assert run.generator.num_classes == 10 and run.generator.image_shape == (8, 8, 1)


def test_run_directory_errors_name_the_culprit(tmp_path):
    with pytest.raises(GenaugError, match="run directory not found"):
        RunDirectory.open(tmp_path / "nope")
    shutil.copytree(PREVIOUS / "run", tmp_path / "run")
    (tmp_path / "run" / "run.json").write_text("{not json")
    with pytest.raises(GenaugError, match=r"run.json: corrupt JSON"):
        _ = RunDirectory.open(tmp_path / "run").record
    (tmp_path / "run" / "run.json").write_text(json.dumps({"seed": 0}))
    with pytest.raises(GenaugError, match=r"run.json: missing genaug_version, versions"):
        _ = RunDirectory.open(tmp_path / "run").record
    (tmp_path / "run" / "generator.keras").unlink()
    with pytest.raises(GenaugError, match="no generator.keras"):
        RunDirectory.open(tmp_path / "run")


def test_synthetic_dataset_record(tmp_path):
    syn = SyntheticDataset.open(PREVIOUS / "syn")
    x, y = syn.arrays()
    assert x.shape == (30, 8, 8, 1) and sorted(set(y.tolist())) == list(range(10))
    assert syn.info.class_counts == (3,) * 10 and len(syn.train_indices) == 50
    with pytest.raises(GenaugError, match="synthetic dataset not found"):
        SyntheticDataset.open(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenaugError, match="no manifest.json"):
        SyntheticDataset.open(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{}")
    with pytest.raises(GenaugError, match="malformed manifest"):
        SyntheticDataset.open(tmp_path / "empty")


def test_claim_directory_resumes_refuses_and_replaces(tmp_path):
    def claim(path, changed, overwrite=False):
        return claim_directory(path, "mark.json", what="job", differences=lambda _: changed, overwrite=overwrite)

    out = tmp_path / "out"
    assert claim(out, []) is False and out.is_dir()  # new
    (out / "mark.json").write_text("{}")
    (out / "data").write_text("ours")
    assert claim(out, []) is True and (out / "data").exists()  # the same job resumes
    with pytest.raises(ArgumentError, match=r"holds a different job \(differs in seed\); pass overwrite") as err:
        claim(out, ["seed"])
    assert "--overwrite" in err.value.naming({"overwrite": "--overwrite", "out": "--out"})
    assert claim(out, ["seed"], overwrite=True) is False and not (out / "data").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    for overwrite in (False, True):  # never deletes what genaug did not write
        with pytest.raises(ArgumentError, match="is not empty and holds no genaug job; choose another out"):
            claim(mine, [], overwrite=overwrite)
    assert (mine / "precious.txt").read_text() == "keep"


def test_shard_names_follow_the_tfds_template():
    import tensorflow_datasets as tfds

    template = tfds.core.naming.ShardedFileTemplate(
        data_dir=Path("/x"),
        template="{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}",
        dataset_name="genaug_synthetic",
        split="train",
        filetype_suffix="tfrecord",
    )
    assert shard_name(2, 7) == template.sharded_filepath(shard_index=2, num_shards=7).name

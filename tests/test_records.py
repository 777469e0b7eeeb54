"""The typed records: run directories, synthetic datasets, claiming an output directory, shard names."""

import json
import re
import shutil
from pathlib import Path

import pytest

from genaug.errors import ArgumentError, GenaugError
from genaug.outputs import Layout, claim_directory
from genaug.runs import RunDirectory
from genaug.synthetic import SyntheticDataset, shard_name

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


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        ({"seed": "zero"}, 'run.json: seed must be an integer, got "zero"'),
        ({"epochs_completed": float("nan")}, "run.json: epochs_completed must be an integer, got NaN"),
        ({"jit_compile": 1}, "run.json: jit_compile must be true or false, got 1"),
        ({"dataset": {"name": "digits"}}, "run.json: missing dataset.image_shape"),
        ({"train_indices": [0, 999999999]}, "run.json: train_indices holds position 999999999, outside the 1347"),
    ],
)
def test_a_damaged_run_record_names_file_and_field(tmp_path, edit, culprit):
    shutil.copytree(PREVIOUS / "run", tmp_path / "run")
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    (tmp_path / "run" / "run.json").write_text(json.dumps(record | edit))
    with pytest.raises(GenaugError, match=re.escape(culprit)):
        RunDirectory.open(tmp_path / "run").labelled_examples()


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
    with pytest.raises(GenaugError, match="manifest.json: missing genaug_version, generator, source"):
        SyntheticDataset.open(tmp_path / "empty")


LAYOUT = Layout(
    "job", "mark.json", files=(r"mark\.json|data", r"\.genaug/lock", r"part/\d+\.bin"), dirs=(r"\.genaug", "part")
)


def _claim(path, changed, overwrite=False):
    with claim_directory(path, LAYOUT, differences=lambda _: changed, overwrite=overwrite) as same:
        return same


def test_claim_directory_resumes_refuses_and_replaces(tmp_path):
    out = tmp_path / "out"
    assert _claim(out, []) is False and out.is_dir()  # new
    (out / "mark.json").write_text("{}")
    (out / "data").write_text("ours")
    assert _claim(out, []) is True and (out / "data").exists()  # the same job resumes
    with pytest.raises(ArgumentError, match=r"holds a different job \(differs in seed\); pass overwrite") as err:
        _claim(out, ["seed"])
    assert "--overwrite" in err.value.naming({"overwrite": "--overwrite", "out": "--out"})
    assert _claim(out, ["seed"], overwrite=True) is False and sorted(p.name for p in out.iterdir()) == [".genaug"]


def test_claim_directory_never_deletes_what_genaug_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("keep")
    for overwrite in (False, True):
        with pytest.raises(ArgumentError, match="holds 'precious.txt', which genaug did not write; choose another out"):
            _claim(mine, ["seed"], overwrite=overwrite)
    (mine / "mark.json").write_text("{}")  # even beside genaug's own record
    with pytest.raises(ArgumentError, match="holds 'precious.txt'"):
        _claim(mine, ["seed"], overwrite=True)
    assert (mine / "precious.txt").read_text() == "keep"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArgumentError, match="is a file, not a directory"):
        _claim(tmp_path / "file", [])


def test_overwrite_deletes_only_genaugs_own_files_and_follows_no_link(tmp_path):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    _claim(out, [])
    (out / "mark.json").write_text("{}")
    (out / "part").mkdir()
    (out / "part" / "0.bin").write_text("ours")
    elsewhere.mkdir()
    (elsewhere / "important.db").write_text("theirs")
    foreign = {
        "part/NOTES.txt": lambda p: p.write_text("mine"),  # any depth
        "part/mine/": lambda p: p.mkdir(),
        ".genaug/notes.txt": lambda p: p.write_text("mine"),
        ".thesis.tmp-backup": lambda p: p.write_text("mine"),  # looks like a temporary, is not one
        ".part.tmp-123.json": lambda p: p.write_text("mine"),  # a temporary, but of no name genaug writes
        "part/7.bin.bak": lambda p: p.write_text("mine"),  # close to genaug's pattern, not it
        "part/link": lambda p: p.symlink_to(elsewhere),  # never followed
    }
    for name, make in foreign.items():
        make(out / name.rstrip("/"))
        with pytest.raises(ArgumentError, match=f"holds '{re.escape(name)}', which genaug did not write"):
            _claim(out, ["seed"], overwrite=True)
        path = out / name.rstrip("/")
        path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
    (out / ".mark.tmp-4242.json").write_text("{")  # a killed writer's temporary of mark.json
    assert _claim(out, ["seed"], overwrite=True) is False
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [".genaug", ".genaug/lock"]
    assert (elsewhere / "important.db").read_text() == "theirs"


def test_a_symlinked_state_directory_is_refused_before_anything_is_written(tmp_path):
    out, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    (victim / "important.db").write_text("theirs")
    out.mkdir()
    (out / "mark.json").write_text("{}")
    (out / ".genaug").symlink_to(victim)
    for overwrite in (False, True):
        with pytest.raises(ArgumentError, match="holds '.genaug', which genaug did not write"):
            _claim(out, ["seed"], overwrite=overwrite)
    assert sorted(p.name for p in victim.iterdir()) == ["important.db"]


def test_claim_directory_allows_one_writer_at_a_time(tmp_path):
    out = tmp_path / "out"
    with claim_directory(out, LAYOUT, differences=lambda _: [], overwrite=False):
        with pytest.raises(GenaugError, match=f"{out} is being written by genaug process"):
            _claim(out, [])
        with claim_directory(out, LAYOUT, differences=lambda _: [], overwrite=False, lock="lock-1-of-2"):
            pass  # a worker with its own lock may share the directory
    assert _claim(out, []) is False  # released on exit


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

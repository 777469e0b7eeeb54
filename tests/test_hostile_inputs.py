"""Hostile but fair input, tried as a careful user would: each case exits 1 with one line naming the
culprit (never exit 70 or a traceback), touches nothing outside its output, and leaves no state that
refuses the corrected command."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

PREVIOUS = Path(__file__).parent / "fixtures" / "previous_release"


@pytest.fixture
def run(tmp_path):
    """A finished run directory (the previous release's smoke cvae), copied so tests may damage it."""
    shutil.copytree(PREVIOUS / "run", tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def synthetic(tmp_path):
    shutil.copytree(PREVIOUS / "syn", tmp_path / "syn")
    return tmp_path / "syn"


def _snapshot(root: Path) -> dict:
    """Every file's bytes, but only the existence of a lock file: its line names the last process that held it
    (for a concurrent writer's error), and a refused command holds the lock while it checks."""

    from conftest import is_lock_file

    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
    return {relative: b"" if is_lock_file(relative) else p.read_bytes() for relative, p in files.items()}


@pytest.fixture
def refuses(run_cli, tmp_path):
    """``refuses(*args, culprit=...)``: exit 1, one line containing ``culprit``, nothing written."""

    def check(*args, culprit: str):
        before = _snapshot(tmp_path)
        code, out, err = run_cli(*args)
        assert code == 1, (code, err)
        assert err.startswith("genaug: error: ") and err.count("\n") == 1, err
        assert culprit in err, err
        assert _snapshot(tmp_path) == before, "a refused command changed files"
        return err

    return check


# ---- 1. --overwrite never destroys what genaug did not write ----------------------------------------


def test_sample_overwrite_keeps_a_users_folder(run, tmp_path, refuses):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep")
    refuses("sample", run, "--out", tmp_path / "mine", "--per-class", "2", "--overwrite", culprit="'precious.txt'")


def test_sample_overwrite_cannot_replace_the_run_it_samples(run, refuses):
    refuses(
        "sample", run, "--out", run, "--per-class", "2", "--overwrite", culprit="is the run directory being sampled"
    )


def test_train_overwrite_keeps_a_folder_with_a_config_json(tmp_path, refuses):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    args = ("train", "--preset", "smoke", "--labels-per-class", "5", "--out", folder, "--overwrite")
    refuses(*args, culprit="holds no genaug run")
    (folder / "notes.md").write_text("mine")
    refuses(*args, culprit="'notes.md', which genaug did not write")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A smoke run with a teacher, a synthetic set sampled through the oracle, and a one-trial tuning:
    every kind of file genaug writes into its three kinds of directory. Tests copy before damaging."""
    from conftest import shared_directory, smoke_config

    import genaug

    def build(root):
        data = {"unlabeled": "auto", "holdout": 0.2, "teacher": "fixmatch", "teacher_steps": 5}
        run = genaug.train(smoke_config(root / "run", data=data, run={"sample_every": 1})).directory
        genaug.sample(run, root / "syn", per_class=2, min_confidence=0.0, min_distance=0.0, progress=False)
        genaug.tune("digits", [root / "syn"], root / "tune", trials=1, folds=2, seeds=0, steps=2, progress=False)

    return shared_directory(tmp_path_factory, "outputs", build)


def _copy(outputs: Path, name: str, tmp_path: Path) -> Path:
    shutil.copytree(outputs / name, tmp_path / name, symlinks=True)
    return tmp_path / name


def test_genaugs_own_outputs_hold_nothing_foreign_at_any_depth(outputs):
    from genaug.runs import RUN_LAYOUT
    from genaug.synthetic import SYNTHETIC_LAYOUT
    from genaug.tuning import TUNING_LAYOUT

    run = outputs / "run"
    written = {p.name for p in run.iterdir()}
    assert {"teacher.keras", "pseudo_labels.npz", "oracle.keras", "checkpoints", "logs"} <= written
    for layout, name in ((RUN_LAYOUT, "run"), (SYNTHETIC_LAYOUT, "syn"), (TUNING_LAYOUT, "tune")):
        assert layout.foreign(outputs / name, deep=True) == [], name


@pytest.mark.parametrize(
    ("name", "culprit"),
    [("checkpoints/NOTES.txt", "checkpoints/NOTES.txt"), ("logs/mine/keep.txt", "logs/mine/")],
)
def test_train_overwrite_keeps_user_files_inside_the_run(outputs, tmp_path, refuses, name, culprit):
    run = _copy(outputs, "run", tmp_path)
    (run / name).parent.mkdir(exist_ok=True)
    (run / name).write_text("mine")
    args = ("--preset", "smoke", "--labels-per-class", "10", "--unlabeled", "none", "--seed", "5", "--overwrite")
    refuses("train", "--out", run, *args, culprit=f"holds '{culprit}', which genaug did not write")


@pytest.mark.parametrize(
    "name", [".genaug/notes.txt", ".thesis.tmp-backup", "genaug_synthetic-train.tfrecord-my-of-own"]
)
def test_sample_overwrite_keeps_user_files_that_look_like_genaugs(outputs, tmp_path, refuses, name):
    syn = _copy(outputs, "syn", tmp_path)
    (syn / name).write_text("mine")
    refuses(
        "sample", outputs / "run", "--out", syn, "--per-class", "3", "--overwrite", "--quiet",
        culprit=f"holds '{name}', which genaug did not write",
    )  # fmt: skip


def test_sample_overwrite_follows_no_symlink_out_of_the_output(outputs, tmp_path, refuses):
    syn, victim = _copy(outputs, "syn", tmp_path), tmp_path / "victim"
    shutil.move(syn / ".genaug", victim)
    (victim / "important.db").write_text("theirs")
    (syn / ".genaug").symlink_to(victim)
    refuses(
        "sample", outputs / "run", "--out", syn, "--per-class", "3", "--overwrite", "--quiet",
        culprit="holds '.genaug', which genaug did not write",
    )  # fmt: skip


def test_a_second_writer_is_refused_at_once(run, tmp_path, refuses):
    from genaug.outputs import claim_directory
    from genaug.synthetic import SYNTHETIC_LAYOUT

    out = tmp_path / "busy"
    with claim_directory(out, SYNTHETIC_LAYOUT, differences=lambda _: [], overwrite=False):
        refuses(
            "sample", run, "--out", out, "--per-class", "2", "--quiet", culprit="is being written by genaug process"
        )


# ---- 2. a dataset directory is closed ----------------------------------------------------------------


def _edit_manifest(syn: Path, edit) -> None:
    manifest = json.loads((syn / "manifest.json").read_text())
    edit(manifest)
    (syn / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        (lambda m: m["shards"][0].update(file="../outside/x"), "'../outside/x' is not a shard name"),
        (lambda m: m["shards"][0].update(file="/etc/hostname"), "'/etc/hostname' is not a shard name"),
        (lambda m: m.update(shards=[]), "lists no shards"),
        (lambda m: m.pop("shards"), "manifest.json: missing shards"),
        (lambda m: m.pop("source"), "manifest.json: missing source"),
        (lambda m: m.update(num_examples=float("nan")), "manifest.json: num_examples must be an integer, got NaN"),
        (lambda m: m.update(num_examples=201), "num_examples 201 is not the sum of counts_per_class"),
        (lambda m: m["source"].update(image_shape=[8, 8]), "source.image_shape must hold 3 values, got 2"),
        (lambda m: m["shards"][0].update(examples="200"), 'shards[0].examples must be an integer, got "200"'),
        (lambda m: m.update(metadata=["features.json"]), "metadata must be a JSON object"),
    ],
)
def test_verify_trusts_no_manifest_entry(synthetic, refuses, edit, culprit):
    _edit_manifest(synthetic, edit)
    refuses("verify", synthetic, culprit=culprit)


def _reverse_lines(path: Path) -> None:
    path.write_text("\n".join(reversed(path.read_text().splitlines())) + "\n")


@pytest.mark.parametrize(
    ("name", "edit"),
    [
        ("features.json", lambda p: p.write_text(p.read_text().replace('"numClasses": "10"', '"numClasses": "5"'))),
        (
            "features.json",
            lambda p: p.write_text(p.read_text().replace('"8",\n', '"4",\n', 1).replace('"8"', '"16"', 1)),
        ),
        ("label.labels.txt", _reverse_lines),
        ("dataset_info.json", lambda p: p.unlink()),
        ("extra.labels.txt", lambda p: p.write_text("a\nb\n")),
    ],
)
def test_verify_checks_what_tfds_reads_the_shards_as(outputs, tmp_path, refuses, name, edit):
    syn = _copy(outputs, "syn", tmp_path)
    before = (syn / name).read_bytes() if (syn / name).exists() else None
    edit(syn / name)
    assert not (syn / name).exists() or (syn / name).read_bytes() != before
    refuses("verify", syn, culprit=f"{syn}: {name} ")
    import genaug

    with pytest.raises(genaug.GenaugError, match=f"{name} "):
        genaug.load_synthetic(syn)


@pytest.mark.parametrize("name", ["features.json", "dataset_info.json"])
def test_missing_tfds_metadata_is_named(synthetic, refuses, name):
    (synthetic / name).unlink()
    refuses("verify", synthetic, culprit=f"{name} is missing")


def test_an_older_set_verifies_and_says_what_it_could_not_check(synthetic, run_cli):
    code, out, _ = run_cli("verify", synthetic)
    assert code == 0 and "records no sha256 of dataset_info.json, features.json" in out


def test_rewritten_shards_are_caught_on_every_read(synthetic, tmp_path, refuses):
    import genaug

    shard = next(synthetic.glob("genaug_synthetic-*"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    refuses("verify", synthetic, culprit=f"shard {shard.name} is corrupt")
    with pytest.raises(genaug.GenaugError, match=f"shard {shard.name} is corrupt"):
        genaug.load_synthetic(synthetic)
    refuses("evaluate", "--synthetic", synthetic, "--out", tmp_path / "r", culprit=f"shard {shard.name} is corrupt")


def test_a_shard_tfds_reads_but_the_manifest_does_not_list_is_caught(synthetic, refuses):
    info = json.loads((synthetic / "dataset_info.json").read_text())
    info["splits"][0]["shardLengths"] = ["20", "10"]
    (synthetic / "dataset_info.json").write_text(json.dumps(info))
    refuses("verify", synthetic, culprit="dataset_info.json and manifest.json disagree")


# ---- 3. the NaN guard checks weights -------------------------------------------------------------------


def test_nan_weights_are_never_saved_as_the_last_good_checkpoint(tmp_path):
    import keras
    from conftest import smoke_config

    import genaug
    import models
    from trainers import train

    class PoisonWeightsAfterEpoch(keras.callbacks.Callback):
        """NaN weights after epoch 2's last step was logged: its losses are finite, its weights are not."""

        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                for weight in self.model.trainable_weights:
                    weight.assign(np.full(weight.shape, np.nan, weight.dtype))

    with pytest.raises(genaug.GenaugError, match=r"the last good checkpoint \(epoch 1\)"):
        train(smoke_config(tmp_path / "run", optim={"epochs": 3}), extra_callbacks=[PoisonWeightsAfterEpoch()])
    saved = models.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    assert all(np.isfinite(w.numpy()).all() for w in saved.weights)


# ---- 4. bad values are refused up front ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flags", "culprit"),
    [
        (["--per-class", "3", "--temperature", "nan"], "--temperature must be a positive number, got nan"),
        (["--per-class", "3", "--truncation", "0"], "--truncation must be a positive number, got 0"),
        (["--per-class", "3", "--seed", "-1"], "--seed must be a non-negative integer, got -1"),
        (["--per-class", "3", "--shards", "0"], "--shards must be between 1 and the number of images (30), got 0"),
        (["--per-class", "3", "--class-balance", '{"0": 7}'], "--per-class cannot be combined with a --class-balance"),
        (["--num", "9", "--class-balance", '{"0": 7}'], "--num 9 disagrees with the --class-balance mapping's total 7"),
        (["--per-class", "1000000000000"], "at most 100,000,000 per call"),
        (["--per-class", "3", "--min-distance", "nan"], "--min-distance must be a distance >= 0, got nan"),
    ],
)
def test_bad_sampling_values(run, tmp_path, refuses, run_cli, flags, culprit):
    refuses("sample", run, "--out", tmp_path / "syn", *flags, culprit=culprit)
    code, _, err = run_cli("sample", run, "--out", tmp_path / "syn", "--per-class", "3", "--quiet")
    assert code == 0, err  # nothing left behind refuses the corrected command


@pytest.mark.parametrize(
    ("config", "culprit"),
    [
        ({"optim": {"learning_rate": float("nan")}}, "'optim.learning_rate' must be a finite number >= 0, got nan"),
        ({"optim": {"batch_size": 1000000000}}, "batch size 1000000000 is larger than the"),
        ({"run": {"steps_per_execution": 0}}, "'run.steps_per_execution' must be at least 1, got 0"),
        ({"run": {"seed": -1}}, "'run.seed' must be >= 0, got -1"),
    ],
)
def test_bad_training_values_leave_nothing_behind(tmp_path, refuses, config, culprit):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(config))
    args = ("train", "--preset", "smoke", "--labels-per-class", "5", "--config", path, "--out", tmp_path / "run")
    refuses(*args, culprit=culprit)
    assert not (tmp_path / "run").exists()


def test_training_fewer_epochs_than_a_finished_run_is_refused(run_cli, tmp_path, refuses):
    args = ["train", "--preset", "smoke", "--labels-per-class", "5", "--out", tmp_path / "run", "--quiet"]
    assert run_cli(*args, "--epochs", "3")[0] == 0
    refuses(*args, "--epochs", "2", culprit="has trained 3 epochs already; --epochs 2 would undo them")


def test_bad_images_and_labels(tmp_path, refuses, run_cli):
    from PIL import Image

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "far.npz", x=rng.integers(0, 256, (8, 8, 8), dtype=np.uint8), y=np.array([0] * 7 + [200000]))
    refuses("info", f"npz:{tmp_path / 'far.npz'}", culprit="labels must be 0..K-1 without gaps")
    np.savez(tmp_path / "gap.npz", x=rng.integers(0, 256, (12, 8, 8), dtype=np.uint8), y=np.array([0, 1, 5] * 4))
    refuses("info", f"npz:{tmp_path / 'gap.npz'}", culprit="but 2 is absent")
    folder = tmp_path / "one"
    for name, count in (("a", 6), ("b", 1)):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / name / f"{i}.png")
    refuses("info", f"folder:{folder}", culprit="class 'b' has 1 image(s)")
    refuses("info", "digits", "--image-size", "100000x100000", culprit="--image-size (100000, 100000) must be")


def test_16_bit_images_are_scaled_not_squashed(tmp_path):
    from PIL import Image

    from genaug.data import _read_image

    ramp = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1024).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    image = _read_image(tmp_path / "deep.png", None)[..., 0]
    assert image.dtype == np.uint8 and len(np.unique(image)) == 64
    np.testing.assert_array_equal(image, np.round(ramp / 257).astype(np.uint8))


def test_a_decompression_bomb_is_one_line(tmp_path, refuses, monkeypatch):
    from PIL import Image

    for name in ("a", "b"):
        (tmp_path / "bomb" / name).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.zeros((64, 64), np.uint8)).save(tmp_path / "bomb" / name / f"{i}.png")
    folder, declared = f"folder:{tmp_path / 'bomb'}", "declares 64x64 pixels, more than Pillow's limit"
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 64x64 is now > 2x the limit: a "bomb"
    refuses("info", folder, culprit="declares more than twice Pillow's limit of 100 pixels")
    # Between 1x and 2x the limit Pillow only warns; resizing to 8x8 would still decode it in full first.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)
    err = refuses("info", folder, "--image-size", "8x8", culprit=declared)
    assert "a/0.png" in err


# ---- the run's files and data -----------------------------------------------------------------------------


def test_a_truncated_generator_is_named(run, tmp_path, refuses):
    generator = run / "generator.keras"
    generator.write_bytes(generator.read_bytes()[:1000])
    refuses("sample", run, "--out", tmp_path / "syn", "--per-class", "2", culprit="not a complete .keras file")


@pytest.mark.parametrize(
    ("edit", "culprit"),
    [
        ({"seed": "zero"}, 'run.json: seed must be an integer, got "zero"'),
        ({"epochs_completed": float("nan")}, "run.json: epochs_completed must be an integer, got NaN"),
        ({"train_indices": [999999999]}, "run.json: train_indices holds position 999999999"),
    ],
)
def test_a_damaged_run_record_is_named_and_claims_no_output(run, tmp_path, refuses, edit, culprit):
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps(record | edit))
    flags = ("--min-confidence", "0") if "train_indices" in edit else ()  # the oracle reads the examples
    refuses("sample", run, "--out", tmp_path / "syn", "--per-class", "2", *flags, culprit=culprit)


def test_a_model_file_safe_mode_refuses_is_named(tmp_path):
    import keras

    from genaug.errors import GenaugError
    from genaug.runs import load_saved_model

    path = tmp_path / "last.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)]).save(path)
    with pytest.raises(GenaugError, match=r"last.keras: cannot load \(.*Lambda"):
        load_saved_model(path)


def test_a_policy_naming_a_set_not_given_is_refused_at_once(synthetic, tmp_path, refuses):
    from genaug.policy import Policy

    Policy(synthetic_set=5).save(tmp_path / "policy.json")
    args = ("--synthetic", synthetic, "--out", tmp_path / "report", "--policy", tmp_path / "policy.json")
    refuses("evaluate", *args, culprit="policy synthetic_set 5 names set 6, but 1 synthetic set is given")


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (("sample", "RUN", "--out", "OUT", "--per-class", "0"), "--per-class must be at least 1"),
        (("sample", "RUN", "--out", "FILE", "--per-class", "2"), "is a file, not a directory; choose another --out"),
        (("sample", "RUN", "--out", "OUT", "--per-class", "2", "--temperature", "-1"), "--temperature must be"),
        (("train", "--out", "OUT", "--epochs", "0"), "'optim.epochs' must be at least 1"),
        (("train", "--out", "FILE"), "is a file, not a directory"),
        (("evaluate", "--synthetic", "SYN", "--out", "OUT", "--num-seeds", "0"), "--num-seeds must be at least 1"),
        (("evaluate", "--synthetic", "SYN", "--out", "OUT", "--fractions", "1.5"), "fractions must be in (0, 1)"),
        (("tune", "--synthetic", "SYN", "--out", "OUT", "--folds", "1"), "--folds must be at least 2"),
        (("tune", "--synthetic", "SYN", "--out", "RUN"), "holds 'config.json', which genaug did not write"),
        (("demo", "--out", "RUN"), "holds 'config.json', which genaug demo did not write"),
    ],
)
def test_bad_options_and_outputs_are_refused_before_tensorflow_starts(run, synthetic, tmp_path, args, culprit):
    import subprocess
    import sys

    (tmp_path / "file").write_text("mine")
    names = {"RUN": run, "SYN": synthetic, "OUT": tmp_path / "out", "FILE": tmp_path / "file"}
    argv = [str(names.get(a, a)) for a in args]
    check = "import sys; from genaug.cli import main; sys.exit(main(sys.argv[1:]) + 10 * ('tensorflow' in sys.modules))"
    done = subprocess.run([sys.executable, "-c", check, *argv], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (done.returncode, done.stderr)  # 11: refused, but after TensorFlow started
    assert culprit in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists()


def test_evaluate_into_a_file_fails_before_computing(synthetic, tmp_path, refuses):
    (tmp_path / "report").write_text("not a folder")
    refuses("evaluate", "--synthetic", synthetic, "--out", tmp_path / "report", culprit="is a file, not a directory")


def test_a_run_from_a_relative_npz_samples_from_anywhere_and_notices_changed_data(tmp_path, run_cli, monkeypatch):
    import genaug

    digits = genaug.load_arrays("digits", "train")
    np.savez(tmp_path / "d.npz", x=digits.x[..., 0], y=digits.y)
    monkeypatch.chdir(tmp_path)
    args = ("train", "--data", "npz:d.npz", "--preset", "smoke", "--labels-per-class", "5", "--out", "run", "--quiet")
    assert run_cli(*args)[0] == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, _, err = run_cli("sample", tmp_path / "run", "--out", "syn", "--per-class", "2", "--quiet")
    assert code == 0, err
    np.savez(tmp_path / "d.npz", x=255 - digits.x[..., 0], y=digits.y)  # the data changed after training
    code, _, err = run_cli("sample", tmp_path / "run", "--out", "syn2", "--per-class", "2", "--quiet")
    assert code == 1 and "is not what this run was trained on" in err and err.count("\n") == 1

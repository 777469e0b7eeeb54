"""Trainer tests: config validation, the run directory, resume after SIGKILL and the NaN guard."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from conftest import smoke_config as smoke

import models
from genaug.errors import GenaugError
from genaug.runs import RunDirectory
from trainers import PRESETS, train
from trainers import config as cfg
from trainers.training import build_model, compile_model

# ---- config ----------------------------------------------------------------------------------


def test_unknown_config_key_is_named():
    with pytest.raises(GenaugError, match="config key 'model.latnet_dim' does not apply to cvae"):
        cfg.resolve(cfg.from_dict({"model": {"latnet_dim": 3}}))
    with pytest.raises(GenaugError, match="config key 'model.g_filters' does not apply to vae"):
        cfg.resolve(cfg.from_dict({"model": {"kind": "vae", "g_filters": 3}}))
    with pytest.raises(GenaugError, match="config key 'optim.learning_rate' does not apply to cdcgan"):
        cfg.resolve(cfg.from_dict({"model": {"kind": "cdcgan"}, "optim": {"learning_rate": 0.1}}))
    with pytest.raises(GenaugError, match="unknown config key 'optimiser'"):
        cfg.from_dict({"optimiser": {}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"optim": {"epochs": "ten"}}, "'optim.epochs' must be int, got 'ten'"),
        ({"model": {"kind": "cdcgan", "spectral_norm": 1}}, "'model.spectral_norm' must be bool"),
        ({"model": {"kind": "cdcgan", "diffaugment": "cutout"}}, "'model.diffaugment' must be tuple"),
        ({"run": {"seed": None}}, "'run.seed' must not be null"),
    ],
)
def test_wrong_types_are_named(raw, message):
    with pytest.raises(GenaugError, match=message):
        cfg.resolve(cfg.from_dict(raw))


def test_bad_model_values_fail_before_anything_is_written(tmp_path):
    with pytest.raises(GenaugError, match="config key 'model.latent_prior' does not apply to cdcgan"):
        cfg.resolve(cfg.from_dict({"model": {"kind": "cdcgan", "latent_prior": "fitted"}}))
    for model, message in (
        ({"latent_prior": "uniform"}, "model cvae: latent_prior 'uniform': expected one of fitted, standard"),
        ({"prior_spread": -1.0}, "model cvae: prior_spread must be positive"),
        ({"kind": "cdcgan", "loss": "wasserstein"}, "model cdcgan: unknown GAN loss 'wasserstein'"),
    ):
        with pytest.raises(GenaugError, match=message):
            train(smoke(tmp_path / "run", model=model))
        assert not (tmp_path / "run").exists()


def test_yaml_config_and_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  kind: cdcgan\n  diffaugment: [color]\noptim:\n  d_learning_rate: 1\n")
    config = cfg.resolve(cfg.load(path))
    assert config.model.params["diffaugment"] == ["color"] and config.optim.d_learning_rate == 1.0
    assert config.model.params["ema_decay"] == 0.99  # the constructor's default, filled in
    assert config.optim.g_learning_rate == models.DCGAN.TRAINING_DEFAULTS["g_learning_rate"]
    assert cfg.resolve(cfg.TrainConfig()).optim.learning_rate == models.VAE.TRAINING_DEFAULTS["learning_rate"]
    with pytest.raises(GenaugError, match="unknown model 'gan'"):
        cfg.resolve(cfg.from_dict({"model": {"kind": "gan"}}))


def test_checkpoints_come_every_hundred_steps_or_as_configured():
    """By default, tiny epochs are not each saved (a 4-step epoch's checkpoint costs more than the epoch)."""
    assert cfg.TrainConfig().run.checkpoint_every is None and PRESETS["smoke"].run.checkpoint_every == 1
    assert [cfg.checkpoint_interval(None, steps) for steps in (4, 21, 100, 937)] == [25, 5, 1, 1]
    assert cfg.checkpoint_interval(3, 4) == 3
    with pytest.raises(GenaugError, match="'run.checkpoint_every' must be at least 1"):
        cfg.resolve(cfg.from_dict({"run": {"checkpoint_every": 0}}))


def test_bad_config_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GenaugError, match="bad.json: not valid json"):
        cfg.load(tmp_path / "bad.json")
    with pytest.raises(GenaugError, match="config file not found"):
        cfg.load(tmp_path / "missing.yaml")


# ---- the run directory -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["vae", "cvae", pytest.param("dcgan", marks=pytest.mark.slow), "cdcgan"])
def test_train_writes_the_run_directory(kind, tmp_path):
    run = train(smoke(tmp_path / kind, model={"kind": kind}))
    out = run.directory
    for name in ("config.json", "run.json", "model.keras", "generator.keras", "history.csv"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]
    assert any((out / "logs").rglob("events.out.tfevents.*"))
    info = json.loads((out / "run.json").read_text())
    assert RunDirectory.open(out).record == run.record
    assert info["epochs_completed"] == 2 and info["seed"] == 0 and info["checkpoint_interval"] == 1
    assert len(info["train_indices"]) == 100 and info["dataset"]["class_counts"] == [10] * 10
    assert set(info["versions"]) >= {"tensorflow", "keras"}
    with open(out / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 2
    generator = keras.models.load_model(out / "generator.keras", safe_mode=True)
    images, labels = generator.generate(10, seed=0)
    assert images.shape == (10, 8, 8, 1) and (labels is not None) == kind.startswith("c")
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["model"]["latent_dim"] == 4 and resolved["optim"]["epochs"] == 2
    # Several steps per execution, yet every epoch is exactly its 3 batches (100 examples, batch 32).
    assert run.model.steps_per_execution == 3
    optimizer = run.model.d_optimizer if kind.endswith("gan") else run.model.optimizer
    assert int(optimizer.iterations) == 2 * 3


@pytest.mark.parametrize("kind", ["cvae", "cdcgan"])
def test_executions_that_do_not_divide_the_epoch_train_the_same_batches(kind, tmp_path):
    """3 steps per epoch run as executions of 2 + 1 steps: every epoch is whole, and the weights are
    those of one step at a time (an execution straddling epochs would shift every later batch)."""
    settings = dict(model={"kind": kind}, optim={"epochs": 3})
    runs = {spe: train(smoke(tmp_path / str(spe), run={"steps_per_execution": spe}, **settings)) for spe in (1, 2)}
    assert runs[2].model.steps_per_execution == 2
    for run in runs.values():
        optimizer = run.model.d_optimizer if kind.endswith("gan") else run.model.optimizer
        assert int(optimizer.iterations) == 3 * 3
    for a, b in zip(runs[1].model.weights, runs[2].model.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=a.path)


def test_rerun_continues_and_refuses_a_different_run(tmp_path):
    out = tmp_path / "run"
    first = train(smoke(out)).record
    run = train(smoke(out, optim={"epochs": 3}))  # same run, more epochs: continues from epoch 2
    with open(out / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert run.record.epochs_completed == 3
    # The record covers the whole training, not only the resumed session's epoch.
    assert run.record.timings["seconds"] > first.timings["seconds"] > 0
    assert run.record.timings["seconds"] > run.record.timings["this_session_seconds"]
    again = train(smoke(out, optim={"epochs": 3})).record  # no new epochs: the same account
    last = {k: float(v) for k, v in rows[-1].items() if k != "epoch" and v != "NA"}
    assert again.final_metrics == run.record.final_metrics == last
    assert again.timings["seconds"] == run.record.timings["seconds"]
    with pytest.raises(GenaugError, match=r"holds a different run \(differs in model.kind\); pass overwrite"):
        train(smoke(out, model={"kind": "vae"}))
    assert train(smoke(out, model={"kind": "vae"}), overwrite=True).record.model == "vae"


class _KilledAfter(keras.callbacks.Callback):
    """Stops the process's training like a kill at the end of ``epoch`` (0-based), before its checkpoint."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_a_run_stopped_between_grids_ends_with_a_final_class_labelled_grid(tmp_path):
    from PIL import Image

    out = tmp_path / "run"
    stopped = smoke(out, optim={"epochs": 5}, run={"sample_every": 10, "checkpoint_every": 1})
    with pytest.raises(KeyboardInterrupt):
        train(stopped, extra_callbacks=[_KilledAfter(epoch=2)])  # epochs 1 and 2 saved, no grid drawn
    assert not list((out / "samples").glob("*.png"))
    train(smoke(out, optim={"epochs": 2}, run={"sample_every": 10, "checkpoint_every": 1}), resume=True)
    assert [p.name for p in (out / "samples").iterdir()] == ["epoch_0002.png"]  # no new epochs, still a grid
    grid = Image.open(out / "samples" / "epoch_0002.png")
    assert grid.mode == "RGB" and grid.width > 10 * 8 * 4  # the class names' margin beside 10 columns


def test_resume_needs_a_checkpoint_and_dirs_must_be_usable(tmp_path):
    with pytest.raises(GenaugError, match="resume: no checkpoint"):
        train(smoke(tmp_path / "new"), resume=True)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(GenaugError, match="busy is not empty and holds 'notes.txt', which genaug did not write"):
        train(smoke(tmp_path / "busy"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(GenaugError, match="cannot write the run directory"):
        train(smoke(blocker / "run"))


def test_cli_train_errors_are_one_line(run_cli, tmp_path):
    code, _, err = run_cli("train", "--data", "npz:/nope.npz", "--out", tmp_path / "r", "--preset", "smoke")
    assert code == 1 and err.strip() == "genaug: error: npz file not found: /nope.npz"
    (tmp_path / "c.json").write_text('{"model": {"kind": "cvae", "colour": 1}}')
    code, _, err = run_cli("train", "--config", tmp_path / "c.json", "--out", tmp_path / "r")
    assert code == 1 and "config key 'model.colour' does not apply to cvae" in err


# ---- non-finite losses -------------------------------------------------------------------------


class PoisonOnce(keras.callbacks.Callback):
    """Sets every weight to NaN at the start of ``epoch`` (once), forcing a non-finite loss.

    (One weight is not enough: oneDNN's fused ReLU turns a NaN activation into 0.)"""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.done = epoch, False

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch and not self.done:
            self.done = True
            for weight in self.model.trainable_weights:
                weight.assign(np.full(weight.shape, np.nan, weight.dtype))


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = smoke(tmp_path / "run", optim={"epochs": 3})
    with pytest.raises(
        GenaugError, match=r"non-finite \w+ at epoch 2, batches 1-3; the last good checkpoint \(epoch 1\)"
    ):
        train(config, extra_callbacks=[PoisonOnce(epoch=1)])
    state = json.loads((tmp_path / "run" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1
    model = keras.models.load_model(tmp_path / "run" / "checkpoints" / "last.keras")
    assert all(np.isfinite(w.numpy()).all() for w in model.weights)


def test_a_full_disk_names_the_file_and_records_no_epoch_beyond_the_checkpoint(tmp_path, monkeypatch):
    saves, save = [], keras.Model.save

    def full_on_the_second(model, path, *args, **kwargs):
        saves.append(path)
        if len(saves) == 2:
            raise OSError(28, "No space left on device")
        return save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", full_on_the_second)
    run = tmp_path / "run"
    with pytest.raises(OSError, match="No space left on device") as caught:
        train(smoke(run, optim={"epochs": 3}, run={"sample_every": 1, "checkpoint_every": 1}))
    assert caught.value.filename == str(run / "checkpoints" / "last.keras")
    assert json.loads((run / "checkpoints" / "state.json").read_text())["epoch"] == 1
    assert [row["epoch"] for row in csv.DictReader((run / "history.csv").open())] == ["0"]
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_0001.png"]
    assert not (run / "run.json").exists() and not list(run.rglob(".*.tmp-*"))


@pytest.mark.slow
def test_nan_rollback_resumes_at_lower_learning_rate(tmp_path, caplog):
    config = smoke(tmp_path / "run", optim={"epochs": 3}, run={"nan_rollback": True})
    run = train(config, extra_callbacks=[PoisonOnce(epoch=1)])
    assert run.record.rollbacks == 1 and run.record.epochs_completed == 3
    assert float(run.model.optimizer.learning_rate) == pytest.approx(5e-4)
    assert "rolled back to epoch 1" in caplog.text


# ---- crash safety ------------------------------------------------------------------------------


def _train_arguments(out, epochs):
    return [
        "train",
        "--preset",
        "smoke",
        "--model",
        "cdcgan",
        "--labels-per-class",
        "20",
        "--epochs",
        str(epochs),
        "--out",
        str(out),
        "--quiet",
    ]


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, run_cli):
    """Only the run that is killed runs in a process of its own; the uninterrupted one and the resume run here."""
    epochs = 8
    code, _, err = run_cli(*_train_arguments(tmp_path / "whole", epochs))
    assert code == 0, err
    state = tmp_path / "cut" / "checkpoints" / "state.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "genaug", *_train_arguments(tmp_path / "cut", epochs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not (state.exists() and json.loads(state.read_text())["epoch"] >= 3):
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = json.loads(state.read_text())["epoch"]
    assert 3 <= killed_at < epochs, "the kill must land mid-run"
    code, _, err = run_cli(*_train_arguments(tmp_path / "cut", epochs), "--resume")
    assert code == 0, err
    with open(tmp_path / "cut" / "history.csv") as f:
        epochs_logged = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs_logged == list(range(epochs))
    assert not list((tmp_path / "cut").rglob(".*tmp*")), "temporaries of the killed run are cleaned up"
    whole = keras.models.load_model(tmp_path / "whole" / "model.keras")
    cut = keras.models.load_model(tmp_path / "cut" / "model.keras")
    # Same seed, same per-epoch data order, restored optimizer and RNG state: the same weights.
    for a, b in zip(whole.weights, cut.weights, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["cvae", "cdcgan"])
def test_smoke_preset_shrinks_the_model_it_applies_to(kind):
    default = cfg.resolve(cfg.from_dict({"model": {"kind": kind}}))
    smoke_config = cfg.resolve(cfg.from_dict({"model": {"kind": kind}}, PRESETS["smoke"]))
    assert smoke_config.optim.epochs == 2 < models.MODELS[kind].TRAINING_DEFAULTS["epochs"]
    assert default.optim.epochs is None  # decided by the budget, once the data's size is known
    assert smoke_config.model.params["latent_dim"] == 4 < default.model.params["latent_dim"]
    width = "base_filters" if kind == "cvae" else "g_filters"
    assert smoke_config.model.params[width] == 8 < default.model.params[width]


@pytest.mark.parametrize("kind", list(models.MODEL_KINDS))
def test_the_python_api_defaults_are_what_genaug_train_uses(kind):
    """`models.ConditionalDCGAN(shape, 10)` + `compile()` is the model and optimisers of `--model cdcgan`."""
    config = cfg.resolve(cfg.from_dict({"model": {"kind": kind}}))
    cls = models.MODELS[kind]
    by_train = build_model(config, (8, 8, 1), 10)
    by_hand = cls((8, 8, 1), 10) if cfg.is_conditional(cls) else cls((8, 8, 1))
    compile_model(by_train, config, jit=False)
    by_hand.compile()

    def settings(obj):
        return {k: v for k, v in obj.get_config().items() if k != "name"}

    assert settings(by_train) == settings(by_hand)
    optimizers = ("d_optimizer", "g_optimizer") if kind.endswith("gan") else ("optimizer",)
    for name in optimizers:
        assert settings(getattr(by_train, name)) == settings(getattr(by_hand, name))
    assert cfg.budget(config, steps_per_epoch=1).optim.epochs == cls.TRAINING_DEFAULTS["epochs"]


@pytest.mark.parametrize("kind", ["cvae", "cdcgan"])
def test_the_default_budget_scales_with_the_data(kind):
    """Default epochs on a small dataset, at most max_steps steps on a large one; given epochs stand."""
    defaults = models.MODELS[kind].TRAINING_DEFAULTS
    config = cfg.resolve(cfg.from_dict({"model": {"kind": kind}}))
    assert config.optim.max_steps == defaults["max_steps"]
    assert cfg.budget(config, steps_per_epoch=21).optim.epochs == defaults["epochs"]  # digits
    large = cfg.budget(config, steps_per_epoch=156).optim.epochs  # 10,000 images
    assert large == -(-defaults["max_steps"] // 156) and (large - 1) * 156 < defaults["max_steps"]
    capped = cfg.resolve(cfg.from_dict({"model": {"kind": kind}, "optim": {"max_steps": 100}}))
    assert cfg.budget(capped, steps_per_epoch=30).optim.epochs == 4
    given = cfg.resolve(cfg.from_dict({"model": {"kind": kind}, "optim": {"epochs": 500, "max_steps": 100}}))
    assert cfg.budget(given, steps_per_epoch=30).optim.epochs == 500


def test_train_records_the_budgeted_epochs(tmp_path):
    run = train(smoke(tmp_path / "run", optim={"epochs": None, "max_steps": 3}))
    recorded = json.loads((tmp_path / "run" / "config.json").read_text())["optim"]
    assert run.record.epochs_completed == recorded["epochs"] == 1 and recorded["max_steps"] == 3

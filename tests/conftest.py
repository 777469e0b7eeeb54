import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    # One xdist worker per core: TensorFlow on one thread in each, as in the demo's worker processes
    # (genaug.workers). Two workers with TensorFlow's default thread pools oversubscribe the cores.
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        from genaug.startup import single_threaded_tensorflow

        single_threaded_tensorflow()


@pytest.fixture
def run_cli(capsys):
    """Runs ``genaug ARGS`` in-process; returns (exit code, stdout, stderr)."""
    from genaug.cli import main

    def run(*args: str):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def image_folder(tmp_path):
    """A folder:PATH source with 3 classes of 6 PNGs each (8x8 grayscale)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for name in ("cat", "dog", "eel"):
        (root / name).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def smoke_config(out, **sections):
    """The smoke preset (tiny networks, 2 epochs) on 10 digits per class and no unlabelled images, quiet,
    writing to ``out``, with ``sections`` (``model={"kind": "vae"}``, ...) overlaid."""
    from trainers import PRESETS
    from trainers import config as cfg

    raw = {"data": {"labels_per_class": 10, "unlabeled": "none"}, "run": {"out": str(out), "quiet": True}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return cfg.from_dict(raw, PRESETS["smoke"])


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """Trained smoke runs on 20 digits per class, a conditional and an unconditional VAE, trained
    long enough (60 epochs, seconds) that their samples resemble every class."""
    from trainers import train

    root = tmp_path_factory.mktemp("runs")
    sections = dict(
        data={"labels_per_class": 20}, optim={"epochs": 60}, run={"sample_every": 60, "checkpoint_every": 60}
    )
    return {
        kind: train(smoke_config(root / kind, model={"kind": kind}, **sections)).directory for kind in ("cvae", "vae")
    }

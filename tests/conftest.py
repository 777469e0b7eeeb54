import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    # One xdist worker per core: TensorFlow on one thread in each, as in the demo's worker processes
    # (genaug.workers). Two workers with TensorFlow's default thread pools oversubscribe the cores.
    # The processes tests start inherit it through TensorFlow's environment variables: two workers each
    # waiting on a process with default thread pools spent ~8 % more CPU on the same work.
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        from genaug.startup import single_threaded_tensorflow

        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

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


def shared_directory(tmp_path_factory, name: str, build) -> Path:
    """A directory that ``build(directory)`` fills once per test session, however many xdist workers run:
    the first worker to ask builds it under a file lock, the others wait and reuse it. Tests read it and
    never write into it (copy it first), so no result depends on which tests ran before."""
    import fcntl
    import shutil

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the session's, shared by workers
    directory = root / f"shared-{name}"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / ".built").exists():
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir()
            build(directory)
            (directory / ".built").touch()
    return directory


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """Trained smoke runs on 20 digits per class, a conditional and an unconditional VAE, trained
    long enough (60 epochs, seconds) that their samples resemble every class, with their oracles (which
    sampling with a confidence filter or from the unconditional model would otherwise write into them)."""

    def build(root):
        from genaug.runs import RunDirectory
        from genaug.shard_writer import oracle_for
        from trainers import train

        sections = dict(
            data={"labels_per_class": 20}, optim={"epochs": 60}, run={"sample_every": 60, "checkpoint_every": 60}
        )
        for kind in ("cvae", "vae"):
            train(smoke_config(root / kind, model={"kind": kind}, **sections))
            oracle_for(RunDirectory.open(root / kind))

    root = shared_directory(tmp_path_factory, "smoke_runs", build)
    return {kind: root / kind for kind in ("cvae", "vae")}


_ram_names = __import__("itertools").count()


@pytest.fixture
def ram():
    """A fresh ``ram://`` directory: TensorFlow's in-memory file system, standing in for ``gs://`` (the same
    code path: genaug.storage, epath, tf.io.gfile). It lives as long as the process."""
    return f"ram://genaug-test-{os.getpid()}-{next(_ram_names)}"


def is_lock_file(relative: str) -> bool:
    """Whether ``relative`` (a path under any folder) is one of genaug's lock files (``genaug.outputs.LOCKS``)."""
    import re

    from genaug.outputs import LOCKS

    return re.fullmatch(f"(.+/)?{LOCKS}", relative) is not None


def all_files(root) -> dict[str, bytes]:
    """Every file under ``root`` (a local path or a URI) by relative path, except genaug's lock files."""
    from genaug import storage

    root = storage.path(root)
    found, pending = {}, [root]
    while pending:
        for entry in pending.pop().iterdir():
            relative = entry.relative_to(root).as_posix()
            if entry.is_dir():
                pending.append(entry)
            elif not is_lock_file(relative):
                found[relative] = entry.read_bytes()
    return found


def copy_tree(source, target) -> None:
    """Copies every file under ``source`` to ``target`` (a local path or a URI)."""
    from genaug import storage

    for relative, data in all_files(source).items():
        file = storage.path(target) / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(data)

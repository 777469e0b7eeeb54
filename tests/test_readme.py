"""README's commands run as written: its CLI walkthrough and Python snippets, on a folder made from digits."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()
SETUP = "python3 -m venv"  # the set-up commands; CI runs the test one, the demo has its own test


NATIVE_LOG = re.compile(r"[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ |WARNING: All log messages before absl::InitializeLog")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def _cli_lines() -> list[str]:
    lines = [line for block in _blocks("bash") for line in block.splitlines()]
    return [line for line in lines if line.startswith("genaug ")]


def test_readme_is_a_guide_not_a_log():
    assert len(README.splitlines()) < 250
    assert len(_cli_lines()) >= 5 and len(_blocks("python")) >= 2
    assert all(block.startswith(SETUP) or block.startswith("genaug ") for block in _blocks("bash"))


def test_readme_pictures_exist_and_are_what_evaluate_writes():
    """The pictures README shows are files in the repository, named as every report names them (the demo's and
    the scarce-labels benchmark's reports are where they are copied from; tests/test_demo.py checks it
    writes them)."""
    from genaug.report import PLOTS

    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert len(pictures) >= 4
    for picture in pictures:
        assert (Path(__file__).parent.parent / picture).is_file(), picture
        assert Path(picture).name in PLOTS, picture


def test_readme_config_example_is_a_valid_config(tmp_path):
    from trainers import config as cfg

    blocks = _blocks("yaml")
    assert len(blocks) == 1
    (tmp_path / "c.yaml").write_text(blocks[0])
    config = cfg.resolve(cfg.load(tmp_path / "c.yaml"))
    assert config.data.holdout == 0.2 and config.model.kind == "cdcgan"


@pytest.mark.slow
def test_readme_walkthrough_and_python_snippets_run_as_written(tmp_path, monkeypatch, capsys):
    from PIL import Image

    import genaug
    import models
    from genaug import classifier, cli, evaluation
    from genaug.cli import main

    digits = genaug.load_arrays("digits", "train").subset(range(200))
    for i, (image, label) in enumerate(zip(digits.x, digits.y, strict=True)):
        folder = tmp_path / "my_images" / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"{i}.png")
    # The commands as written, with the CNN's budget shrunk as the demo's test shrinks it: what the
    # recipe's length buys is measured in docs/, not here. The CLI lines through the CLI's own entry point
    # (the same parser and handlers as `python -m genaug`), in this process rather than starting TensorFlow again.
    trainer_init = classifier.ClassifierTrainer.__init__
    monkeypatch.setattr(
        classifier.ClassifierTrainer,
        "__init__",
        lambda self, *args, steps, **kwargs: trainer_init(self, *args, steps=min(steps, 60), **kwargs),
    )
    monkeypatch.setitem(models.ConditionalVAE.TRAINING_DEFAULTS, "epochs", 30)  # the generator's (150)
    monkeypatch.setattr(evaluation, "FEATURE_STEPS", (60, 60))  # fidelity's feature CNN (200-1000)
    # evaluate's fits here, not in worker processes (which would start TensorFlow twice more and not see the patches)
    monkeypatch.setattr(cli, "_with_jobs", lambda jobs, function, **arguments: function(**arguments, workers=None))
    monkeypatch.chdir(tmp_path)
    for line in _cli_lines():
        assert main(line.split()[1:]) == 0, f"{line}\n{capsys.readouterr().err[-2000:]}"
    assert (tmp_path / "report" / "report.md").is_file()
    # The Python snippets as a user runs them: one script in a fresh Python, so that Python's own warning filters
    # apply and TensorFlow's (e.g. tf.function retracing, a log record) reach stderr; this process's fits would
    # count towards TensorFlow's retracing heuristic, which a user's script does not share.
    script = tmp_path / "readme_snippets.py"  # a file (AutoGraph reads lambdas' source)
    script.write_text("\n".join(_blocks("python")))
    env = {**os.environ, "PYTHONWARNINGS": ""}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    # TensorFlow's native lines (absl's format, e.g. "I0000 00:00:1796641811.693288 ..." before absl is set up; at
    # import and from Grappler) are not the snippets'; any other line is a warning the snippets caused.
    python_side = [line for line in done.stderr.splitlines() if not NATIVE_LOG.match(line)]
    assert not python_side, python_side
    assert (tmp_path / "gan.keras").is_file()

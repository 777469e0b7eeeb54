"""README's commands run as written: its CLI walkthrough and Python snippets, on a folder made from digits."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = (Path(__file__).parent.parent / "README.md").read_text()
SETUP = "python3 -m venv"  # the set-up commands; CI runs the test one, the demo has its own test


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
    from genaug.cli import main

    digits = genaug.load_arrays("digits", "train").subset(range(200))
    for i, (image, label) in enumerate(zip(digits.x, digits.y, strict=True)):
        folder = tmp_path / "my_images" / f"class_{label}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"{i}.png")
    # The CLI lines through the CLI's own entry point in this process (the same parser and handlers as
    # `python -m genaug`, without starting TensorFlow four more times); the Python snippets in a fresh one.
    monkeypatch.chdir(tmp_path)
    for line in _cli_lines():
        assert main(line.split()[1:]) == 0, f"{line}\n{capsys.readouterr().err[-2000:]}"
    assert (tmp_path / "report" / "report.md").is_file()
    script = "\n".join(_blocks("python"))
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Warning" not in result.stderr, result.stderr[-2000:]  # e.g. Keras's on fit(dataset, shuffle=True)
    assert (tmp_path / "gan.keras").is_file()

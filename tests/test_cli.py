import subprocess
import sys

import numpy as np


def test_info_digits(run_cli):
    code, out, _ = run_cli("info", "digits")
    assert code == 0
    assert "classes      10" in out and "train 1347, test 450" in out


def test_bad_input_is_one_line_and_nonzero(run_cli, tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 2, 2), np.uint8))
    code, out, err = run_cli("info", f"npz:{tmp_path / 'bad.npz'}")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("genaug: error:") and "'y'" in err


def test_python_dash_m_entry_point_reports_missing_path():
    result = subprocess.run(
        [sys.executable, "-m", "genaug", "info", "folder:/no/such/dir"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "genaug: error: folder not found: /no/such/dir"


def test_every_option_has_a_help_text():
    from genaug.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, command in {"genaug": parser, **commands}.items():
        for action in command._actions:
            if action.dest not in ("help", "version", "command"):
                assert action.help, f"{name} {action.option_strings or action.dest} has no help"


def test_library_errors_name_arguments_and_the_cli_names_flags(run_cli, tmp_path):
    import pytest

    from genaug.errors import ArgumentError
    from genaug.evaluation import evaluate

    with pytest.raises(ArgumentError, match="^seeds must be at least 1, got 0$"):
        evaluate("digits", tmp_path, tmp_path / "r", seeds=0)
    code, _, err = run_cli("evaluate", "--synthetic", tmp_path, "--out", tmp_path / "r", "--num-seeds", "0")
    assert code == 1 and err == "genaug: error: --num-seeds must be at least 1, got 0\n"

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

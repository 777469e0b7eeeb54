"""The quickstart notebook runs top to bottom (so it cannot rot) and says what it should."""

import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).parent.parent / "notebooks" / "quickstart.ipynb"
SMALLER = "epochs, classifier_epochs, seeds, evaluation_steps = 10, 20, 1, 50"


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Smaller parameters after the notebook's own, as papermill injects them: the same code, less training.
    (position,) = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(SMALLER))
    # execute() raises on the first cell that fails.
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    errors = "".join(o.get("text", "") for o in outputs if o.output_type == "stream" and o.get("name") == "stderr")
    assert "Warning" not in errors, errors  # a quickstart that warns looks broken
    assert "1000 examples" in text
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", text).group(1))
    assert accuracy > 0.8, text
    assert any(o.output_type == "display_data" and "image/png" in o.get("data", {}) for o in outputs)

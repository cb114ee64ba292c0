"""The tutorial notebook runs headless, as a reader runs it in Jupyter (a real kernel, inline plots).

It starts its own local dispatcher inside the kernel, whose matplotlib backend
is the inline one: the server must not inherit it.  The outputs are checked
as a reader sees them: no error, figures drawn, the result tables shown as
HTML, and the progress of the many-job cell.
"""
import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

pytestmark = [pytest.mark.integration, pytest.mark.integral]

NOTEBOOK = Path(__file__).resolve().parent.parent / "docs" / "notebooks" / "tutorial.ipynb"


def _texts(output):
    data = output.get("data", {})
    return [str(data.get(kind, "")) for kind in ("text/plain", "text/html")] + [output.get("text", "")]


def test_the_tutorial_notebook_runs_and_shows_its_results(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env_backend = os.environ.pop("MPLBACKEND", None)  # the kernel picks its own, as in Jupyter
    try:
        nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    errors = [output for output in outputs if output.output_type == "error"]
    assert not errors, "\n".join(f"{e.ename}: {e.evalue}" for e in errors)
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) >= 3  # light curve, mosaic, spectrum
    shown = "\n".join(text for output in outputs for text in _texts(output))
    assert "<table>" in shown and "LightCurveSet" in shown and "4U 1700-377" in shown
    assert "MMODA jobs: [" in shown and "3/3" in shown  # the progress line, at its end
    assert "Traceback" not in shown

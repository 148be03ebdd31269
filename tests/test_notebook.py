"""The notebook route: ``notebooks/quickstart.ipynb`` runs top to bottom in a real Jupyter kernel (nbclient), and its
output reads in a notebook: a few outputs for a whole fit, each bar one output redrawn in place, no terminal escapes,
no Lightning tips, the engine's chunks kept, a picture at the end."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnn_lightning.data.fashion_mnist import CLASSES
from tests.conftest import REPO

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def _text(output: dict) -> str:
    """What an output shows as text: a stream's text, or a display's plain-text form."""
    if output["output_type"] == "stream":
        return output["text"]
    return str(output.get("data", {}).get("text/plain", ""))


@pytest.mark.slow  # a kernel, torch, and an epoch of LeNet: about 40 s on 2 cores
def test_the_notebook_runs_in_a_jupyter_kernel_and_reads_as_a_notebook(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the kernel imports this checkout, whichever one is installed
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    parameters = next(cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", []))
    parameters.source = f"EPOCHS = 1\nDATA_DIR = {str(data_dir)!r}"
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # a cell that raises fails the test with the cell and its traceback (CellExecutionError)
    nbformat.write(notebook, tmp_path / NOTEBOOK.name)  # as a user would see it, for a look when this test fails

    fit = next(cell for cell in notebook.cells if "trainer.fit(" in cell.source)
    assert len(fit.outputs) < 50, [_text(output)[:80] for output in fit.outputs]
    shown = "".join(_text(output) for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)
    assert "\x1b" not in shown and "[A" not in shown and "\r" not in shown  # no terminal redraws or cursor moves
    assert "Tip:" not in shown and "litlogger" not in shown and "litmodels" not in shown
    assert "ProcessSettings" not in shown and "TPU available" not in shown and "Skipping setting" not in shown
    assert "| net " in shown and "EpochMetrics" not in shown  # the network's table, not the classifier's bookkeeping
    assert "Chunked steps off" not in shown and "Chunked steps: 25" in shown  # the bar keeps the engine's chunks
    bars = [_text(output) for output in fit.outputs if output["output_type"] == "display_data"]
    last = next(text for text in bars if text.startswith("Epoch 0"))
    assert re.match(r"Epoch 0: +215/215 .*loss=.*acc=.*val_acc=", last), bars  # the epoch's figures, redrawn in place

    predicted = next(cell for cell in notebook.cells if "model.eval()(images)" in cell.source)
    assert re.match(r"torch.uint8 \[256, 28, 28\]: [\d.]+ of the batch right", _text(predicted.outputs[-1]))
    names = next(cell for cell in notebook.cells if "load_classifier(trainer" in cell.source)
    assert any(f"'{name}'" in _text(names.outputs[-1]) for name in CLASSES)  # a plain Trainer's checkpoint loads
    assert any("image/png" in output.get("data", {}) for output in notebook.cells[-1].outputs)

"""``predict`` writes what it predicted: one CSV per call, through Lightning's ``BasePredictionWriter``."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from cnn_lightning.errors import on_full_disk
from cnn_lightning.output_places import check_folder, check_new_file, new_file
from cnn_lightning.runs import run_folder

FILE_STEM = "predictions"


class PredictionCSV(BasePredictionWriter):
    """Writes every prediction of a ``predict`` call to a new CSV file and prints its path.

    Columns: ``source`` (the image file, or ``test:<index>`` for the test set), ``label`` (the true class name
    where known), ``prediction`` and its ``probability``, then one probability column per class, headed by the
    class names. Rows are in source order. Under DDP each rank's rows are gathered and rank 0 writes the one file.

    Args:
        output: the CSV file to write (refused if it exists), or a folder for a new ``predictions*.csv``;
            default: the ``predict`` folder of the run the checkpoint came from, else ``lightning_logs/predict``.
    """

    def __init__(self, output: str | None = None) -> None:
        super().__init__(write_interval="batch")
        self.output = output
        self.path: Path | None = None
        self._parts: list[dict[str, torch.Tensor]] = []
        self._written = 0

    def on_predict_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._parts = []

    def write_on_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any, *args: Any, **kwargs: Any
    ) -> None:
        if isinstance(prediction, dict) and "index" in prediction:
            keep = ("index", "probability", "label")
            self._parts.append({key: prediction[key].detach() for key in keep})

    def on_predict_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self._parts:
            return
        rows = {key: torch.cat([part[key] for part in self._parts]) for key in self._parts[0]}
        if trainer.world_size > 1:  # every rank holds as many rows (the sampler pads), so all_gather stacks them
            rows = {key: trainer.strategy.all_gather(value).flatten(0, 1) for key, value in rows.items()}
        if trainer.is_global_zero:
            self.path = self._target(trainer)
            with on_full_disk("the predictions", self.path.parent, remove=[self.path]):
                self._write(rows, trainer, pl_module)
            self._written = len(rows["index"].unique())

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and self._written:
            line, bar = f"Predictions: {self.path} ({self._written} images)", trainer.progress_bar_callback
            if bar is not None:  # still drawn (the bar's own on_predict_end comes later): the line goes above it
                bar.print(line)
            else:
                print(line)
            sys.stdout.flush()
            self._written = 0

    def _target(self, trainer: L.Trainer) -> Path:
        fix = "Pass another --predictions.output."
        if self.output and not Path(self.output).is_dir() and Path(self.output).suffix:
            path = check_new_file(self.output, what="the predictions", fix=fix)  # never overwrite what the user has
            path.parent.mkdir(parents=True, exist_ok=True)
            path.open("x").close()
            return path
        if self.output:
            return new_file(check_folder(self.output, what="the predictions", fix=fix), stem=FILE_STEM)
        run = run_folder(trainer.ckpt_path) if trainer.ckpt_path else None
        return new_file((run or Path("lightning_logs")) / "predict", stem=FILE_STEM)

    def _write(self, rows: dict[str, torch.Tensor], trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        sources = getattr(trainer.datamodule, "predict_sources", None) or []
        names = list(getattr(pl_module, "categories", [])) or [str(i) for i in range(rows["probability"].shape[1])]
        order = torch.argsort(rows["index"].cpu(), stable=True)
        seen: set[int] = set()
        with self.path.open("w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(["source", "label", "prediction", "probability", *names])
            for position in order.tolist():
                index = int(rows["index"][position])
                if index in seen:  # a padded duplicate from the distributed sampler
                    continue
                seen.add(index)
                probabilities = rows["probability"][position].float().cpu()
                best, label = int(probabilities.argmax()), int(rows["label"][position])
                source = sources[index] if index < len(sources) else f"predict:{index}"
                writer.writerow(
                    [source, names[label] if label >= 0 else "", names[best], f"{probabilities[best]:.6f}"]
                    + [f"{value:.6f}" for value in probabilities.tolist()]
                )

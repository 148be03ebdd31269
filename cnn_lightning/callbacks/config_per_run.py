"""Each run's resolved config saved in its own folder, never over another's: ``config.yaml``, then
``config.resume-N.yaml`` for each resume into the same folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.cli import SaveConfigCallback


class ConfigPerRun(SaveConfigCallback):
    """Saves the run's ``config.yaml``; a run resumed into its own folder adds ``config.resume-N.yaml`` instead."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if trainer.fast_dev_run:  # a smoke test leaves nothing behind
            return
        log_dir = trainer.log_dir
        if log_dir and (Path(log_dir) / self.config_filename).exists():
            resume = 1
            while (Path(log_dir) / f"config.resume-{resume}.yaml").exists():
                resume += 1
            self.config_filename = f"config.resume-{resume}.yaml"
        super().setup(trainer, pl_module, stage)

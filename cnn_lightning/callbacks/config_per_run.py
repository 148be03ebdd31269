"""Each run's resolved config saved in its own folder, never over another's: ``config.yaml``, then
``config.resume-N.yaml`` for each resume and ``config.test-N.yaml`` (``validate-N``) for each evaluation there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.cli import SaveConfigCallback


class ConfigPerRun(SaveConfigCallback):
    """Saves the run's ``config.yaml``; a later command in the same folder adds its own instead: a resumed fit
    ``config.resume-N.yaml``, a test or validation of the run's checkpoint ``config.test-N.yaml``."""

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        if trainer.fast_dev_run:  # a smoke test leaves nothing behind
            return
        log_dir = trainer.log_dir
        if log_dir and (Path(log_dir) / self.config_filename).exists():
            stage = str(getattr(stage, "value", stage))  # Lightning passes its TrainerFn here, a string elsewhere
            kind, number = "resume" if stage == "fit" else stage, 1
            while (Path(log_dir) / f"config.{kind}-{number}.yaml").exists():
                number += 1
            self.config_filename = f"config.{kind}-{number}.yaml"
        super().setup(trainer, pl_module, stage)

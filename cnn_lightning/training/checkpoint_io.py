"""Checkpoint files written atomically: a kill at any instant leaves the previous checkpoint or the new one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

TMP_MARK = ".tmp-"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` to a temporary file in the target folder, fsync, then rename over the target.

    A kill at any instant leaves either the previous checkpoint or the new one, never a truncated file
    (Lightning's own save writes the target in place). Remote (fsspec) paths keep Lightning's behaviour.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}")
        with open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

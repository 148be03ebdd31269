"""Checkpoint files written atomically: a kill at any instant leaves the previous checkpoint or the new one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins import TorchCheckpointIO

from cnn_lightning.errors import AGAIN, on_full_disk

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
        intact, fix = _intact(target)
        full_disk = on_full_disk(f"checkpoint {target.name}", target.parent, intact=intact, fix=fix, remove=[temporary])
        with full_disk, open(temporary, "wb") as file:
            torch.save(checkpoint, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
        directory = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def _intact(target: Path) -> tuple[str, str]:
    """What a failed write of ``target`` leaves intact, and how to go on from it."""
    kept = sorted(target.parent.glob("*.ckpt"))
    if not kept:
        return "No checkpoint of this run was written yet.", AGAIN
    run = target.parent.parent if target.parent.name == "checkpoints" else target.parent
    names = ", ".join(path.name for path in kept)
    intact = f"Nothing is lost: the checkpoints already in {target.parent} are intact ({names})."
    if not (target.parent / "last.ckpt").is_file():
        return intact, AGAIN
    return intact, f"Free some space, then resume with: python -m cnn_lightning fit --ckpt_path {run}"

"""Checks of a model command's parsed config made before anything is built or written: the files the command will
write (``predict``'s CSV, ``export``'s model), each checked for a place that takes them
(:mod:`cnn_lightning.output_places`)."""

from __future__ import annotations

from pathlib import Path

from jsonargparse import Namespace

from cnn_lightning.output_places import check_folder, check_new_file
from cnn_lightning.runs import run_folder


def check_before_run(config: Namespace, subcommand: str) -> None:
    """Refuse, with the flag and the fix, what would fail only once the command runs."""
    if subcommand == "predict" and (output := config.get("predictions", Namespace()).get("output")):
        check_output(output, what="the predictions", suffix=".csv", flag="--predictions.output")
    if subcommand == "export":
        check_export_output(config.get("output"), config.get("ckpt_path"))


def check_output(output: str, *, what: str, suffix: str, flag: str) -> None:
    """A named file (it has a suffix and is not a folder) must not exist; a folder must take new files."""
    path = Path(output)
    fix = f"Pass another {flag}."
    if path.suffix and not path.is_dir():
        check_new_file(path, what=what, fix=fix)
    else:
        check_folder(path, what=what, fix=f"Pass another {flag} (a folder or a new {suffix} file).")


def check_export_output(output: str | None, ckpt_path: str | None) -> None:
    if output:
        check_output(output, what="the exported model", suffix=".onnx", flag="--output")
    elif ckpt_path and Path(ckpt_path).exists():
        checkpoint = Path(ckpt_path)
        folder = (run_folder(checkpoint) or checkpoint.parent) / "export"
        check_folder(folder, what="the exported model", fix="Pass --output with a writable folder or file.")

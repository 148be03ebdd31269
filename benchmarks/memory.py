"""Training memory and speed of the book's DenseNet at 96 px, effective batch 256, under the memory knobs.

Settings, each ``python -m cnn_lightning fit`` of a few steps on real Fashion-MNIST batches from the bundled
configs, each in a fresh process, measured by a callback added with ``--trainer.callbacks+=memory.Probe``:

    a. book        configs/densenet_book.yaml: float32, batch 256, plain dense layers
    b. +bf16       (a) with bf16-mixed precision
    c. +checkpoint (b) with memory-efficient dense layers (Pleiss et al. 2017, torch.utils.checkpoint)
    d. +64x4       (c) with micro-batch 64 × 4 accumulated batches
    e. densenet    configs/densenet.yaml as it is (AutoMicroBatch picks the split on CUDA)

Memory:
    * CUDA: ``torch.cuda.max_memory_allocated`` over the training steps (peak), and that peak less what was
      allocated when training started (training memory: activations, gradients, temporaries).
    * CPU: peak resident memory of the child process (``VmHWM``), reset by writing 5 to
      ``/proc/self/clear_refs`` when training starts, less the resident memory at that moment. ``getrusage``'s
      ``ru_maxrss`` cannot be reset, so it would report the imports' and data loading's peak instead.

Speed: examples per second of the median optimizer step after ``--warmup`` steps (data loading included).

    python benchmarks/memory.py --data-dir data                  # the table (CPU or the visible GPU)
    python benchmarks/memory.py --cap-gib 2                      # CUDA: a 2 GiB budget; the book OOMs
    python benchmarks/memory.py --all-configs                    # every other config, one step at its batch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from cnn_lightning.memory.resident_memory import GiB, peak_rss_bytes, reset_peak_rss, rss_bytes

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"
SETTINGS: dict[str, tuple[str, list[str]]] = {
    "a. book": ("densenet_book.yaml", []),
    "b. +bf16": ("densenet_book.yaml", ["--trainer.precision", "bf16-mixed"]),
    "c. +checkpoint": (
        "densenet_book.yaml",
        ["--trainer.precision", "bf16-mixed", "--model.init_args.memory_efficient", "true"],
    ),
    "d. +64x4": (
        "densenet_book.yaml",
        [
            *("--trainer.precision", "bf16-mixed", "--model.init_args.memory_efficient", "true"),
            *("--data.batch_size", "64", "--trainer.accumulate_grad_batches", "4"),
        ],
    ),
    "e. densenet.yaml": ("densenet.yaml", []),
}
MiB = 1 << 20


class Probe(Callback):
    """Added to the run by ``--trainer.callbacks+=memory.Probe``: memory over the training steps only (from
    ``on_train_start`` to ``on_train_end``), the time at each optimizer-step boundary, a JSON line to ``out``.

    Args:
        out: file the result is written to.
        warmup: optimizer steps left out of the timing.
        cap_gib: CUDA only: ``torch.cuda.set_per_process_memory_fraction`` to this many GiB, set before the model
            reaches the GPU (callbacks are built first).
    """

    def __init__(self, out: str, warmup: int = 0, cap_gib: float | None = None) -> None:
        self.out, self.warmup, self.cuda = Path(out), warmup, torch.cuda.is_available()
        if self.cuda and cap_gib:
            torch.cuda.set_per_process_memory_fraction(cap_gib * GiB / torch.cuda.mem_get_info()[1])
        self.baseline, self.times = 0, []

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
        else:
            if not reset_peak_rss():
                raise SystemExit("cannot reset the peak RSS through /proc/self/clear_refs: no CPU measurement")
            self.baseline = rss_bytes()
        self.times = [time.perf_counter()]

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step > len(self.times) - 1:  # this micro-batch ended with an optimizer step
            if self.cuda:
                torch.cuda.synchronize()
            self.times.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        peak = torch.cuda.max_memory_allocated() if self.cuda else peak_rss_bytes()
        durations = [b - a for a, b in zip(self.times, self.times[1:], strict=False)][self.warmup :]
        micro, accumulation = trainer.datamodule.batch_size, trainer.accumulate_grad_batches
        speed = micro * accumulation * trainer.world_size / statistics.median(durations) if self.warmup else None
        result = {
            "device": str(trainer.strategy.root_device),
            "split": f"{micro}x{accumulation}",
            "precision": str(trainer.precision),
            "peak_mib": peak / MiB,
            "train_mib": (peak - self.baseline) / MiB,
            "examples_per_sec": speed if durations else None,
        }
        self.out.write_text(json.dumps(result))


def run_child(config: str, overrides: list[str], options: argparse.Namespace, warmup: int, steps: int) -> dict:
    """``python -m cnn_lightning fit`` of ``warmup + steps`` optimizer steps in a fresh process and scratch
    folder, so no setting inherits another's allocator state, peak or run files."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "result.json"
        probe = {"out": str(out), "warmup": warmup, "cap_gib": options.cap_gib}
        command = [
            *(sys.executable, "-m", "cnn_lightning", "fit", "--config", str(CONFIGS / config), *overrides),
            *("--data.data_dir", str(Path(options.data_dir).resolve()), "--data.download", "false"),
            *("--trainer.max_steps", str(warmup + steps), "--trainer.max_epochs", "1"),
            *("--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0"),
            *("--trainer.limit_test_batches", "1", "--trainer.logger", "false"),
            *("--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"),
            "--trainer.callbacks+=" + json.dumps({"class_path": "memory.Probe", "init_args": probe}),
        ]
        path = os.pathsep.join([str(REPO), str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "PYTHONPATH": path}
        done = subprocess.run(command, capture_output=True, text=True, cwd=scratch, env=env)
        if "OutOfMemoryError" in done.stderr or "CUDA out of memory" in done.stderr:
            return {"oom": True}
        if not out.is_file():
            return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
        return json.loads(out.read_text())


def table(rows: dict[str, dict], reference: str | None) -> str:
    """Markdown table; the ratio column divides training memory by the reference row's."""
    base = rows.get(reference, {}).get("train_mib") if reference else None
    head = "| setting | device | precision | micro × accum | peak MiB | training MiB | vs book | examples/s |"
    lines = [head, "|" + "---|" * 8]
    for name, row in rows.items():
        if "error" in row or row.get("oom"):
            lines.append(f"| {name} | | | | {'OOM' if row.get('oom') else row['error']} | | | |")
            continue
        ratio = f"{row['train_mib'] / base:.0%}" if base else ""
        speed = f"{row['examples_per_sec']:.1f}" if row.get("examples_per_sec") else ""
        lines.append(
            f"| {name} | {row['device']} | {row['precision']} | {row['split'].replace('x', ' × ')} | "
            f"{row['peak_mib']:,.0f} | {row['train_mib']:,.0f} | {ratio} | {speed} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="torchvision root holding FashionMNIST/raw")
    parser.add_argument("--warmup", type=int, default=3, help="optimizer steps not timed")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps timed (median)")
    parser.add_argument("--cap-gib", type=float, help="CUDA only: cap this process's GPU memory (GiB)")
    parser.add_argument("--all-configs", action="store_true", help="every non-DenseNet config, one step each")
    parser.add_argument("--only", nargs="*", help="run only these settings (by letter, e.g. a d)")
    options = parser.parse_args(argv)
    if options.all_configs:
        configs = sorted(p.name for p in CONFIGS.glob("*.yaml") if not p.name.startswith("densenet"))
        jobs = {name.removesuffix(".yaml"): (name, [], 0, 1) for name in configs}
        reference = None
    else:
        chosen = {name: spec for name, spec in SETTINGS.items() if not options.only or name[0] in options.only}
        jobs = {name: (*spec, options.warmup, options.steps) for name, spec in chosen.items()}
        reference = "a. book"
    rows = {}
    if options.cap_gib and not options.all_configs:
        # The speed to hold under the cap: the book's own setting on the whole, uncapped device.
        uncapped = argparse.Namespace(**{**vars(options), "cap_gib": None})
        rows["a. book, no cap"] = run_child(*SETTINGS["a. book"], uncapped, options.warmup, options.steps)
    for name, (config, overrides, warmup, steps) in jobs.items():
        started = time.perf_counter()
        rows[name] = run_child(config, overrides, options, warmup, steps)
        print(f"{name}: {rows[name]} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    print(table(rows, reference))
    fitted, book = rows.get("e. densenet.yaml", {}), rows.get("a. book, no cap", {})
    if options.cap_gib and fitted.get("examples_per_sec") and book.get("examples_per_sec"):
        slower = 1 - fitted["examples_per_sec"] / book["examples_per_sec"]
        print(
            f"densenet.yaml under the {options.cap_gib:g} GiB cap: micro-batch {fitted['split'].replace('x', ' x ')}"
            f" accumulated, peak {fitted['peak_mib']:,.0f} MiB, {fitted['examples_per_sec']:,.1f} examples/sec: "
            f"{slower:.0%} {'below' if slower >= 0 else 'above'} the uncapped book setting's "
            f"{book['examples_per_sec']:,.1f}"
        )


if __name__ == "__main__":
    main()

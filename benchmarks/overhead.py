"""The framework's tax: our ``fit`` against the fastest honest bare PyTorch loop over the same model and tensors.

Three sides, alternated in fresh processes on the same machine, medians over ``--repeats``:

    bare  the project's own model (same layers, init, channels_last and precision as the config resolves them),
          the data module's resident tensors batched by one index operation and resized on the device as the data
          module does, the model's own optimizer, ``zero_grad(set_to_none)`` / ``backward`` / ``step``: no hooks,
          no logging, no metrics;
    ours  ``python -m cnn_lightning fit --config <model>.yaml`` as a user runs it (logger, progress bar,
          checkpoints, dashboards, metrics), validation off;
    ours1 (asked for with ``--sides``) ``ours`` with one optimizer step per Lightning batch
          (``--trainer.strategy.steps_per_batch 1``): Lightning's loop, as before chunked steps;
    hooked (asked for) ``ours`` with a user's no-op callback hook run at every optimizer step, which makes the
          engine run Lightning's loop (its contract: every hook called as Lightning calls it);
    graphed (asked for, CUDA) ``ours`` with each full chunk replayed from one CUDA graph;
    lean  the same model and data module through a plain ``Trainer`` with the logger, progress bar, model summary,
          checkpointing and every optional callback off;
    stock (asked for with ``--sides``) ``ours`` with what the project's step cuts and process settings replace put
          back as Lightning and glibc ship it: the pass-through profiler, a bar redrawn every batch, freed memory
          handed back to the kernel after every step, and large tensors in 4 KiB pages.

bare keeps freed memory in the process, puts large tensors in huge pages (process.py) and keeps Python's garbage
collector off the objects made before training (``gc.freeze``) as ours does: the fastest honest loop does.

Each is timed over the same number of training batches after the same warm-up, by wall clock (synchronized on a
GPU); the table gives examples/sec, milliseconds per step, and each side's ratio to bare: of the medians, and
"paired", the median of each repeat's ratio to the bare run of the same round (steadier on a shared machine, whose
load drifts over minutes). ``--clock thread`` times the main thread's CPU time instead, with PyTorch on one
thread: steadier on a shared CPU (other tenants' time is not counted), meaningless on a GPU.

    python benchmarks/overhead.py                        # LeNet and ResNet-18 on this machine's device
    python benchmarks/overhead.py --models LeNet --repeats 7 --device cuda
    python benchmarks/overhead.py --models LeNet --batch-size 8 --sides bare ours stock --clock thread
                                                         # the per-step tax alone, as a fast GPU would see it
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from throughput import CONFIGS, REPO, sync  # benchmarks/ is the script's folder, on sys.path

from cnn_lightning.memory.host_memory import HUGE_PAGES_SETTING, page_faults

STEPS = {"LeNet": (20, 150), "ResNet": (2, 6)}  # (warm-up, timed) batches on CPU; a GPU takes 10× the timed
SIDES = ("bare", "ours", "ours1", "hooked", "graphed", "lean", "stock")


def build(name: str, device: str, data_dir: str, extra: list[str], batch_size: int | None):
    """The CLI's model, data module and trainer for the model's config, as ``fit`` would build them."""
    from cnn_lightning.commands.fit import make_cli

    accelerator = "gpu" if device.startswith("cuda") else "cpu"
    args = ["--config", CONFIGS[name], "--data.data_dir", data_dir, "--trainer.accelerator", accelerator]
    if batch_size:
        args += ["--data.batch_size", str(batch_size)]
    return make_cli([*args, "--trainer.devices", "1", "--trainer.limit_val_batches", "0", *extra], run=False)


def bare_child(name: str, device: str, data_dir: str, warmup: int, steps: int, batch_size: int | None) -> dict:
    import torch
    import torch.nn.functional as F

    from cnn_lightning.data.resident_batches import resize_batch
    from cnn_lightning.memory.host_memory import retain_freed_memory

    retain_freed_memory()
    cli = build(name, device, data_dir, [], batch_size)
    model, data, precision = cli.model, cli.datamodule, str(cli.trainer.precision)
    data.setup("fit")
    images, labels = (t.to(device) for t in data.split("train"))
    model.to(device).train()
    auto = device.startswith("cuda") or model.channels_last_pays_on_cpu  # as Classifier.setup decides
    model.channels_last = auto if model.hparams.channels_last is None else model.hparams.channels_last
    if model.channels_last:
        model.net.to(memory_format=torch.channels_last)
    optimizer = model.configure_optimizers()
    gc.freeze()  # as the engine at train start: the collector off the long-lived objects
    bf16 = precision.startswith("bf16")
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    order = torch.randperm(len(labels), device=device)
    size = data.batch_size
    for step in range(warmup + steps):
        if step == warmup:
            sync(device)
            start, faults = time.perf_counter(), page_faults()
        index = order[step * size : (step + 1) * size]
        x, y = resize_batch(images[index], model.input_size), labels[index]
        with autocast:
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    sync(device)
    rate, faults = steps * size / (time.perf_counter() - start), (page_faults() - faults) / steps
    return {"rate": rate, "faults": faults, "precision": precision, "batch": size, "threads": thread_seconds()}


def thread_seconds() -> dict[str, float]:
    """CPU seconds of this process's threads (Linux's /proc): the main thread's as ``main``, Python's threads by
    their names, the rest (PyTorch's OpenMP workers) as ``native``: what competes with training for the cores."""
    import threading

    named = {thread.native_id: thread.name for thread in threading.enumerate()}
    tick, seconds = os.sysconf("SC_CLK_TCK"), {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended since the folder was listed
            continue
        name = "main" if task.name == str(os.getpid()) else named.get(int(task.name), "native")
        seconds[name] = seconds.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return seconds


def as_lightning_ships(trainer) -> None:
    """Undo the project's per-batch cuts on ``trainer``: Lightning's own profiler (which, not being a pass-through
    one, also makes the engine run Lightning's loop) and a redraw every batch (glibc's memory defaults come from not
    calling ``configure_process``)."""
    from lightning.pytorch.profilers import PassThroughProfiler

    trainer.profiler = PassThroughProfiler()
    trainer.progress_bar_callback.min_interval = 0.0


def fit_child(
    name: str,
    device: str,
    data_dir: str,
    warmup: int,
    steps: int,
    batch_size: int | None,
    side: str,
    steps_per_batch: int | None = None,
) -> dict:
    import lightning as L

    class StepTimer(L.Callback):
        """From the first batch at or past ``warmup`` optimizer steps to the first at or past ``warmup + steps``:
        optimizer steps, not batches, which a chunk of steps (cnn_lightning/engine) holds several of."""

        handles_chunks = True  # it reads the step counters: the engine keeps its chunks

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
            if trainer.global_step >= warmup and not hasattr(self, "start"):
                sync(device)
                self.start, self.first, self.faults = time.perf_counter(), trainer.global_step, page_faults()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
            if hasattr(self, "start") and not hasattr(self, "rate") and trainer.global_step >= warmup + steps:
                sync(device)
                done, self.batch = trainer.global_step - self.first, trainer.datamodule.batch_size
                self.rate = done * self.batch / (time.perf_counter() - self.start)
                self.faults = (page_faults() - self.faults) / done

    timer = StepTimer()
    if side != "stock":  # as python -m cnn_lightning does at its start; stock keeps glibc's and PyTorch's defaults
        from cnn_lightning.process import configure_process

        configure_process()
    extra = ["--trainer.max_steps", str(warmup + steps)]
    if side == "ours1":  # one optimizer step per Lightning batch: Lightning's loop
        extra += ["--trainer.strategy.steps_per_batch", "1"]
    if side == "graphed":  # each full chunk replayed from one CUDA graph (engine/chunk_graph.py)
        extra += ["--trainer.strategy.cuda_graph", "true"]
    if steps_per_batch and side != "ours1":
        extra += ["--trainer.strategy.steps_per_batch", str(steps_per_batch)]
    cli = build(name, device, data_dir, extra, batch_size)
    trainer = cli.trainer
    if side == "stock":
        as_lightning_ships(trainer)
    if side == "lean":
        trainer = L.Trainer(
            accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, precision=trainer.precision,
            max_steps=warmup + steps,
            limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[timer], num_sanity_val_steps=0,
        )  # fmt: skip
    else:
        trainer.callbacks.append(timer)
    if side == "hooked":  # a user's hook at every optimizer step: the engine runs Lightning's loop

        class EveryStep(L.Callback):
            def on_before_optimizer_step(self, *args) -> None: ...

        trainer.callbacks.append(EveryStep())
    trainer.fit(cli.model, datamodule=cli.datamodule)
    return {
        "rate": timer.rate,
        "faults": timer.faults,
        "precision": str(trainer.precision),
        "batch": timer.batch,
        "threads": thread_seconds(),
    }


def run_child(side: str, name: str, args: argparse.Namespace, warmup: int, steps: int) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", side, "--models", name]
    command += ["--device", args.device, "--clock", args.clock]
    command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
    command += ["--steps-per-batch", str(args.steps_per_batch)] if args.steps_per_batch else []
    command += ["--data-dir", str(Path(args.data_dir).resolve()), "--warmup", str(warmup), "--steps", str(steps)]
    os.makedirs(args.workdir, exist_ok=True)
    # As python -m cnn_lightning sets it before torch loads (process.py); stock gets PyTorch's default.
    env = {**os.environ, HUGE_PAGES_SETTING: "0" if side == "stock" else os.environ.get(HUGE_PAGES_SETTING, "1")}
    done = subprocess.run(command, cwd=args.workdir, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{side} child for {name} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(STEPS), choices=list(CONFIGS))
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--batch-size", type=int, help="the per-step tax shows at small ones")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--steps-per-batch", type=int, help="ours and lean: optimizer steps per Lightning batch")
    parser.add_argument("--workdir", default="/tmp/cnn_lightning_overhead", help="where the children run")
    parser.add_argument("--sides", nargs="+", default=["bare", "ours", "lean"], choices=SIDES)
    parser.add_argument("--clock", default="wall", choices=["wall", "thread"], help="thread: main thread's CPU time")
    parser.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "bare" not in args.sides:
        parser.error("--sides must include bare: every ratio is to it")
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        name = args.models[0]
        if args.clock == "thread":
            import torch

            torch.set_num_threads(1)
            time.perf_counter = time.thread_time  # both sides' timers read it
        if args.child == "bare":
            result = bare_child(name, args.device, args.data_dir, args.warmup, args.steps, args.batch_size)
        else:
            result = fit_child(name, args.device, args.data_dir, args.warmup, args.steps, args.batch_size, args.child,
                               args.steps_per_batch)  # fmt: skip
        print(json.dumps(result))
        return
    from cnn_lightning.data.fashion_mnist import DEBIAN_DIR, prepare_raw_files

    prepare_raw_files(args.data_dir, [DEBIAN_DIR], download=True)
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []
    cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    print(f"device: {args.device}, CPU: {cpu}, {os.cpu_count()} cores, repeats: {args.repeats} (medians)", flush=True)
    for name in args.models:
        warmup, steps = STEPS.get(name, (2, 6))
        if args.device != "cpu":
            warmup, steps = warmup * 5, min(steps * 10, 200 - warmup * 5)
        warmup, steps = args.warmup or warmup, args.steps or steps
        runs = {side: [] for side in args.sides}
        for _ in range(args.repeats):  # alternated so drift in machine load hits every side alike
            for side in args.sides:
                runs[side].append(run_child(side, name, args, warmup, steps))
        rates = {side: statistics.median(run["rate"] for run in results) for side, results in runs.items()}
        batch = runs["bare"][0]["batch"]
        step_us = {side: 1e6 * batch / rate for side, rate in rates.items()}
        cells = [f"{side} {rates[side]:,.0f} ex/s ({step_us[side] / 1000:.2f} ms/step)" for side in args.sides]
        # Each run's ratio to the bare run of its round: slow drift in the machine's load cancels within a round.
        paired = {
            side: statistics.median(r["rate"] / b["rate"] for r, b in zip(runs[side], runs["bare"], strict=True))
            for side in args.sides
            if side != "bare"
        }
        ratios = [
            f"{side}/bare {rates[side] / rates['bare']:.2f}, paired {paired[side]:.2f} "
            f"(+{step_us[side] - step_us['bare']:,.0f} us/step)"
            for side in args.sides
            if side != "bare"
        ]
        faults = {side: statistics.median(run["faults"] for run in results) for side, results in runs.items()}
        samples = "; ".join(f"{side} " + " ".join(f"{r['rate']:.0f}" for r in runs[side]) for side in args.sides)
        precision = runs[args.sides[-1]][0]["precision"]
        print(f"{name:8s} " + " | ".join(cells + ratios) + f" ({precision}, batch {batch}; samples: {samples})")
        print(" " * 9 + "page faults a step (medians): " + ", ".join(f"{side} {faults[side]:,.0f}" for side in faults))
        for side, results in runs.items():  # whole child process, start-up included
            names = sorted({name for run in results for name in run.get("threads", {})})
            busy = {name: statistics.median(run["threads"].get(name, 0.0) for run in results) for name in names}
            print(" " * 9 + f"{side} CPU s by thread (medians): " + ", ".join(f"{n} {s:.2f}" for n, s in busy.items()))


if __name__ == "__main__":
    main()

"""Training throughput, side by side: the book's ``train_ch6`` loop against cnn_lightning, same machine, same run.

For each model the script alternates, ``--repeats`` times, two fresh child processes on the same device:

    book  a faithful re-implementation of D2L's ``load_data_fashion_mnist`` + ``train_ch6``: torchvision
          ``FashionMNIST`` with ``Resize`` (when the model needs it) + ``ToTensor`` per image, a DataLoader with
          4 workers, float32, plain SGD, and the book's per-batch metric accumulation (which syncs the device);
    ours  ``python -m cnn_lightning fit --config <model>.yaml`` as a user runs it (logger, progress bar,
          throughput monitor, checkpointing all on), validation off because the book times training alone.

Both train the same network (same layers, Xavier init, lr and batch size from the config) for ``--warmup``
batches, then are timed over the next ``--steps`` batches by wall clock, data loading included. The table gives
the median examples/sec of each and the ratio of the medians.

    python benchmarks/throughput.py --models LeNet ResNet          # the issue's targets
    python benchmarks/throughput.py --all --device cuda            # every config on a GPU
    python benchmarks/throughput.py --startup                      # time to the first step of fast_dev_run
    python benchmarks/throughput.py --models ResNet --variant 'fp32=--trainer.precision 32-true'   # more columns
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()  # before the heavy imports: the startup measurement counts them

import argparse  # noqa: E402 - benchmarks are scripts; flags here do not configure training
import json  # noqa: E402
import os  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
CONFIGS = {
    "LeNet": "lenet.yaml",
    "LeNetBN": "lenet_bn.yaml",
    "AlexNet": "alexnet.yaml",
    "VGG": "vgg.yaml",
    "NiN": "nin.yaml",
    "GoogLeNet": "googlenet.yaml",
    "ResNet": "resnet.yaml",
    "DenseNet": "densenet_book.yaml",  # the book's exact setting; densenet.yaml trades speed for memory
}
DEFAULT_STEPS = {"LeNet": (20, 100), "LeNetBN": (20, 100)}  # (warm-up, timed) batches; others: (1, 4) on CPU


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def book_setup(config: str, device: str, data_dir: str, train: bool = True) -> tuple:
    """D2L's data pipeline and model set-up (chapter 7.6's ``load_data_fashion_mnist`` and ``train_ch6``): the
    network on ``device``, its SGD, the loss, the loader of the ``train`` (or test) split and the batch size."""
    import torch
    import yaml
    from torch import nn
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    from cnn_lightning.models import MODELS

    settings = yaml.safe_load((REPO / "configs" / config).read_text())
    init_args = settings["model"]["init_args"]
    batch_size, resize = settings["data"]["batch_size"], init_args["input_size"]
    trans = [transforms.ToTensor()]
    if resize != 28:
        trans.insert(0, transforms.Resize(resize))
    split = datasets.FashionMNIST(root=data_dir, train=train, transform=transforms.Compose(trans), download=False)
    loader = DataLoader(split, batch_size, shuffle=train, num_workers=4)
    name = settings["model"]["class_path"].rsplit(".", 1)[-1]
    net = MODELS[name](**{k: v for k, v in init_args.items() if k != "memory_efficient"}).net.to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=init_args["lr"])
    return net, optimizer, nn.CrossEntropyLoss(), loader, batch_size


def book_step(net: object, optimizer: object, loss: object, X: object, y: object, metric: list) -> list:
    """One batch of ``train_ch6``'s loop, with the book's Accumulator: ``float()`` of each term, one device sync."""
    import torch

    optimizer.zero_grad()
    y_hat = net(X)
    batch_loss = loss(y_hat, y)
    batch_loss.backward()
    optimizer.step()
    with torch.no_grad():
        correct = float((y_hat.argmax(axis=1).type(y.dtype) == y).type(y.dtype).sum())
        return [metric[0] + float(batch_loss * X.shape[0]), metric[1] + correct, metric[2] + X.shape[0]]


def book_child(config: str, device: str, data_dir: str, warmup: int, steps: int) -> float:
    """D2L's training loop, as printed in the book (chapter 7.6), over its data pipeline."""
    net, optimizer, loss, loader, batch_size = book_setup(config, device, data_dir)
    metric = [0.0, 0.0, 0]
    net.train()
    for i, (X, y) in enumerate(loader):
        if i == warmup:
            sync(device)
            start = time.perf_counter()
        metric = book_step(net, optimizer, loss, X.to(device), y.to(device), metric)
        if i == warmup + steps - 1:
            sync(device)
            return steps * batch_size / (time.perf_counter() - start)
    raise RuntimeError("the epoch ended before the timed batches")


def ours_child(config: str, device: str, data_dir: str, warmup: int, steps: int, extra: list[str]) -> dict:
    """``fit`` through the project's CLI with a timer callback around the same batches."""
    from cnn_lightning.process import configure_process

    configure_process()  # as python -m cnn_lightning does at its start
    import lightning as L
    from lightning.fabric.utilities.throughput import get_available_flops

    from cnn_lightning.commands.fit import make_cli
    from cnn_lightning.training.precision import compute_dtype

    class StepTimer(L.Callback):
        """From the first batch at or past ``warmup`` optimizer steps to the first at or past ``warmup + steps``
        (optimizer steps, which a chunk of steps of the engine holds several of)."""

        handles_chunks = True  # it reads the step counters: the engine keeps its chunks
        result: dict | None = None

        def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
            if trainer.global_step >= warmup and not hasattr(self, "start"):
                sync(device)
                self.start, self.first = time.perf_counter(), trainer.global_step

        def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
            if hasattr(self, "start") and StepTimer.result is None and trainer.global_step >= warmup + steps:
                sync(device)
                seconds, done = time.perf_counter() - self.start, trainer.global_step - self.first
                peak = get_available_flops(trainer.strategy.root_device, compute_dtype(trainer.precision_plugin))
                flops = (pl_module.flops_per_batch or 0) * done / seconds
                StepTimer.result = {
                    "rate": done * trainer.datamodule.batch_size / seconds,
                    "precision": str(trainer.precision),
                    "mfu": flops / peak if peak and flops else None,
                }

    accelerator = "gpu" if device.startswith("cuda") else "cpu"
    args = ["--config", config, "--data.data_dir", data_dir, "--trainer.accelerator", accelerator]
    args += ["--trainer.devices", "1", "--trainer.max_steps", str(warmup + steps), "--trainer.limit_val_batches", "0"]
    cli = make_cli([*args, *extra], run=False)
    cli.trainer.callbacks.append(StepTimer())
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return StepTimer.result


def startup_child(config: str, device: str, data_dir: str) -> dict[str, float]:
    """Seconds from process start to the imports' end, the first training step and the end of fast_dev_run."""
    import lightning as L

    from cnn_lightning.commands.fit import make_cli

    imported = time.perf_counter()
    marks: dict[str, float] = {}

    class FirstStep(L.Callback):
        handles_chunks = True  # it reads the clock only

        def on_train_batch_start(self, *args) -> None:
            marks.setdefault("first_step", time.perf_counter())

    accelerator = "gpu" if device.startswith("cuda") else "cpu"
    args = ["--config", config, "--data.data_dir", data_dir, "--trainer.accelerator", accelerator]
    cli = make_cli([*args, "--trainer.fast_dev_run", "true"], run=False)
    cli.trainer.callbacks.append(FirstStep())
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    end = time.perf_counter()
    return {
        "imports": imported - PROCESS_START,
        "first_step": marks["first_step"] - PROCESS_START,
        "total": end - PROCESS_START,
    }


def run_child(kind: str, name: str, args: argparse.Namespace, workdir: str, extra: list[str] | None = None) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--models", name]
    command += ["--device", args.device, "--data-dir", str(Path(args.data_dir).resolve())]
    command += ["--warmup", str(args.warmup), "--steps", str(args.steps), "--", *(extra or [])]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env={**os.environ})
    if result.returncode != 0:
        raise SystemExit(f"{kind} child for {name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["LeNet", "ResNet"], choices=list(CONFIGS))
    parser.add_argument("--all", action="store_true", help="every architecture")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (cuda when available)")
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=None, help="untimed batches first (default per model)")
    parser.add_argument("--steps", type=int, default=None, help="timed batches (default per model)")
    parser.add_argument("--startup", action="store_true", help="time fast_dev_run's start instead")
    parser.add_argument("--child", choices=["book", "ours", "startup"], help=argparse.SUPPRESS)
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="LABEL=ARGS",
        help="one more 'ours' column: LABEL=CLI overrides, e.g. 'bf16=--trainer.precision bf16-mixed' (repeatable)",
    )
    parser.add_argument("--no-book", action="store_true", help="skip the book's loop (compare variants only)")
    parser.add_argument("extra", nargs="*", help="after --: extra CLI overrides for our side, e.g. --trainer.precision")
    args = parser.parse_args()
    if args.device == "auto":
        import torch

        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.child:
        config, name = CONFIGS[args.models[0]], args.models[0]
        if args.child == "startup":
            print(json.dumps(startup_child(config, args.device, args.data_dir)))
        elif args.child == "book":
            print(json.dumps({"rate": book_child(config, args.device, args.data_dir, args.warmup, args.steps)}))
        else:
            print(json.dumps(ours_child(config, args.device, args.data_dir, args.warmup, args.steps, args.extra)))
        return

    from cnn_lightning.data.fashion_mnist import DEBIAN_DIR, prepare_raw_files

    prepare_raw_files(args.data_dir, [DEBIAN_DIR], download=True)
    models = list(CONFIGS) if args.all else args.models
    device_name = args.device
    if args.device.startswith("cuda"):
        import torch

        device_name = torch.cuda.get_device_name()
    print(f"device: {device_name}, {os.cpu_count()} CPU cores, repeats: {args.repeats} (medians)", flush=True)
    with tempfile.TemporaryDirectory() as workdir:
        if args.startup:
            child_args = argparse.Namespace(**{**vars(args), "warmup": 0, "steps": 0})
            for name in models:
                runs = [run_child("startup", name, child_args, workdir) for _ in range(args.repeats)]
                marks = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                print(
                    f"{name:10s} fast_dev_run: imports {marks['imports']:.1f} s, first step at "
                    f"{marks['first_step']:.1f} s, done at {marks['total']:.1f} s "
                    f"({marks['first_step'] / marks['total']:.0%} of the run before the first step)",
                    flush=True,
                )
            return
        variants = {"ours": args.extra} | {
            label: shlex.split(overrides) for label, overrides in (v.split("=", 1) for v in args.variant)
        }
        sides = ([] if args.no_book else ["book"]) + list(variants)
        print("examples/sec, medians over repeats; ratio = ours / book; precision and MFU of 'ours' sides", flush=True)
        for name in models:
            default = DEFAULT_STEPS.get(name, (1, 4) if args.device == "cpu" else (10, 50))
            if args.device != "cpu" and name in DEFAULT_STEPS:
                default = (20, 180)  # a LeNet step takes well under a millisecond on a GPU: time a whole epoch
            child_args = argparse.Namespace(**vars(args))
            child_args.warmup = args.warmup if args.warmup is not None else default[0]
            child_args.steps = args.steps if args.steps is not None else default[1]
            runs: dict[str, list[dict]] = {side: [] for side in sides}
            for _ in range(args.repeats):  # alternate so drift in machine load hits every side alike
                for side in sides:
                    kind, extra = ("book", []) if side == "book" else ("ours", variants[side])
                    runs[side].append(run_child(kind, name, child_args, workdir, extra))
            rates = {side: statistics.median(run["rate"] for run in results) for side, results in runs.items()}
            cells = []
            for side in sides:
                cell = f"{side} {rates[side]:,.1f}"
                if side != "book":
                    last = runs[side][-1]
                    mfu = f", MFU {last['mfu']:.1%}" if last.get("mfu") else ""
                    ratio = f" = {rates[side] / rates['book']:.2f}x" if "book" in rates else ""
                    cell += f"{ratio} ({last['precision']}{mfu})"
                cell += " [" + " ".join(f"{run['rate']:.0f}" for run in runs[side]) + "]"
                cells.append(cell)
            print(f"{name:10s} " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    main()

"""Time to the book's accuracy: the whole process, from pressing Enter to a model as good as the book's median.

For each model, each seed, alternating, two fresh processes on the same machine:

    book  D2L's ``train_ch6`` as printed (chapter 7.6; the pipeline and step of ``benchmarks/throughput.py``): it
          evaluates on the test set after every epoch, and stops at the first epoch that reaches the target;
    ours  ``python -m cnn_lightning fit --config X.yaml --stop_at.accuracy T --data.val_on_test true`` as a user runs
          it (progress bar off; logger, checkpoints, the final test on): the validation after every epoch is the
          test set's, as the book's; its closing line gives the seconds from the process's start to that validation.

Both clocks start when the process starts (Linux's ``/proc``: the interpreter's start-up and the imports count). The
target is the book's median test accuracy over 66 builds (../shared/reference-results.md). The table gives each
side's median over the seeds, the epoch reached, and the ratio of the medians.

    python benchmarks/time_to_accuracy.py --models LeNet LeNetBN --seeds 0 1 2 --data-dir data
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from throughput import CONFIGS, book_setup, book_step  # noqa: E402

from cnn_lightning.models import MODELS  # noqa: E402

MAX_EPOCHS = 30  # a seed that never reaches the target ends here, reported as not reached


def book_child(config: str, device: str, data_dir: str, target: float, seed: int) -> dict:
    """``train_ch6``: train an epoch, evaluate on the test set (``evaluate_accuracy_gpu``), until the target."""
    import torch

    from cnn_lightning.callbacks.stop_at_accuracy import process_start_time

    torch.manual_seed(seed)
    net, optimizer, loss, train_loader, _ = book_setup(config, device, data_dir)
    test_loader = book_setup(config, device, data_dir, train=False)[3]
    for epoch in range(1, MAX_EPOCHS + 1):
        net.train()
        metric = [0.0, 0.0, 0]
        for X, y in train_loader:
            metric = book_step(net, optimizer, loss, X.to(device), y.to(device), metric)
        net.eval()
        correct = total = 0
        with torch.no_grad():
            for X, y in test_loader:
                X, y = X.to(device), y.to(device)
                correct += float((net(X).argmax(axis=1).type(y.dtype) == y).type(y.dtype).sum())
                total += y.numel()
        if correct / total >= target:
            return {"seconds": time.time() - process_start_time(), "epoch": epoch, "test_acc": correct / total}
    return {"seconds": None, "epoch": None, "test_acc": correct / total}


def ours(config: str, device: str, data_dir: str, target: float, seed: int, workdir: str) -> dict:
    """The CLI's fit with the target; the closing line's time, and the process's whole wall time."""
    command = [sys.executable, "-m", "cnn_lightning", "fit", "--config", config, "--stop_at.accuracy", str(target),
               "--data.val_on_test", "true", "--data.data_dir", data_dir, "--seed_everything", str(seed),
               "--trainer.max_epochs", str(MAX_EPOCHS), "--trainer.accelerator", device,
               "--trainer.enable_progress_bar", "false"]  # fmt: skip
    started = time.time()
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    wall = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    last = done.stdout.strip().splitlines()[-1]
    if "not reached" in last:
        return {"seconds": None, "epoch": None, "wall": wall}
    epoch, seconds = last.split("reached in epoch ")[1].split(", ")
    return {"seconds": float(seconds.split(" s ")[0].replace(",", "")), "epoch": int(epoch), "wall": wall}


def median(values: list[float | None]) -> float | None:
    reached = [value for value in values if value is not None]
    return statistics.median(reached) if len(reached) == len(values) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["LeNet", "LeNetBN"], choices=list(CONFIGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=str(REPO / "data"))
    parser.add_argument("--child", help=argparse.SUPPRESS)  # "config target seed": the book's loop, in this process
    args = parser.parse_args()
    data_dir = str(Path(args.data_dir).resolve())
    if args.child:
        config, target, seed = args.child.split()
        print(json.dumps(book_child(config, args.device, data_dir, float(target), int(seed))))
        return
    header = ("model", "target", "seeds", "book: s (epochs)", "ours: s (epochs)", "ours: whole process", "book/ours")
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in args.models:
        # The book's median test accuracy at 10 epochs over 66 builds, as each model's record holds it.
        config, target = CONFIGS[name], MODELS[name].record.book_accuracy.median
        book_runs, our_runs = [], []
        for seed in args.seeds:  # alternated: book, ours, book, ours, ...
            child = [sys.executable, __file__, "--device", args.device, "--data-dir", data_dir,
                     "--child", f"{config} {target} {seed}"]  # fmt: skip
            book_runs.append(json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout))
            with tempfile.TemporaryDirectory() as workdir:
                our_runs.append(ours(config, args.device, data_dir, target, seed, workdir))
            print(f"  {name} seed {seed}: book {book_runs[-1]}, ours {our_runs[-1]}", file=sys.stderr, flush=True)
        book_s, our_s = (median([run["seconds"] for run in runs]) for runs in (book_runs, our_runs))
        epochs = [", ".join(str(run["epoch"]) for run in runs) for runs in (book_runs, our_runs)]
        wall = median([run["wall"] for run in our_runs])
        ratio = f"{book_s / our_s:.2f}×" if book_s and our_s else "—"
        cells = [f"{book_s:.1f} ({epochs[0]})" if book_s else f"not reached ({epochs[0]})",
                 f"{our_s:.1f} ({epochs[1]})" if our_s else f"not reached ({epochs[1]})",
                 f"{wall:.1f}", ratio]  # fmt: skip
        print(f"| {name} | {target} | {len(args.seeds)} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()

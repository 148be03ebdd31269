"""Two checkouts of the project against the same bare loop: whether a change kept the speed.

Runs ``benchmarks/overhead.py``'s own children (``bare`` from this checkout, ``ours`` from this checkout and from
another one, each with its own code on ``PYTHONPATH``), alternated in fresh processes on the same machine, and prints
medians and paired ratios (each repeat's ratio to the same round's run, steadier on a shared machine).

    git worktree add /tmp/before <commit>                       # the checkout to compare with
    python benchmarks/versions.py --other /tmp/before --repeats 9
    python benchmarks/versions.py --other /tmp/before --batch-size 32 --warmup 50 --steps 600 --repeats 7
    python benchmarks/versions.py --other /tmp/before --clock thread     # main-thread CPU time, PyTorch on 1 thread
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def child(checkout: Path, side: str, args: argparse.Namespace) -> float:
    """Examples/sec of one fresh ``overhead.py --child`` of ``checkout`` (its own code, its own benchmark)."""
    command = [sys.executable, str(checkout / "benchmarks" / "overhead.py"), "--child", side, "--models", args.model]
    command += ["--device", "cpu", "--clock", args.clock, "--data-dir", str(Path(args.data_dir).resolve())]
    command += ["--batch-size", str(args.batch_size), "--warmup", str(args.warmup), "--steps", str(args.steps)]
    env = {**os.environ, "PYTHONPATH": str(checkout), "THP_MEM_ALLOC_ENABLE": "1"}  # as python -m cnn_lightning
    os.makedirs(args.workdir, exist_ok=True)
    done = subprocess.run(command, cwd=args.workdir, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"{side} child of {checkout} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["rate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--other", required=True, type=Path, help="the other checkout (e.g. a git worktree)")
    parser.add_argument("--model", default="LeNet", choices=["LeNet", "ResNet"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--clock", default="wall", choices=["wall", "thread"])
    parser.add_argument("--data-dir", default=str(HERE / "data"))
    parser.add_argument("--workdir", default="/tmp/cnn_lightning_versions", help="where the children run")
    args = parser.parse_args()
    sides = {"bare": (HERE, "bare"), "this": (HERE, "ours"), "other": (args.other.resolve(), "ours")}
    runs: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):  # alternated: drift in the machine's load hits every side alike
        for name, (checkout, side) in sides.items():
            runs[name].append(child(checkout, side, args))
    median = {name: statistics.median(rates) for name, rates in runs.items()}

    def paired(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(runs[a], runs[b], strict=True))

    print(
        f"{args.model}, batch {args.batch_size}, {args.clock} clock, {args.repeats} alternated repeats, examples/sec "
        f"(medians): bare {median['bare']:,.0f}, this {median['this']:,.0f}, other {median['other']:,.0f}"
    )
    print(f"  this/bare {median['this'] / median['bare']:.2f}, paired {paired('this', 'bare'):.2f}; other/bare "
          f"{median['other'] / median['bare']:.2f}, paired {paired('other', 'bare'):.2f}; this/other paired "
          f"{paired('this', 'other'):.2f}")  # fmt: skip
    print("  samples:", {name: [round(rate) for rate in rates] for name, rates in runs.items()})


if __name__ == "__main__":
    main()

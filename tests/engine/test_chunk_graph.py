"""The chunk's CUDA graph (engine/chunk_graph.py) where a CPU can check it: what it refuses to replay, with the line
that says why, and the learning rates a replay reads (the schedule stepped as the engine steps it). The capture and
its replays are tests/test_cuda.py's."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from cnn_lightning.engine.chunk_graph import scheduled_rates
from cnn_lightning.training.optimization import per_step_schedule
from tests.engine.test_chunked_steps import fit


@pytest.mark.parametrize(
    ("steps", "extra", "why"),
    [
        (4, ["--optimizer", "AdamW"], "the optimizer AdamW"),
        (4, ["--data.random_crop_padding", "2"], "random augmentation"),
        (4, [], "training on cpu"),
        (1, [], "it replays a chunk of steps, and they are off"),
    ],
)
def test_what_a_graph_cannot_replay_trains_its_chunks_eagerly_and_says_why(
    data_dir: Path, tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture, steps: int, extra, why: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO):
        trainer, _ = fit(data_dir, steps, "--trainer.max_steps", "8", "--trainer.strategy.cuda_graph", "true", *extra)
    lines = [record.getMessage() for record in caplog.records if "CUDA graph off" in record.getMessage()]
    assert len(lines) == 1 and why in lines[0], lines
    assert trainer.global_step == 8 and trainer.strategy.graph is None


class Steps:
    """The trainer attributes scheduled_rates reads: the schedulers Lightning steps every step."""

    def __init__(self, scheduler: torch.optim.lr_scheduler.LRScheduler) -> None:
        config = type("Config", (), {"scheduler": scheduler, "interval": "step"})
        self.lr_scheduler_configs = [config]


def test_a_replay_reads_each_steps_rate_and_leaves_the_last_step_of_the_schedule_to_lightning() -> None:
    """Warm-up then cosine over 10 steps, chunks of 4: the table holds the rate before each of the chunk's steps;
    the scheduler has stepped 3 times, the 4th is Lightning's after the chunk's last step."""
    groups = [
        {"params": [torch.nn.Parameter(torch.zeros(2))]},
        {"params": [torch.nn.Parameter(torch.zeros(1))], "lr": 0.5},
    ]
    optimizer = torch.optim.SGD(groups, lr=1.0)
    scheduler = per_step_schedule(optimizer, schedule="cosine", total_steps=10, warmup_steps=2)
    reference = []
    for _ in range(8):
        reference.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"] = 1.0, 0.5
    fresh = per_step_schedule(optimizer, schedule="cosine", total_steps=10, warmup_steps=2)
    first = scheduled_rates(Steps(fresh), optimizer, 4)
    fresh.step()  # Lightning's, after the chunk
    second = scheduled_rates(Steps(fresh), optimizer, 4)
    assert first + second == reference and fresh.last_epoch == 7

"""The model table at the start of a fit: the network's layers, parameters, sizes and FLOPs, and nothing else."""

from __future__ import annotations

import logging
from typing import Any

from lightning.pytorch.callbacks import ModelSummary

from cnn_lightning.lightning_contract import format_summary_table

# Modules of the shared classifier that hold no weights of the network: its criterion and the epoch metrics.
HIDDEN_TYPES = ("CrossEntropyLoss", "EpochMetrics")
# Columns that say nothing about the network: "Mode" is train for every row while it trains (and costs the 80th column).
HIDDEN_COLUMNS = ("Mode",)
log = logging.getLogger("lightning.pytorch.callbacks.model_summary")  # Lightning's table's own logger


class ModelTable(ModelSummary):
    """Lightning's ``ModelSummary`` without the classifier's bookkeeping rows (the criterion, the three stages' epoch
    metrics) and without its modules' mode (a column, and a count of modules in train and eval mode), which says
    nothing about the network: the table fits an 80-column terminal."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        types = dict(summary_data).get("Type", [])
        keep = [index for index, kind in enumerate(types) if kind not in HIDDEN_TYPES]
        rows = [(name, [values[i] for i in keep]) for name, values in summary_data if name not in HIDDEN_COLUMNS]
        table = format_summary_table(total_parameters, trainable_parameters, model_size, total_training_modes,
                                     total_flops, *rows)  # fmt: skip
        log.info("\n" + "\n".join(line for line in table.splitlines() if "Modules in" not in line))

"""Lightning's TensorBoard logger writing the tags of :mod:`cnn_lightning.loggers.tags`."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from typing_extensions import override

from cnn_lightning.loggers.tags import dashboard_tag
from cnn_lightning.models.variants import class_variant_label


class TensorBoardLogger(LightningTensorBoardLogger):
    """Lightning's ``TensorBoardLogger`` with tags in reading order (:func:`dashboard_tag`) and an HParams table of
    the user's settings only, each shown as it is typed.

    Args:
        evaluation: the run is evaluated again from a saved checkpoint (``validate``/``test --ckpt_path``): its
            figures go under ``verdict_eval_*`` beside the run's own curves.
    """

    def __init__(self, *args: Any, evaluation: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.evaluation = evaluation

    @override
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        super().log_metrics({dashboard_tag(name, self.evaluation): value for name, value in metrics.items()}, step)

    @override
    def log_hyperparams(self, params: Any, metrics: dict[str, Any] | None = None, step: int | None = None) -> None:
        if isinstance(params, dict):
            params = user_settings(params)
        if metrics:
            metrics = {dashboard_tag(name, self.evaluation): value for name, value in metrics.items()}
        super().log_hyperparams(params, metrics, step)


def user_settings(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without LightningCLI's bookkeeping (``_class_path``, ``_instantiator``), nested dicts too, and each
    boolean as the text True or False: torch's HParams writer takes a bool for the number 0 or 1. A model's settings
    (those with LightningCLI's ``_class_path``) come with ``Model`` and ``Variant`` columns, first in the table: its
    class, and what differs from the book's experiment, ``book`` for the book's own (``variant_label``)."""
    settings = {}
    if isinstance(class_path := params.get("_class_path"), str):
        dataset = params.get("data.dataset", params.get("dataset"))
        if (label := class_variant_label(class_path, params, dataset)) is not None:
            # Capitalized: HParams orders its columns by name (those that differ between runs first), and capitals
            # sort before the settings' lower-case names, so the table opens on what the run is.
            settings |= {"Model": class_path.rsplit(".", 1)[-1], "Variant": label}
    for key, value in params.items():
        if str(key).rsplit(".", 1)[-1].startswith("_"):
            continue
        if isinstance(value, dict):
            value = user_settings(value)
        settings[key] = str(value) if isinstance(value, bool) else value
    return settings

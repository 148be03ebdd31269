"""The optimizer's pieces beyond the book's plain SGD: weight-decay groups and per-step learning-rate schedules.

Both apply to the model's own SGD and to an optimizer the config names (LightningCLI's ``optimizer:``), so a
recipe's schedule and weight-decay rule hold whichever optimizer runs.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, OneCycleLR, SequentialLR

from cnn_lightning.errors import ConfigError, DivergenceError, require_positive

Schedule = Literal["constant", "cosine", "onecycle"]
WARMUP_START_FACTOR = 0.01  # warm-up begins at 1 % of the peak learning rate
ONECYCLE_DEFAULT_WARMUP = 0.3  # torch's OneCycleLR pct_start


def no_decay_parameters(module: nn.Module) -> set[nn.Parameter]:
    """Batch-norm (any normalization layer's) weights and every bias: decaying them only fights normalization
    (Goyal et al. 2017, "Accurate, Large Minibatch SGD", §5.1)."""
    norms = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)
    skipped = set()
    for child in module.modules():
        for name, parameter in child.named_parameters(recurse=False):
            is_norm = isinstance(child, norms) or "Norm" in type(child).__name__  # scratch.BatchNorm too
            if name == "bias" or is_norm or parameter.ndim <= 1:
                skipped.add(parameter)
    return skipped


def parameter_groups(module: nn.Module, *, weight_decay: float, decay_norm_and_bias: bool) -> list[dict[str, Any]]:
    """Optimizer parameter groups: one decayed, one (norm weights and biases) without decay unless
    ``decay_norm_and_bias``; empty groups are left out."""
    parameters = [p for p in module.parameters() if p.requires_grad]
    if decay_norm_and_bias or not weight_decay:
        return [{"params": parameters, "weight_decay": weight_decay}]
    skipped = no_decay_parameters(module)
    groups = [
        {"params": [p for p in parameters if p not in skipped], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p in skipped], "weight_decay": 0.0},
    ]
    return [group for group in groups if group["params"]]


def regroup(optimizer: torch.optim.Optimizer, module: nn.Module, *, decay_norm_and_bias: bool) -> torch.optim.Optimizer:
    """``optimizer`` rebuilt over ``module``'s weight-decay groups with its own settings (LightningCLI builds a
    configured optimizer over ``model.parameters()`` in one group)."""
    weight_decay = optimizer.defaults.get("weight_decay", 0.0)
    groups = parameter_groups(module, weight_decay=weight_decay, decay_norm_and_bias=decay_norm_and_bias)
    if len(groups) == 1:
        return optimizer
    accepted = inspect.signature(type(optimizer)).parameters  # defaults may hold derived keys (AdamW's)
    return type(optimizer)(groups, **{key: value for key, value in optimizer.defaults.items() if key in accepted})


def per_step_schedule(
    optimizer: torch.optim.Optimizer, *, schedule: Schedule, total_steps: int | float, warmup_steps: int
) -> LRScheduler | None:
    """A torch scheduler stepped after every optimizer step: linear warm-up then cosine decay to 0, or
    one-cycle (Smith & Topin 2017) with its warm-up as ``pct_start``; ``None`` for ``constant`` without warm-up.

    ``total_steps`` comes from ``trainer.estimated_stepping_batches`` (accumulation and devices included).
    """
    if schedule == "constant" and not warmup_steps:
        return None
    if total_steps == float("inf") or total_steps < 1:
        raise ConfigError(
            f"The {schedule} learning-rate schedule needs a known length: set --trainer.max_epochs or "
            "--trainer.max_steps (not -1)."
        )
    total = int(total_steps)
    if warmup_steps >= total:
        raise ConfigError(
            f"The warm-up ({warmup_steps} steps) is as long as the whole run ({total} steps). "
            "Shorten --model.init_args.warmup_epochs or train longer."
        )
    if schedule == "onecycle":
        peak = [group["lr"] for group in optimizer.param_groups]
        pct_start = warmup_steps / total if warmup_steps else ONECYCLE_DEFAULT_WARMUP
        # Momentum stays what the optimizer says: cycling it would overrule momentum/nesterov silently.
        return OneCycleLR(optimizer, max_lr=peak, total_steps=total, pct_start=pct_start, cycle_momentum=False)
    phases: list[LRScheduler] = []
    if warmup_steps:
        phases.append(LinearLR(optimizer, start_factor=WARMUP_START_FACTOR, total_iters=warmup_steps))
    if schedule == "cosine":
        phases.append(CosineAnnealingLR(optimizer, T_max=total - warmup_steps))
    if len(phases) == 1:
        return phases[0]
    return SequentialLR(optimizer, phases, milestones=[warmup_steps])


def trainer_schedule(
    optimizer: torch.optim.Optimizer, trainer: Any, *, schedule: Schedule, warmup_epochs: float
) -> LRScheduler | None:
    """:func:`per_step_schedule` sized from the fit's ``trainer``: its ``estimated_stepping_batches`` and its
    optimizer steps per epoch (training batches over ``accumulate_grad_batches``) for the warm-up."""
    if schedule == "constant" and not warmup_epochs:
        return None  # the book's constant rate: nothing to size, no trainer needed
    total = trainer.estimated_stepping_batches  # also loads the training batches it counts
    if math.isinf(total):  # max_epochs -1 and no max_steps: a schedule sized to the run has no end to reach
        raise ConfigError(
            f"The learning-rate schedule ({describe_schedule(schedule, warmup_epochs)}) is sized to the run, which "
            "has no end (--trainer.max_epochs -1 and no --trainer.max_steps). Give --trainer.max_epochs or "
            "--trainer.max_steps, or use --model.init_args.lr_schedule constant --model.init_args.warmup_epochs 0."
        )
    steps_per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
    # fast_dev_run's single step gets the schedule's shape without its warm-up
    warmup = 0 if trainer.fast_dev_run else round(warmup_epochs * steps_per_epoch)
    return per_step_schedule(optimizer, schedule=schedule, total_steps=total, warmup_steps=warmup)


def configure_schedule(model: Any, optimizer: torch.optim.Optimizer, lr_scheduler: Any = None) -> Any:
    """What ``model.configure_optimizers`` returns: ``optimizer`` with the model's per-step schedule (its
    ``lr_schedule`` and ``warmup_epochs``), or with ``lr_scheduler`` (LightningCLI's ``lr_scheduler:``, stepped per
    epoch as LightningCLI does) when the config names one; ``model.schedule_source`` says which (``"model"``,
    ``"cli"`` or ``None``), as ``model.optimizer_source`` says ``"cli"`` once a config's ``optimizer:`` replaced the
    model's SGD."""
    from lightning.pytorch.cli import LightningCLI

    hp = model.hparams
    if lr_scheduler is not None:
        if hp.lr_schedule != "constant" or hp.warmup_epochs:
            raise ConfigError(
                f"Two learning-rate schedules: lr_scheduler {type(lr_scheduler).__name__} and the model's "
                f"{describe_schedule(hp.lr_schedule, hp.warmup_epochs)}. Keep one: drop lr_scheduler, or set "
                "--model.init_args.lr_schedule constant --model.init_args.warmup_epochs 0."
            )
        model.schedule_source = "cli"
        return LightningCLI.configure_optimizers(model, optimizer, lr_scheduler)  # ReduceLROnPlateau's monitor
    scheduler = trainer_schedule(optimizer, model._trainer, schedule=hp.lr_schedule, warmup_epochs=hp.warmup_epochs)
    model.schedule_source = "model" if scheduler is not None else None
    if scheduler is None:
        return optimizer
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def check_optimization_settings(
    lr: float, momentum: float, weight_decay: float, nesterov: bool, warmup_epochs: float, label_smoothing: float
) -> None:
    """Refuse settings the optimizer, the schedule or the criterion would reject later, naming the flag."""
    require_positive(lr, name="The learning rate", flag="--model.init_args.lr")
    require_positive(momentum, name="Momentum", flag="--model.init_args.momentum", allow_zero=True)
    require_positive(weight_decay, name="Weight decay", flag="--model.init_args.weight_decay", allow_zero=True)
    require_positive(warmup_epochs, name="The warm-up", flag="--model.init_args.warmup_epochs", allow_zero=True)
    if nesterov and not momentum:
        raise ConfigError("Nesterov momentum needs momentum > 0. Set --model.init_args.momentum (e.g. 0.9).")
    if not 0 <= label_smoothing < 1:
        raise ConfigError(
            f"label_smoothing must be in [0, 1), got {label_smoothing}. Set --model.init_args.label_smoothing."
        )


def describe_schedule(schedule: Schedule, warmup_epochs: float) -> str:
    """``warm-up (1 epoch) then cosine``, ``one-cycle``, ``constant``: for messages."""
    name = {"constant": "constant", "cosine": "cosine decay", "onecycle": "one-cycle"}[schedule]
    return f"warm-up ({warmup_epochs:g} epochs) then {name}" if warmup_epochs else name


def divergence_advice(
    optimizer: torch.optim.Optimizer | None,
    *,
    from_cli: bool,
    model_lr: float,
    scheduler: Any = None,
    schedule: tuple[Schedule, float] | None = None,
) -> str:
    """What to lower after a divergence, in the flags of what ran: the model's SGD (``--model.init_args.lr``)
    or a config's optimizer (``--optimizer.lr``), and the peak of a schedule rather than its current value.

    ``schedule`` is the model's ``(lr_schedule, warmup_epochs)`` when that schedule runs; ``scheduler`` any one.
    """
    from_cli = from_cli and optimizer is not None
    flag = "--optimizer.lr" if from_cli else "--model.init_args.lr"
    peak = optimizer.defaults["lr"] if from_cli else model_lr
    now = optimizer.param_groups[0]["lr"] if optimizer else peak
    name = type(optimizer).__name__ if optimizer else "SGD"
    if scheduler is None:
        return f"Lower {name}'s learning rate: now {now:g}, try {flag} {peak / 10:g}."
    if schedule is None:
        return (
            f"Lower {name}'s peak learning rate: {peak:g}, at {now:g} under {type(scheduler).__name__} at this "
            f"step; try {flag} {peak / 10:g}."
        )
    kind, warmup_epochs = schedule
    return (
        f"Lower {name}'s peak learning rate: {peak:g}, at {now:g} under the {describe_schedule(kind, warmup_epochs)} "
        f"schedule at this step; try {flag} {peak / 10:g} or a longer warm-up "
        f"(--model.init_args.warmup_epochs {max(1.0, 2 * warmup_epochs):g})."
    )


def raise_divergence(module: Any, loss: float, epoch: int, step: int, batch_idx: int) -> None:
    """Stop the run, naming where the loss went non-finite; the checkpoints on disk predate it (the model's
    divergence guard calls it)."""
    raise DivergenceError(divergence_message(module, loss, epoch=epoch, step=step, batch_idx=batch_idx))


def divergence_message(module: Any, loss: float, *, epoch: int, step: int, batch_idx: int) -> str:
    """The one line a diverged run ends with: where, what to lower (in the flags of what ran), the intact checkpoint."""
    trainer = module._trainer
    optimizer = trainer.optimizers[0] if trainer and trainer.optimizers else None
    checkpoint = getattr(trainer.checkpoint_callback, "last_model_path", "") if trainer else ""
    skips = module.loss_guard.skips_allowed  # 16-mixed: so many skipped steps in a row are no fp16 overflow
    after = f", after {skips} steps in a row the gradient scaler skipped" if skips else ""
    schedulers = trainer.lr_scheduler_configs if trainer else []
    hp = module.hparams
    own = (hp.lr_schedule, hp.warmup_epochs) if getattr(module, "schedule_source", None) == "model" else None
    advice = divergence_advice(
        optimizer,
        from_cli=getattr(module, "optimizer_source", "model") == "cli",
        model_lr=hp.lr,
        scheduler=schedulers[0].scheduler if schedulers else None,
        schedule=own,
    )
    return (
        f"Training diverged: the loss became {loss} at epoch {epoch}, global step {step} (batch {batch_idx}){after}. "
        + advice
        + (f" The last checkpoint, from before this step, is intact: {checkpoint}" if checkpoint else "")
    )

"""A trial of ``tune`` reports to its Optuna study: ``val/acc`` after every validation, and the pruner's word."""

from __future__ import annotations

from typing import Any

import lightning as L

PRUNED_ATTR, BEST_ATTR, SPACE_ATTR = "pruned_at_epoch", "best_val_acc", "space"


class ReportToStudy(L.Callback):
    """Reports each validation's ``val/acc`` to trial ``trial_number`` of an Optuna study (the validation split,
    never the test set); stops the fit when the study's pruner says so. Added to trials by ``tune``."""

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        self.storage, self.study_name, self.trial_number = storage, study_name, trial_number
        self._trial: Any = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        import optuna

        if not trainer.is_global_zero or self._trial is not None:  # one reporter per trial: rank 0, loaded once
            return
        study = optuna.load_study(study_name=self.study_name, storage=self.storage, pruner=make_pruner())
        trial_id = next(t._trial_id for t in study.get_trials(deepcopy=False) if t.number == self.trial_number)
        self._trial = optuna.trial.Trial(study, trial_id)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or "val/acc" not in trainer.callback_metrics:
            return
        prune = False
        if trainer.is_global_zero:
            accuracy, epoch = float(trainer.callback_metrics["val/acc"]), trainer.current_epoch
            self._trial.report(accuracy, epoch)
            best = max(accuracy, self._trial.user_attrs.get(BEST_ATTR, 0.0))
            self._trial.set_user_attr(BEST_ATTR, best)
            if prune := self._trial.should_prune():
                self._trial.set_user_attr(PRUNED_ATTR, epoch)
        # Lightning does not reduce should_stop across processes: every rank must stop together, or DDP hangs.
        trainer.should_stop = trainer.should_stop or trainer.strategy.broadcast(prune)


def make_pruner() -> Any:
    """The study's pruner, built alike in the parent and in each trial (Optuna keeps pruners out of storage): a
    trial below the median of the finished trials at the same epoch stops, once two trials have finished."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)

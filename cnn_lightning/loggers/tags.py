"""The event-file tags of a run's metrics, in the order a user reads them: the training curves first.

TensorBoard sorts the cards of its Time Series and Scalars dashboards by tag and groups them by the tag's first
segment, so Lightning's own names put ``epoch``, ``final`` and ``lr-SGD`` above ``train`` and ``val``. Here every
figure that is not a training curve is named to sort after them: Lightning's ``epoch`` and the learning rate go into
``train/``; the test, the run's final figures (the HParams metrics) and evaluations of a saved checkpoint into groups
under ``verdict``. The metric names the run itself uses (``test/acc`` in callbacks, checkpoint names and the
closing line) do not change: only what the event files call them. No Lightning here: ``report`` reads tags without it.
"""

from __future__ import annotations

CURVE_GROUPS = ("train", "val", "val_class_acc")
VERDICT = "verdict"  # sorts after "val", "val_class_acc"


def dashboard_tag(name: str, evaluation: bool = False) -> str:
    """The event-file tag of the metric ``name``; ``evaluation`` for validate/test on a saved checkpoint."""
    group, slash, leaf = name.partition("/")
    if group.startswith(VERDICT):
        return name
    if evaluation:
        return f"{VERDICT}_eval_{group}/{leaf}" if slash else f"{VERDICT}_eval/{name}"
    if not slash:  # Lightning's epoch, the learning rate (lr-SGD)
        return f"train/{name}"
    if group in CURVE_GROUPS:
        return name
    return f"{VERDICT}/{leaf}" if group == "final" else f"{VERDICT}_{group}/{leaf}"


def metric_name(tag: str) -> str:
    """The metric a tag of :func:`dashboard_tag` shows (tags of runs older than this naming pass unchanged)."""
    group, _, leaf = tag.partition("/")
    if group == "train" and (leaf == "epoch" or leaf.startswith("lr-")):
        return leaf
    if group == VERDICT:
        return f"final/{leaf}"
    if group.startswith(f"{VERDICT}_eval"):
        return f"eval-{group.removeprefix(f'{VERDICT}_eval_')}/{leaf}" if "_eval_" in group else f"eval-{leaf}"
    if group.startswith(f"{VERDICT}_"):
        return f"{group.removeprefix(f'{VERDICT}_')}/{leaf}"
    return tag

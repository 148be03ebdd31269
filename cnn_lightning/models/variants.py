"""Whether a configured network is the book's or a variant of it, and what differs: the book's figures (accuracy,
speed) describe its own network only, so a variant says so instead of claiming them (``summary``), and ``report``
and the HParams tab label runs by what differs (:func:`variant_label`)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping, Sequence
from typing import Any

#: Settings of every network (the Classifier's) that change the network itself.
SHARED_STRUCTURE = ("input_size", "init")


def book_class(cls: type) -> type | None:
    """The class whose own ``record`` ``cls`` carries (itself, or the book's class it derives from)."""
    return next((c for c in cls.__mro__ if c.__dict__.get("record") is not None), None)


def book_settings(cls: type) -> dict[str, Any]:
    """The book's value of each structure setting of ``cls``'s book class: its constructor defaults and the record's
    input size."""
    owner = book_class(cls)
    if owner is None:
        return {}
    defaults: dict[str, Any] = {}
    for klass in reversed(owner.__mro__):  # a subclass's default wins
        if "__init__" in klass.__dict__:
            for name, parameter in inspect.signature(klass.__dict__["__init__"]).parameters.items():
                if parameter.default is not inspect.Parameter.empty:
                    defaults[name] = parameter.default
    names = (*owner.record.structure, *SHARED_STRUCTURE)
    return {name: defaults[name] for name in names if name in defaults} | {"input_size": owner.record.input_size}


def _plain(value: Any) -> Any:
    """Lists and tuples (the CLI gives lists, the defaults are tuples) compared as tuples."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return tuple(_plain(item) for item in value)
    return value


def _shown(value: Any) -> str:
    value = _plain(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_shown(item) for item in value) + "]"
    return str(value)


def changed_settings(cls: type, settings: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(name, value, book's value)`` of each structure setting among ``settings`` (a model's hyperparameters) that
    is not the book's."""
    book = book_settings(cls)
    return [
        (name, settings[name], value)
        for name, value in book.items()
        if name in settings and not _same(settings[name], value)
    ]


def _same(a: Any, b: Any) -> bool:
    return _plain(a) == _plain(b)


def differences_from_book(model: Any) -> list[str]:
    """What sets ``model`` apart from the book's network it is built from, e.g. ``["pooling max (book: avg)"]``;
    empty for the book's network (or a network with no book record to compare with)."""
    cls, owner = type(model), book_class(type(model))
    if owner is None:
        return []
    differences = [] if owner is cls else [f"class {cls.__name__} (derived from {owner.__name__})"]
    for name, value, book in changed_settings(cls, model.hparams):
        differences.append(f"{name} {_shown(value)} (book: {_shown(book)})")
    return differences


def variant_label(cls: type, settings: Mapping[str, Any], dataset: str | None = None) -> str:
    """A run's label by what differs from the book's experiment, for ``report`` and TensorBoard's HParams tab:
    ``book`` for the book's network on Fashion-MNIST, else e.g. ``pooling=max, activation=relu``,
    ``MyLeNet (from LeNet)``, ``dataset=mnist``; ``not in the book`` for a network without a book record."""
    owner = book_class(cls)
    if owner is None:
        parts = [f"{cls.__name__}: not in the book"]
    else:
        parts = [] if owner is cls else [f"{cls.__name__} (from {owner.__name__})"]
        parts += [f"{name}={_shown(value)}" for name, value, _ in changed_settings(cls, settings)]
    if dataset and dataset != "fashion_mnist":
        parts.append(f"dataset={dataset}")
    return ", ".join(parts) or "book"


def class_variant_label(class_path: str, settings: Mapping[str, Any], dataset: str | None = None) -> str | None:
    """:func:`variant_label` of the class at ``class_path`` (None where it cannot be imported any more)."""
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return None
    return variant_label(cls, settings, dataset) if isinstance(cls, type) else None


def record_line(model: Any) -> str | None:
    """The line ``summary`` prints under the table: the book's figures for the book's network, what differs from it
    for a variant, nothing for a network the book does not have."""
    record = type(model).record
    if record is None:
        return None
    book = f"D2L §{record.book_section} {record.title}"
    if differences := differences_from_book(model):
        return (
            f"Variant of the book's {book}: {'; '.join(differences)}. The book's figures are for its own network, "
            "not this one: train it to measure them."
        )
    return (
        f"Book: {book}, trained at {record.input_size} px with SGD lr {record.lr:g}, batch {record.batch_size}: "
        f"test accuracy after 10 epochs {record.book_accuracy} (median [range] of 66 builds)."
    )

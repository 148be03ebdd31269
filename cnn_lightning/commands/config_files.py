"""Config files on the command line: names resolved to ``configs/``, and callbacks kept when configs stack."""

from __future__ import annotations

import difflib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from cnn_lightning.commands import MODEL_COMMANDS
from cnn_lightning.commands.config_text import check_config_file
from cnn_lightning.errors import ConfigError
from cnn_lightning.legacy import upgrade_config, warn_once
from cnn_lightning.runs import saved_config_args

CONFIG_DIRS = (Path("configs"), Path(__file__).resolve().parents[2] / "configs")  # the repo's, beside the package
MAX_LISTED = 8  # configs of a folder named one by one in "not found"; a folder of more (exercises/) is one entry


def available_configs() -> list[str]:
    """Names of the bundled configs: ``configs/*.yaml`` and the recipes, ``recipes/NAME.yaml``."""
    names = set()
    for folder in filter(Path.is_dir, CONFIG_DIRS):
        names |= {path.relative_to(folder).as_posix() for path in [*folder.glob("*.yaml"), *folder.glob("*/*.yaml")]}
    return sorted(names, key=lambda name: (name.count("/"), name))


def resolve_config(name: str) -> str:
    """``name`` if it is a file, else ``configs/name`` (``.yaml`` optional) in the working directory or the repo."""
    if Path(name).is_file():
        return check_config_file(name)  # UTF-8 YAML holding settings, or one line naming the file and line
    for folder in CONFIG_DIRS:
        for candidate in (folder / name, folder / f"{name}.yaml"):
            if candidate.is_file():
                return check_config_file(str(candidate))
    raise ConfigError(
        f"Config '{name}' not found in the working directory or in configs/. {_suggestions(name, available_configs())}"
    )


def _suggestions(name: str, names: list[str]) -> str:
    """The names close to ``name``, then the configs by name, a folder of many (``exercises/``) as one entry."""
    close = difflib.get_close_matches(name.removesuffix(".yaml"), [n.removesuffix(".yaml") for n in names], n=3)
    folders = Counter(entry.split("/")[0] for entry in names if "/" in entry)
    listed = [entry for entry in names if "/" not in entry or folders[entry.split("/")[0]] <= MAX_LISTED]
    listed += [f"{folder}/ ({count} configs)" for folder, count in folders.items() if count > MAX_LISTED]
    hint = f"Did you mean {', '.join(close)}? " if close else ""
    return f"{hint}Available: {', '.join(listed) or 'none'}."


def resolve_config_args(argv: Sequence[str]) -> list[str]:
    """Rewrite every ``--config NAME`` / ``--config=NAME`` to the path of the config it names, give a bare
    ``--ckpt_path RUN`` its run's config, and keep earlier configs' callbacks when a later one lists its own."""
    args = list(argv)
    if args and args[0] in MODEL_COMMANDS:
        args[1:1] = saved_config_args(args)
    resolved, configs, after_last_config = [], [], 0
    while args:
        arg = args.pop(0)
        if arg in ("--config", "-c") and args:
            configs.append(resolve_config(args.pop(0)))
            resolved += [arg, upgraded_config(configs[-1])]
            after_last_config = len(resolved)
        elif arg.startswith("--config="):
            configs.append(resolve_config(arg.split("=", 1)[1]))
            resolved.append("--config=" + upgraded_config(configs[-1]))
            after_last_config = len(resolved)
        else:
            resolved.append(arg)
    carried = [f"--trainer.callbacks+={json.dumps(callback)}" for callback in carried_callbacks(configs)]
    resolved[after_last_config:after_last_config] = carried
    return resolved


def upgraded_config(path: str) -> str:
    """``path``, or where it holds settings of an earlier version, its content with today's keys instead (what
    ``--config`` takes as well as a file), said once (legacy.upgrade_config)."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return path  # jsonargparse reports an unreadable config itself
    changes = upgrade_config(config)
    if not changes:
        return path
    warn_once(f"{path} holds settings of version 0.2.0, read as today's: {'; '.join(changes)}.")
    return yaml.safe_dump(config, sort_keys=False)


def _config_callbacks(path: str) -> list[dict[str, Any]] | None:
    """The ``trainer.callbacks`` a config file sets (``None`` when it sets none), each as a class_path dict."""
    try:
        config = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None  # jsonargparse reports an unreadable config itself
    trainer = config.get("trainer") if isinstance(config, dict) else None
    callbacks = trainer.get("callbacks") if isinstance(trainer, dict) else None
    if callbacks is None:
        return None
    callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
    return [callback if isinstance(callback, dict) else {"class_path": str(callback)} for callback in callbacks]


def carried_callbacks(configs: Sequence[str]) -> list[dict[str, Any]]:
    """Callbacks of earlier configs that a later config's ``trainer.callbacks`` list would silently replace
    (jsonargparse replaces lists): ``--config densenet.yaml --config recipes/densenet.yaml`` keeps
    densenet.yaml's AutoMicroBatch beside the recipe's EMA. A class the last list names is not carried."""
    lists = [(path, callbacks) for path in configs if (callbacks := _config_callbacks(path)) is not None]
    if len(lists) < 2:
        return []
    kept = {callback.get("class_path") for callback in lists[-1][1]}
    carried: list[dict[str, Any]] = []
    for path, callbacks in lists[:-1]:
        for callback in callbacks:
            if callback.get("class_path") not in kept:
                kept.add(callback.get("class_path"))
                carried.append(callback)
                name = str(callback.get("class_path")).rsplit(".", 1)[-1]
                print(f"Config {lists[-1][0]} lists callbacks of its own; {name} from {path} is kept.", file=sys.stderr)
    return carried

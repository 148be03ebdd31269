"""The search space of ``tune``: a YAML file mapping fit's CLI keys to Optuna distributions, checked up front.

model.init_args.lr: {low: 0.01, high: 2.0, log: true}     # float; log-uniform
model.init_args.momentum: {low: 0.0, high: 0.95}
trainer.max_epochs: {low: 2, high: 8, step: 2}             # int (both bounds ints)
data.batch_size: {choices: [64, 128, 256]}
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml

from cnn_lightning.errors import ConfigError


def yaml_error_place(path: str, error: yaml.YAMLError) -> str:
    """``FILE:LINE:COLUMN`` of a YAML error (1-based, as editors count), or the file alone."""
    mark = getattr(error, "problem_mark", None)
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path


def yaml_error_text(error: yaml.YAMLError) -> str:
    """What PyYAML says went wrong, without its quoted excerpt of the file."""
    parts = [getattr(error, "context", None), getattr(error, "problem", None)]
    return ", ".join(part for part in parts if part) or str(error).splitlines()[0]


def for_people(params: dict[str, Any]) -> str:
    """``lr 0.4123, batch_size 64``: each sampled setting by its last name, numbers to four significant digits."""
    named = ((key.rsplit(".", 1)[-1], value) for key, value in params.items())
    return ", ".join(f"{name} {value:.4g}" if isinstance(value, float) else f"{name} {value}" for name, value in named)


class Space:
    """Named Optuna distributions, and the fit overrides a set of sampled values stands for."""

    def __init__(self, distributions: dict[str, Any], source: str) -> None:
        self.distributions, self.source = distributions, source

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """``--key value`` arguments for fit (lists and bools as JSON, which jsonargparse reads)."""
        return [arg for key, value in params.items() for arg in (f"--{key}", json.dumps(value))]

    def as_json(self) -> str:
        """A canonical text of the space, stored with the study so that another space is refused."""
        from optuna.distributions import distribution_to_json

        return json.dumps({key: json.loads(distribution_to_json(d)) for key, d in sorted(self.distributions.items())})


def _distribution(key: str, spec: Any, source: str) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    where = f"{key} in {source}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: give {{low: L, high: H}} or {{choices: [...]}}, not {spec!r}.")
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices is empty. List at least one value, e.g. choices: [64, 128].")
        return CategoricalDistribution(choices)
    if not {"low", "high"} <= spec.keys() or spec.keys() - {"low", "high", "log", "step"}:
        raise ConfigError(f"{where}: a range takes low, high and optionally log or step; got {sorted(spec)}.")
    low, high, log, step = spec["low"], spec["high"], bool(spec.get("log", False)), spec.get("step")
    if not all(_is_number(v) for v in (low, high)):
        raise ConfigError(f"{where}: low and high must be numbers, got {low!r} and {high!r}.")
    if not all(math.isfinite(v) for v in (low, high, high - low)):  # Optuna's sampler overflows on them
        raise ConfigError(f"{where}: low and high must be finite numbers, got {low!r} and {high!r}. Bound the range.")
    if low >= high:
        raise ConfigError(f"{where}: the range [{low}, {high}] is empty or inverted. Give low < high.")
    if step is not None and not (_is_number(step) and math.isfinite(step) and 0 < step <= high - low):
        raise ConfigError(f"{where}: step must be a positive number no larger than high - low, got {step!r}.")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0, got {low}.")
    if log and step is not None:
        raise ConfigError(f"{where}: log and step do not combine. Drop one.")
    if isinstance(low, int) and isinstance(high, int) and (step is None or isinstance(step, int)):
        return IntDistribution(low, high, log=log, step=step or 1)
    return FloatDistribution(float(low), float(high), log=log, step=step)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def load_space(path: str, keys: set[str]) -> Space:
    """Read and check ``path``: every key one of fit's ``keys``, every range non-empty, before any trial runs."""
    file = Path(path)
    if not file.is_file():
        raise ConfigError(
            f"Search space {path} not found. Pass a YAML file, e.g. --space configs/spaces/lenet_bn.yaml."
        )
    try:
        spec = yaml.safe_load(file.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{yaml_error_place(path, error)} is not valid YAML: {yaml_error_text(error)}.") from None
    if not isinstance(spec, dict) or not spec:
        raise ConfigError(
            f"{path} holds no settings. Map fit keys to ranges, e.g. model.init_args.lr: {{low: 0.01, high: 1}}."
        )
    distributions = {str(key): _distribution(str(key), value, path) for key, value in spec.items()}
    for key in distributions:
        if key not in keys:
            near = sorted(k for k in keys if k.rsplit(".", 1)[-1] == key.rsplit(".", 1)[-1])
            hint = f" Did you mean {', '.join(near[:3])}?" if near else ""
            raise ConfigError(f"Unknown key {key} in {path}: fit has no such option.{hint}")
    return Space(distributions, path)

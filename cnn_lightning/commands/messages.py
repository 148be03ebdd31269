"""What a user sees: mistakes explained in one line that names the flag and the fix (the known-harmless messages of
the libraries are silenced once for the process: :func:`cnn_lightning.process.quiet_known_noise`)."""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Iterable
from typing import Any

from jsonargparse import ArgumentError
from lightning.fabric.utilities.exceptions import MisconfigurationException

from cnn_lightning.errors import ConfigError, UserFacingError, causes, find_cause
from cnn_lightning.models import MODELS
from cnn_lightning.training.classifier import Classifier


def explain(error: BaseException) -> UserFacingError | None:
    """A one-line error for a command-line or trainer-settings mistake, or None for anything else."""
    if isinstance(error, ArgumentError):
        return ConfigError(wrong_value(error) or explain_parse_error(str(error)))
    refused = find_cause(error, MisconfigurationException)
    return ConfigError(explain_trainer_error(str(refused))) if refused is not None else None


TRAINER_FIXES = (  # (words in Lightning's message, the flag and the fix)
    (
        ("gpu", "cuda", "mps", "tpu", "accelerator", "backend"),
        "Set --trainer.accelerator cpu, or auto (a GPU where there is one, else the CPU).",
    ),
    (("devices", "device ids", "gpus"), "Set --trainer.devices to what this machine has, e.g. 1 or auto."),
    (("strategy", "ddp", "fsdp", "deepspeed"), "Set --trainer.strategy auto, or ddp for several devices."),
    (("precision", "16-mixed", "bf16"), "Set --trainer.precision 32-true (bf16-mixed needs bf16 hardware)."),
    (("num_nodes",), "Set --trainer.num_nodes to the number of machines taking part."),
)


MODEL_SETTINGS = sorted(
    {
        f"--model.init_args.{name}"
        for cls in (Classifier, *MODELS.values())
        for name in inspect.signature(cls).parameters
        if name != "kwargs"
    }
)


def nearest(option: str, known: Iterable[str]) -> list[str]:
    """The known options nearest to ``option``: by their last name among those of the same group (``--trainer.``,
    ``--model.init_args.``), by the whole name where the group is unknown."""
    group, _, name = option.rpartition(".")
    siblings = {other.rpartition(".")[2]: other for other in known if other.rpartition(".")[0] == group}
    if siblings:
        return [siblings[match] for match in difflib.get_close_matches(name, sorted(siblings), n=3, cutoff=0.7)]
    return difflib.get_close_matches(option, sorted(set(known)), n=3, cutoff=0.75)


def did_you_mean(option: str, known: Iterable[str]) -> str:
    """`` Did you mean A or B?`` for the :func:`nearest` known options, or nothing where none is near."""
    near = nearest(option, known)
    return f" Did you mean {' or '.join(near)}?" if near else ""


def unknown_option(message: str, known: Iterable[str], command: str) -> str | None:
    """One line for jsonargparse's "unrecognized arguments", with the nearest options it does accept; None for any
    other parse error. Abbreviations are refused by the parser, so a near miss is always named, never guessed."""
    found = re.search(r"unrecognized arguments: (.*)", message)
    unknown = [arg.split("=", 1)[0] for arg in (found.group(1).split() if found else []) if arg.startswith("--")]
    if not unknown:
        return None
    hint = did_you_mean(unknown[0], known)
    return f"Unknown option {unknown[0]} for {command}.{hint} See python -m cnn_lightning {command} --help."


def option_names(parser: Any) -> set[str]:
    """Every option ``parser`` accepts, and ``--model.init_args.NAME`` for every setting of every model (LightningCLI
    adds a model's own options only once it knows which model)."""
    return {option for action in parser._actions for option in action.option_strings} | set(MODEL_SETTINGS)


def explain_trainer_error(message: str) -> str:
    """Lightning's reason for refusing the trainer settings, and the flag that fixes it: the argument the message
    names (``Trainer(devices=...)``, ```num_nodes` must ...``) first, else the first topic it mentions."""
    reason = " ".join(message.split()).rstrip(".!") + "."
    named = re.search(r"Trainer\((\w+)=|`(\w+)` must", reason)
    lowered = (named.group(1) or named.group(2)) if named else reason.lower()
    fix = next((fix for words, fix in TRAINER_FIXES if any(word in lowered for word in words)), None)
    return f"Lightning refused the trainer settings: {reason} " + (
        fix or "Check the --trainer.* settings (python -m cnn_lightning fit --help)."
    )


def explain_parse_error(message: str) -> str:
    """The informative lines of a jsonargparse error, without its type-check noise, plus the valid model
    names when the model could not be resolved."""
    if missing := re.search(r"arguments are required: (\w+)\.model\b", message):
        command = missing.group(1)
        return (
            f"{command} needs a model: pass --ckpt_path with a trained run (its folder, holding checkpoints/) or a "
            f".ckpt file, or --config NAME.yaml; a checkpoint that does not name its class (saved by a plain "
            f"lightning.Trainer) also needs the class: --model cnn_lightning.models.LeNet, say, or your own. See "
            f"python -m cnn_lightning {command} --help."
        )
    lines = [line.strip(" -") for line in message.splitlines()]
    lines = [line for line in lines if line and not line.startswith(NOISE)]
    useful = [line for line in lines[1:] if any(hint in line for hint in USEFUL)]
    text = " ".join(lines[:1] + useful)
    if len(text) > 400:
        text = text[:400] + " ..."
    text = text.rstrip(". ") + "."
    if ('"model"' in text or "--model" in text) and ("import path" in text or "subclass" in text):
        text += f" Valid models: {', '.join(MODELS)}."
    if (setting := re.search(r"key \"model\": Option '(\w+)' is not accepted", text)) is not None:
        text += did_you_mean(f"--model.init_args.{setting.group(1)}", MODEL_SETTINGS)
    return f"{text} See --help for the accepted options."


NOISE = ("Expected a <class 'NoneType'>", "Given value type:", "Given value:", "Errors:")
USEFUL = (
    "Expected a typing.Literal",  # a choice that is not offered: the message lists the ones that are
    "not accepted",
    "does not accept",
    "Expected a dot import path",
    "does not correspond",
    "not found",
    "No action",
)


# jsonargparse's names of types, as a person reads them (NaN and infinity are not floats to jsonargparse).
TYPE_WORDS = {"int": "an integer", "float": "a finite number", "bool": "true or false", "str": "text"}


def wrong_value(error: BaseException) -> str | None:
    """One line for a value jsonargparse refused for its type, naming the option, the value, the type expected and
    jsonargparse's own reason, all taken from the errors it chains (its outermost line names only the top-level key:
    ``Parser key "model":``); None for any other parse error."""
    chain = [str(cause) for cause in causes(error)]
    reason = next((m for text in reversed(chain) if (m := re.match(r"Expected a (.+?)\. Got value: (.*)", text))), None)
    keyed = [(i, m.group(1)) for i, text in enumerate(chain) if (m := re.match(r'Parser key "([^"]+)":', text))]
    if reason is None or not keyed:
        return None
    keys = list(dict.fromkeys(key for _, key in keyed))  # outermost first, each once
    nested = ".init_args." if any("Problem with given class_path" in text for text in chain) else "."
    option = "--" + keys[0] + "".join(nested + key for key in keys[1:])
    innermost = "\n".join(chain[keyed[-1][0] :])  # the value's own union of types, not an enclosing one's
    union = re.search(r"Subtypes: \[(.*)\]", innermost)
    expected = " or ".join(_type_words(union.group(1) if union else reason.group(1))) or reason.group(1)
    value = reason.group(2).strip()
    return (
        f"{option} got {value!r}, which is not {expected} (jsonargparse: {reason.group(0).strip()}). Give {option} "
        f"{expected}; see --help for the accepted options."
    )


def _type_words(types: str) -> list[str]:
    """``[<class 'int'>, <class 'NoneType'>]`` as ``["an integer"]``: null is left out where anything else fits."""
    words = []
    for plain, literal in re.findall(r"<class '([\w.]+)'>|typing\.Literal\[([^\]]*)\]", types):
        if literal:
            words.append(f"one of {literal}" if "," in literal else literal)
        elif plain != "NoneType":
            words.append(TYPE_WORDS.get(plain, f"a {plain.rsplit('.', 1)[-1]}"))
    return words or (["null"] if "NoneType" in types else [])

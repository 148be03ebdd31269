"""The entry point: the command list and a mistyped config name are answered before torch loads; the list says
what each command's own docstring says."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnn_lightning.commands import DESCRIPTIONS, MODEL_COMMANDS, RUN_COMMANDS, Trainer, first_sentence, run_function


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        (["--help"], 0, ""),
        ([], 0, ""),
        (["fit", "--config", "lenett.yaml"], 2, "error: Config 'lenett.yaml' not found"),
        (
            ["train", "--config", "lenet.yaml"],
            2,
            "error: 'train' is not a command. Did you mean fit? The commands: fit,",
        ),
        (["tun"], 2, "error: 'tun' is not a command. Did you mean tune?"),
        (["--config", "lenet.yaml"], 2, "error: --config comes after a command (python -m cnn_lightning fit --config"),
    ],
)
def test_answered_before_torch_loads(args: list[str], code: int, error: str) -> None:
    program = (
        "import sys\nfrom cnn_lightning.__main__ import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit as stop:\n    print('exit', stop.code)\n"
        "else:\n    print('exit', 0)\n"
        "print('torch loaded:', 'torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.stdout.splitlines()[-2:] == [f"exit {code}", "torch loaded: False"], done.stderr[-2000:]
    assert done.stderr.startswith(error), done.stderr
    if args[:1] != ["fit"] and code:  # every command named, with the way to what each does
        assert all(f" {command}" in done.stderr for command in DESCRIPTIONS) and "--help" in done.stderr


def test_the_command_list_says_what_each_docstring_says() -> None:
    functions = {command: getattr(Trainer, command) for command in MODEL_COMMANDS}
    functions |= {command: run_function(command) for command in RUN_COMMANDS}
    assert {command: first_sentence(function) for command, function in functions.items()} == DESCRIPTIONS

"""The entry point: ``python -m cnn_lightning`` and the ``cnn-lightning`` script.

The process-wide settings are made here, once, before torch loads (:mod:`cnn_lightning.process`); then the command
named first runs (the table of commands: :mod:`cnn_lightning.commands`). Problems with the user's input end with one
message and exit code 2 (3 for a diverged run, 4 for a full disk, 130/143 for Ctrl+C/SIGTERM wherever they land);
``CNN_LIGHTNING_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cnn_lightning.process import configure_process

DEBUG_ENV = "CNN_LIGHTNING_DEBUG"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command ``argv`` (default: the command line) names, as ``python -m cnn_lightning`` does. Ctrl+C and
    SIGTERM end it with 130 and 143 wherever they land (:mod:`cnn_lightning.stopping`)."""
    from cnn_lightning.stopping import exit_stopped, stop_signal, stop_signals_handled

    with stop_signals_handled():
        try:
            run_command_line(argv)
        except BaseException:
            if stop_signal() is None:
                raise
            exit_stopped()  # however the stack unwound: KeyboardInterrupt, Lightning's exit 1, SIGTERMException


def run_command_line(argv: Sequence[str] | None = None) -> None:
    """The command ``argv`` names, its refusals as one line and their exit codes."""
    from cnn_lightning.commands import MODEL_COMMANDS, RUN_COMMANDS, unknown_command, usage
    from cnn_lightning.errors import UserFacingError

    args = list(sys.argv[1:] if argv is None else argv)
    # Answered before torch and Lightning load: the list of commands, a word that is none, a config that does not exist.
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return
    if args[0] not in MODEL_COMMANDS and args[0] not in RUN_COMMANDS:
        refuse(unknown_command(args[0]))
    try:
        if args[0] in MODEL_COMMANDS:
            from cnn_lightning.commands.config_files import resolve_config_args

            args = resolve_config_args(args)
    except UserFacingError as error:
        refuse(error)
    configure_process()
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from cnn_lightning.callbacks.graceful_interrupt import interrupt_exit_code
    from cnn_lightning.commands import run
    from cnn_lightning.commands.messages import explain
    from cnn_lightning.errors import DiskFullError, disk_full_cause, disk_full_message, find_user_error

    try:
        run(args, configs_resolved=True)
    except SIGTERMException:
        sys.exit(interrupt_exit_code())
    except Exception as error:
        if os.environ.get(DEBUG_ENV):
            raise
        user_error = find_user_error(error) or explain(error)
        if user_error is None and (full := disk_full_cause(error)) is not None:  # a write no command foresaw
            where = getattr(full, "filename", None) or "this disk"
            user_error = DiskFullError(disk_full_message(f"a file ({type(full).__name__})", where))
        if user_error is None:
            raise
        refuse(user_error)


def refuse(error: Exception) -> None:
    """Print ``error`` as the command's one line and exit with its code."""
    print(f"error: {error}", file=sys.stderr)
    sys.exit(getattr(error, "exit_code", 2))


if __name__ == "__main__":
    main()

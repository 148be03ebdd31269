"""The entry point: ``python -m cnn_lightning`` and the ``cnn-lightning`` script.

The process-wide settings are made here, once, before torch loads (:mod:`cnn_lightning.process`); then the command
named first runs (the table of commands: :mod:`cnn_lightning.commands`). Problems with the user's input end with one
message and exit code 2 (3 for a diverged run, 4 for a full disk, 130/143 for Ctrl+C/SIGTERM);
``CNN_LIGHTNING_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from cnn_lightning.process import configure_process

DEBUG_ENV = "CNN_LIGHTNING_DEBUG"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command ``argv`` (default: the command line) names, as ``python -m cnn_lightning`` does."""
    configure_process()
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from cnn_lightning.callbacks.graceful_interrupt import interrupt_exit_code
    from cnn_lightning.commands import run
    from cnn_lightning.commands.messages import explain
    from cnn_lightning.errors import DiskFullError, disk_full_cause, disk_full_message, find_user_error

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
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
        print(f"error: {user_error}", file=sys.stderr)
        sys.exit(user_error.exit_code)


if __name__ == "__main__":
    main()

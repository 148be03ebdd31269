"""Errors that carry a message meant for a person: what went wrong and how to fix it."""

from __future__ import annotations

import contextlib
import errno
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path


class UserFacingError(Exception):
    """A problem with the user's input or machine; the CLI prints its message alone and exits non-zero."""

    exit_code = 2


class DataNotFoundError(UserFacingError):
    """Fashion-MNIST is in none of the places we look and could not be downloaded."""


class DataCorruptError(UserFacingError):
    """A Fashion-MNIST file exists but cannot be read as the dataset it claims to be."""


class InputSizeError(UserFacingError):
    """An architecture cannot take images of the requested size."""


class ConfigError(UserFacingError):
    """A configuration value or name is invalid."""


class DivergenceError(UserFacingError):
    """The training loss became NaN or infinite."""

    exit_code = 3


class DiskFullError(UserFacingError):
    """A file could not be written: its disk, or the user's quota there, is full."""

    exit_code = 4


# What a full disk says: errno ENOSPC/EDQUOT, or the text of a library that wraps it (PyTorch's writer, SQLite).
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
DISK_FULL_TEXTS = ("No space left on device", "database or disk is full", "Disk quota exceeded")


def require_positive(value: float | None, *, name: str, flag: str, allow_zero: bool = False) -> None:
    """Refuse a non-positive setting with a message naming the flag that sets it."""
    if value is None or value > 0 or (allow_zero and value == 0):
        return
    bound = "zero or more" if allow_zero else "positive"
    raise ConfigError(f"{name} must be {bound}, got {value}. Set {flag} to a {bound} value.")


def require_choice(value: str, allowed: Sequence[str], *, flag: str) -> str:
    """``value`` if it is one of ``allowed``; else one line naming the choices (Python callers skip the CLI's check)."""
    if value not in allowed:
        raise ConfigError(f"{flag} takes one of {', '.join(allowed)}, got {value!r}.")
    return value


def causes(error: BaseException | None) -> Iterator[BaseException]:
    """``error`` and its chain of causes, each once (jsonargparse and Lightning wrap what they raise)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        yield error
        seen.add(id(error))
        error = error.__cause__ or error.__context__


def find_cause(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` in ``error``'s chain of causes."""
    return next((cause for cause in causes(error) if isinstance(cause, kind)), None)


def find_user_error(error: BaseException) -> UserFacingError | None:
    """The UserFacingError behind ``error``, if any."""
    found = find_cause(error, UserFacingError)
    return found if isinstance(found, UserFacingError) else None


def disk_full_cause(error: BaseException | None) -> BaseException | None:
    """The error in ``error``'s chain that says a disk is full, if any."""
    return next((cause for cause in causes(error) if _says_disk_full(cause)), None)


def _says_disk_full(error: BaseException) -> bool:
    return (isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS) or any(
        text in str(error) for text in DISK_FULL_TEXTS
    )


def free_space(folder: str | Path) -> str:
    """The free space of the disk holding ``folder`` (or its nearest existing parent), for messages."""
    path = Path(folder).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return "unknown"
    return f"{free / 2**20:.1f} MiB" if free >= 2**20 else f"{free // 1024} KiB"


AGAIN = "Free some space (or choose another folder) and run the command again."


def disk_full_message(what: str, where: str | Path, intact: str = "", fix: str = AGAIN) -> str:
    """One line: what could not be written, where, the space left, what is intact and what to do."""
    free = "" if "://" in str(where) else f" ({free_space(where)} free)"  # a server's disk: not ours to measure
    return f"No space left on device: {what} could not be written to {where}{free}. " + (
        f"{intact} {fix}" if intact else fix
    )


@contextlib.contextmanager
def on_full_disk(
    what: str,
    where: str | Path,
    *,
    intact: str = "",
    fix: str = AGAIN,
    remove: Sequence[Path] | Callable[[], Iterable[Path]] = (),
) -> Iterator[None]:
    """Turn a full disk while writing ``what`` into ``where`` into one :class:`DiskFullError` saying what is intact;
    the partial files ``remove`` (or those a callable names once the write has failed) are deleted first, so nothing
    half-written stays behind."""
    try:
        yield
    except Exception as error:
        if isinstance(error, UserFacingError) or disk_full_cause(error) is None:
            raise
        for path in remove() if callable(remove) else remove:
            path.unlink(missing_ok=True)
        raise DiskFullError(disk_full_message(what, where, intact, fix)) from error

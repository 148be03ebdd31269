"""The one check every place the project writes goes through before anything is written there: a run folder under
``lightning_logs`` (its checkpoints inside), ``predict --output``, ``export --output``, ``report --out``, ``tune``'s
study folder and Fashion-MNIST's decompressed files.

A place that cannot take the files is refused with one line that names it, the part of its path that is wrong
(read-only, a file in the way, a symbolic link loop, no permission, a full disk, a file that exists) and the fix,
instead of the writer's traceback from deep inside Lightning, TensorBoard or torch. The check writes nothing that
stays: a folder still to be created is probed through its nearest existing parent, and the probe file is removed.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from cnn_lightning.errors import DiskFullError, UserFacingError, disk_full_message

PROBE_PREFIX = ".cnn_lightning-write-check-"
READ_ONLY = (errno.EROFS,)
NO_PERMISSION = (errno.EACCES, errno.EPERM)
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class OutputPlaceError(UserFacingError):
    """A place a command must write to cannot take its files."""


def check_folder(folder: str | Path, *, what: str, fix: str, error: type[UserFacingError] = OutputPlaceError) -> Path:
    """Refuse unless ``folder`` takes new files: it exists as a writable folder, or it can be created (no file or
    link loop on its path, its nearest existing parent writable). Nothing is created.

    Args:
        folder: where ``what`` will be written.
        what: what will be written there, for the message (``the run's logs and checkpoints``).
        fix: the way to choose another place, for the message (``Set --output to a writable folder.``).
        error: the error raised (a command may keep a more specific class).
    """
    return _check_folder(Path(folder), Path(folder), what, fix, error)


def _check_folder(folder: Path, target: Path, what: str, fix: str, error: type[UserFacingError]) -> Path:
    """:func:`check_folder` for ``folder``, naming ``target`` (the file or folder to be written) in its messages."""
    existing = _nearest_existing_folder(folder, target, what, fix, error)
    try:
        handle, probe = tempfile.mkstemp(dir=existing, prefix=PROBE_PREFIX)
    except OSError as refused:
        if refused.errno in NO_SPACE:
            raise DiskFullError(disk_full_message(what, folder)) from None
        raise error(_message(what, target, existing, _why(refused), fix)) from None
    os.close(handle)
    os.unlink(probe)
    return folder


def check_new_file(path: str | Path, *, what: str, fix: str, error: type[UserFacingError] = OutputPlaceError) -> Path:
    """Refuse unless ``path`` does not exist yet (nothing is ever overwritten) and its folder takes new files."""
    path = Path(path)
    if path.is_symlink() or path.exists():
        kind = "is a folder" if path.is_dir() else "exists, and cnn_lightning never overwrites a file"
        raise error(_message(what, path, path, kind, f"Move it away or choose another name. {fix}"))
    _check_folder(path.parent, path, what, fix, error)
    return path


def _nearest_existing_folder(folder: Path, target: Path, what: str, fix: str, error: type[UserFacingError]) -> Path:
    """The deepest existing folder on ``folder``'s path; refused where a part of the path is a file, a link loop, a
    dangling link or cannot be searched (each would make the writer's ``mkdir`` fail)."""
    existing = Path(".") if not folder.is_absolute() else Path(folder.anchor)
    for place in reversed([folder, *folder.parents]):
        if str(place) in (".", folder.anchor):
            continue
        try:
            mode = os.stat(place).st_mode
        except OSError as missing:
            if missing.errno == errno.ENOENT and not os.path.islink(place):
                return existing  # from here on the path is created by the writer
            raise error(_message(what, target, place, *_broken_path(place, missing, fix))) from None
        if not stat.S_ISDIR(mode):
            problem = "is a file, not a folder"
            raise error(_message(what, target, place, problem, f"Move the file away or {_lower(fix)}"))
        existing = place
    return existing


def _broken_path(place: Path, refused: OSError, fix: str) -> tuple[str, str]:
    """What is wrong with a part of a path that ``stat`` refuses, and the fix."""
    unlink = f"Remove the link (rm {place}) or {_lower(fix)}"
    if refused.errno == errno.ENOENT:  # a link whose target is gone
        return f"is a symbolic link to {os.readlink(place)}, which does not exist", unlink
    if refused.errno == errno.ELOOP:
        return "is a symbolic link loop (it points back to itself)", unlink
    return _why(refused), fix


def _why(refused: OSError) -> str:
    """What an ``OSError`` says of a place, in the words of the messages."""
    if refused.errno in READ_ONLY:
        return "is on a read-only file system"
    if refused.errno in NO_PERMISSION:
        return "is not writable (permission denied)"
    if refused.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.EINVAL):
        return "does not take new files (a virtual file system such as /proc?)"
    return f"cannot be written ({(refused.strerror or type(refused).__name__).lower()})"


def _message(what: str, target: Path, place: Path, problem: str, fix: str) -> str:
    shown = Path.cwd() if str(place) == "." else place  # the working folder by its name, not as "."
    where = f"{target}: {'it' if place == target else shown} {problem}"
    return f"Cannot write {what} to {where}. {fix}"


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]


def new_file(folder: Path, *, stem: str, suffix: str = ".csv") -> Path:
    """A file in ``folder`` that does not exist yet (``stem.csv``, ``stem-1.csv``, ...), created empty at once so
    that two writers never take the same name; nothing is ever overwritten."""
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(10_000):
        path = folder / f"{stem}{f'-{number}' if number else ''}{suffix}"
        try:
            path.open("x").close()
            return path
        except FileExistsError:
            continue
    raise FileExistsError(f"{folder} holds 10,000 {stem}*{suffix} files already")

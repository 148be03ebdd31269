"""Errors that carry a message meant for a person: what went wrong and how to fix it."""

from __future__ import annotations


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


def require_positive(value: float | None, *, name: str, flag: str, allow_zero: bool = False) -> None:
    """Refuse a non-positive setting with a message naming the flag that sets it."""
    if value is None or value > 0 or (allow_zero and value == 0):
        return
    bound = "zero or more" if allow_zero else "positive"
    raise ConfigError(f"{name} must be {bound}, got {value}. Set {flag} to a {bound} value.")


def find_cause(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first ``kind`` in ``error``'s chain of causes (jsonargparse and Lightning wrap what they raise)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def find_user_error(error: BaseException) -> UserFacingError | None:
    """The UserFacingError behind ``error``, if any."""
    found = find_cause(error, UserFacingError)
    return found if isinstance(found, UserFacingError) else None

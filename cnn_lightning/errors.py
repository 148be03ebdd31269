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

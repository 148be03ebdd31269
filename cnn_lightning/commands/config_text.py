"""A config file read as jsonargparse will read it, checked first so that what it cannot take is one line naming the
file, the line and the fix: configs are UTF-8 (a file saved as UTF-16 or Latin-1 would end in ``UnicodeDecodeError``),
valid YAML (jsonargparse's own message names neither file nor line), and a mapping of settings (an empty file would
say only ``Unexpected config``)."""

from __future__ import annotations

import codecs
from pathlib import Path

import yaml

from cnn_lightning.commands.tune_space import yaml_error_place, yaml_error_text
from cnn_lightning.errors import ConfigError

WIDE_ENCODINGS = {  # byte-order marks of the encodings an editor may save a config in, longest first
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}
EXAMPLE = "e.g. trainer: {max_epochs: 10} (see configs/lenet.yaml)"


def check_config_file(path: str) -> str:
    """``path``, once it reads as UTF-8 YAML holding a mapping of settings; else one line naming what is wrong."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(f"Config {path} cannot be read: {reason}. Check the file and its permissions.") from None
    text = _utf8(path, data)
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{yaml_error_place(path, error)} is not valid YAML: {yaml_error_text(error)}.") from None
    if settings is None:
        raise ConfigError(f"Config {path} is empty (or only comments). Give it settings, {EXAMPLE}, or drop it.")
    if not isinstance(settings, dict):
        raise ConfigError(f"Config {path} holds a {type(settings).__name__}, not settings. Write a mapping, {EXAMPLE}.")
    return path


def _utf8(path: str, data: bytes) -> str:
    """``data`` decoded as UTF-8, or one line with the encoding it seems to be in and how to convert it."""
    encoding = next((name for bom, name in WIDE_ENCODINGS.items() if data.startswith(bom)), None)
    if encoding is None and b"\x00" in data:  # UTF-16 without a byte-order mark: every other byte of ASCII is 0
        encoding = "UTF-16 (or binary)"
    if encoding is not None:
        raise ConfigError(
            f"Config {path} is saved as {encoding}; configs are read as UTF-8. Save it as UTF-8 (in a shell: "
            f"iconv -f {encoding.split()[0]} -t UTF-8 {path} > fixed.yaml)."
        )
    try:
        return data.decode("utf-8-sig")  # a UTF-8 byte-order mark is harmless
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        column = error.start - (data.rfind(b"\n", 0, error.start) + 1) + 1
        byte = data[error.start]
        raise ConfigError(
            f"{path}:{line}:{column} is not UTF-8 (byte 0x{byte:02x}, {bytes([byte]).decode('latin-1')!r} in "
            f"Latin-1); configs are read as UTF-8. Save the file as UTF-8 (in a shell: iconv -f LATIN1 -t UTF-8 "
            f"{path} > fixed.yaml)."
        ) from None

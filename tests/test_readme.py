"""The README's commands work on a fresh machine."""

from __future__ import annotations

from tests.conftest import REPO


def test_readme_commands_refresh_the_package_lists_first() -> None:
    readme = (REPO / "README.md").read_text()
    commands = [line for line in readme.splitlines() if "apt-get install" in line][:2]
    assert len(commands) == 2
    for command in commands:
        assert command.index("apt-get update") < command.index("apt-get install"), command

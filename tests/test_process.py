"""The process-wide settings, made once by the entry point before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cnn_lightning.memory.host_memory import HUGE_PAGES_SETTING


@pytest.mark.parametrize(("user_setting", "expected"), [(None, "1"), ("0", "0")])
def test_entry_point_asks_for_huge_pages_before_torch_loads(user_setting: str | None, expected: str) -> None:
    """PyTorch reads THP_MEM_ALLOC_ENABLE once, when it loads: the entry point must set it first, and keep the
    user's own value. A fresh interpreter, as ``python -m cnn_lightning`` and the ``cnn-lightning`` script start."""
    env = {key: value for key, value in os.environ.items() if key != HUGE_PAGES_SETTING}
    env.update({HUGE_PAGES_SETTING: user_setting} if user_setting else {})
    code = (
        "import contextlib, os, sys, cnn_lightning.__main__; loaded_early = 'torch' in sys.modules\n"
        "with contextlib.suppress(SystemExit):\n    cnn_lightning.__main__.main(['report', '--help'])\n"
        f"print(loaded_early, 'torch' in sys.modules, os.environ.get({HUGE_PAGES_SETTING!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1].split() == ["False", "True", expected], done.stderr[-2000:]

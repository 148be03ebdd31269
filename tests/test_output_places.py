"""Places the project cannot write — a read-only disk (a real read-only mount), a file in the way, a symbolic link
loop, a file that exists — end every command in one line naming the place, what is wrong and the fix, before
anything is written; nothing the user had is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cnn_lightning.output_places import PROBE_PREFIX, OutputPlaceError, check_folder, check_new_file
from tests.test_errors import fails

RUN = Path(__file__).parent / "fixtures" / "lenet_run_0.2.0"  # a LeNet run with checkpoints (fixtures/README.md)
FIX = "Choose another place."


def everything(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


class ReadOnlyDisk:
    """A small tmpfs, filled while writable, then remounted read-only: a disk that really refuses writes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def freeze(self) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(self.root)], check=True, capture_output=True)


@pytest.fixture
def read_only_disk(tmp_path: Path):
    root = tmp_path / "disk"
    root.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(root)], capture_output=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip() or 'not root'}")
    try:
        yield ReadOnlyDisk(root)
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


def test_a_file_in_the_way_is_named_and_kept(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("mine")
    with pytest.raises(OutputPlaceError, match=r"logs/version_0: .*logs is a file, not a folder\. Move the file away"):
        check_folder(tmp_path / "logs" / "version_0", what="the run", fix=FIX)
    assert (tmp_path / "logs").read_text() == "mine"


def test_a_symbolic_link_loop_and_a_dangling_link(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(OutputPlaceError, match=r"symbolic link loop .* Remove the link \(rm .*loop\)"):
        check_folder(tmp_path / "loop", what="the run", fix=FIX)
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputPlaceError, match=r"is a symbolic link to .*nowhere, which does not exist"):
        check_folder(tmp_path / "gone" / "sub", what="the run", fix=FIX)


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "out.csv").write_text("mine")
    with pytest.raises(OutputPlaceError, match=r"out\.csv: it exists, and cnn_lightning never overwrites a file"):
        check_new_file(tmp_path / "out.csv", what="the predictions", fix=FIX)
    assert (tmp_path / "out.csv").read_text() == "mine"


def test_a_place_to_be_created_is_checked_without_creating_anything(tmp_path: Path) -> None:
    assert check_folder(tmp_path / "a" / "b", what="the run", fix=FIX) == tmp_path / "a" / "b"
    assert check_new_file(tmp_path / "c" / "d.csv", what="the predictions", fix=FIX) == tmp_path / "c" / "d.csv"
    assert list(tmp_path.iterdir()) == []  # neither the folders nor the probe file stay


def test_a_read_only_disk_is_named(read_only_disk: ReadOnlyDisk) -> None:
    (read_only_disk.root / "logs").mkdir()
    read_only_disk.freeze()
    for place in (read_only_disk.root / "logs", read_only_disk.root / "new" / "deeper"):
        with pytest.raises(OutputPlaceError, match=f"{read_only_disk.root}.* is on a read-only file system"):
            check_folder(place, what="the run", fix=FIX)


def test_a_virtual_file_system_is_named() -> None:
    with pytest.raises(OutputPlaceError, match="/proc does not take new files"):
        check_new_file("/proc/model.pt", what="the exported model", fix=FIX)


# The commands: each refuses in one line (exit 2) before it writes anything.


@pytest.fixture
def run_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding one LeNet run with checkpoints, as lightning_logs/version_0."""
    shutil.copytree(RUN, tmp_path / "lightning_logs" / "version_0")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fit_where_lightning_logs_is_a_file_or_a_loop(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lightning_logs").write_text("mine")
    message = fails(capsys, "fit", "--config", "lenet.yaml")
    assert "Cannot write the run's logs and checkpoints to lightning_logs: it is a file, not a folder" in message
    assert "--trainer.logger.init_args.save_dir" in message and everything(tmp_path) == ["lightning_logs"]
    (tmp_path / "lightning_logs").unlink()
    (tmp_path / "lightning_logs").symlink_to("lightning_logs")
    assert "lightning_logs: it is a symbolic link loop" in fails(capsys, "fit", "--config", "lenet.yaml")


@pytest.mark.slow  # five commands in-process, 7 s
def test_commands_on_a_run_on_a_read_only_disk(read_only_disk: ReadOnlyDisk, data_dir: Path, monkeypatch, capsys):
    shutil.copytree(RUN, read_only_disk.root / "lightning_logs" / "version_0")
    before = everything(read_only_disk.root)
    read_only_disk.freeze()
    monkeypatch.chdir(read_only_disk.root)
    data = ["--data.data_dir", str(data_dir)]
    for command in ("fit", "validate", "test", "predict"):
        message = fails(capsys, command, "--ckpt_path", "lightning_logs/version_0", *data)
        assert "is on a read-only file system" in message, command
        assert "Copy the run to a writable place (cp -r lightning_logs/version_0 DIR)" in message, command
    message = fails(capsys, "fit", "--config", "lenet.yaml", *data)  # a new run there
    assert "logs and checkpoints to lightning_logs: it is on a read-only file system. Run the command from a" in message
    assert everything(read_only_disk.root) == before


def test_outputs_that_exist_or_lie_under_a_file(run_here: Path, capsys) -> None:
    (run_here / "mine.csv").write_text("mine")
    (run_here / "file").write_text("mine")
    before = everything(run_here)
    predict = ["predict", "--ckpt_path", "lightning_logs/version_0", "--predictions.output"]
    assert "mine.csv: it exists, and cnn_lightning never overwrites" in fails(capsys, *predict, "mine.csv")
    assert "file/p.csv: file is a file, not a folder" in fails(capsys, *predict, "file/p.csv")
    export = ["export", "--ckpt_path", "lightning_logs/version_0", "--format", "torchscript", "--output"]
    assert "file/m.pt: file is a file, not a folder" in fails(capsys, *export, "file/m.pt")
    assert "/proc/m.pt: /proc does not take new files" in fails(capsys, *export, "/proc/m.pt")
    assert "Cannot write the report to file: it is a file" in fails(capsys, "report", "lightning_logs", "--out", "file")
    assert everything(run_here) == before and not list(run_here.rglob(f"{PROBE_PREFIX}*"))
    assert (run_here / "mine.csv").read_text() == (run_here / "file").read_text() == "mine"


def test_no_probe_is_left_where_the_check_passed(run_here: Path) -> None:
    check_folder(run_here / "lightning_logs" / "version_0", what="the run", fix=FIX)
    assert not [name for name in os.listdir(run_here / "lightning_logs" / "version_0") if name.startswith(".")]

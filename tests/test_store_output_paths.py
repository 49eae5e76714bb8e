"""mskbench.output_paths: "a file I will write" and "a folder I will write", checked before any work."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mskbench.errors import UserError
from mskbench.output_paths import OutputPathError, make_folder, writable_file, writable_folder, write_text


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_new_paths_pass_and_the_check_creates_nothing(tmp_path):
    (tmp_path / "existing").mkdir()
    before = _tree(tmp_path)
    assert writable_file(tmp_path / "a" / "b" / "report.html", "--out") == tmp_path / "a" / "b" / "report.html"
    assert writable_folder(tmp_path / "site" / "deeper", "--out") == tmp_path / "site" / "deeper"
    assert writable_file(tmp_path / "existing" / "x.parquet", "--out")
    assert writable_folder(tmp_path / "existing", "--out")
    assert _tree(tmp_path) == before  # the probe file is gone


def test_an_existing_file_may_be_replaced(tmp_path):
    old = tmp_path / "report.html"
    old.write_text("old")
    assert writable_file(old, "--out") == old
    assert old.read_text() == "old"


@pytest.mark.parametrize(
    ("check", "target", "expected"),
    [
        (writable_file, "adir", "--out {tmp}/adir: is a folder, not a file; e.g. --out {tmp}/adir/report.html"),
        (writable_file, "afile/report.html", "--out {tmp}/afile/report.html: {tmp}/afile is a file, not a folder"),
        (writable_file, "afile/x/y/report.html", "{tmp}/afile is a file, not a folder"),
        (writable_folder, "afile", "--out {tmp}/afile: is a file, not a folder; give a folder path"),
        (writable_folder, "afile/site", "--out {tmp}/afile/site: {tmp}/afile is a file, not a folder"),
    ],
)
def test_wrong_kinds_of_path_are_one_line(check, target, expected, tmp_path):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError) as raised:
        check(tmp_path / target, "--out", "report.html") if check is writable_file else check(tmp_path / target, "--out")
    message = str(raised.value)
    assert expected.format(tmp=tmp_path) in message and "\n" not in message
    assert isinstance(raised.value, UserError) and raised.value.exit_code == 2


def test_places_nobody_can_write_in(tmp_path):
    with pytest.raises(OutputPathError, match="cannot write in /proc"):
        writable_file("/proc/mskbench-test/report.html", "--out")
    with pytest.raises(OutputPathError, match="cannot write in /proc"):
        writable_folder("/proc/mskbench-test/site", "--dest")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod-read-only folder")
def test_read_only_folder_and_file(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "old.html").write_text("old")
    os.chmod(folder / "old.html", 0o444)
    os.chmod(folder, 0o555)
    try:
        with pytest.raises(OutputPathError, match="cannot write in"):
            writable_file(folder / "new.html", "--out")
        with pytest.raises(OutputPathError, match="cannot overwrite it"):
            writable_file(folder / "old.html", "--out")
        with pytest.raises(OutputPathError, match="cannot write in"):
            writable_folder(folder / "site", "--out")
    finally:
        os.chmod(folder, 0o755)


def test_write_text_and_make_folder(tmp_path):
    path = write_text(tmp_path / "a" / "b.html", "<p>ok</p>", "--out")
    assert path.read_text() == "<p>ok</p>"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputPathError, match="--out .*afile/site: cannot create the folder"):
        make_folder(tmp_path / "afile" / "site", "--out")
    with pytest.raises(OutputPathError, match="cannot create the folder"):
        write_text(tmp_path / "afile" / "index.html", "x", "--out")


def test_a_full_disk_while_writing_is_one_line(tmp_path):
    """On a 64 KiB tmpfs (root only; skipped where mount is not allowed)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and `mount -t tmpfs`")
    try:
        writable_file(folder / "report.html", "--out")  # there is room for the probe
        with pytest.raises(OutputPathError) as raised:
            write_text(folder / "report.html", "x" * 1_000_000, "--out")
        assert "No space left on device" in str(raised.value) and "\n" not in str(raised.value)
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)

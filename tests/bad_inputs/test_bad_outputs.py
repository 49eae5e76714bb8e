"""Output paths that cannot be written, through the real CLI.

Every command that writes checks its output with mskbench.output_paths
before any work: a folder given for a file, a file given for a folder, a path
under a regular file, /proc, or a read-only folder or file is one line and
exit code 2, and nothing is written there. Root may write into a
chmod-read-only folder, so as root the read-only cases use a read-only bind
mount (skipped where mounting is not allowed); the path-under-a-regular-file
cases work for everyone.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness import BadInput, check

REPO = Path(__file__).resolve().parents[2]
IS_A_FOLDER = "is a folder, not a file"
UNDER_A_FILE = "afile is a file, not a folder"
IS_A_FILE = "is a file, not a folder; give a folder path"


def afile(tmp: Path) -> None:
    (tmp / "afile").write_text("a regular file, not a folder\n")


def adir(tmp: Path) -> None:
    (tmp / "adir").mkdir()
    (tmp / "adir" / "keep.txt").write_text("already here\n")


def suite_and_file(tmp: Path) -> None:
    afile(tmp)
    shutil.copyfile(REPO / "suites" / "smoke.toml", tmp / "suite.toml")


def label_files_and_file(tmp: Path) -> None:
    import nibabel as nib

    afile(tmp)
    mask = np.zeros((6, 6, 3), np.uint8)
    mask[1:4, 1:4, 1] = 1
    for name in ("reference.nii.gz", "prediction.nii.gz"):
        nib.save(nib.Nifti1Image(mask, np.eye(4)), tmp / name)


CASES = [
    BadInput("report-out-is-a-folder", ["report", "--db", "{db}", "--out", "{tmp}/adir"], adir, IS_A_FOLDER),
    BadInput("report-out-under-a-file", ["report", "--db", "{db}", "--out", "{tmp}/afile/report.html"], afile,
             UNDER_A_FILE),
    BadInput("report-out-in-proc", ["report", "--db", "{db}", "--out", "/proc/mskbench-test/report.html"], None,
             "cannot write in /proc"),
    BadInput("leaderboard-out-is-a-file", ["leaderboard", "--db", "{db}", "--out", "{tmp}/afile"], afile, IS_A_FILE),
    BadInput("leaderboard-out-under-a-file", ["leaderboard", "--db", "{db}", "--out", "{tmp}/afile/site"], afile,
             UNDER_A_FILE),
    BadInput("leaderboard-out-in-proc", ["leaderboard", "--db", "{db}", "--out", "/proc/mskbench-test/site"], None,
             "cannot write in /proc"),
    BadInput("export-out-under-a-file", ["export", "--db", "{db}", "--table", "subject_metrics", "--out",
                                         "{tmp}/afile/rows.parquet"], afile, UNDER_A_FILE),
    BadInput("export-out-is-a-folder", ["export", "--db", "{db}", "--table", "subject_metrics", "--out", "{tmp}/adir"],
             adir, IS_A_FOLDER),
    BadInput("models-fetch-dest-under-a-file", ["models", "fetch", "sam_vit_b", "--dest", "{tmp}/afile/checkpoints"],
             afile, UNDER_A_FILE),
    BadInput("models-fetch-dest-is-a-file", ["models", "fetch", "sam_vit_b", "--dest", "{tmp}/afile"], afile,
             IS_A_FILE),
    BadInput("models-fetch-dest-in-proc", ["models", "fetch", "sam_vit_b", "--dest", "/proc/mskbench-test"], None,
             "cannot write in /proc"),
    BadInput("data-phantom-out-under-a-file", ["data", "phantom", "--out", "{tmp}/afile/phantom"], afile,
             UNDER_A_FILE),
    BadInput("data-phantom-out-is-a-file", ["data", "phantom", "--out", "{tmp}/afile"], afile, IS_A_FILE),
    BadInput("detector-train-out-under-a-file", ["detector", "train", "--dataset", "phantom", "--out",
                                                 "{tmp}/afile/detector"], afile, UNDER_A_FILE),
    BadInput("run-db-under-a-file", ["run", "{tmp}/suite.toml", "--db", "{tmp}/afile/results.duckdb"],
             suite_and_file, UNDER_A_FILE),
    BadInput("metrics-compute-db-under-a-file", ["metrics", "compute", "--reference", "{tmp}/reference.nii.gz",
                                                 "--prediction", "{tmp}/prediction.nii.gz",
                                                 "--db", "{tmp}/afile/metrics.duckdb"],
             label_files_and_file, UNDER_A_FILE),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_output(case: BadInput, tmp_path: Path, template_db: Path) -> None:
    check(case, tmp_path, template_db)
    if (tmp_path / "afile").exists():
        assert (tmp_path / "afile").read_text() == "a regular file, not a folder\n"
    if (tmp_path / "adir").exists():
        assert sorted(os.listdir(tmp_path / "adir")) == ["keep.txt"], "the check left a file behind"


READ_ONLY = [
    BadInput("report-out-read-only-folder", ["report", "--db", "{db}", "--out", "{tmp}/ro/report.html"], None,
             "cannot write in"),
    BadInput("leaderboard-out-read-only-folder", ["leaderboard", "--db", "{db}", "--out", "{tmp}/ro/site"], None,
             "cannot write in"),
    BadInput("models-fetch-dest-read-only-folder", ["models", "fetch", "sam_vit_b", "--dest", "{tmp}/ro/ck"], None,
             "cannot write in"),
    BadInput("report-out-read-only-file", ["report", "--db", "{db}", "--out", "{tmp}/ro/old.html"], None,
             "cannot overwrite it"),
    BadInput("run-db-read-only-folder", ["run", "{tmp}/suite.toml", "--db", "{tmp}/ro/results.duckdb"],
             lambda tmp: shutil.copyfile(REPO / "suites" / "smoke.toml", tmp / "suite.toml"), "cannot write in"),
]


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """``tmp_path/ro`` holding old.html, made read-only: chmod when not root, else a read-only bind mount."""
    import subprocess

    folder = tmp_path / "ro"
    folder.mkdir()
    (folder / "old.html").write_text("old report\n")
    if os.geteuid() != 0:
        os.chmod(folder / "old.html", 0o444)
        os.chmod(folder, 0o555)
        yield folder
        os.chmod(folder, 0o755)
        return
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root, and a read-only bind mount is not allowed here: {mounted.stderr.decode().strip()}")
    try:
        if os.access(folder, os.W_OK):  # older mount(8): remount to apply ro to the bind
            subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True, capture_output=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.parametrize("case", READ_ONLY, ids=[case.id for case in READ_ONLY])
def test_read_only_output(case: BadInput, tmp_path: Path, template_db: Path, read_only_folder: Path) -> None:
    check(case, tmp_path, template_db)
    assert sorted(os.listdir(read_only_folder)) == ["old.html"]
    assert (read_only_folder / "old.html").read_text() == "old report\n"

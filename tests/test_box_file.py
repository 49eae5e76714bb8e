"""`box3d-from-file`: boxes drawn in world mm land on the right voxels of mskbench's RAS+ grid.

External references: voxel ranges computed by hand from a permuted and
flipped affine written in the test, nibabel reading the predicted mask back
on the file's own axes, and the prompts table `mskbench run` records.
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import duckdb
import nibabel as nib
import numpy as np
import pytest

from mskbench.cli.main import main
from mskbench.data.labels import label_map_from_names
from mskbench.data.readers import read_volume
from mskbench.data.subjects import build_subject
from mskbench.errors import PluginError
from mskbench.prompting.box_file import BoxFilePrompter, read_box_file, voxel_ranges

#: File axes: i runs towards P (2 mm), j towards S (3 mm), k towards L (1.5 mm), so the RAS+ array is
#: x = 9 - k (size 10), y = 5 - i (size 6), z = j (size 8).
FILE_SHAPE = (6, 8, 10)
FILE_AFFINE = np.array([[0.0, 0.0, -1.5, 10.0], [-2.0, 0.0, 0.0, 20.0], [0.0, 3.0, 0.0, -5.0], [0, 0, 0, 1]])
FILE_BOX = ((1, 3), (2, 5), (4, 7))  # inclusive (first, last) per file axis i, j, k
RAS_BOX = [(9 - 7, 9 - 4), (5 - 3, 5 - 1), (2, 5)]  # the same voxels on the RAS+ array, by hand
LABELS = label_map_from_names({1: "femur", 2: "tibia"})


def _world(ijk) -> np.ndarray:
    return FILE_AFFINE[:3, :3] @ np.asarray(ijk, dtype=float) + FILE_AFFINE[:3, 3]


def _box_csv(path: Path, rows: list[tuple], space: str = "RAS") -> Path:
    lines = ["subject_id,label,x1,y1,z1,x2,y2,z2"]
    for subject, label, a, b in rows:
        if space == "LPS":
            a, b = a * [-1, -1, 1], b * [-1, -1, 1]
        lines.append(",".join([subject, label, *(f"{v:.4f}" for v in (*a, *b))]))
    path.write_text("\n".join(lines) + "\n")
    return path


def _corners(grow: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World corners of FILE_BOX's first and last voxel centres, each moved outward by ``grow`` voxels."""
    first = [lo - grow for lo, _ in FILE_BOX]
    last = [hi + grow for _, hi in FILE_BOX]
    return _world(first), _world(last)


@pytest.fixture
def study(tmp_path) -> Path:
    image = np.arange(np.prod(FILE_SHAPE), dtype=np.float32).reshape(FILE_SHAPE)
    path = tmp_path / "knee_001.nii.gz"
    nib.save(nib.Nifti1Image(image, FILE_AFFINE), path)
    return path


def _subject(path: Path):
    volume = read_volume(path)
    return build_subject(path.name.split(".")[0], volume, np.zeros(volume.array.shape, np.uint8), LABELS)


@pytest.mark.parametrize("space", ["RAS", "LPS"])
@pytest.mark.parametrize("grow", [0.0, 0.99])
def test_box_lands_on_hand_computed_voxels_of_a_permuted_flipped_file(study, tmp_path, space, grow):
    a, b = _corners(grow)
    rows = read_box_file(_box_csv(tmp_path / "boxes.csv", [("knee_001", "femur", b, a)], space), space)
    subject = _subject(study)
    assert subject.volume.shape == (10, 6, 8)
    assert voxel_ranges(rows[0], subject.affine, subject.volume.shape) == (RAS_BOX, False)


def test_a_face_on_the_next_voxel_centre_takes_it_and_one_past_the_edge_is_clipped(study, tmp_path):
    a, b = _corners(1.0)
    rows = read_box_file(_box_csv(tmp_path / "boxes.csv", [("knee_001", "femur", a, b)]), "RAS")
    subject = _subject(study)
    grown = [(lo - 1, hi + 1) for lo, hi in RAS_BOX]
    assert voxel_ranges(rows[0], subject.affine, subject.volume.shape) == (grown, False)
    far = _world([-3, 2, 4]), _world([3, 5, 12])  # beyond i = 0 (y = 5) and k = 9 (x = 0)
    rows = read_box_file(_box_csv(tmp_path / "far.csv", [("knee_001", "femur", *far)]), "RAS")
    assert voxel_ranges(rows[0], subject.affine, subject.volume.shape) == ([(0, 5), (2, 5), (2, 5)], True)


def test_prompt_is_a_box3d_over_the_extent_with_the_in_plane_range(study, tmp_path, caplog):
    prompter = BoxFilePrompter(str(_box_csv(tmp_path / "boxes.csv", [("knee_001", "femur", *_corners())])), "RAS")
    with caplog.at_level(logging.WARNING):
        (prompt,) = prompter.subject_prompts(_subject(study), [1, 2], axis=2)
    (x_first, x_last), (y_first, y_last), (z_first, z_last) = RAS_BOX
    assert prompt.kind == "box3d" and prompt.label == 1 and not prompt.clipped
    assert prompt.box == (y_first, x_first, y_last, x_last)  # slice rows = array axis 0, x = column = axis 1
    assert prompt.extent == (z_first, z_last) and prompt.slice_index == (z_first + z_last) // 2
    assert "no box for subject 'knee_001' label tibia" in caplog.text


def test_predict_with_box_fill_writes_exactly_the_drawn_box_on_the_file_axes(study, tmp_path):
    boxes = _box_csv(tmp_path / "boxes.csv", [("knee_001", "tibia", *_corners(0.3))], "LPS")
    out = tmp_path / "out"
    params = json.dumps({"path": str(boxes), "space": "LPS"})
    assert main(["predict", "--model", "box_fill", "--prompter", "box3d-from-file", "--prompter-params", params,
                 "--per-slice", "--labels", "1=femur,2=tibia", "--input", str(study), "--out", str(out)]) == 0
    mask = nib.load(out / "knee_001.nii.gz")
    np.testing.assert_array_equal(mask.affine, FILE_AFFINE)
    expected = np.zeros(FILE_SHAPE, np.uint8)
    expected[tuple(slice(lo, hi + 1) for lo, hi in FILE_BOX)] = 2
    np.testing.assert_array_equal(np.asanyarray(mask.dataobj), expected)


SUITE = """
[suite]
name = "drawn_boxes"
seed = 1
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
split = "all"

[datasets.params]
anatomy = "knee"
subjects = 1
seed = 0
supersample = 1
pixel_spacing_min = 0.8
pixel_spacing_max = 0.8

[[models]]
name = "box_fill"
plugin = "box_fill"
per_slice = true

[[prompters]]
name = "drawn"
plugin = "box3d-from-file"
params = {{ path = "{boxes}", space = "RAS" }}

[metrics]
names = ["dice"]
"""


def test_suite_records_the_drawn_box_with_its_extent(tmp_path):
    from mskbench.plan import build_plan
    from mskbench.plugin_manager import get_registry
    from mskbench.suite import load_suite

    boxes, suite = tmp_path / "boxes.csv", tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format(boxes=boxes)))
    boxes.write_text("subject_id,label,x1,y1,z1,x2,y2,z2\nplaceholder,femur,0,0,0,1,1,1\n")
    dataset = build_plan(load_suite(suite), get_registry()).datasets["knee"].dataset
    subject = dataset.load(dataset.subject_ids()[0])
    femur = next(label for label, info in subject.label_map.items() if info.name == "femur")
    where = np.argwhere(subject.labels == femur)
    first, last = where.min(axis=0), where.max(axis=0)
    corner = lambda ijk: subject.affine[:3, :3] @ ijk + subject.affine[:3, 3]  # noqa: E731
    boxes.write_text("subject_id,label,x1,y1,z1,x2,y2,z2\n" + ",".join(
        [subject.id, "femur", *(f"{v:.4f}" for v in (*corner(first), *corner(last)))]) + "\n")

    db = tmp_path / "r.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT slice_index, label, x_min, y_min, x_max, y_max, first_slice, last_slice "
                       "FROM prompts ORDER BY slice_index").fetchall()
    con.close()
    axis = int(np.argmax(subject.spacing))
    rows_axis, cols_axis = (a for a in range(3) if a != axis)
    box = (first[cols_axis], first[rows_axis], last[cols_axis], last[rows_axis])
    assert rows == [((first[axis] + last[axis]) // 2, femur, *map(float, box), first[axis], last[axis])]


@pytest.mark.parametrize("content, expect", [
    ("subject_id,label,x1,y1,z1,x2,y2\n", "lacks the column z2"),
    ("subject_id,label,x1,y1,z1,x2,y2,z2\nknee_001,femur,1,2,abc,4,5,6\n", "line 2: z1 = 'abc' is not a number"),
    ("subject_id,label,x1,y1,z1,x2,y2,z2\nknee_001,femur,1,2,nan,4,5,6\n", "not a finite number"),
    ("subject_id,label,x1,y1,z1,x2,y2,z2\nknee_001,femur,1,2,3,4,5,6\nknee_001,femur,1,2,3,4,5,6\n",
     "line 3: a second box"),
    ("subject_id,label,x1,y1,z1,x2,y2,z2\n", "no boxes"),
])
def test_malformed_files_are_one_line_naming_file_and_row(tmp_path, content, expect):
    path = tmp_path / "boxes.csv"
    path.write_text(content)
    with pytest.raises(PluginError, match=expect) as caught:
        read_box_file(path, "RAS")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)

"""Bad preprocessing settings and label-map policies through the real CLI (issue 19).

Thresholds and the `unlisted_labels` policy are checked when the suite is
planned (`mskbench validate` / `run`), before any subject is read; a mask
holding labels nobody named, under the default policy `error`, fails on load
with the label ids and both fixes. Each case must end in one error line,
exit code 2 and an untouched results database (``harness.check``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import BadInput, Setup, check

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"

PHANTOM = """
[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 1, seed = 0 }}
split = "all"
preprocess = {{ {preprocess} }}
"""
REAL_MR = """
[[datasets]]
name = "real_mr"
plugin = "nifti_folder"
split = "all"
slice_axis = "axial"
params = {{ root = "{root}", layout = "glob", {params} label_names = {{ "19" = "vertebrae", "46" = "autochthon_left" }} }}
"""
REST = """
[[models]]
plugin = "box_fill"

[[prompters]]
plugin = "gt_box"
"""


def _suite(dataset: str) -> Setup:
    def setup(tmp: Path) -> None:
        (tmp / "suite.toml").write_text(dataset + REST)

    return setup


def _phantom(preprocess: str) -> Setup:
    return _suite(PHANTOM.format(preprocess=preprocess))


def _real(params: str = "") -> Setup:
    def setup(tmp: Path) -> None:
        for folder, name in (("images", "example_mr_sm.nii.gz"), ("labels", "example_seg_mr.nii.gz")):
            (tmp / "data" / folder).mkdir(parents=True)
            (tmp / "data" / folder / "mr.nii.gz").symlink_to(REAL / name)
        (tmp / "suite.toml").write_text(REAL_MR.format(root=tmp / "data", params=params) + REST)

    return setup


VALIDATE = ["validate", "{tmp}/suite.toml"]
RUN = ["run", "{tmp}/suite.toml", "--db", "{db}"]
WHERE = "datasets.knee.preprocess"

CASES = [
    BadInput("mm3-unit-does-not-parse", VALIDATE, _phantom('min_object_mm3 = "125 mm"'),
             f"{WHERE}.min_object_mm3: '125 mm': unit 'mm' is not a volume unit"),
    BadInput("mm2-volume-unit-for-an-area", VALIDATE, _phantom('min_object_mm2 = "25 mm3"'),
             f"{WHERE}.min_object_mm2: '25 mm3': unit 'mm3' is not an area unit"),
    BadInput("mm2-not-a-number", VALIDATE, _phantom('min_object_mm2 = "lots"'), "is not a number with a unit"),
    BadInput("mm3-negative", VALIDATE, _phantom("min_object_mm3 = -125"), f"{WHERE}.min_object_mm3: -125: must be a finite number >= 0"),
    BadInput("mm2-negative-with-unit", VALIDATE, _phantom('min_object_mm2 = "-2 cm2"'), "must be a finite number >= 0"),
    BadInput("mm2-nan", VALIDATE, _phantom("min_object_mm2 = nan"), "must be a finite number >= 0"),
    BadInput("voxels-negative", VALIDATE, _phantom("min_object_voxels = -1"), f"{WHERE}.min_object_voxels: -1 is negative"),
    BadInput("pixels-not-whole", VALIDATE, _phantom("min_object_pixels = 2.5"), f"{WHERE}.min_object_pixels: expected a whole number"),
    BadInput("voxels-boolean", VALIDATE, _phantom("min_object_voxels = true"), "expected a whole number"),
    BadInput("both-voxel-and-mm3", VALIDATE, _phantom("min_object_mm3 = 125, min_object_voxels = 1000"),
             "min_object_mm3 and min_object_voxels are both set; keep one"),
    BadInput("both-pixel-and-mm2", RUN, _phantom('min_object_mm2 = "25 mm2", min_object_pixels = 100'),
             "min_object_mm2 and min_object_pixels are both set"),
    BadInput("threshold-key-typo", VALIDATE, _phantom("min_object_mm = 125"), "did you mean"),
    BadInput("unlisted-labels-unknown-value", VALIDATE, _real('unlisted_labels = "ignore",'),
             "unlisted_labels: 'ignore' is not one of 'error', 'background'"),
    BadInput("unlisted-labels-not-a-string", VALIDATE, _real("unlisted_labels = false,"), "unlisted_labels"),
    # 21 of the mask's 23 labels are not named and the policy is the default (error)
    BadInput("unlisted-label-present-policy-error", RUN, _real(),
             'label values 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 13, 14, 15, 20, 21, 23, 24, 25, 47, 48 (+1 more) are in the mask '
             'but not in the label map (listed: 19, 46); name them in label_names, or set unlisted_labels = "background"'),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_preprocessing_input(case: BadInput, tmp_path: Path, template_db: Path) -> None:
    check(case, tmp_path, template_db)

"""`nifti_folder`: NIfTI images with label files, in nnU-Net raw layout or a plain glob.

nnU-Net raw layout (the format most public segmentation sets ship in)::

    root/dataset.json                 {"labels": {"background": 0, "femur": 1, ...}, "file_ending": ".nii.gz"}
    root/imagesTr/<case>_0000.nii.gz  first channel of each case
    root/labelsTr/<case>.nii.gz
    root/imagesTs/, root/labelsTs/    optional held-out cases (nnU-Net's own test split)

Generic layout: ``images_glob`` (e.g. ``images/*.nii.gz``) and a labels
folder holding a file of the same name per image; the label names come from
``label_names`` or a dataset.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskbench.data.dataset_json import names_from_dataset_json, read_dataset_json
from mskbench.data.labels import check_unlisted_policy, label_map_from_names
from mskbench.data.readers import image_stem, read_volume
from mskbench.data.subjects import build_subject
from mskbench.errors import DataError
from mskbench.params import Param
from mskbench.types import LabelInfo, Subject
from mskbench_builtins.datasets.base import (
    UNLISTED_LABELS_PARAM,
    FileDataset,
    check_root,
    claim_subject_id,
    root_param,
    split_params,
    with_unlisted_labels,
)

CHANNEL_SUFFIX = "_0000"


class NiftiFolder(FileDataset):
    """Image/label NIfTI pairs from an nnU-Net raw folder or a generic glob."""

    def __init__(
        self,
        root: str,
        layout: str = "auto",
        images_glob: str = "images/*.nii.gz",
        labels_dir: str = "labels",
        label_names: dict[str, str] | None = None,
        tissues: dict[str, str] | None = None,
        anatomy: str | None = None,
        fixed_label_map: dict[int, LabelInfo] | None = None,
        unlisted_labels: str = "error",
        **split: Any,
    ) -> None:
        super().__init__(**split)
        self.unlisted_labels = check_unlisted_policy(unlisted_labels)  # mask values the label map does not list: error or background
        self.root = check_root(root, "the folder with dataset.json or the images")
        self.layout = self._detect_layout(layout)
        self.images_glob = images_glob
        self.labels_dir = labels_dir
        self.anatomy = anatomy
        self._pairs: dict[str, tuple[Path, Path]] = {}
        self._test_cases: set[str] = set()
        json_path = self.root / "dataset.json"
        self._names_from = "label_names" if label_names or not json_path.is_file() else str(json_path)  # for messages
        if fixed_label_map is not None:
            self.label_map = dict(fixed_label_map)
        elif label_names:
            try:
                names = {int(k): v for k, v in label_names.items()}
            except ValueError:
                raise DataError("label_names: keys must be label ids, e.g. {\"1\" = \"femur\"}") from None
            self.label_map = label_map_from_names(names, tissues)
        elif json_path.is_file():
            self.label_map = label_map_from_names(names_from_dataset_json(read_dataset_json(json_path), json_path), tissues)
        else:
            raise DataError(f"{self.root}: no dataset.json; give label_names (id -> name) in the dataset params")

    def _detect_layout(self, layout: str) -> str:
        if layout != "auto":
            return layout
        return "nnunet" if (self.root / "imagesTr").is_dir() else "glob"

    def _file_ending(self) -> str:
        json_path = self.root / "dataset.json"
        if json_path.is_file():
            return str(read_dataset_json(json_path).get("file_ending", ".nii.gz"))
        return ".nii.gz"

    def _scan(self) -> dict[str, str | None]:
        taken: dict[str, Path] = {}  # subject id -> the image it came from; a second image with that id is an error
        if self.layout == "nnunet":
            ending = self._file_ending()
            for images, labels in (("imagesTr", "labelsTr"), ("imagesTs", "labelsTs")):
                for image in sorted((self.root / images).glob(f"*{CHANNEL_SUFFIX}{ending}")):
                    case = image.name[: -len(CHANNEL_SUFFIX + ending)]
                    label = self.root / labels / f"{case}{ending}"
                    if not label.is_file():
                        if images == "imagesTs":
                            continue  # held-out cases without published labels cannot be scored
                        raise DataError(f"{label}: label file for {image.name} is missing; restore it or remove the image")
                    self._pairs[claim_subject_id(taken, case, image)] = (image, label)
                    if images == "imagesTs":
                        self._test_cases.add(case)
        elif self.layout == "glob":
            for image in sorted(self.root.glob(self.images_glob)):
                label = self.root / self.labels_dir / image.name
                if not label.is_file():
                    raise DataError(f"{label}: label file for {image} is missing; name each label like its image")
                self._pairs[claim_subject_id(taken, image_stem(image), image)] = (image, label)
        else:
            raise DataError(f"layout '{self.layout}': use auto, nnunet or glob")
        return dict.fromkeys(self._pairs)

    def _official_splits(self) -> dict[str, str] | None:
        if self.layout != "nnunet" or not self._test_cases:
            return None
        return {case: "test" if case in self._test_cases else "train" for case in self._strata}

    def _read(self, subject_id: str) -> Subject:
        image_path, label_path = self._pairs[subject_id]
        image = read_volume(image_path)
        labels = read_volume(label_path)
        labels = with_unlisted_labels(labels, self.label_map, self.unlisted_labels, label_path, self._names_from)
        return build_subject(
            subject_id, image, labels, self.label_map, source_files=(str(image_path), str(label_path))
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.root})"


PARAMS = {
    "root": root_param("dataset.json + imagesTr/labelsTr, or the images and labels folders"),
    "layout": Param("str", default="auto", choices=["auto", "nnunet", "glob"], help="Folder layout; auto detects imagesTr."),
    "images_glob": Param("str", default="images/*.nii.gz", help="Glob of image files (glob layout)."),
    "labels_dir": Param("str", default="labels", help="Folder of label files named like the images (glob layout)."),
    "label_names": Param("dict", default={}, help="Label id -> name when there is no dataset.json."),
    "tissues": Param("dict", default={}, help="Label name -> tissue class, overriding the guess from the name."),
    "unlisted_labels": UNLISTED_LABELS_PARAM,
    "anatomy": Param("str", default="", help="Anatomy label for biomarker defaults (knee, spine, thigh, hip)."),
    **split_params("through_plane"),
}


def make_nifti_folder(**params: Any) -> NiftiFolder:
    params["anatomy"] = params.get("anatomy") or None
    return NiftiFolder(**params)

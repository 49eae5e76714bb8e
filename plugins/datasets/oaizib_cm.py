"""`oaizib_cm`: OAI-ZIB-CM knee MRI (3D DESS, sagittal), nnU-Net raw layout.

Published layout (Zenodo 14934086 / Hugging Face ``YongchengYAO/OAIZIB-CM``)::

    root/dataset.json
    root/imagesTr/oaizib_001_0000.nii.gz ... root/labelsTr/oaizib_001.nii.gz
    root/imagesTs/oaizib_XXX_0000.nii.gz ... root/labelsTs/oaizib_XXX.nii.gz

The label ids are fixed by the release (1 femur, 2 femoral cartilage,
3 tibia, 4 medial tibial cartilage, 5 lateral tibial cartilage); the tissue
classes are stated here rather than guessed.
"""

from __future__ import annotations

from typing import Any

from mskbench.types import LabelInfo, TissueClass
from mskbench_builtins.datasets.base import root_param, split_params
from mskbench_builtins.datasets.nifti_folder import NiftiFolder

LABEL_MAP = {
    1: LabelInfo(1, "femur", TissueClass.BONE),
    2: LabelInfo(2, "femoral_cartilage", TissueClass.CARTILAGE),
    3: LabelInfo(3, "tibia", TissueClass.BONE),
    4: LabelInfo(4, "medial_tibial_cartilage", TissueClass.CARTILAGE),
    5: LabelInfo(5, "lateral_tibial_cartilage", TissueClass.CARTILAGE),
}

PARAMS = {"root": root_param("dataset.json, imagesTr/labelsTr and imagesTs/labelsTs"), **split_params("sagittal")}


def make_oaizib_cm(root: str, **split: Any) -> NiftiFolder:
    return NiftiFolder(root, layout="nnunet", anatomy="knee", fixed_label_map=LABEL_MAP, **split)

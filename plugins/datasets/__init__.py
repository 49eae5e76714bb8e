"""Built-in dataset plugins: the phantom and readers of public MSK MRI releases.

Each module keeps its heavy imports (nibabel, pydicom, SimpleITK, h5py) inside
functions, so registering here costs only the module imports.
"""

from mskbench.hookspecs import hookimpl


@hookimpl
def mskbench_register_datasets(register):
    from mskbench_builtins.datasets import dicom, nifti_folder, oaizib_cm, phantom, skmtea, spider, totalseg_mr

    phantom.register_plugin(register)
    register(
        name="nifti_folder",
        factory=nifti_folder.make_nifti_folder,
        description="NIfTI image/label pairs: nnU-Net raw layout (dataset.json, imagesTr/labelsTr) or a glob.",
        params=nifti_folder.PARAMS,
    )
    register(
        name="dicom",
        factory=dicom.make_dicom,
        description="One DICOM series folder per subject with a mask file per subject.",
        params=dicom.PARAMS,
    )
    register(
        name="spider",
        factory=spider.make_spider,
        description="SPIDER lumbar spine MRI: vertebrae, discs and spinal canal (images/*.mha, masks/*.mha).",
        params=spider.PARAMS,
    )
    register(
        name="totalseg_mr",
        factory=totalseg_mr.make_totalseg_mr,
        description="TotalSegmentator MRI dataset (sXXXX/mri.nii.gz + segmentations/), total_mr label ids.",
        params=totalseg_mr.PARAMS,
    )
    register(
        name="oaizib_cm",
        factory=oaizib_cm.make_oaizib_cm,
        description="OAI-ZIB-CM knee DESS: femur, tibia, femoral and medial/lateral tibial cartilage.",
        params=oaizib_cm.PARAMS,
    )
    register(
        name="skmtea",
        factory=skmtea.make_skmtea,
        description="SKM-TEA knee qDESS (HDF5): cartilage compartments and menisci.",
        params=skmtea.PARAMS,
    )

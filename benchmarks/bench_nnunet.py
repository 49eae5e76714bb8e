"""The `nnunet` harness path against nnU-Net on the same files.

nnU-Net alone: the plans' reader (SimpleITKIO) reads each file and
``nnUNetPredictor.predict_single_npy_array`` segments it. Harness: the
``nifti_folder`` dataset loads the subject (RAS+), the model undoes the
reorientation, nnU-Net segments, the labels come back onto the RAS grid with
the dataset's ids. Both use the same tiny random 3d_fullres model
(tests/nnunet_tiny.py) on non-RAS anisotropic NIfTI files; the minimum of
alternated passes is compared. Target (issue): the harness adds < 10 %.

    python benchmarks/bench_nnunet.py [--subjects 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from nnunet_tiny import make_model_folder, phantom_arrays, quiet_stdout, reference_predictor, write_nifti  # noqa: E402

SHAPE = (96, 24, 80)  # file voxels: 0.8 x 3.0 x 0.9 mm
TARGET = 0.10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    import json

    from nnunetv2.imageio.simpleitk_reader_writer import SimpleITKIO

    from mskbench.protocols import VolumeInput
    from mskbench.segmenters.nnunet import NnUNetModel
    from mskbench_builtins.datasets.nifti_folder import NiftiFolder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = make_model_folder(root / "model", "3d_fullres")
        data = root / "data"
        (data / "imagesTr").mkdir(parents=True)
        (data / "labelsTr").mkdir()
        (data / "dataset.json").write_text(json.dumps({"channel_names": {"0": "MRI"}, "file_ending": ".nii.gz",
                                                       "labels": {"background": 0, "femur": 1, "tibia": 2}}))
        files = []
        for index in range(args.subjects):
            image, labels = phantom_arrays(SHAPE, seed=index)
            files.append(write_nifti(data / "imagesTr" / f"s{index}_0000.nii.gz", image))
            write_nifti(data / "labelsTr" / f"s{index}.nii.gz", labels)
        predictor = reference_predictor(folder, use_mirroring=False)
        model = NnUNetModel(str(folder), use_mirroring=False)
        dataset = NiftiFolder(str(data), slice_axis="through_plane")

        def nnunet_alone() -> None:
            for path in files:
                image, properties = SimpleITKIO().read_images([str(path)])
                with quiet_stdout():
                    predictor.predict_single_npy_array(image, {"spacing": properties["spacing"]})

        def harness() -> None:
            for subject_id in dataset.subject_ids():
                subject = dataset.load(subject_id)
                volume = VolumeInput(np.zeros(0, np.uint8), subject.spacing, 0, (1, 2), raw=subject.volume,
                                     stored_orientation=subject.stored_orientation,
                                     label_names={1: "femur", 2: "tibia"})
                model.predict(volume, [])

        read = [SimpleITKIO().read_images([str(path)]) for path in files]
        volumes = [VolumeInput(np.zeros(0, np.uint8), s.spacing, 0, (1, 2), raw=s.volume,
                               stored_orientation=s.stored_orientation, label_names={1: "femur", 2: "tibia"})
                   for s in map(dataset.load, dataset.subject_ids())]

        def nnunet_predict_only() -> None:
            for image, properties in read:
                with quiet_stdout():
                    predictor.predict_single_npy_array(image, {"spacing": properties["spacing"]})

        def harness_predict_only() -> None:
            for volume in volumes:
                model.predict(volume, [])

        times: dict[str, list[float]] = {"nnunet": [], "harness": [], "nnunet_predict": [], "harness_predict": []}
        for _ in range(args.repeats):
            for name, run in (("nnunet", nnunet_alone), ("harness", harness), ("nnunet_predict", nnunet_predict_only),
                              ("harness_predict", harness_predict_only)):
                began = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - began)
    alone, ours = min(times["nnunet"]), min(times["harness"])
    overhead = ours / alone - 1.0
    print(f"{args.subjects} subjects of {SHAPE} voxels, 3d_fullres tiny model, 1 torch thread, no mirroring")
    print(f"nnU-Net on files (reader + predict_single_npy_array): {alone:.3f} s")
    print(f"harness (dataset load + reorientation + predict + label map): {ours:.3f} s")
    print(f"harness adds {100 * overhead:+.1f} % (target < {100 * TARGET:.0f} %): {'met' if overhead < TARGET else 'NOT met'}"
          " (its dataset load also reads and checks the label file, which nnU-Net alone never reads)")
    alone, ours = min(times["nnunet_predict"]), min(times["harness_predict"])
    print(f"inputs already in memory: nnU-Net {alone:.3f} s, harness model call (reorientation + predict + label map) "
          f"{ours:.3f} s, adds {100 * (ours / alone - 1.0):+.1f} %")


if __name__ == "__main__":
    main()

"""`mskbench predict` throughput on CPU, and what writing NIfTI and DICOM SEG costs next to inference.

    python benchmarks/bench_predict.py [--repeats 3] [--imgsz 128]

Predicts the two real example studies of ../shared/data/real (the 117×91×20
MR NIfTI and the 512×512×20 CT DICOM series) with `otsu_box` prompted by the
`yolo` detector prompter. The detector has random weights at conf 0 (a box
for every label on every slice), which costs what a trained one costs; its
masks mean nothing. For each study it times inference (prompts, model,
post-processing: :func:`mskbench.predict.pipeline.predict_study`), the NIfTI
write, and for the CT the DICOM SEG write, and prints studies per minute
and each write as a fraction of inference. The detector file is built
before the clock starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
LABELS = [(19, "vertebrae"), (20, "intervertebral_discs")]


def _setup(weights: Path, imgsz: int):
    from mskbench.plugin_manager import get_registry
    from mskbench.predict.setup import from_options

    return from_options("otsu_box", {}, None, "yolo", {"weights": str(weights), "conf": 0.0, "imgsz": imgsz}, None,
                        {}, "axial", "spine", "cpu", get_registry())


def _time(call) -> tuple[float, object]:
    began = time.perf_counter()
    result = call()
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--imgsz", type=int, default=128, help="detector input size (the card's default is 128)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from tests.test_detector_suite import _detector

    from mskbench.predict.dicom_seg import write_dicom_seg
    from mskbench.predict.inputs import file_studies
    from mskbench.predict.outputs import write_nifti
    from mskbench.predict.pipeline import predict_study

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        setup = _setup(_detector(out / "mr-yolov8n-v1.pt", LABELS), args.imgsz)
        model = setup.build_model()
        studies = file_studies([REAL / "example_mr_sm.nii.gz", REAL / "example_ct_dicom"], None)
        print(f"otsu_box + yolo (random weights, conf 0, imgsz {args.imgsz}), CPU, median of {args.repeats}")
        print(f"{'study':<18}{'shape':>16}{'infer s':>10}{'nifti s':>10}{'seg s':>10}{'nifti/infer':>13}"
              f"{'seg/infer':>11}{'studies/min':>13}")
        for study in studies:
            rows = []
            for _ in range(args.repeats):
                infer, (labels, _prepared, _lost) = _time(lambda s=study: predict_study(setup, model, s))
                nifti, _ = _time(lambda: write_nifti(labels, study, 20, out / "mask.nii.gz"))
                seg = float("nan")
                if study.dicom is not None:
                    seg, _ = _time(lambda: write_dicom_seg(labels, study, setup.label_map, out / "seg.dcm", "bench", "0"))
                rows.append((infer, nifti, seg))
            infer, nifti, seg = (statistics.median(column) for column in zip(*rows))
            total = infer + nifti + (0.0 if seg != seg else seg)
            print(f"{study.id:<18}{str(study.volume.array.shape):>16}{infer:>10.2f}{nifti:>10.3f}{seg:>10.3f}"
                  f"{nifti / infer:>13.1%}{seg / infer:>11.1%}{60.0 / total:>13.1f}")


if __name__ == "__main__":
    main()

"""Train the small phantom nnU-Net shipped in ``models/`` with nnU-Net's own commands.

Why a script: the model folder in the repository must be reproducible from
nothing but this file and nnunetv2 (``pip install "mskbench[nnunet]"``). It

1. writes phantom subjects (seeds the default suite does not use) with the
   project's exporter and lays them out as an nnU-Net raw dataset;
2. runs ``nnUNetv2_extract_fingerprint`` and ``nnUNetv2_plan_experiment``;
3. derives the small ``nnUNetPlans_tiny`` 2d configuration from the plans
   nnU-Net made (:func:`tiny_plans`);
4. runs ``nnUNetv2_preprocess`` and ``nnUNetv2_train`` (CPU);
5. copies plans.json, dataset.json and fold_0/checkpoint_final.pth into
   ``--out`` with ``training.json`` recording the subjects, the command and the
   versions.

    python models/train_phantom_nnunet.py --anatomy knee --seed 100 --subjects 20 --trainer nnUNetTrainer_10epochs --work /tmp/nnunet_work/run2 --out models/phantom_nnunet_knee
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

from mskbench.phantom.export import write_phantom

PLANS = "nnUNetPlans"
TINY_PLANS = "nnUNetPlans_tiny"
CONFIGURATION = "2d"


def write_raw_dataset(anatomy: str, seed: int, subjects: int, raw_dir: Path) -> list[str]:
    """The phantom cohort as ``imagesTr``/``labelsTr`` with a dataset.json naming the phantom's labels."""
    exported = write_phantom(anatomy, subjects, seed, raw_dir / "phantom")
    (raw_dir / "imagesTr").mkdir(parents=True, exist_ok=True)
    (raw_dir / "labelsTr").mkdir(parents=True, exist_ok=True)
    ids = sorted(path.name.removesuffix("_image.nii.gz") for path in exported.glob("*_image.nii.gz"))
    for subject_id in ids:
        shutil.copy(exported / f"{subject_id}_image.nii.gz", raw_dir / "imagesTr" / f"{subject_id}_0000.nii.gz")
        shutil.copy(exported / f"{subject_id}_labels.nii.gz", raw_dir / "labelsTr" / f"{subject_id}.nii.gz")
    names = json.loads((exported / "labels.json").read_text())
    labels = {"background": 0, **{entry["name"]: int(label) for label, entry in names.items()}}
    dataset_json = {"channel_names": {"0": "MRI"}, "labels": labels, "numTraining": len(ids),
                    "file_ending": ".nii.gz", "name": f"phantom_{anatomy}_seed{seed}"}
    (raw_dir / "dataset.json").write_text(json.dumps(dataset_json, indent=2) + "\n")
    return ids


def tiny_plans(plans: dict, features: list[int], patch: list[int], batch_size: int, spacing: list[float]) -> dict:
    """nnU-Net's 2d plan made small enough to train on two CPU cores and ship under 10 MB.

    Fewer, narrower stages (``features``, one stage per entry), a coarser
    in-plane ``spacing`` and a smaller ``patch``; everything else (normalisation,
    transpose, kernel shapes, the network class) stays as nnU-Net planned it.
    """
    tiny = json.loads(json.dumps(plans))
    tiny["plans_name"] = TINY_PLANS
    config = tiny["configurations"][CONFIGURATION]
    tiny["configurations"] = {CONFIGURATION: config}
    stages = len(features)
    arch = config["architecture"]["arch_kwargs"]
    arch["n_stages"] = stages
    arch["features_per_stage"] = features
    for key in ("kernel_sizes", "strides", "n_conv_per_stage"):
        arch[key] = arch[key][:stages]
    arch["n_conv_per_stage_decoder"] = arch["n_conv_per_stage_decoder"][:stages - 1]
    config.update(patch_size=patch, batch_size=batch_size, spacing=spacing,
                  data_identifier=f"{TINY_PLANS}_{CONFIGURATION}")
    return tiny


def run(command: list[str], env: dict[str, str]) -> None:
    print("+", " ".join(command), flush=True)
    subprocess.run(command, env=env, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anatomy", default="knee")
    parser.add_argument("--seed", type=int, default=100, help="phantom seed; the default suite uses 0-3")
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--dataset-id", type=int, default=501)
    parser.add_argument("--trainer", default="nnUNetTrainer_10epochs")
    parser.add_argument("--features", type=int, nargs="+", default=[8, 16, 32, 64, 64])
    parser.add_argument("--patch", type=int, nargs=2, default=[128, 128])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--spacing", type=float, nargs=2, default=[0.8, 0.8], help="in-plane spacing (mm) the model works at")
    parser.add_argument("--work", type=Path, default=Path("/tmp/nnunet_work"), help="nnUNet_raw/preprocessed/results go here")
    parser.add_argument("--out", type=Path, required=True, help="the model folder to write (plans.json, dataset.json, fold_0/)")
    args = parser.parse_args()

    bindir = Path(sys.executable).parent
    dataset = f"Dataset{args.dataset_id:03d}_Phantom{args.anatomy.capitalize()}"
    env = {**os.environ, "nnUNet_raw": str(args.work / "raw"), "nnUNet_preprocessed": str(args.work / "preprocessed"),
           "nnUNet_results": str(args.work / "results"), "nnUNet_n_proc_DA": "1", "nnUNet_compile": "false",
           "OMP_NUM_THREADS": "2"}
    raw_dir = args.work / "raw" / dataset
    ids = write_raw_dataset(args.anatomy, args.seed, args.subjects, raw_dir)
    d = str(args.dataset_id)
    run([str(bindir / "nnUNetv2_extract_fingerprint"), "-d", d, "-np", "2"], env)
    run([str(bindir / "nnUNetv2_plan_experiment"), "-d", d], env)
    plans_dir = args.work / "preprocessed" / dataset
    plans = json.loads((plans_dir / f"{PLANS}.json").read_text())
    tiny = tiny_plans(plans, args.features, args.patch, args.batch_size, args.spacing)
    (plans_dir / f"{TINY_PLANS}.json").write_text(json.dumps(tiny, indent=2) + "\n")
    run([str(bindir / "nnUNetv2_preprocess"), "-d", d, "-plans_name", TINY_PLANS, "-c", CONFIGURATION, "-np", "2"], env)
    started = time.monotonic()
    run([str(bindir / "nnUNetv2_train"), d, CONFIGURATION, "0", "-tr", args.trainer, "-p", TINY_PLANS,
         "-device", "cpu"], env)
    minutes = (time.monotonic() - started) / 60

    trained = args.work / "results" / dataset / f"{args.trainer}__{TINY_PLANS}__{CONFIGURATION}"
    (args.out / "fold_0").mkdir(parents=True, exist_ok=True)
    for name in ("plans.json", "dataset.json", "fold_0/checkpoint_final.pth"):
        shutil.copy(trained / name, args.out / name)
    record = {"anatomy": args.anatomy, "phantom_seed": args.seed, "subjects": ids,
              "fold_0_validation": json.loads((args.work / "preprocessed" / dataset / "splits_final.json").read_text())[0]["val"],
              "command": " ".join(["python", "models/train_phantom_nnunet.py", *sys.argv[1:]]),
              "trainer": args.trainer, "plans": TINY_PLANS, "configuration": CONFIGURATION,
              "training_minutes": round(minutes, 1),
              "versions": {name: version(name) for name in ("nnunetv2", "torch", "mskbench")}}
    (args.out / "training.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()

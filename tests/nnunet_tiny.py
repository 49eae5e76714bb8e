"""A randomly initialised, tiny nnU-Net v2 model folder in nnU-Net's own format, and a NIfTI to run it on.

The network comes from nnU-Net's own plans -> configuration -> trainer
``build_network_architecture``; the checkpoint holds what
``nnUNetTrainer.save_checkpoint`` writes (numpy numbers in the training log
included), so the loader meets a file like a real one. Shared by
tests/test_segmenters_nnunet.py, the bad-input corpus and benchmarks/bench_nnunet.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import numpy as np

MODEL_LABELS = {"background": 0, "femur": 1, "tibia": 2}
#: a non-RAS voxel order (stored axes run P, S, L) with anisotropic spacing and an origin
FILE_AFFINE = np.array([[0.0, 0.0, -0.9, 40.0], [-0.8, 0.0, 0.0, 30.0], [0.0, 3.0, 0.0, -20.0], [0, 0, 0, 1.0]])
FILE_SHAPE = (18, 7, 14)


def _architecture(dim: int, features: list[int]) -> dict:
    conv = "torch.nn.modules.conv.Conv3d" if dim == 3 else "torch.nn.modules.conv.Conv2d"
    norm = f"torch.nn.modules.instancenorm.InstanceNorm{dim}d"
    stages = len(features)
    return {
        "network_class_name": "dynamic_network_architectures.architectures.unet.PlainConvUNet",
        "arch_kwargs": {
            "n_stages": stages, "features_per_stage": features, "conv_op": conv,
            "kernel_sizes": [[3] * dim] * stages, "strides": [[1] * dim] + [[2] * dim] * (stages - 1),
            "n_conv_per_stage": [1] * stages, "n_conv_per_stage_decoder": [1] * (stages - 1), "conv_bias": True,
            "norm_op": norm, "norm_op_kwargs": {"eps": 1e-05, "affine": True}, "dropout_op": None,
            "dropout_op_kwargs": None, "nonlin": "torch.nn.LeakyReLU", "nonlin_kwargs": {"inplace": True},
        },
        "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"],
    }


def _configuration(dim: int, patch: list[int], spacing: list[float]) -> dict:
    resample = {"order_z": 0, "force_separate_z": None}
    return {
        "data_identifier": f"nnUNetPlans_{dim}d", "preprocessor_name": "DefaultPreprocessor", "batch_size": 2,
        "patch_size": patch, "median_image_size_in_voxels": patch, "spacing": spacing,
        "normalization_schemes": ["ZScoreNormalization"], "use_mask_for_norm": [False],
        "resampling_fn_data": "resample_data_or_seg_to_shape",
        "resampling_fn_data_kwargs": {"is_seg": False, "order": 3, **resample},
        "resampling_fn_seg": "resample_data_or_seg_to_shape",
        "resampling_fn_seg_kwargs": {"is_seg": True, "order": 1, **resample},
        "resampling_fn_probabilities": "resample_data_or_seg_to_shape",
        "resampling_fn_probabilities_kwargs": {"is_seg": False, "order": 1, **resample},
        "architecture": _architecture(dim, [4, 8]), "batch_dice": False,
    }


def plans(reader: str = "SimpleITKIO") -> dict:
    """Plans with a tiny 2d and 3d_fullres; transpose_forward is not the identity, as for anisotropic data."""
    return {
        "dataset_name": "Dataset999_Tiny", "plans_name": "nnUNetPlans",
        "original_median_spacing_after_transp": [3.0, 0.8, 0.9], "original_median_shape_after_transp": [7, 18, 14],
        "image_reader_writer": reader, "transpose_forward": [1, 0, 2], "transpose_backward": [1, 0, 2],
        "configurations": {
            "2d": _configuration(2, [16, 16], [0.8, 0.9]),
            "3d_fullres": _configuration(3, [8, 16, 16], [2.5, 1.0, 1.0]),
        },
        "experiment_planner_used": "ExperimentPlanner", "label_manager": "LabelManager",
        "foreground_intensity_properties_per_channel": {"0": {
            "max": 400.0, "mean": 150.0, "median": 140.0, "min": 0.0, "percentile_00_5": 1.0,
            "percentile_99_5": 390.0, "std": 60.0}},
    }


def dataset_json(labels: dict[str, int] = MODEL_LABELS) -> dict:
    return {"channel_names": {"0": "MRI"}, "labels": labels, "numTraining": 1, "file_ending": ".nii.gz"}


def make_model_folder(root: Path, configuration: str, reader: str = "SimpleITKIO", seed: int = 0) -> Path:
    """``root/nnUNetTrainer__nnUNetPlans__<configuration>`` with fold_0/checkpoint_final.pth of random weights."""
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder = Path(root) / f"nnUNetTrainer__nnUNetPlans__{configuration}"
    (folder / "fold_0").mkdir(parents=True)
    plan, meta = plans(reader), dataset_json()
    (folder / "plans.json").write_text(json.dumps(plan, indent=2))
    (folder / "dataset.json").write_text(json.dumps(meta, indent=2))
    manager = PlansManager(plan)
    torch.manual_seed(seed)
    network = nnUNetTrainer.build_network_architecture(
        manager, manager.get_configuration(configuration), 1, len(MODEL_LABELS), enable_deep_supervision=True
    )
    with torch.no_grad():  # a strong output layer blind to the features' common offset, so argmax varies in space
        for layer in network.decoder.seg_layers:
            layer.weight.normal_(0.0, 2.0)
            layer.weight.sub_(layer.weight.mean(dim=1, keepdim=True))
    optimizer = torch.optim.SGD(network.parameters(), 0.01, momentum=0.99, nesterov=True)
    now = time.time()
    torch.save({
        "network_weights": network.state_dict(),
        "optimizer_state": optimizer.state_dict(),
        "grad_scaler_state": None,
        "logging": {"mean_fg_dice": [np.float64(0.5)], "ema_fg_dice": [np.float64(0.5)],
                    "dice_per_class_or_region": [[np.float64(0.4), np.float64(0.6)]],
                    "train_losses": [np.float64(-0.3)], "val_losses": [np.float32(-0.2)], "lrs": [0.01],
                    "epoch_start_timestamps": [now], "epoch_end_timestamps": [now + 1.0]},
        "_best_ema": np.float64(0.5),
        "current_epoch": 1,
        "init_args": {"plans": plan, "configuration": configuration, "fold": 0, "dataset_json": meta,
                      "device": torch.device("cpu")},
        "trainer_name": "nnUNetTrainer",
        "inference_allowed_mirroring_axes": (0, 1, 2) if configuration.startswith("3d") else (0, 1),
    }, folder / "fold_0" / "checkpoint_final.pth")
    return folder


def phantom_arrays(shape: tuple[int, int, int] = FILE_SHAPE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An image with structure along every axis and a two-label mask, in the file's voxel order."""
    rng = np.random.default_rng(seed)
    i, j, k = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape), indexing="ij")
    labels = np.zeros(shape, np.uint8)
    labels[(i + 0.3) ** 2 + j**2 + (k - 0.2) ** 2 < 0.3] = 1
    labels[(i - 0.4) ** 2 + (j + 0.3) ** 2 + k**2 < 0.15] = 2
    image = 100 + 80 * labels + 40 * i - 25 * k + 15 * j + rng.normal(0, 10, shape)
    return image.astype(np.int16), labels


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray = FILE_AFFINE) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(array, affine), str(path))
    return path


@contextlib.contextmanager
def quiet_stdout():
    """nnunetv2 prints on import and on a CPU predictor; keep test output readable."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def reference_predictor(folder: Path, use_mirroring: bool = True, tile_step_size: float = 0.5):
    """nnU-Net's own predictor from its own loader (the test wrote this checkpoint; nnU-Net unpickles it)."""
    import torch

    with quiet_stdout():
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor

        predictor = nnUNetPredictor(tile_step_size=tile_step_size, use_mirroring=use_mirroring,
                                    perform_everything_on_device=False, device=torch.device("cpu"), allow_tqdm=False)
        predictor.initialize_from_trained_model_folder(str(folder), (0,), "checkpoint_final.pth")
    return predictor


def reference_labels(predictor, image_path: Path, reader: str) -> np.ndarray:
    """nnU-Net's labels for the file, read by the plans' reader class, in the file's (i, j, k) voxel order."""
    from nnunetv2.imageio.reader_writer_registry import recursive_find_reader_writer_by_name

    image, properties = recursive_find_reader_writer_by_name(reader)().read_images([str(image_path)])
    with quiet_stdout():
        predicted = predictor.predict_single_npy_array(image, {"spacing": properties["spacing"]})
    return np.asarray(predicted).transpose(2, 1, 0)

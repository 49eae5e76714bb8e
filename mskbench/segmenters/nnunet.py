"""`nnunet`: a trained nnU-Net v2 model folder run by nnunetv2's own ``nnUNetPredictor``.

The predictor is built as ``initialize_from_trained_model_folder`` builds it
(plans -> configuration -> the trainer's ``build_network_architecture`` ->
``manual_initialization``) with one difference: that method reads each
checkpoint with ``torch.load(weights_only=False)``, which runs whatever code a
pickle names, so mskbench reads the checkpoints itself with
``weights_only=True`` (numpy numbers admitted, :func:`load_tensor_file`).

Each subject is handed to nnU-Net as its own reader would have read the
subject's file (:mod:`mskbench.segmenters.nnunet_geometry`) and the
prediction's label ids become the dataset's by name (:mod:`mskbench.segmenters.nnunet_folder`).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mskbench.errors import CheckpointError, PluginError
from mskbench.protocols import VolumeInput
from mskbench.segmenters.checkpoints import apply_state_dict, load_tensor_file, sha256_file
from mskbench.segmenters.nnunet_folder import ModelFolder, label_lookup, read_model_folder
from mskbench.segmenters.nnunet_geometry import from_reader_layout, reader_axes, to_reader_layout
from mskbench.types import Prompt

AUTOMATIC = frozenset({"none"})
_REMEDY = "use the checkpoint nnUNetv2_train wrote"


def read_trainer_checkpoint(path: Path, what: str = "nnU-Net checkpoint", remedy: str = _REMEDY) -> dict[str, Any]:
    """A checkpoint as nnU-Net's trainer saves it (nnInteractive's too): tensors and plain values only, with
    the entries inference needs (network_weights, init_args, trainer_name)."""
    import torch

    checkpoint = load_tensor_file(path, what=what, remedy=remedy, numpy_scalars=True)
    weights = checkpoint.get("network_weights") if isinstance(checkpoint, Mapping) else None
    init_args = checkpoint.get("init_args") if isinstance(checkpoint, Mapping) else None
    if (not isinstance(weights, Mapping) or not any(isinstance(v, torch.Tensor) for v in weights.values())
            or not isinstance(init_args, Mapping) or not isinstance(checkpoint.get("trainer_name"), str)):
        raise CheckpointError(f"{what} {path} lacks network_weights, init_args or trainer_name; {remedy}")
    return dict(checkpoint)


def _quiet_nnunet() -> contextlib.AbstractContextManager:
    """nnunetv2 prints to stdout on import (unset nnUNet_* paths) and when given a CPU; none of it is ours to show."""
    return contextlib.redirect_stdout(io.StringIO())


class NnUNetModel:
    """An automatic volume model: the whole subject in, nnU-Net's label volume on the subject's grid out."""

    supported_prompts = AUTOMATIC

    def __init__(self, model_folder: str, folds: Sequence[Any] | str = (0,), checkpoint_name: str = "checkpoint_final.pth",
                 configuration: str = "3d_fullres", use_mirroring: bool = True, tile_step_size: float = 0.5,
                 device: str = "cpu", checkpoint: str | None = None) -> None:
        import torch

        self.folder: ModelFolder = read_model_folder(model_folder, folds, checkpoint_name, configuration)
        self.device = torch.device(device)
        self.use_mirroring, self.tile_step_size = bool(use_mirroring), float(tile_step_size)
        with _quiet_nnunet():
            self.predictor = self._build_predictor()

    def _build_predictor(self) -> Any:
        from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
        from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
        from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
        from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

        folder = self.folder
        checkpoints = [read_trainer_checkpoint(path) for path in folder.checkpoints]
        first, first_path = checkpoints[0], folder.checkpoints[0]
        trained_as = first["init_args"].get("configuration")
        if trained_as != folder.configuration:
            raise PluginError(f"nnU-Net checkpoint {first_path} was trained as configuration '{trained_as}', "
                              f"not '{folder.configuration}'; set configuration = \"{trained_as}\"")
        plans_manager = PlansManager(folder.plans)
        configuration_manager = plans_manager.get_configuration(folder.configuration)
        try:  # nnunetv2's trainers, and the user's own nnUNet_extTrainer folders
            trainer_class = recursive_find_trainer_class_by_name(first["trainer_name"])
        except (RuntimeError, AssertionError):
            raise CheckpointError(f"nnU-Net checkpoint {first_path} names trainer '{first['trainer_name']}', which "
                                  "nnunetv2 does not have; install the nnunetv2 version that trained it or set "
                                  "nnUNet_extTrainer to the folder holding it") from None
        network = trainer_class.build_network_architecture(
            plans_manager, configuration_manager,
            determine_num_input_channels(plans_manager, configuration_manager, folder.dataset_json),
            plans_manager.get_label_manager(folder.dataset_json).num_segmentation_heads,
            enable_deep_supervision=False,
        )
        for path, checkpoint in zip(folder.checkpoints, checkpoints):
            apply_state_dict(network, checkpoint["network_weights"], path=path,
                             arch=f"{first['trainer_name']} {folder.configuration} network of {folder.path / 'plans.json'}")
        predictor = nnUNetPredictor(
            tile_step_size=self.tile_step_size, use_gaussian=True, use_mirroring=self.use_mirroring,
            perform_everything_on_device=self.device.type == "cuda", device=self.device, verbose=False,
            allow_tqdm=False,
        )
        predictor.manual_initialization(
            network, plans_manager, configuration_manager, [c["network_weights"] for c in checkpoints],
            folder.dataset_json, first["trainer_name"], first.get("inference_allowed_mirroring_axes"),
        )
        self.trainer_name = first["trainer_name"]
        return predictor

    def predict(self, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray:
        """nnU-Net's segmentation of ``volume.raw`` with its label ids replaced by the dataset's."""
        if volume.raw is None:
            raise PluginError("model 'nnunet' needs the subject's raw intensities (VolumeInput.raw); run it through the harness")
        lookup = label_lookup(self.folder.label_names, volume.label_names)
        axes = reader_axes(self.folder.reader, volume.stored_orientation)
        image, spacing = to_reader_layout(volume.raw, volume.spacing, axes)
        with _quiet_nnunet():
            predicted = self.predictor.predict_single_npy_array(image, {"spacing": spacing})
        table = np.zeros(max(self.folder.label_names, default=0) + 1, dtype=np.int32)
        for model_label, dataset_label in lookup.items():
            table[model_label] = dataset_label
        return table[from_reader_layout(predicted, axes)]

    def describe(self) -> dict[str, Any]:
        """Manifest entry: which folder, folds and weights ran, and how."""
        return {
            "architecture": f"nnU-Net v2 {self.trainer_name} ({self.folder.configuration})",
            "model_folder": str(self.folder.path),
            "checkpoint": [str(path) for path in self.folder.checkpoints],
            "checkpoint_sha256": [sha256_file(path) for path in self.folder.checkpoints],
            "image_reader_writer": self.folder.reader,
            "use_mirroring": self.use_mirroring,
            "tile_step_size": self.tile_step_size,
            "device": str(self.device),
            "supported_prompts": sorted(self.supported_prompts),
        }

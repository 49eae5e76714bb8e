"""`nninteractive`: nnInteractive's own inference session, driven as the CVPR 2025 challenge baseline drives it.

Loading. nnInteractive's ``initialize_from_trained_model_folder`` reads the
checkpoint with ``torch.load(weights_only=False)``, which runs whatever code
a pickle names. mskbench reads it itself with ``weights_only=True``
(:func:`load_tensor_file`), builds the network as nnInteractive's loader does
(the folder's capability file -> interaction channels; plans -> trainer
``build_network_architecture`` with two outputs) and hands the session the
result through ``initialize_from_loaded_artifacts``. The trainer is looked
up by name only in nnInteractive's and nnunetv2's trainer packages, and
plans.json was checked at plan time (:mod:`mskbench.segmenters.nninteractive_folder`).

Each call. As the challenge baseline (``cvpr2025_challenge_baseline``): per
label, the previous mask (when the suite's feedback passes it) as the
initial segmentation, otherwise a reset; then the box; then every click in
order; the prediction runs once, after the last. The image is the subject's
raw intensities in the file's own voxel order, as nnInteractive's README
reads it with SimpleITK (:mod:`mskbench.segmenters.nnunet_geometry`), and
every coordinate is mapped onto that array.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mskbench.biomarkers.geometry import in_plane_axes
from mskbench.errors import CheckpointError, PluginError
from mskbench.protocols import Refinement, VolumeInput
from mskbench.segmenters.checkpoints import apply_state_dict, sha256_file
from mskbench.segmenters.nninteractive_folder import InteractiveFolder, how_to_get, read_interactive_folder
from mskbench.segmenters.nnunet import read_trainer_checkpoint
from mskbench.segmenters.nnunet_geometry import from_reader_layout, reader_axes, to_reader_index, to_reader_layout
from mskbench.segmenters.one_shot import predict_by_refining
from mskbench.types import Prompt

VOLUME_PROMPTS = frozenset({"box3d", "point"})
#: nnInteractive's README hands the session the array SimpleITK reads: the file's voxel axes, reversed
READER = "SimpleITKIO"
BOX_MODES = ("auto", "3d", "key_slice")
_REMEDY = "use the checkpoint of the nnInteractive release"
#: nnInteractive always predicts object vs background
_OUTPUTS = 2

Box = list[list[int]]  # [[start, end), ...] per axis of the array the session holds


@contextlib.contextmanager
def _quiet_and_seeded() -> Iterator[None]:
    """nnInteractive prints progress on every call, and its refinement planner may draw from numpy's global
    generator; the draws are made reproducible (seed 0 per prediction) and the caller's generator is restored."""
    state = np.random.get_state()
    np.random.seed(0)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        np.random.set_state(state)


def _checkpoint(folder: InteractiveFolder) -> dict[str, Any]:
    """The checkpoint's tensors and plain values, with the entries the network needs."""
    path = folder.checkpoint
    checkpoint = read_trainer_checkpoint(path, what="nnInteractive checkpoint", remedy=_REMEDY)
    configuration = checkpoint["init_args"].get("configuration")
    if configuration not in folder.plans["configurations"]:
        raise CheckpointError(f"nnInteractive checkpoint {path} was trained as configuration {configuration!r}, which "
                              f"{folder.path / 'plans.json'} does not have; use the plans.json of its release")
    return dict(checkpoint)


def _trainer_class(name: str) -> Any:
    """The trainer class named in the checkpoint, found where nnInteractive's loader looks and nowhere else:
    nnInteractive's trainers, then nnunetv2's, else nnInteractive's stub (what its releases name)."""
    import os

    import nnInteractive.trainer
    import nnunetv2
    from nnInteractive.trainer.nnInteractiveTrainer import nnInteractiveTrainer_stub
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    found = recursive_find_python_class(nnInteractive.trainer.__path__[0], name, "nnInteractive.trainer")
    if found is None:
        found = recursive_find_python_class(os.path.join(nnunetv2.__path__[0], "training", "nnUNetTrainer"), name,
                                            "nnunetv2.training.nnUNetTrainer")
    return found or nnInteractiveTrainer_stub


def _artifacts(session: Any, folder: InteractiveFolder, device: Any) -> dict[str, Any]:
    """What ``initialize_from_loaded_artifacts`` takes, made without unpickling anything but tensors."""
    from nnInteractive.interaction.point import PointInteraction_stub
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    checkpoint = _checkpoint(folder)
    try:  # JSON only: point radius, interaction decay and the interaction channels the network was trained with
        capability, radius, thickness, decay, pad_mode = session._load_capability_and_runtime_defaults(str(folder.path))
        session._apply_capability(capability)
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"nnInteractive model folder {folder.path}: its capability file is not one this "
                              f"nnInteractive reads ({str(exc).splitlines()[0]}); {how_to_get()}") from None
    plans_manager = PlansManager(folder.plans)
    configuration_manager = plans_manager.get_configuration(checkpoint["init_args"]["configuration"])
    trainer_name = checkpoint["trainer_name"]
    network = _trainer_class(trainer_name).build_network_architecture(
        plans_manager, configuration_manager,
        determine_num_input_channels(plans_manager, configuration_manager, folder.dataset_json)
        + session.num_interaction_channels,
        _OUTPUTS, enable_deep_supervision=False,
    )
    apply_state_dict(network, checkpoint["network_weights"], path=folder.checkpoint,
                     arch=f"nnInteractive {trainer_name} network of {folder.path / 'plans.json'}")
    return {
        "capability_content": capability, "point_interaction": PointInteraction_stub(radius, True),
        "preferred_scribble_thickness": thickness, "interaction_decay": decay, "pad_mode_data": pad_mode,
        "network": network.to(device), "plans_manager": plans_manager, "configuration_manager": configuration_manager,
        "dataset_json": folder.dataset_json, "trainer_name": trainer_name,
        "label_manager": plans_manager.get_label_manager(folder.dataset_json),
        "license": session._load_license(str(folder.path), folder.plans, checkpoint),
    }


class NnInteractiveModel:
    """An interactive volume model: a box3d and 3D clicks in, nnInteractive's mask of one label out."""

    supported_prompts = VOLUME_PROMPTS
    feedback = frozenset({"mask"})

    def __init__(self, model_folder: str | None = None, fold: Any = None, checkpoint_name: str = "checkpoint_final.pth",
                 box: str = "auto", autozoom: bool = True, device: str = "cpu", checkpoint: str | None = None) -> None:
        import torch
        from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

        self.folder = read_interactive_folder(model_folder, fold, checkpoint_name)
        self.device, self.autozoom = torch.device(device), bool(autozoom)
        with _quiet_and_seeded():
            self.session = nnInteractiveInferenceSession(
                device=self.device, use_torch_compile=False, verbose=False, torch_n_threads=torch.get_num_threads(),
                do_autozoom=self.autozoom, enable_undo=False,
            )
            self.session.initialize_from_loaded_artifacts(_artifacts(self.session, self.folder, self.device))
            self.session.warmup()
        self.box_mode = self._box_mode(box)
        self._volume: VolumeInput | None = None

    def _box_mode(self, box: str) -> str:
        takes_3d = bool(self.session.supported_interactions.get("bbox3d"))
        if box == "3d" and not takes_3d:
            raise PluginError(f"the nnInteractive checkpoint in {self.folder.path} takes no 3D boxes (its capability "
                              "file says bbox3d is unsupported); set box = \"key_slice\" or \"auto\"")
        if box == "auto":
            return "3d" if takes_3d else "key_slice"
        return box

    def predict(self, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray:
        """Each label from all its prompts, as round 0 of :meth:`refine`."""
        return predict_by_refining(self, volume, prompts)

    def refine(self, volume: VolumeInput, prompts: Sequence[Prompt], previous: np.ndarray | None) -> Refinement:
        """One label: a fresh run of the session over the previous mask, the box and every click so far."""
        import torch

        for prompt in prompts:
            if prompt.kind not in VOLUME_PROMPTS:
                raise PluginError(f"nninteractive takes box3d and point prompts, got '{prompt.kind}'")
        axes = self._set_volume(volume)
        steps = self._interactions(prompts, volume.image.shape, volume.axis, axes)
        buffer = torch.zeros(self.session.original_image_shape[1:], dtype=torch.uint8)
        self.session.set_target_buffer(buffer)
        with _quiet_and_seeded():
            if previous is not None:
                seg = to_reader_layout(np.asarray(previous, dtype=bool), volume.spacing, axes)[0][0].astype(np.uint8)
                self.session.add_initial_seg_interaction(seg, run_prediction=False)
            else:
                self.session.reset_interactions()
            for i, (kind, where, positive) in enumerate(steps):
                add = self.session.add_bbox_interaction if kind == "box" else self.session.add_point_interaction
                add(where, include_interaction=positive, run_prediction=i == len(steps) - 1)
        return Refinement(from_reader_layout(buffer.numpy() > 0, axes))

    def _set_volume(self, volume: VolumeInput) -> tuple[str, ...]:
        """Hand the session this subject's image once; every label and round of it reuses the preprocessing."""
        if volume.raw is None:
            raise PluginError("model 'nninteractive' needs the subject's raw intensities (VolumeInput.raw); "
                              "run it through the harness")
        axes = reader_axes(READER, volume.stored_orientation)
        if self._volume is not volume:
            image, _ = to_reader_layout(volume.raw, volume.spacing, axes)
            with _quiet_and_seeded():
                self.session.set_image(image)
            self._volume = volume
        return axes

    def _interactions(self, prompts: Sequence[Prompt], shape: tuple[int, ...], axis: int,
                      axes: Sequence[str]) -> list[tuple[str, Any, bool]]:
        """(kind, coordinates on the session's array, positive) in the baseline's order: boxes, then clicks."""
        rows, cols = in_plane_axes(axis)
        boxes, clicks = [], []
        for prompt in prompts:
            if prompt.kind == "box3d":
                x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
                first, last = prompt.extent if self.box_mode == "3d" else (prompt.slice_index,) * 2
                low, high = [0, 0, 0], [0, 0, 0]  # inclusive corners on the RAS+ grid
                low[axis], low[rows], low[cols] = first, y0, x0
                high[axis], high[rows], high[cols] = last, y1, x1
                boxes.append(("box", self._box(low, high, shape, axes), True))
            for (x, y), label in zip(prompt.points, prompt.point_labels):
                voxel = [0, 0, 0]
                voxel[axis], voxel[rows], voxel[cols] = prompt.slice_index, int(round(y)), int(round(x))
                clicks.append(("point", to_reader_index(voxel, shape, axes), label == 1))
        return boxes + clicks

    @staticmethod
    def _box(low: Sequence[int], high: Sequence[int], shape: Sequence[int], axes: Sequence[str]) -> Box:
        """The inclusive RAS+ box as nnInteractive's half-open [[start, end), ...] on its array."""
        a, b = to_reader_index(low, shape, axes), to_reader_index(high, shape, axes)
        return [[min(s, e), max(s, e) + 1] for s, e in zip(a, b)]

    def describe(self) -> dict[str, Any]:
        """Manifest entry: which folder and weights ran, under which license, and how boxes were given."""
        return {
            "name": "nninteractive",
            "architecture": f"nnInteractive {self.session.trainer_name}",
            "model_folder": str(self.folder.path),
            "checkpoint": str(self.folder.checkpoint),
            "checkpoint_sha256": sha256_file(self.folder.checkpoint),
            "license": self.session.license,
            "box": self.box_mode,
            "autozoom": self.autozoom,
            "device": str(self.device),
            "supported_prompts": sorted(self.supported_prompts),
        }

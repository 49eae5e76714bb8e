"""A randomly initialised, tiny nnInteractive model folder in the release's format, and the session driven directly.

The plans are nnunet_tiny's with a 56³ patch: nnInteractive's refinement
planner keeps a 24-voxel margin inside every patch, so a patch under 49 voxels
cannot be planned. The capability file declares 3D boxes (as the CVPR 2025
checkpoint) unless told otherwise. The checkpoint names nnInteractive's stub
trainer, as the releases do. Shared by tests/test_segmenters_nninteractive.py
and the bad-input corpus.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

from nnunet_tiny import dataset_json, plans

PATCH = [56, 56, 56]
POINT_RADIUS = 2


def interactive_plans() -> dict:
    plan = plans()
    plan["configurations"]["3d_fullres"]["patch_size"] = PATCH
    return plan


def write_folder_files(folder: Path, bbox3d: bool = True) -> Path:
    """Every JSON file of the folder (no checkpoint): enough for the plan-time checks."""
    (folder / "fold_0").mkdir(parents=True)
    (folder / "plans.json").write_text(json.dumps(interactive_plans()))
    (folder / "dataset.json").write_text(json.dumps(dataset_json({"background": 0, "object": 1})))
    capability = {"inference_class": "nnInteractiveInferenceSession", "point_radius": POINT_RADIUS,
                  "supported_interactions": {"bbox3d": bbox3d}}
    (folder / "inference_info.json").write_text(json.dumps(capability))
    return folder


def make_model_folder(root: Path, bbox3d: bool = True, seed: int = 0) -> Path:
    """``root/nnInteractive_tiny`` with fold_0/checkpoint_final.pth of random weights."""
    import torch
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    folder = write_folder_files(Path(root) / "nnInteractive_tiny", bbox3d)
    plan = interactive_plans()
    manager = PlansManager(plan)
    torch.manual_seed(seed)
    channels = 1 + 7  # the image and nnInteractive's default seven interaction channels
    network = nnUNetTrainer.build_network_architecture(
        manager, manager.get_configuration("3d_fullres"), channels, 2, enable_deep_supervision=True
    )
    torch.save({
        "network_weights": network.state_dict(),
        "init_args": {"plans": plan, "configuration": "3d_fullres", "fold": 0},
        "trainer_name": "nnInteractiveTrainer_stub",
        "current_epoch": 1,
    }, folder / "fold_0" / "checkpoint_final.pth")
    return folder


def reference_session(folder: Path, autozoom: bool = False):
    """nnInteractive's own session from its own loader (the test wrote this checkpoint; nnInteractive unpickles it)."""
    import torch
    from nnInteractive.inference.inference_session import nnInteractiveInferenceSession

    with contextlib.redirect_stdout(io.StringIO()):
        session = nnInteractiveInferenceSession(device=torch.device("cpu"), torch_n_threads=1, do_autozoom=autozoom,
                                                enable_undo=False)
        session.initialize_from_trained_model_folder(str(folder), 0)
    return session

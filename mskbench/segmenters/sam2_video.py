"""SAM 2 / 2.1 as a volume model: ``SAM2VideoPredictor`` propagating each label's prompt through the slices.

The slices along the slicing axis are the video's frames, in slice order.
The model is built by ``sam2.build_sam.build_sam2_video_predictor`` from the
same packaged hydra configs (and default post-processing overrides) and the
same checkpoints as the ``sam2`` image plugin. Per object (a label, or one
``instance`` of it), exactly as upstream's video notebook drives it:

- every prompt of the object on a slice is one ``add_new_points_or_box`` call
  on that frame (``box3d``: its 2D box on its key slice ``slice_index``;
  ``box``, ``point``, ``box+point`` on the slice they lie on; the prompts of
  one slice are merged into one call: at most one box, the points in order),
  each a conditioning frame;
- ``propagate_in_video`` forward, then ``propagate_in_video(reverse=True)``,
  both from upstream's default start (the earliest conditioning frame);
- the mask of a slice is its logits ``> 0`` at the slice's own size
  (``video_res_masks``), as upstream thresholds them;
- ``reset_state`` after each object, so labels are independent.

With ``limit_to_reference_extent`` the two passes start at the earliest
conditioning frame and stop at the object's ``box3d`` ``extent``
(``start_frame_idx``, ``max_frame_num_to_track``), and slices outside it stay
empty. Inside the extent the forward pass is unchanged, but the backward pass
can differ from an unlimited run: upstream conditions it on the forward pass's
slices, which now end at the extent. The extent is the reference's own extent
along the slicing axis, i.e. ground truth beyond a 2D prompt, so such a model
declares :attr:`Sam2VideoModel.uses_reference_extent` and the harness flags
its rows ``reference_extent_used``.

Where two labels claim a voxel, the label with the higher logit gets it
(ties: the lower label), which is what upstream's
``_apply_non_overlapping_constraints`` decides; a label volume holds one label
per voxel, whereas the predictor itself leaves the masks overlapping.

Frames and state: see :func:`video_frames` and :func:`init_state_from_frames`.
"""

from __future__ import annotations

import importlib.util
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from sam2.build_sam import build_sam2_video_predictor
from sam2.sam2_video_predictor import SAM2VideoPredictor

from mskbench.data.preprocess import take_slice
from mskbench.errors import PluginError
from mskbench.protocols import VolumeInput
from mskbench.segmenters.prompt_batch import SAM_PROMPTS, check_prompts
from mskbench.segmenters.sam_catalog import sam2_checkpoint_key, sam2_config
from mskbench.segmenters.sam_family import Weights, load_weights, weights_manifest
from mskbench.segmenters.torch_utils import check_precision, effective_precision, inference_context, torch_device
from mskbench.types import Prompt

VIDEO_PROMPTS = SAM_PROMPTS | {"box3d"}
#: ``load_video_frames``' defaults, which ``init_state`` uses (ImageNet mean and std)
IMG_MEAN = (0.485, 0.456, 0.406)
IMG_STD = (0.229, 0.224, 0.225)
#: the one object id of a tracking session (each object has its own session, see module docstring)
OBJ_ID = 1


def video_frames(
    image: np.ndarray, axis: int, image_size: int, device: torch.device, offload_video_to_cpu: bool = False
) -> tuple[torch.Tensor, int, int]:
    """(frames, height, width): the slices along ``axis`` as ``init_state`` holds them in ``state["images"]``.

    The same steps as ``sam2.utils.misc.load_video_frames_from_jpg_images``
    with ``_load_img_as_tensor``, on the slice's pixels instead of a decoded
    JPEG: PIL ``convert("RGB")``, ``resize((image_size, image_size))`` with
    PIL's default resampling, ``/ 255.0`` in float64 stored as float32, then
    on the compute device ``-= mean`` and ``/= std`` (float32).
    """
    count = image.shape[axis]
    images = torch.zeros(count, 3, image_size, image_size, dtype=torch.float32)
    height = width = 0
    for k in range(count):
        pil = Image.fromarray(np.ascontiguousarray(take_slice(image, axis, k)))
        rgb = np.array(pil.convert("RGB").resize((image_size, image_size)))
        images[k] = torch.from_numpy(rgb / 255.0).permute(2, 0, 1)
        width, height = pil.size
    mean = torch.tensor(IMG_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMG_STD, dtype=torch.float32)[:, None, None]
    if not offload_video_to_cpu:
        images, mean, std = images.to(device), mean.to(device), std.to(device)
    images -= mean
    images /= std
    return images, height, width


@torch.inference_mode()
def init_state_from_frames(
    predictor: SAM2VideoPredictor, images: torch.Tensor, video_height: int, video_width: int,
    offload_video_to_cpu: bool = False, offload_state_to_cpu: bool = False,
) -> dict[str, Any]:
    """``predictor.init_state(video_path)``'s inference state, built on frames already in memory.

    Why not ``init_state`` itself: it reads frames only through
    ``load_video_frames``, i.e. from a folder of JPEG files or an MP4 file.
    Writing a subject's slices there would compress them lossily (the model
    would see other pixels than every slice model of the suite) and cost a
    disk round trip per subject. So the frames come from :func:`video_frames`
    (upstream's loader steps on the same pixels) and the state is built here
    with the same keys and the same warm-up (frame 0's features) as
    ``init_state``; the tests compare both with ``init_state`` on a JPEG folder
    of the same pixels, so a change of the installed sam2 shows up there.
    """
    compute_device = predictor.device
    state: dict[str, Any] = {
        "images": images,
        "num_frames": len(images),
        "offload_video_to_cpu": offload_video_to_cpu,
        "offload_state_to_cpu": offload_state_to_cpu,
        "video_height": video_height,
        "video_width": video_width,
        "device": compute_device,
        "storage_device": torch.device("cpu") if offload_state_to_cpu else compute_device,
        "point_inputs_per_obj": {},
        "mask_inputs_per_obj": {},
        "cached_features": {},
        "constants": {},
        "obj_id_to_idx": OrderedDict(),
        "obj_idx_to_id": OrderedDict(),
        "obj_ids": [],
        "output_dict_per_obj": {},
        "temp_output_dict_per_obj": {},
        "frames_tracked_per_obj": {},
    }
    predictor._get_image_feature(state, frame_idx=0, batch_size=1)
    return state


@dataclass(frozen=True)
class FrameInput:
    """One ``add_new_points_or_box`` call: the object's box and points on one frame, in slice pixels."""

    box: np.ndarray | None  # (4,) x_min, y_min, x_max, y_max
    points: np.ndarray | None  # (n, 2) x, y
    labels: np.ndarray | None  # (n,) 1 foreground, 0 background


@dataclass(frozen=True)
class Track:
    """One object: its conditioning frames, and the union of its ``box3d`` extents (None without one)."""

    label: int
    instance: int
    frames: dict[int, FrameInput]
    extent: tuple[int, int] | None


def tracks_from_prompts(prompts: Sequence[Prompt], shape: tuple[int, ...], axis: int) -> list[Track]:
    """The objects to track, by (label, instance), each prompt checked (one-line :class:`PluginError`)."""
    count = shape[axis]
    plane = tuple(int(n) for a, n in enumerate(shape) if a != axis)
    check_prompts(prompts, VIDEO_PROMPTS, plane, "sam2_video")
    grouped: dict[tuple[int, int], dict[int, list[Prompt]]] = {}
    for p in prompts:
        where = f"sam2_video: a {p.kind} prompt of label {p.label} (prompter '{p.prompter}')"
        if p.slice_index is None or not 0 <= p.slice_index < count:
            raise PluginError(
                f"{where} lies on slice {p.slice_index}; a volume prompt needs a slice_index in 0..{count - 1}"
            )
        if p.kind == "box3d" and (p.extent is None or not 0 <= p.extent[0] <= p.extent[1] < count):
            raise PluginError(f"{where} has extent {p.extent}; a box3d needs (first, last) slices in 0..{count - 1}")
        grouped.setdefault((p.label, p.instance), {}).setdefault(int(p.slice_index), []).append(p)
    tracks = []
    for (label, instance), by_slice in sorted(grouped.items()):
        frames = {}
        for k, own in sorted(by_slice.items()):
            boxes = [p.box for p in own if "box" in p.kind]
            if len(boxes) > 1:
                raise PluginError(
                    f"sam2_video: label {label} has {len(boxes)} boxes on slice {k}; a frame takes one box per object "
                    "(instance)"
                )
            points = [pt for p in own if "point" in p.kind for pt in p.points]
            labels = [v for p in own if "point" in p.kind for v in p.point_labels]
            frames[k] = FrameInput(
                None if not boxes else np.asarray(boxes[0], dtype=np.float32),
                np.asarray(points, dtype=np.float32) if points else None,
                np.asarray(labels, dtype=np.int32) if points else None,
            )
        extents = [p.extent for ps in by_slice.values() for p in ps if p.kind == "box3d"]
        extent = (min(e[0] for e in extents), max(e[1] for e in extents)) if extents else None
        tracks.append(Track(int(label), int(instance), frames, extent))
    return tracks


class Sam2VideoModel:
    """SAM 2 video propagation through a volume; see the module docstring."""

    supported_prompts = VIDEO_PROMPTS
    architecture = "sam2_video"
    preprocessing = (
        "sam2 video: slices along the slicing axis as frames; load_video_frames' steps (RGB, PIL resize to "
        "image_size², /255, ImageNet mean/std)"
    )

    def __init__(
        self, predictor: SAM2VideoPredictor, *, device: str, precision: str, variant: str,
        weights: Weights | None = None, limit_to_reference_extent: bool = False,
    ) -> None:
        self.device = torch_device(device)
        self.precision = effective_precision(self.device, precision, self.architecture)
        self.predictor = predictor.to(self.device).eval()
        self.variant = variant
        self.weights = weights or Weights()
        self.limit_to_reference_extent = bool(limit_to_reference_extent)

    @property
    def uses_reference_extent(self) -> bool:
        """Read by the harness: True makes it flag the rows of cells whose prompts carried an extent."""
        return self.limit_to_reference_extent

    @classmethod
    def from_checkpoint(
        cls, version: str, variant: str, precision: str, device: str, checkpoint: str | None,
        limit_to_reference_extent: bool = False,
    ) -> Sam2VideoModel:
        check_precision(device, precision, cls.architecture)
        config = sam2_config(version, variant)
        predictor = build_sam2_video_predictor(config, ckpt_path=None, device="cpu")
        weights = load_weights(predictor, sam2_checkpoint_key(version, variant), checkpoint, arch=config)
        return cls(
            predictor, device=device, precision=precision, variant=f"{version}/{variant}", weights=weights,
            limit_to_reference_extent=limit_to_reference_extent,
        )

    # -- the VolumeModel protocol -------------------------------------------------------------

    def predict(self, volume: VolumeInput, prompts: Sequence[Prompt]) -> np.ndarray:
        """The label volume: every object tracked on its own, a voxel to the label of highest logit > 0."""
        image, axis = volume.image, volume.axis
        if not (isinstance(image, np.ndarray) and image.ndim == 3 and image.dtype == np.uint8):
            raise PluginError(f"sam2_video takes a uint8 3D volume, got {getattr(image, 'dtype', type(image))} "
                              f"{getattr(image, 'shape', '')}")
        tracks = tracks_from_prompts(prompts, image.shape, axis)
        labels = np.zeros(image.shape, dtype=np.int32)
        if not tracks:
            return labels
        best = np.zeros(image.shape, dtype=np.float32)  # the threshold, then the highest logit so far
        with inference_context(self.device, self.precision):
            state = self.init_state(image, axis)
            for track in tracks:
                for k, logits in self.track(state, track).items():
                    won = logits > take_slice(best, axis, k)
                    take_slice(best, axis, k)[won] = logits[won]
                    take_slice(labels, axis, k)[won] = track.label
        return labels

    def init_state(self, image: np.ndarray, axis: int) -> dict[str, Any]:
        """The predictor's inference state for the slices of ``image`` along ``axis``."""
        frames, height, width = video_frames(image, axis, int(self.predictor.image_size), self.device)
        return init_state_from_frames(self.predictor, frames, height, width)

    def track(self, state: dict[str, Any], track: Track) -> dict[int, np.ndarray]:
        """float32 H×W logits of every slice the propagation reaches, for one object; the state is reset after."""
        predictor = self.predictor
        start = forward = backward = None
        limited = self.limit_to_reference_extent and track.extent is not None
        if limited:
            first, last = track.extent
            start = min(track.frames)
            forward, backward = max(last - start, 0), max(start - first, 0)
        out: dict[int, np.ndarray] = {}
        try:
            for k, given in sorted(track.frames.items()):
                predictor.add_new_points_or_box(
                    state, frame_idx=k, obj_id=OBJ_ID, points=given.points, labels=given.labels, box=given.box
                )
            for reverse, budget in ((False, forward), (True, backward)):
                for k, _, masks in predictor.propagate_in_video(
                    state, start_frame_idx=start, max_frame_num_to_track=budget, reverse=reverse
                ):
                    out[k] = masks[0, 0].float().cpu().numpy()
        finally:
            predictor.reset_state(state)
        if limited:
            out = {k: v for k, v in out.items() if first <= k <= last}
        return out

    def describe(self) -> dict[str, Any]:
        """Manifest entry: weights, precision, how frames are made, how far propagation goes, hole filling."""
        hole_filling = "sam2._C" if importlib.util.find_spec("sam2._C") is not None else "skipped (sam2._C not built)"
        return {
            **weights_manifest(self),
            "image_size": int(self.predictor.image_size),
            "propagation": "propagate_in_video forward, then reverse, from the earliest prompted slice",
            "limit_to_reference_extent": self.limit_to_reference_extent,
            "fill_hole_area": int(self.predictor.fill_hole_area),
            "hole_filling": hole_filling if self.predictor.fill_hole_area > 0 else "off",
            "supported_prompts": sorted(self.supported_prompts),
        }

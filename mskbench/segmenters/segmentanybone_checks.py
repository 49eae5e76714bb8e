"""Plan-time check of SegmentAnyBone's two released files: present, and holding exactly the expected tensors.

The networks are built on torch's ``meta`` device (names and shapes, no
memory, no compute) and compared with the files' state dicts, read with
``weights_only=True``; a file for another model is one line naming its first
missing and unexpected keys before any subject is loaded.
"""

from __future__ import annotations

import torch

from mskbench.segmenters.checkpoints import check_state_fits, expected_sha256, load_checkpoint_state, resolve_checkpoint
from mskbench.segmenters.sam_catalog import check_checkpoint
from mskbench.segmenters.segmentanybone import DEPTH_ARCH, DEPTH_KEY, NET_ARCH, NET_KEY, depth_network
from mskbench.segmenters.segmentanybone_net import RELEASED, SegmentAnyBoneNet


def _check_file(key: str, path: str | None, build, arch: str) -> None:
    check_checkpoint(key, path)
    resolved = resolve_checkpoint(key, path)
    state = load_checkpoint_state(resolved, expected_sha256(key, resolved))
    with torch.device("meta"):
        expected = build().state_dict()
    check_state_fits(expected, state, path=resolved, arch=arch)


def check_released_files(checkpoint: str | None, depth_checkpoint: str | None) -> None:
    _check_file(NET_KEY, checkpoint, lambda: SegmentAnyBoneNet(RELEASED), NET_ARCH)
    _check_file(DEPTH_KEY, depth_checkpoint, depth_network, DEPTH_ARCH)

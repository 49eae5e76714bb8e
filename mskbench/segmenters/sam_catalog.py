"""Names of the SAM-family variants, their checkpoint registry keys and configs, and the preflight check.

Kept free of torch imports: plugin registration and suite planning read it
without paying for torch, segment_anything or sam2.
"""

from __future__ import annotations

from mskbench.errors import CheckpointError
from mskbench.segmenters.checkpoints import checkpoint_status, resolve_checkpoint

SAM_VARIANTS: tuple[str, ...] = ("vit_b", "vit_l", "vit_h")
#: SAMRI's published checkpoints (all SAM ViT-B): box+point, box, and their zero-shot-enhanced versions.
SAMRI_VARIANTS: tuple[str, ...] = ("bp", "box", "bp_zero", "box_zero")
SAM2_VERSIONS: tuple[str, ...] = ("2.0", "2.1")
SAM2_VARIANTS: tuple[str, ...] = ("tiny", "small", "base_plus", "large")
MEDSAM_CHECKPOINT_KEY = "medsam_vit_b"
_SAM2_CONFIG_SUFFIX = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


def sam_checkpoint_key(variant: str) -> str:
    return f"sam_{variant}"


def samri_checkpoint_key(variant: str) -> str:
    return f"samri_vitb_{variant}"


def sam2_checkpoint_key(version: str, variant: str) -> str:
    return f"sam2_hiera_{variant}" if version == "2.0" else f"sam2.1_hiera_{variant}"


def sam2_config(version: str, variant: str) -> str:
    """The sam2 package's hydra config for a version and variant."""
    name = "sam2" if version == "2.0" else "sam2.1"
    return f"configs/{name}/{name}_hiera_{_SAM2_CONFIG_SUFFIX[variant]}.yaml"


def check_checkpoint(key: str, checkpoint: str | None) -> None:
    """Preflight: the file exists and, if it is the official file, has the official hash.

    Nothing is loaded; the error says which file, where to get it and where
    to put it (from the registry).
    """
    resolve_checkpoint(key, checkpoint)
    status, path = checkpoint_status(key, checkpoint)
    if status == "hash_mismatch":
        raise CheckpointError(
            f"checkpoint {path} does not have the official sha256 of '{key}'; it is truncated, corrupt "
            f"or a different file: delete it and download it again (`mskbench models fetch {key}`)"
        )

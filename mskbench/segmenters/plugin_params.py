"""Parameter schema pieces shared by the torch model plugins; light, so plugin modules import it eagerly."""

from __future__ import annotations

from mskbench.params import Param

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

PRECISION_PARAM = Param(
    "str",
    default="fp32",
    choices=PRECISIONS,
    help="numeric precision; bf16 and fp16 run on CUDA only (as torch.autocast), a CPU run needs fp32",
)

#: ``sam`` / ``sam2``: how the slice becomes the model's input and the output a mask (docs/models_sam_family.md).
INPUT_CONVENTION_PARAM = Param(
    "str", default="upstream", choices=("upstream", "medsam"),
    help="upstream: the model's own predictor; medsam: MedSAM's recipe (1024² cubic resize, [0,1], sigmoid > 0.5)",
)

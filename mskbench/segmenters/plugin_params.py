"""Parameter schema pieces shared by the torch model plugins; light, so plugin modules import it eagerly."""

from __future__ import annotations

from mskbench.params import Param

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")

PRECISION_PARAM = Param(
    "str",
    default="fp32",
    choices=PRECISIONS,
    help="numeric precision on CUDA, applied as torch.autocast; CPU always runs fp32",
)

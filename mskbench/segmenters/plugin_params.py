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

"""Built-in model plugins: the SAM family, nnU-Net, nnInteractive and the weight-free baselines.

Each module exposes ``register_plugin(register)``; heavy libraries (torch,
segment_anything, sam2, OpenCV) are imported inside the factories, so listing
plugins stays fast.
"""

from mskbench.hookspecs import hookimpl
from mskbench_builtins.models import (
    baselines, medsam, nninteractive, nnunet, sam, sam2, sam2_video, samri, segmentanybone,
)


@hookimpl
def mskbench_register_models(register):
    for module in (baselines, sam, medsam, sam2, sam2_video, samri, nnunet, nninteractive, segmentanybone):
        module.register_plugin(register)

"""Built-in model plugins: the SAM family, nnU-Net and the weight-free baselines.

Each module exposes ``register_plugin(register)``; heavy libraries (torch,
segment_anything, sam2, OpenCV) are imported inside the factories, so listing
plugins stays fast.
"""

from mskbench.hookspecs import hookimpl
from mskbench_builtins.models import baselines, medsam, nnunet, sam, sam2, samri, segmentanybone


@hookimpl
def mskbench_register_models(register):
    for module in (baselines, sam, medsam, sam2, samri, nnunet, segmentanybone):
        module.register_plugin(register)

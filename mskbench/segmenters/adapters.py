"""SegmentAnyBone-style MLP adapters on a SAM / SAM 2 image encoder, and loading checkpoints that carry them.

Each attention block of the encoder gets an :class:`~mskbench.segmenters.segmentanybone_encoder.Adapter`
bottleneck (dim -> ratio·dim -> dim, GELU; SegmentAnyBone's module, no skip
connection) beside its MLP: the block computes ``x + mlp(n) + 0.5 · adapter(n)``
with ``n = norm2(x)``, which is where and how SegmentAnyBone adds its MLP
adapter (``ADAPTER_SCALE``). The adapter is registered on the block as
``mlp_adapter`` and added by a forward hook on the block's ``mlp``, so the
base model's parameter names are unchanged and a checkpoint holds them plus
``...blocks.N.mlp_adapter.D_fc1/D_fc2`` entries.

`mskbench train` (``mode = "adapters"``) attaches them with the up-projection
zero-initialised, so training starts from the base model's exact outputs, and
trains only them. :func:`load_weights` in :mod:`.sam_family` calls
:func:`attach_adapters_for` before loading any checkpoint, so the existing
``sam``, ``medsam``, ``samri`` and ``sam2`` plugins load such a checkpoint with
``checkpoint = ...`` like any other (a checkpoint without adapter entries
attaches nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mskbench.segmenters.segmentanybone_encoder import ADAPTER_SCALE, Adapter

ADAPTER_NAME = "mlp_adapter"
_ADAPTER_KEY = re.compile(rf"^(?P<block>.+)\.{ADAPTER_NAME}\.D_fc1\.weight$")


def _add_adapter_output(mlp: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return output + ADAPTER_SCALE * mlp._mskbench_adapter(inputs[0])


def _attach(block: nn.Module, adapter: Adapter) -> None:
    block.add_module(ADAPTER_NAME, adapter)
    object.__setattr__(block.mlp, "_mskbench_adapter", adapter)  # not a submodule: its key stays under the block
    block.mlp.register_forward_hook(_add_adapter_output)


def encoder_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """{qualified name: block} of the image encoder's blocks that have ``norm2`` and ``mlp`` (SAM ViT, Hiera)."""
    return {
        name: module for name, module in model.named_modules()
        if name.startswith("image_encoder.") and hasattr(module, "norm2") and hasattr(module, "mlp")
        and isinstance(module.norm2, nn.LayerNorm)
    }


def attach_adapters(model: nn.Module, ratio: float) -> list[nn.Parameter]:
    """An adapter on every encoder block (up-projection zero: the model's outputs are unchanged); their params."""
    params: list[nn.Parameter] = []
    for block in encoder_blocks(model).values():
        dim = block.norm2.normalized_shape[0]
        adapter = Adapter(dim, skip_connect=False, ratio=ratio)
        nn.init.zeros_(adapter.D_fc2.weight)
        nn.init.zeros_(adapter.D_fc2.bias)
        adapter.to(next(block.parameters()).device)
        _attach(block, adapter)
        params.extend(adapter.parameters())
    return params


def attach_adapters_for(model: nn.Module, state: Mapping[str, Any]) -> None:
    """Attach the adapters a checkpoint's state dict has entries for (their widths from the weights)."""
    blocks = encoder_blocks(model)
    for key, weight in state.items():
        match = _ADAPTER_KEY.match(key)
        if match is None or match["block"] not in blocks:
            continue  # a key for no block is left for the state-dict check to report
        block = blocks[match["block"]]
        dim = block.norm2.normalized_shape[0]
        adapter = Adapter(dim, skip_connect=False, ratio=(weight.shape[0] + 0.5) / dim)  # int(dim * ratio) = width
        if adapter.D_fc1.weight.shape != weight.shape:
            continue
        _attach(block, adapter)

"""SegmentAnyBone's adapters on a SAM / SAM 2 model, and loading checkpoints that carry them.

Where and how, as SegmentAnyBone's fine-tuning code puts them (mazurowski-lab/
SegmentAnyBone ``cfg.py``, its ``transformer.py`` and the finetune-SAM ViT
``image_encoder.py`` it builds on; read, not copied):

- image encoder, blocks :data:`ENCODER_ADAPTER_BLOCKS` (upstream's
  ``encoder_adapter_depths``): ``Space_Adapter`` (with skip) on the attention
  output before the residual add, and ``MLP_Adapter`` (no skip) beside the MLP
  on the MLP's input, scaled by :data:`ADAPTER_SCALE`:
  ``x = x + Space_Adapter(attn(norm1(x)))``, ``x = x + mlp(n) + 0.5 · MLP_Adapter(n)``, ``n = norm2(x)``.
  They are registered on the block and run by forward hooks on its ``attn`` and
  ``mlp`` (the block classes are segment_anything's / sam2's), so base
  parameter names are unchanged.
- mask decoder, the first :data:`DECODER_ADAPTER_DEPTH` two-way transformer
  layers (``decoder_adapt_depth``): the layer becomes
  :class:`~mskbench.segmenters.segmentanybone_net.AdaptedTwoWayBlock` (the
  SegmentAnyBone port's block, holding the base layer's own parts).

Every adapter is SegmentAnyBone's :class:`Adapter` (dim → ratio·dim, GELU → dim)
with PyTorch's default ``nn.Linear`` initialisation, as upstream's, so the
adapted model does not equal the base model before training. Checkpoint keys
are upstream's: ``image_encoder.blocks.N.{Space,MLP}_Adapter.D_fc{1,2}.*`` (SAM 2:
``image_encoder.trunk.blocks.N...``) and ``mask_decoder.transformer.layers.N.{Adapter,MLP_Adapter}...``
(SAM 2: ``sam_mask_decoder...``).

`mskbench train` (``mode = "adapters"``) attaches them (:func:`attach_adapters`)
and trains only them (``"Adapter"`` in the name, upstream's finetune-SAM rule).
:func:`load_weights` in :mod:`.sam_family` calls :func:`attach_adapters_for`
before loading any checkpoint, so the ``sam``, ``medsam``, ``samri`` and
``sam2`` plugins load such a checkpoint with ``checkpoint = ...`` (a checkpoint
without adapter entries attaches nothing).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from mskbench.segmenters.segmentanybone_encoder import ADAPTER_SCALE, Adapter
from mskbench.segmenters.segmentanybone_net import AdaptedTwoWayBlock

#: upstream's ``encoder_adapter_depths`` (cfg.py): the image-encoder blocks that get adapters (those that exist)
ENCODER_ADAPTER_BLOCKS = (0, 1, 10, 11)
#: upstream's ``decoder_adapt_depth``: the first two-way transformer layers that get adapters
DECODER_ADAPTER_DEPTH = 2
#: the adapters' attribute names, upstream's (checkpoint keys); a parameter trains in ``adapters`` mode iff its
#: name has one of them as a component
SPACE, MLP, DECODER = "Space_Adapter", "MLP_Adapter", "Adapter"
ADAPTER_NAMES = frozenset({SPACE, MLP, DECODER})
_DECODER_TRANSFORMERS = ("mask_decoder.transformer", "sam_mask_decoder.transformer")  # SAM, SAM 2
_KEY = re.compile(rf"^(?P<owner>.+)\.(?P<kind>{SPACE}|{MLP}|{DECODER})\.D_fc1\.weight$")


def _space_output(attn: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return attn._mskbench_adapter(output)  # a skip adapter: output + bottleneck(output)


def _mlp_output(mlp: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return output + ADAPTER_SCALE * mlp._mskbench_adapter(inputs[0])


#: kind -> (the block's submodule the adapter hooks, its hook, whether the adapter has a skip connection)
_ENCODER_KINDS = {SPACE: ("attn", _space_output, True), MLP: ("mlp", _mlp_output, False)}


def encoder_blocks(model: nn.Module) -> dict[str, nn.Module]:
    """{qualified name: block} of the image encoder's attention blocks (SAM ViT ``blocks.N``, SAM 2 Hiera
    ``trunk.blocks.N``): those with ``attn``, ``mlp`` and a LayerNorm ``norm2``."""
    return {
        name: module for name, module in model.named_modules()
        if name.startswith("image_encoder.") and all(hasattr(module, a) for a in ("attn", "mlp", "norm2"))
        and isinstance(module.norm2, nn.LayerNorm)
    }


def decoder_layers(model: nn.Module) -> dict[str, nn.ModuleList]:
    """{qualified name: layers} of the mask decoder's two-way transformer (one entry, or none)."""
    modules = dict(model.named_modules())
    return {f"{name}.layers": modules[name].layers for name in _DECODER_TRANSFORMERS if name in modules}


def _attach_encoder(block: nn.Module, kind: str, ratio: float) -> Adapter:
    target, hook, skip = _ENCODER_KINDS[kind]
    adapter = Adapter(block.norm2.normalized_shape[0], skip_connect=skip, ratio=ratio)
    adapter.to(next(block.parameters()).device)
    block.add_module(kind, adapter)
    module = getattr(block, target)
    object.__setattr__(module, "_mskbench_adapter", adapter)  # not a submodule: its key stays under the block
    module.register_forward_hook(hook)
    return adapter


def _attach_decoder(layers: nn.ModuleList, index: int, ratio: float) -> AdaptedTwoWayBlock:
    """Layer ``index`` as an :class:`AdaptedTwoWayBlock` that holds the base layer's own modules."""
    base = layers[index]
    dim = base.norm1.normalized_shape[0]
    mlp_dim = next(m for m in base.mlp.modules() if isinstance(m, nn.Linear)).out_features
    adapted = AdaptedTwoWayBlock(dim, base.self_attn.num_heads, mlp_dim, base.skip_first_layer_pe, ratio=ratio)
    for name, child in base.named_children():
        setattr(adapted, name, child)
    layers[index] = adapted.to(next(base.parameters()).device)
    return adapted


def attach_adapters(model: nn.Module, ratio: float) -> list[nn.Parameter]:
    """SegmentAnyBone's adapters on ``model`` (module docstring: where), freshly initialised; their parameters."""
    adapters: list[nn.Module] = []
    for name, block in encoder_blocks(model).items():
        if int(name.rsplit(".", 1)[1]) in ENCODER_ADAPTER_BLOCKS:
            adapters += [_attach_encoder(block, SPACE, ratio), _attach_encoder(block, MLP, ratio)]
    for layers in decoder_layers(model).values():
        for i in range(min(DECODER_ADAPTER_DEPTH, len(layers))):
            layer = _attach_decoder(layers, i, ratio)
            adapters += [layer.Adapter, layer.MLP_Adapter]
    return [p for adapter in adapters for p in adapter.parameters()]


def _ratio(dim: int, width: int) -> float:
    return (width + 0.5) / dim  # int(dim * ratio) == width


def attach_adapters_for(model: nn.Module, state: Mapping[str, Any]) -> None:
    """Attach the adapters a checkpoint's state dict has entries for (their widths from the weights).

    A key for no block or layer of ``model`` is left for the state-dict check to report.
    """
    blocks = encoder_blocks(model)
    layer_lists = decoder_layers(model)
    for key, weight in state.items():
        match = _KEY.match(key)
        if match is None or getattr(weight, "ndim", None) != 2:
            continue  # a malformed entry attaches nothing: the state-dict check names it
        owner, kind = match["owner"], match["kind"]
        if kind in _ENCODER_KINDS and owner in blocks and not hasattr(blocks[owner], kind):
            _attach_encoder(blocks[owner], kind, _ratio(blocks[owner].norm2.normalized_shape[0], weight.shape[0]))
        elif kind == DECODER:
            parent, _, index = owner.rpartition(".")
            layers = layer_lists.get(parent)
            if layers is not None and index.isdigit() and int(index) < len(layers) \
                    and not isinstance(layers[int(index)], AdaptedTwoWayBlock):
                dim = layers[int(index)].norm1.normalized_shape[0]
                _attach_decoder(layers, int(index), _ratio(dim, weight.shape[0]))

"""The SegmentAnyBone network: adapted TinyViT encoder, SAM prompt encoder, adapted mask decoder, depth-attention gate.

Written from a reading of mazurowski-lab/SegmentAnyBone: ``demo.ipynb`` (the
released model is ``sam_model_registry["vit_t"](args, num_classes=2)`` with
``if_encoder_adapter``, ``if_mask_decoder_adapter`` and ``decoder_adapt_depth
= 2``, then ``sam.attention_fusion = attention_fusion()``, loaded strictly from
``bone_sam.pth``), ``models/sam/modeling/prompt_encoder.py``
(``attention_fusion``), ``models/sam/modeling/.ipynb_checkpoints/transformer-checkpoint.py``
(``TwoWayAttentionBlock`` with ``Adapter`` / ``MLP_Adapter``) and
finetune-SAM's ``mask_decoder-checkpoint.py`` (its ``MaskDecoder`` is SAM's).
The prompt encoder, mask decoder and two-way transformer are
segment_anything's own classes; only the adapted decoder block and the gate
are ours, with upstream's attribute names (the checkpoint's keys).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from segment_anything.modeling import MaskDecoder, PromptEncoder, TwoWayTransformer
from segment_anything.modeling.transformer import TwoWayAttentionBlock
from torch import nn

from mskbench.segmenters.segmentanybone_encoder import (
    ADAPTER_SCALE,
    MOBILE_SAM_ENCODER,
    Adapter,
    EncoderConfig,
    TinyViTEncoder,
)

#: upstream's decoder predicts 2 + 1 mask tokens; with multimask output the bone mask is channel 1
BONE_CHANNEL = 1


@dataclass(frozen=True)
class NetConfig:
    """Sizes of the whole network; :data:`RELEASED` is ``bone_sam.pth``'s."""

    encoder: EncoderConfig = field(default_factory=lambda: MOBILE_SAM_ENCODER)
    prompt_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_heads: int = 8
    decoder_adapter_depth: int = 2
    num_multimask_outputs: int = 2
    iou_head_hidden_dim: int = 256
    fusion_dim: int = 256


RELEASED = NetConfig()


class AdaptedTwoWayBlock(TwoWayAttentionBlock):
    """SAM's two-way block with SegmentAnyBone's adapters.

    One skip ``Adapter`` is applied twice (to the queries after their cross
    attention and to the keys after theirs); ``MLP_Adapter`` is added, scaled,
    beside the MLP. ``mskbench train``'s ``adapters`` mode puts this block into
    SAM / SAM 2 decoders too (:mod:`.adapters`), with the base block's parts.
    """

    def __init__(self, embedding_dim: int, num_heads: int, mlp_dim: int, skip_first_layer_pe: bool,
                 ratio: float = 0.25) -> None:
        super().__init__(embedding_dim, num_heads, mlp_dim, skip_first_layer_pe=skip_first_layer_pe)
        self.MLP_Adapter = Adapter(embedding_dim, skip_connect=False, ratio=ratio)
        self.Adapter = Adapter(embedding_dim, ratio=ratio)

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_layer_pe:
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(self.Adapter(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys)))
        queries = self.norm3(queries + self.mlp(queries) + ADAPTER_SCALE * self.MLP_Adapter(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(self.Adapter(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries)))
        return queries, keys


class AttentionFusion(nn.Module):
    """The depth-attention gate: ``(1 - gate) * emb + gate * fuse_emb(emb * attention)``.

    ``attention`` is a (N, H, W) map on the embedding's grid; ``gate`` is a
    learned scalar (zero at initialisation, i.e. no effect).
    """

    def __init__(self, dim: int = 256, hidden: int = 256) -> None:
        super().__init__()
        self.fuse_emb = nn.Sequential(
            nn.Conv2d(dim, hidden, 3, 1, 1), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, dim, 3, 1, 1), nn.BatchNorm2d(dim),
        )
        self.gate = nn.Parameter(torch.zeros(1))

    def forward(self, embedding: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        fused = self.fuse_emb(embedding * attention[:, None])
        return (1 - self.gate) * embedding + self.gate * fused


def _transformer(config: NetConfig) -> TwoWayTransformer:
    transformer = TwoWayTransformer(
        depth=config.decoder_depth, embedding_dim=config.prompt_dim, num_heads=config.decoder_heads,
        mlp_dim=config.decoder_mlp_dim,
    )
    for i in range(min(config.decoder_adapter_depth, config.decoder_depth)):
        transformer.layers[i] = AdaptedTwoWayBlock(
            config.prompt_dim, config.decoder_heads, config.decoder_mlp_dim, skip_first_layer_pe=i == 0
        )
    return transformer


class SegmentAnyBoneNet(nn.Module):
    """The four parts under upstream's attribute names; :meth:`forward` is one slice's logits."""

    def __init__(self, config: NetConfig = RELEASED) -> None:
        super().__init__()
        self.image_encoder = TinyViTEncoder(config.encoder)
        grid = config.encoder.img_size // 16
        self.prompt_encoder = PromptEncoder(
            embed_dim=config.prompt_dim, image_embedding_size=(grid, grid),
            input_image_size=(config.encoder.img_size, config.encoder.img_size), mask_in_chans=config.mask_in_chans,
        )
        self.mask_decoder = MaskDecoder(
            num_multimask_outputs=config.num_multimask_outputs, transformer=_transformer(config),
            transformer_dim=config.prompt_dim, iou_head_depth=3, iou_head_hidden_dim=config.iou_head_hidden_dim,
        )
        self.attention_fusion = AttentionFusion(config.prompt_dim, config.fusion_dim)

    def decode(self, embedding: torch.Tensor, attention: torch.Tensor | None,
               points: tuple[torch.Tensor, torch.Tensor] | None = None, boxes: torch.Tensor | None = None) -> torch.Tensor:
        """Low-resolution bone logits (N, 256, 256) of one embedding, as upstream's
        ``evaluate_1_volume_withattention``: gate, then the decoder's multimask channel 1."""
        if attention is not None:
            embedding = self.attention_fusion(embedding, attention)
        sparse, dense = self.prompt_encoder(points=points, boxes=boxes, masks=None)
        logits, _ = self.mask_decoder(
            image_embeddings=embedding, image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=True,
        )
        return logits[:, BONE_CHANNEL]

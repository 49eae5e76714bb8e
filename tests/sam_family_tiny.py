"""Small randomly initialised SAM / SAM 2 models built from the upstream building blocks, for fast tests.

Full-size image encoders take ~30 s per slice on CPU; these keep the upstream
architecture (1024 input, 64x64 embedding, same prompt encoder, mask decoder
and predictors) with a tiny encoder and narrow decoder. Zero-initialised
parameters (positional embeddings, SAM 2's no-memory embedding) get random
values so every part of the model influences the output, and the mask heads'
last layer is scaled so logits are O(1), as with trained weights.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

from mskbench.types import Prompt

SAM_DIM = 32


def _randomise(model: torch.nn.Module, seed: int, head_gain: float) -> None:
    """Random values for the zero-initialised parameters; the mask heads' last layer times ``head_gain``."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not param.any():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.1)
            if "output_hypernetworks_mlps" in name and ".layers.2." in name:
                param.mul_(head_gain)


def phantom(height: int, width: int, seed: int) -> np.ndarray:
    """A uint8 slice with a gradient background, three bright ellipses and noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = 40 + 60 * xx / width
    for _ in range(3):
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.1, 0.3) * height, rng.uniform(0.1, 0.3) * width
        image[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1] = rng.uniform(120, 250)
    image += rng.normal(0, 8, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def tiny_sam(seed: int = 0) -> Sam:
    """SAM with a 2-block, 32-wide windowed-attention ViT at SAM's 1024 input (global blocks: the slow test)."""
    torch.manual_seed(seed)
    model = Sam(
        image_encoder=ImageEncoderViT(
            img_size=1024,
            patch_size=16,
            embed_dim=SAM_DIM,
            depth=2,
            num_heads=2,
            mlp_ratio=2,
            out_chans=SAM_DIM,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=14,
            global_attn_indexes=(),
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=SAM_DIM, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=4
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=SAM_DIM, mlp_dim=64, num_heads=2),
            transformer_dim=SAM_DIM,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
    )
    _randomise(model, seed, head_gain=20.0)
    return model.eval()


#: hydra overrides shrinking a packaged SAM 2 config: 5-block, 8-wide Hiera, 32-wide neck and heads.
TINY_SAM2_OVERRIDES = [
    "++model.image_encoder.trunk.embed_dim=8",
    "++model.image_encoder.trunk.stages=[1,2,1,1]",
    "++model.image_encoder.trunk.global_att_blocks=[2]",
    "++model.image_encoder.neck.backbone_channel_list=[64,32,16,8]",
    "++model.image_encoder.neck.d_model=32",
    "++model.memory_attention.d_model=32",
    "++model.memory_attention.num_layers=1",
    "++model.memory_attention.layer.d_model=32",
    "++model.memory_attention.layer.dim_feedforward=32",
    "++model.memory_attention.layer.self_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.embedding_dim=32",
    "++model.memory_attention.layer.cross_attention.kv_in_dim=32",
    "++model.memory_encoder.out_dim=32",
    "++model.memory_encoder.fuser.layer.dim=32",
]


def tiny_sam2(seed: int = 0, config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"):
    """A packaged SAM 2 config composed with :data:`TINY_SAM2_OVERRIDES` by ``build_sam2`` itself."""
    from sam2.build_sam import build_sam2

    torch.manual_seed(seed)
    model = build_sam2(config, ckpt_path=None, device="cpu", hydra_overrides_extra=TINY_SAM2_OVERRIDES)
    _randomise(model, seed, head_gain=20.0)
    return model.eval()


#: what the video predictor needs on top of :data:`TINY_SAM2_OVERRIDES` (the memory encoder and the positional
#: encodings the image predictor never runs, at the tiny widths) and a 256 input: at 1024 a frame costs ~2 s on CPU.
TINY_SAM2_VIDEO_OVERRIDES = [
    *TINY_SAM2_OVERRIDES,
    "++model.image_encoder.neck.position_encoding.num_pos_feats=32",
    "++model.memory_encoder.in_dim=32",
    "++model.memory_encoder.mask_downsampler.embed_dim=32",
    "++model.memory_encoder.position_encoding.num_pos_feats=32",
    "++model.image_size=256",
    "++model.memory_attention.layer.self_attention.feat_sizes=[16,16]",
    "++model.memory_attention.layer.cross_attention.feat_sizes=[16,16]",
]


def tiny_sam2_video(seed: int = 0, config: str = "configs/sam2.1/sam2.1_hiera_t.yaml"):
    """A SAM2VideoPredictor from a packaged config by ``build_sam2_video_predictor`` itself, shrunk as above.

    Random weights put the object score near 0 with either sign, and a negative one blanks every frame
    (upstream's "object absent"); its head's last bias is raised by 1 so the object is present, as a
    prompted object is for trained weights.
    """
    from sam2.build_sam import build_sam2_video_predictor

    torch.manual_seed(seed)
    model = build_sam2_video_predictor(
        config, ckpt_path=None, device="cpu", hydra_overrides_extra=TINY_SAM2_VIDEO_OVERRIDES
    )
    _randomise(model, seed, head_gain=20.0)
    with torch.no_grad():
        model.sam_mask_decoder.pred_obj_score_head.layers[-1].bias.add_(1.0)
    return model.eval()


def assert_same_decision(scores: np.ndarray, reference: np.ndarray, threshold: float, atol: float = 1e-5) -> None:
    """Score maps within ``atol`` of upstream's; thresholded masks identical wherever upstream's
    score is farther than ``atol`` from the threshold (closer pixels are float noise either way,
    and must be a negligible share for the comparison to mean anything)."""
    np.testing.assert_allclose(scores, reference, rtol=0, atol=atol)
    decided = np.abs(reference - threshold) > atol
    assert decided.mean() > 0.9999
    np.testing.assert_array_equal((scores > threshold)[decided], (reference > threshold)[decided])


def prompt(kind: str, label: int = 1, box=None, points=(), point_labels=(), prompter: str = "p") -> Prompt:
    return Prompt(
        kind=kind,
        label=label,
        prompter=prompter,
        seed=0,
        box=None if box is None else tuple(float(v) for v in box),
        points=tuple((float(x), float(y)) for x, y in points),
        point_labels=tuple(point_labels),
    )


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    """One intra-op thread: these tiny models gain nothing from more, and on a shared
    machine torch's spinning worker threads make them 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

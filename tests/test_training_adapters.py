"""`adapters` mode: SegmentAnyBone's adapters where upstream puts them, what trains, checkpoints that reload.

References: upstream's block forwards (finetune-SAM ``image_encoder.py`` ``Block``, SegmentAnyBone
``transformer.py`` ``TwoWayAttentionBlock``), transcribed below as the formulas the adapted blocks must
compute; the model object the trainer trained, for the reloaded checkpoint; the base model, for the
adapters' additive placement.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam_family_tiny import phantom, prompt, single_torch_thread, tiny_sam  # noqa: F401  (autouse fixture)
from training_fixtures import recipe, tiny_vit_b  # noqa: F401  (fixture)

#: the adapters attach_adapters puts on the 2-block tiny SAM (its 2 decoder layers both get theirs)
TINY_SAM_ADAPTERS = [
    "image_encoder.blocks.0.MLP_Adapter", "image_encoder.blocks.0.Space_Adapter",
    "image_encoder.blocks.1.MLP_Adapter", "image_encoder.blocks.1.Space_Adapter",
    "mask_decoder.transformer.layers.0.Adapter", "mask_decoder.transformer.layers.0.MLP_Adapter",
    "mask_decoder.transformer.layers.1.Adapter", "mask_decoder.transformer.layers.1.MLP_Adapter",
]


def adapter_names(state) -> list[str]:
    return sorted({n.rsplit(".D_fc", 1)[0] for n in state if ".D_fc" in n})


def bottleneck(dim: int, width: int) -> int:
    """Parameters of one Adapter: dim -> width -> dim, with biases."""
    return dim * width + width + width * dim + dim


def bottleneck_out(adapter, x):
    """Upstream's Adapter without its skip connection: D_fc2(GELU(D_fc1(x)))."""
    return adapter.D_fc2(torch.nn.functional.gelu(adapter.D_fc1(x)))


def with_skip(adapter, x):
    """Upstream's Adapter with its skip connection: x + D_fc2(GELU(D_fc1(x)))."""
    return x + bottleneck_out(adapter, x)


def scores(segmenter, image) -> np.ndarray:
    click = prompt("box", box=(30, 20, 110, 90))
    return segmenter.decode_scores(segmenter.encode([image])[0], [click])[0]


def test_vit_b_adapter_count_is_the_documented_one():
    """SAM ViT-B as segment_anything builds it: 4 encoder blocks x 2 adapters at 768, 2 decoder layers x 2 at 256."""
    from segment_anything import sam_model_registry

    from mskbench.segmenters.adapters import attach_adapters
    from mskbench.training.base import trainable_parameters

    model = sam_model_registry["vit_b"]()
    attach_adapters(model, 0.25)
    trained = dict((n, p) for n, p in model.named_parameters() if p in set(trainable_parameters(model, "adapters")))
    encoder = sum(p.numel() for n, p in trained.items() if n.startswith("image_encoder."))
    decoder = sum(p.numel() for n, p in trained.items() if n.startswith("mask_decoder."))
    assert encoder == 4 * 2 * bottleneck(768, 192) == 2_366_976
    assert decoder == 2 * 2 * bottleneck(256, 64) == 132_352
    assert encoder + decoder == sum(p.numel() for p in trained.values()) == 2_499_328  # docs/training.md


def test_reduced_sam_gets_adapters_on_its_one_block_and_both_decoder_layers():
    from mskbench.segmenters.adapters import attach_adapters
    from mskbench.segmenters.architecture import reduced_sam
    from mskbench.training.base import trainable_parameters

    model = reduced_sam()
    params = attach_adapters(model, 0.25)
    assert adapter_names(dict(model.named_parameters())) == [
        "image_encoder.blocks.0.MLP_Adapter", "image_encoder.blocks.0.Space_Adapter",
        *TINY_SAM_ADAPTERS[4:],
    ]
    trained = trainable_parameters(model, "adapters")
    assert {id(p) for p in trained} == {id(p) for p in params}
    assert sum(p.numel() for p in trained) == 2 * bottleneck(64, 16) + 4 * bottleneck(256, 64) == 136_608
    assert all(not p.requires_grad for n, p in model.named_parameters() if "Adapter" not in n)
    # upstream's nn.Linear default initialisation, not zero: the adapted model starts away from the base
    assert all(p.abs().min() > 0 for n, p in model.named_parameters() if n.endswith("D_fc2.weight"))


def test_an_adapted_encoder_block_computes_upstreams_block():
    """finetune-SAM's Block.forward with adapters, transcribed, on a windowed (padded) block of the tiny SAM."""
    from segment_anything.modeling.image_encoder import window_partition, window_unpartition

    from mskbench.segmenters.adapters import attach_adapters

    model = tiny_sam(seed=1)
    attach_adapters(model, 0.25)
    block = model.image_encoder.blocks[0]
    attn, mlp = (lambda t: type(block.attn).forward(block.attn, t)), (lambda t: type(block.mlp).forward(block.mlp, t))
    x = torch.randn(1, 20, 24, 32)  # not a multiple of the 14-token window: the padded path
    with torch.no_grad():  # attn and mlp called without hooks: the base block's own parts
        windows, pad = window_partition(block.norm1(x), block.window_size)
        attended = window_unpartition(with_skip(block.Space_Adapter, attn(windows)), block.window_size, pad, (20, 24))
        y = x + attended
        n = block.norm2(y)
        expected = y + mlp(n) + 0.5 * bottleneck_out(block.MLP_Adapter, n)
        torch.testing.assert_close(block(x), expected, rtol=0, atol=1e-6)


def test_an_adapted_decoder_layer_computes_segmentanybones_layer():
    """SegmentAnyBone's TwoWayAttentionBlock.forward with adapters, transcribed (the shared Adapter runs twice)."""
    from mskbench.segmenters.adapters import attach_adapters

    model = tiny_sam(seed=1)
    attach_adapters(model, 0.25)
    layer = model.mask_decoder.transformer.layers[1]  # positional encodings added to the self-attention
    queries, keys, query_pe, key_pe = (torch.randn(1, n, 32) for n in (5, 48, 5, 48))
    with torch.no_grad():
        q = queries + query_pe
        expect_q = layer.norm1(queries + layer.self_attn(q=q, k=q, v=queries))
        q, k = expect_q + query_pe, keys + key_pe
        expect_q = layer.norm2(with_skip(layer.Adapter, expect_q + layer.cross_attn_token_to_image(q=q, k=k, v=keys)))
        expect_q = layer.norm3(expect_q + layer.mlp(expect_q) + 0.5 * bottleneck_out(layer.MLP_Adapter, expect_q))
        q, k = expect_q + query_pe, keys + key_pe
        expect_k = layer.norm4(with_skip(layer.Adapter, keys + layer.cross_attn_image_to_token(q=k, k=q, v=expect_q)))
        got_q, got_k = layer(queries, keys, query_pe, key_pe)
    torch.testing.assert_close(got_q, expect_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(got_k, expect_k, rtol=0, atol=1e-6)


def _zero_up_projections(model) -> None:
    for name, module in model.named_modules():
        if name.endswith("D_fc2"):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)


@pytest.mark.parametrize("family", ["sam", "sam2"])
def test_adapters_only_add_to_the_base_model(family):
    """Up-projections zeroed: bit-identical to the base model (the adapters only add). Fresh, as upstream
    initialises them (PyTorch's default, not zero): the output moves."""
    from mskbench.segmenters.adapters import attach_adapters
    from mskbench.segmenters.sam import SamSegmenter
    from mskbench.segmenters.sam2_image import Sam2Segmenter
    from sam_family_tiny import tiny_sam2

    build, cls, variant = {"sam": (tiny_sam, SamSegmenter, "vit_b"), "sam2": (tiny_sam2, Sam2Segmenter, "2.1/tiny")}[family]
    image = phantom(120, 140, seed=2)
    base = scores(cls(build(seed=5), device="cpu", precision="fp32", variant=variant), image)
    model = build(seed=5)
    attach_adapters(model, 0.25)
    fresh = scores(cls(model, device="cpu", precision="fp32", variant=variant), image)
    assert np.abs(fresh - base).max() > 1e-3
    _zero_up_projections(model)
    assert np.array_equal(scores(cls(model, device="cpu", precision="fp32", variant=variant), image), base)


def test_training_step_moves_every_adapter_and_nothing_else_and_the_plugin_reloads_the_trained_model(
        tiny_vit_b, tmp_path, monkeypatch):
    """One epoch through `mskbench train`; the checkpoint through the sam plugin equals the model trained."""
    from segment_anything import sam_model_registry

    from mskbench.plugin_manager import get_registry
    from mskbench.segmenters import adapters
    from mskbench.training import trainer

    trained_models = []

    def keep(model, ratio):
        trained_models.append(model)
        return adapters.attach_adapters(model, ratio)

    monkeypatch.setattr(trainer, "attach_adapters", keep)
    torch.manual_seed(0)
    fresh = sam_model_registry["vit_b"]()
    torch.manual_seed(0)  # the trainer seeds with recipe.seed = 0 before it attaches
    adapters.attach_adapters(fresh, 0.25)
    outcome = trainer.train(recipe(train={"mode": "adapters", "epochs": 1, "lr": 1e-2},
                                   dataset={"slices_per_subject": 1}), tmp_path / "out", show_progress=False)
    assert outcome.card.trains == "adapters"
    before = fresh.state_dict()
    after = torch.load(tmp_path / "out" / "model.pt", weights_only=True)
    assert after.keys() == before.keys() and adapter_names(after) == TINY_SAM_ADAPTERS
    for name in before:
        if "Adapter" not in name:
            assert torch.equal(after[name], before[name]), name  # every base weight bit-identical
    for adapter in TINY_SAM_ADAPTERS:  # every placement trained
        assert not torch.equal(after[f"{adapter}.D_fc2.weight"], before[f"{adapter}.D_fc2.weight"]), adapter

    (model,) = trained_models
    model.eval()
    loaded = get_registry().create("model", "sam", {}, "models[0]", device="cpu",
                                   checkpoint=str(tmp_path / "out" / "model.pt"))
    assert adapter_names(loaded.model.state_dict()) == TINY_SAM_ADAPTERS
    from mskbench.segmenters.sam import SamSegmenter

    image = phantom(98, 131, seed=4)
    in_memory = scores(SamSegmenter(model, device="cpu", precision="fp32", variant="vit_b"), image)
    np.testing.assert_array_equal(scores(loaded, image), in_memory)


def test_a_sam2_checkpoint_with_adapters_reloads_into_a_plain_sam2():
    from mskbench.segmenters.adapters import attach_adapters, attach_adapters_for
    from sam_family_tiny import tiny_sam2

    adapted = tiny_sam2(seed=3)
    attach_adapters(adapted, 0.5)
    state = adapted.state_dict()
    plain = tiny_sam2(seed=4)
    attach_adapters_for(plain, state)
    plain.load_state_dict(state)  # strict: every key has its module, widths from the weights
    assert adapter_names(dict(plain.named_parameters())) == adapter_names(state) != []


def test_a_checkpoint_without_adapters_attaches_nothing():
    from mskbench.segmenters.adapters import attach_adapters_for

    model = tiny_sam(seed=0)
    names = list(model.state_dict())
    attach_adapters_for(model, model.state_dict())
    assert list(model.state_dict()) == names


@pytest.mark.parametrize(("key", "bad"), [
    ("mask_decoder.transformer.layers.1.Adapter.D_fc2.weight", torch.zeros(32, 5)),  # widths disagree
    ("image_encoder.blocks.0.Space_Adapter.D_fc1.weight", 7),  # not a tensor
    ("image_encoder.blocks.7.MLP_Adapter.D_fc1.weight", torch.zeros(8, 32)),  # no such block
])
def test_a_checkpoint_whose_adapters_do_not_fit_is_one_checkpoint_error(tiny_vit_b, tmp_path, key, bad):
    from mskbench.errors import CheckpointError
    from mskbench.plugin_manager import get_registry
    from mskbench.segmenters.adapters import attach_adapters

    model = tiny_sam(seed=0)
    attach_adapters(model, 0.25)
    state = model.state_dict()
    state[key] = bad
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"does not fit the .* architecture") as caught:
        get_registry().create("model", "sam", {}, "models[0]", device="cpu", checkpoint=str(tmp_path / "bad.pt"))
    assert "\n" not in str(caught.value)

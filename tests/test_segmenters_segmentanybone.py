"""`segmentanybone` against its public code: the released checkpoint's tensor names and shapes, the
depth-attention slab and gate on hand-made values, the slice preprocessing against the libraries upstream
calls (torchvision, MONAI), a key mismatch as one line at plan time, and a tiny random model run end to end
in a phantom suite in automatic and prompted modes. What needs the real weights is in docs/models.md."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest
import torch
from sam_family_tiny import _randomise

from mskbench.cli.main import main
from mskbench.errors import CheckpointError, PluginError
from mskbench.protocols import VolumeInput
from mskbench.segmenters import segmentanybone_preprocess as pre
from mskbench.segmenters.segmentanybone import SegmentAnyBone
from mskbench.segmenters.segmentanybone_checks import check_released_files
from mskbench.segmenters.segmentanybone_encoder import EncoderConfig
from mskbench.segmenters.segmentanybone_net import AttentionFusion, NetConfig, SegmentAnyBoneNet
from mskbench.types import Prompt, TissueClass

FIXTURE = Path(__file__).parent / "fixtures" / "segmentanybone_state_dict.txt"
TINY = NetConfig(
    encoder=EncoderConfig(embed_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1), num_heads=(1, 2, 2, 2), out_chans=32,
                          num_classes=10),
    prompt_dim=32, mask_in_chans=4, decoder_mlp_dim=64, decoder_heads=2, iou_head_hidden_dim=32, fusion_dim=32,
)


@pytest.fixture(scope="module", autouse=True)
def single_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def released_layout() -> dict[str, tuple[int, ...]]:
    layout = {}
    for line in FIXTURE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split()
            layout[name] = () if shape == "-" else tuple(int(n) for n in shape.split("x"))
    return layout


# --- the released checkpoint's layout ---------------------------------------------------------------


def test_full_model_has_the_released_checkpoints_names_and_shapes():
    with torch.device("meta"):
        state = SegmentAnyBoneNet().state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == released_layout()


def tiny_model(seed: int = 0) -> SegmentAnyBone:
    torch.manual_seed(seed)
    net = SegmentAnyBoneNet(TINY)
    _randomise(net, seed, head_gain=20.0)
    depth = torch.nn.Conv3d(1, 1, 3, padding=1)
    return SegmentAnyBone(net, depth.eval())


def test_a_checkpoint_with_unexpected_keys_fails_the_plan_in_one_line_naming_them(tmp_path, monkeypatch):
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path))
    state = {name: torch.zeros(shape) for name, shape in released_layout().items()}
    state["mask_decoder.transformer.layers.0.Adaptor.D_fc1.weight"] = state.pop(
        "mask_decoder.transformer.layers.0.Adapter.D_fc1.weight")
    torch.save(state, tmp_path / "bone_sam.pth")
    with pytest.raises(CheckpointError) as info:
        check_released_files(None, None)
    message = str(info.value)
    assert "\n" not in message
    assert "1 missing, 1 unexpected" in message
    assert "first missing 'mask_decoder.transformer.layers.0.Adapter.D_fc1.weight'" in message
    assert "first unexpected 'mask_decoder.transformer.layers.0.Adaptor.D_fc1.weight'" in message


def test_a_missing_depth_checkpoint_names_the_file_and_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path))
    torch.save({name: torch.zeros(shape) for name, shape in released_layout().items()}, tmp_path / "bone_sam.pth")
    with pytest.raises(CheckpointError, match=r"atten\.pth .*not found.*github\.com/mazurowski-lab/SegmentAnyBone"):
        check_released_files(None, None)


# --- depth attention -----------------------------------------------------------------------------


def hand_made_probability() -> np.ndarray:
    """Column (0, 0) is 0.5 everywhere, (1, 0) is 0.05 (under the 0.1 threshold), (2, 0) is z / 64."""
    prob = np.zeros((64, 64, 64))
    prob[0, 0, :] = 0.5
    prob[1, 0, :] = 0.05
    prob[2, 0, :] = np.arange(64) / 64
    return prob


def rescaled(value: float) -> float:
    """prob_rescale by hand: x16 up to 0.05, then 0.8 + (p - 0.05) * 0.2 / 0.95."""
    return value * 16 if value <= 0.05 else 0.8 + (value - 0.05) * 0.2 / 0.95


@pytest.mark.parametrize(("index", "depth", "bounds", "column_00", "column_20"), [
    # centre int(10 * 64 / 32) = 20: slices 12..27; 16 x 0.5 = 8; sum(12..27) / 64 = 4.875
    (10, 32, (12, 28), 1.0, rescaled(4.875 / 8)),
    # first slice: 0..7; only z = 7 passes the threshold at (2, 0): 7 / 64 against 8 x 0.5
    (0, 32, (0, 8), 1.0, rescaled((7 / 64) / 4)),
    # last slice: centre 62, 54..63 (clipped at 64); sum(54..63) / 64 = 9.140625 > 10 x 0.5
    (31, 32, (54, 64), rescaled(5 / 9.140625), 1.0),
    # 100 slices: centre int(5 * 0.64) = 3, slices 0..10
    (5, 100, (0, 11), 1.0, rescaled((sum(range(7, 11)) / 64) / 5.5)),
])
def test_attention_map_sums_the_clipped_slab_as_upstream(index, depth, bounds, column_00, column_20):
    assert pre.slab_bounds(index, depth) == bounds
    attention = pre.attention_map(hand_made_probability(), index, depth)
    assert attention.shape == (64, 64)
    assert attention[0, 0] == pytest.approx(column_00)
    assert attention[2, 0] == pytest.approx(column_20)
    assert attention[1, 0] == 0 and attention[5, 5] == 0


def test_probability_rescaling_by_hand():
    prob = np.array([0.0, 0.001, 0.002, 0.05, 0.5, 1.0])
    expected = [0, 0, 0.032, 0.8, 0.8 + 0.45 * 0.2 / 0.95, 1.0]
    np.testing.assert_allclose(pre.rescale_probability(prob), expected)


def test_gate_mixes_the_embedding_and_the_fused_branch_by_hand():
    """One channel, identity 3x3 convolutions, unit batch norms: fused = relu(e * a) / (1 + 1e-5)."""
    fusion = AttentionFusion(dim=1, hidden=1).eval()
    with torch.no_grad():
        for conv in (fusion.fuse_emb[0], fusion.fuse_emb[3]):
            conv.weight.zero_()
            conv.weight[0, 0, 1, 1] = 1
            conv.bias.zero_()
        fusion.gate.fill_(0.25)
        out = fusion(torch.tensor([[[[2.0, -1.0]]]]), torch.tensor([[[0.5, 1.0]]]))
    bn = 1 / math.sqrt(1 + 1e-5)
    np.testing.assert_allclose(out.numpy().ravel(), [0.75 * 2 + 0.25 * bn * bn, 0.75 * -1], rtol=1e-6)


# --- preprocessing -------------------------------------------------------------------------------


def test_percentiles_are_upstreams_kth_values():
    values = np.random.default_rng(0).permutation(np.arange(101, dtype=np.float32))
    assert pre.percentile_value(values, 1) == 1 and pre.percentile_value(values, 99) == 99
    np.testing.assert_allclose(pre.normalise_volume(values.reshape(1, 1, -1)).ravel(), np.clip(values - 1, 0, 98) / 98,
                               rtol=1e-6)


@pytest.mark.parametrize("dark", [False, True])
def test_slice_image_matches_upstreams_torchvision_and_monai_calls(dark):
    from monai.transforms import AdjustContrast
    from PIL import Image
    from torchvision import transforms

    rng = np.random.default_rng(1)
    volume = rng.uniform(0, 1, (40, 30, 3)).astype(np.float32) ** (30 if dark else 1)
    plane = volume[:, :, 1] / volume.max()
    grey = np.array((plane - plane.min()) / (plane.max() - plane.min() + 0.00001) * 255, dtype=np.uint8)
    image = transforms.ToTensor()(transforms.Resize((1024, 1024))(Image.fromarray(np.tile(grey[:, :, None], [1, 1, 3]), "RGB")))
    image = torch.clamp(image, torch.quantile(image, 0.01), torch.quantile(image, 0.99))
    assert (image.mean() < 0.1) == dark
    if dark:
        image = AdjustContrast(gamma=0.8)(image)
    expected = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])(image)
    np.testing.assert_allclose(pre.slice_image(volume, 1).numpy(), np.asarray(expected), atol=1e-5)


def test_depth_input_is_the_64_cube_scaled_to_minus_one_one():
    volume = np.full((20, 30, 10), 0.75, np.float32)
    cube = pre.depth_input(volume)
    assert cube.shape == (1, 1, 64, 64, 64)
    np.testing.assert_allclose(cube.numpy(), 0.5)


# --- end to end --------------------------------------------------------------------------------


def test_automatic_mode_with_several_bone_labels_is_one_line():
    volume = VolumeInput(np.zeros((8, 8, 4), np.uint8), (1.0, 1.0, 1.0), 2, (1, 2),
                         label_names={1: "femur", 2: "tibia"}, label_tissues={1: TissueClass.BONE, 2: TissueClass.BONE})
    with pytest.raises(PluginError, match=r"evaluated bone labels: femur, tibia\); merge them"):
        tiny_model().predict(volume, [])


def test_prompted_mode_writes_each_prompts_mask_to_its_label_on_its_slice_only():
    rng = np.random.default_rng(2)
    raw = rng.uniform(0, 100, (24, 20, 6)).astype(np.float32)
    volume = VolumeInput(raw.astype(np.uint8), (1.0, 1.0, 1.0), 2, (3, 5), raw=raw)
    box = Prompt(kind="box", label=3, prompter="gt_box", seed=0, box=(2, 2, 15, 5), slice_index=4)
    point = Prompt(kind="point", label=5, prompter="points", seed=0, points=((3, 20),), point_labels=(1,), slice_index=1)
    labels = tiny_model().predict(volume, [box, point])
    assert labels.shape == raw.shape
    assert set(np.unique(labels[:, :, 4])) <= {0, 3} and set(np.unique(labels[:, :, 1])) <= {0, 5}
    assert not np.delete(labels, [1, 4], axis=2).any()


SUITE = """
[suite]
name = "sab_e2e"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 1, seed = 3 }}
split = "all"
labels = ["femur"]

[[models]]
name = "sab"
plugin = "segmentanybone_tiny"

[[prompters]]
name = "auto"
plugin = "none"

[[prompters]]
name = "box"
plugin = "gt_box"

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""


@pytest.fixture
def tiny_plugin(monkeypatch):
    from mskbench.plugin_manager import PluginInfo, get_registry

    def factory(device, checkpoint):
        return tiny_model()

    factory.supported_prompts, factory.kind = SegmentAnyBone.supported_prompts, "volume"
    info = PluginInfo(name="segmentanybone_tiny", kind="model", factory=factory, description="tiny test model",
                      version="0", distribution="tests")
    monkeypatch.setitem(get_registry().plugins, ("model", info.name), info)


def test_a_tiny_model_runs_a_phantom_suite_in_automatic_and_prompted_modes(tmp_path, tiny_plugin):
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format()))
    db = tmp_path / "results.duckdb"
    assert main(["run", str(suite), "--db", str(db)]) == 0
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT split_part(cell_id, ':', 3), label_name, value FROM subject_metrics WHERE metric = 'dice'").fetchall()
    con.close()
    assert {(prompter, label) for prompter, label, _ in rows} == {("auto", "femur"), ("box", "femur")}
    assert all(0 <= value <= 1 for *_, value in rows)


def test_validate_with_a_foreign_checkpoint_exits_2_in_one_line_when_checkpoints_are_required(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(tmp_path))
    torch.save({"image_encoder.blocks.0.attn.qkv.weight": torch.zeros(3, 3)}, tmp_path / "bone_sam.pth")
    suite = tmp_path / "suite.toml"
    suite.write_text(textwrap.dedent(SUITE.format()).replace(
        'plugin = "segmentanybone_tiny"', 'plugin = "segmentanybone"\non_missing_checkpoint = "error"'))
    assert main(["validate", str(suite)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "first missing 'image_encoder.patch_embed.seq.0.c.weight'" in err
    assert "first unexpected 'image_encoder.blocks.0.attn.qkv.weight'" in err

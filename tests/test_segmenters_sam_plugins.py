"""SAM-family plugins: registration, checkpoint preflight and loading, device errors, full-size vit_b."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from sam_family_tiny import phantom, prompt, tiny_sam

from mskbench.errors import CheckpointError, PluginError, UserError
from mskbench.params import validate_params
from mskbench.segmenters.sam import SamSegmenter
from mskbench.segmenters.sam_family import load_weights
from mskbench_builtins.models import medsam, sam, sam2, samri

PLUGINS = {"sam": sam, "medsam": medsam, "sam2": sam2, "samri": samri}


@pytest.fixture
def checkpoint_dir(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("MSKBENCH_CHECKPOINTS", str(folder))
    monkeypatch.delenv("MSKBENCH_CHECKPOINT_REGISTRY", raising=False)
    return folder


def registered(module) -> dict:
    calls = []
    module.register_plugin(lambda **kwargs: calls.append(kwargs))
    assert len(calls) == 1
    return calls[0]


@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugins_register_with_checkpoint_requirement_and_prompt_kinds(name):
    entry = registered(PLUGINS[name])
    assert entry["name"] == name and entry["requires"] == ("checkpoint",)
    assert callable(entry["preflight"]) and entry["description"]
    expected = {"box"} if name == "medsam" else {"box", "point", "box+point"}
    assert entry["factory"].supported_prompts == expected
    assert "precision" in entry["params"]


def test_params_defaults_and_typos():
    assert validate_params(registered(sam2)["params"], {}, "models[0].params") == {
        "version": "2.1", "variant": "base_plus", "precision": "fp32", "input_convention": "upstream",
    }
    with pytest.raises(PluginError, match="did you mean 'vit_b'"):
        validate_params(registered(sam)["params"], {"variant": "vit_bb"}, "models[0].params")


@pytest.mark.parametrize(
    "name, params, filename, source",
    [
        ("sam", {"variant": "vit_l", "precision": "fp32"}, "sam_vit_l_0b3195.pth", "https://dl.fbaipublicfiles.com"),
        ("medsam", {"precision": "fp32"}, "medsam_vit_b.pth", "drive.google.com"),
        ("sam2", {"version": "2.0", "variant": "tiny", "precision": "fp32"}, "sam2_hiera_tiny.pt", "segment_anything_2/072824"),
        ("sam2", {"version": "2.1", "variant": "large", "precision": "bf16"}, "sam2.1_hiera_large.pt", "092824"),
    ],
)
def test_missing_checkpoint_says_which_file_where_from_and_where_to(checkpoint_dir, name, params, filename, source):
    with pytest.raises(CheckpointError) as info:
        registered(PLUGINS[name])["preflight"](params, None)
    message = str(info.value)
    assert filename in message and source in message and str(checkpoint_dir) in message
    assert "checkpoint = " in message and "\n" not in message


def test_suite_path_that_does_not_exist(checkpoint_dir):
    with pytest.raises(CheckpointError, match="does not exist"):
        registered(sam)["preflight"]({"variant": "vit_b", "precision": "fp32"}, str(checkpoint_dir / "nope.pth"))


def test_official_name_with_wrong_content_fails_preflight(checkpoint_dir):
    (checkpoint_dir / "sam_vit_b_01ec64.pth").write_bytes(b"not the official file")
    with pytest.raises(CheckpointError, match="official sha256"):
        registered(sam)["preflight"]({"variant": "vit_b", "precision": "fp32"}, None)


def test_own_checkpoint_passes_preflight_and_loads_with_its_hash(checkpoint_dir):
    source = tiny_sam(seed=0)
    path = checkpoint_dir / "my_finetune.pth"
    torch.save(source.state_dict(), path)
    registered(sam)["preflight"]({"variant": "vit_b", "precision": "fp32"}, str(path))
    target = tiny_sam(seed=1)
    weights = load_weights(target, "sam_vit_b", str(path), arch="tiny SAM")
    assert weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and weights.path == str(path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_checkpoint_for_another_architecture_is_one_clear_error(checkpoint_dir):
    path = checkpoint_dir / "tiny.pth"
    torch.save(tiny_sam(seed=0).state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit the SAM vit_b architecture") as info:
        registered(sam)["factory"](variant="vit_b", precision="fp32", input_convention="upstream", device="cpu", checkpoint=str(path))
    assert "\n" not in str(info.value)


def test_sam_checkpoint_given_to_sam2_is_refused(checkpoint_dir):
    path = checkpoint_dir / "sam_weights.pth"
    torch.save(tiny_sam(seed=0).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"does not fit the configs/sam2\.1/sam2\.1_hiera_t\.yaml"):
        registered(sam2)["factory"](version="2.1", variant="tiny", precision="fp32", input_convention="upstream", device="cpu", checkpoint=str(path))


def test_a_file_that_is_no_checkpoint(checkpoint_dir):
    path = checkpoint_dir / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint|not a loadable"):
        registered(sam2)["factory"](version="2.0", variant="tiny", precision="fp32", input_convention="upstream", device="cpu", checkpoint=str(path))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only behaviour")
def test_cuda_requested_without_cuda_is_a_user_error():
    with pytest.raises(UserError, match="CUDA is not available"):
        SamSegmenter(tiny_sam(), device="cuda", precision="bf16", variant="tiny")


def test_unknown_device_and_precision_are_user_errors():
    with pytest.raises(PluginError, match="not a torch device"):
        SamSegmenter(tiny_sam(), device="tpu", precision="fp32", variant="tiny")
    with pytest.raises(PluginError, match="precision"):
        SamSegmenter(tiny_sam(), device="cpu", precision="fp8", variant="tiny")


@pytest.mark.slow
def test_full_size_vit_b_through_the_plugin_factory(checkpoint_dir):
    """The real architecture: random vit_b weights saved as a file, loaded by the plugin, one 1024 slice."""
    from segment_anything import SamPredictor, sam_model_registry

    torch.manual_seed(0)
    source = sam_model_registry["vit_b"]()
    path = checkpoint_dir / "random_vit_b.pth"
    torch.save(source.state_dict(), path)
    segmenter = registered(sam)["factory"](variant="vit_b", precision="fp32", input_convention="upstream", device="cpu", checkpoint=str(path))
    described = segmenter.describe()
    assert described["variant"] == "vit_b" and described["checkpoint"] == str(path)
    assert described["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    image = phantom(1024, 1024, seed=3)
    embedding = segmenter.encode([image])[0]
    assert embedding["features"].shape == (256, 64, 64) and embedding["input_size"] == (1024, 1024)
    boxes = [(100, 200, 600, 700), (0, 0, 1023, 1023), (500, 500, 540, 560)]
    prompts = [prompt("box", i, box=box) for i, box in enumerate(boxes)]
    scores = segmenter.decode_scores(embedding, prompts)

    predictor = SamPredictor(segmenter.model)  # upstream decode on the same image embedding
    predictor.features, predictor.is_image_set = embedding["features"][None], True
    predictor.original_size = predictor.input_size = (1024, 1024)
    for score, box in zip(scores, boxes):
        logits, _, _ = predictor.predict(box=np.array(box), multimask_output=False, return_logits=True)
        np.testing.assert_allclose(score, logits[0], rtol=0, atol=1e-4)


ROUND_TRIPS = [  # MedSAM's 1024² cubic resize and SAM 2's hydra build and Hiera take 5-15 s: marked slow
    pytest.param("sam", {"variant": "vit_b"}, id="sam"),
    pytest.param("samri", {"variant": "bp"}, id="samri"),
    pytest.param("medsam", {}, id="medsam", marks=pytest.mark.slow),
    pytest.param("sam2", {"version": "2.0", "variant": "tiny"}, id="sam2.0", marks=pytest.mark.slow),
    pytest.param("sam2", {"version": "2.1", "variant": "tiny"}, id="sam2.1", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("plugin, params", ROUND_TRIPS)
def test_factory_round_trip_from_a_saved_checkpoint_through_the_registry(checkpoint_dir, monkeypatch, plugin, params):
    """Saved weights -> plugin registry -> preflight -> factory -> verified load -> the source model's upstream results.

    The factories build the full-size architecture; here the upstream builder is swapped for the tiny
    one (other random weights), so everything else on the path is the real one and stays fast.
    """
    from segment_anything import sam_model_registry
    from test_segmenters_chunks import medsam_reference, sam2_reference, sam_reference

    import mskbench.segmenters.sam2_image as sam2_module
    from mskbench.plugin_manager import get_registry
    from mskbench.segmenters.sam_catalog import sam2_config
    from sam_family_tiny import TINY_SAM2_OVERRIDES, tiny_sam2

    if plugin == "sam2":
        source = tiny_sam2(seed=11, config=sam2_config(params["version"], "tiny"))
        real_build = sam2_module.build_sam2
        monkeypatch.setattr(
            sam2_module, "build_sam2",
            lambda config, ckpt_path=None, device="cpu": real_build(
                config, ckpt_path, device, hydra_overrides_extra=TINY_SAM2_OVERRIDES
            ),
        )
    else:
        source = tiny_sam(seed=11)
        monkeypatch.setitem(sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=12))
    path = checkpoint_dir / f"{plugin}_finetune.pth"
    torch.save(source.state_dict(), path)

    registry = get_registry()
    where = "models.round_trip"
    resolved = registry.resolve_params("model", plugin, params, where)
    registry.get("model", plugin, where).preflight(resolved, str(path))
    segmenter = registry.create("model", plugin, params, where, device="cpu", checkpoint=str(path))

    described = segmenter.describe()
    assert described["architecture"] == plugin and described["checkpoint"] == str(path)
    assert described["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert described["precision"] == "fp32" and described["device"] == "cpu"
    loaded = segmenter.model.state_dict()
    assert all(torch.equal(loaded[key], value) for key, value in source.state_dict().items())

    image = phantom(170, 260, seed=13)  # non-square
    if plugin == "sam2":
        reference = sam2_reference(source, image)
    elif plugin == "medsam":
        reference = medsam_reference(source, image)
    else:
        reference = sam_reference(source, image, stretch=plugin == "samri")
    embedding = segmenter.encode([image])[0]
    for key, tensor in reference.tensors.items():
        assert torch.equal(embedding[key], tensor), key
    box = prompt("box", 1, box=(20, 15, 200, 150))
    np.testing.assert_array_equal(segmenter.decode_scores(embedding, [box])[0], reference.scores(box))

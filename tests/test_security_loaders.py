"""No card, checkpoint or weights file can run code, through any loader mskbench has (issue 11).

Every loader is pointed at pickles whose unpickling writes a marker file
(:mod:`code_pickles`), in each container format: a plain pickle, torch's
legacy format and torch's zip format. The marker must never appear, and the
refusal is one line of :class:`UserError`. The loaders: the SAM, MedSAM,
SAMRI and SAM 2 model plugins (their ``checkpoint``, by explicit path and
by official file name), ``load_checkpoint_state`` itself, the ``yolo``
prompter (a card whose ``architecture`` names the pickle, and weights that
are the pickle), ``detector info``, the embedding cache, and ``mskbench
validate`` in a subprocess.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from code_pickles import KINDS, armed, pickle_bytes, write_detector

from mskbench.cli.main import main
from mskbench.errors import PluginError, UserError
from mskbench.segmenters import checkpoints as ck
from mskbench_builtins.models import medsam, sam, sam2, samri

#: plugin module, its params, the registry file name of its default checkpoint
MODEL_PLUGINS = {
    "sam": (sam, {"variant": "vit_b", "input_convention": "upstream"}, "sam_vit_b_01ec64.pth"),
    "sam_medsam_input": (sam, {"variant": "vit_b", "input_convention": "medsam"}, "sam_vit_b_01ec64.pth"),
    "medsam": (medsam, {}, "medsam_vit_b.pth"),
    "samri": (samri, {"variant": "bp"}, "samri_vitb_bp.pth"),
    "sam2": (sam2, {"version": "2.1", "variant": "tiny", "input_convention": "upstream"}, "sam2.1_hiera_tiny.pt"),
    "sam2_medsam_input": (sam2, {"version": "2.1", "variant": "tiny", "input_convention": "medsam"}, "sam2.1_hiera_tiny.pt"),
}
REFUSED = "contains Python objects that mskbench will not load (only tensors are accepted"


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "MARKER"
    yield path
    assert not path.exists(), f"a loader ran the pickle's code: {path.read_text()!r}"


@pytest.fixture(params=KINDS)
def hostile(request, tmp_path, marker) -> Path:
    """A file whose unpickling writes ``marker``, in one container format."""
    path = tmp_path / f"hostile-{request.param}.pth"
    path.write_bytes(pickle_bytes(marker, request.param))
    return path


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert isinstance(exc, UserError) and message and "\n" not in message, repr(message)
    return message


@pytest.mark.parametrize("kind", KINDS)
def test_the_payloads_are_armed(tmp_path, kind):
    """Without this, a test that finds no marker would prove nothing."""
    assert armed(tmp_path / "MARKER", kind)


# --- checkpoints: the SAM-family model plugins and the shared loader ----------------------------


def _registered(module) -> dict:
    calls = []
    module.register_plugin(lambda **kwargs: calls.append(kwargs))
    return calls[0]


@pytest.fixture
def light_builders(monkeypatch, tmp_path):
    """The upstream architecture builders replaced by a one-layer module (the file is refused before it is used)."""
    import segment_anything

    import mskbench.segmenters.sam2_image as sam2_image

    for variant in ("vit_b", "vit_l", "vit_h"):
        monkeypatch.setitem(segment_anything.sam_model_registry, variant, lambda: torch.nn.Linear(1, 1))
    monkeypatch.setattr(sam2_image, "build_sam2", lambda *args, **kwargs: torch.nn.Linear(1, 1))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv(ck.CHECKPOINTS_ENV, str(folder))
    monkeypatch.delenv(ck.REGISTRY_ENV, raising=False)
    monkeypatch.setattr(ck, "_memory_hashes", {})
    return folder


@pytest.mark.parametrize("plugin", sorted(MODEL_PLUGINS))
def test_model_plugins_refuse_a_pickle_given_as_checkpoint(plugin, hostile, light_builders):
    module, params, _ = MODEL_PLUGINS[plugin]
    entry = _registered(module)
    entry["preflight"]({**params, "precision": "fp32"}, str(hostile))  # validate: the user's own file, not loaded
    with pytest.raises(UserError) as err:
        entry["factory"](**params, precision="fp32", device="cpu", checkpoint=str(hostile))
    assert REFUSED in _one_line(err.value) and str(hostile) in str(err.value)


@pytest.mark.parametrize("plugin", sorted(MODEL_PLUGINS))
def test_model_plugins_refuse_a_pickle_under_the_official_name(plugin, hostile, light_builders):
    module, params, filename = MODEL_PLUGINS[plugin]
    (light_builders / filename).write_bytes(hostile.read_bytes())
    entry = _registered(module)
    with pytest.raises(UserError) as err:  # official hash where published, else refused at load
        entry["factory"](**params, precision="fp32", device="cpu", checkpoint=None)
    _one_line(err.value)


def test_shared_checkpoint_loader_refuses_with_or_without_a_hash(hostile):
    for expected in (None, hashlib.sha256(hostile.read_bytes()).hexdigest()):
        with pytest.raises(UserError) as err:
            ck.load_checkpoint_state(hostile, expected)
        assert REFUSED in _one_line(err.value)


def test_embedding_cache_refuses_a_planted_entry(tmp_path, marker):
    from mskbench.segmenters.cache import _MAGIC, EmbeddingCache

    cache = EmbeddingCache(tmp_path / "cache", max_bytes=10**7)
    key = "ab" * 32
    cache.put(key, {"embedding": torch.ones(2)})
    (entry,) = (tmp_path / "cache").rglob("*.emb")
    payload = pickle_bytes(marker, "torch-zip")  # with a valid checksum: only the unpickler stands in the way
    entry.write_bytes(_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    assert cache.get(key) is None and cache.corrupted == 1


# --- the yolo detector: its card and its weights ------------------------------------------------


def test_card_naming_a_pickle_as_architecture_is_refused_unread(tmp_path, hostile, monkeypatch):
    from mskbench.prompting.yolo import YoloPrompter

    monkeypatch.chdir(tmp_path)
    for architecture in (str(hostile), hostile.name):  # absolute, and a bare name ultralytics would find in the cwd
        weights = write_detector(tmp_path / "det-yolov8n-v1.pt", architecture=architecture)
        with pytest.raises(PluginError) as err:
            YoloPrompter(str(weights))
        assert f"architecture {architecture!r} is not one mskbench builds (yolov8n.yaml)" in _one_line(err.value)
        assert main(["detector", "info", str(weights)]) == 2


def test_weights_that_are_a_pickle_are_refused(tmp_path, hostile):
    from mskbench.prompting.yolo import YoloPrompter

    weights = write_detector(tmp_path / "det-yolov8n-v1.pt", weights_bytes=hostile.read_bytes())
    with pytest.raises(UserError) as err:
        YoloPrompter(str(weights))
    message = _one_line(err.value)
    assert message.startswith(f"detector weights {weights} {REFUSED}") and "detector train" in message


def test_the_network_comes_from_the_packaged_config_not_the_working_directory(tmp_path, monkeypatch):
    """ultralytics resolves a bare ``yolov8n.yaml`` in the cwd first; mskbench never hands it a bare name."""
    from mskbench.prompting.yolo import YoloPrompter

    monkeypatch.chdir(tmp_path)
    for planted in ("yolov8n.yaml", "yolov8.yaml"):
        (tmp_path / planted).write_text("nc: 1\nbackbone: [[-1, 1, NotAModule, []]]\nhead: []\n")
    prompter = YoloPrompter(str(write_detector(tmp_path / "det-yolov8n-v1.pt")))
    assert len(prompter.model.model.yaml["backbone"]) > 1 and prompter.model.model.names == {0: "femur", 1: "tibia"}


# --- the command line ---------------------------------------------------------------------------


SUITE = """
[suite]
name = "hostile"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 1 }}

[[models]]
name = "box_fill"
plugin = "box_fill"

[[prompters]]
name = "yolo"
plugin = "yolo"
params = {{ weights = "{weights}" }}
"""


@pytest.mark.parametrize("target", ["card", "weights"])
def test_validate_in_a_subprocess_runs_no_code(tmp_path, marker, target):
    hostile = tmp_path / "hostile.pt"
    hostile.write_bytes(pickle_bytes(marker, "torch-zip"))
    if target == "card":
        weights = write_detector(tmp_path / "det-yolov8n-v1.pt", architecture=str(hostile))
    else:
        weights = write_detector(tmp_path / "det-yolov8n-v1.pt", weights_bytes=hostile.read_bytes())
    suite = tmp_path / "suite.toml"
    suite.write_text(SUITE.format(weights=weights))
    env = {**os.environ, "YOLO_OFFLINE": "1", "NO_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-m", "mskbench", "validate", str(suite)], cwd=tmp_path, env=env,
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert ("not one mskbench builds" if target == "card" else REFUSED) in lines[0]


def test_the_refusal_gives_no_advice_on_loading_unsafely(hostile):
    """The refusal names what was refused, not torch's advice on how to load the file unsafely."""
    with pytest.raises(UserError) as err:
        ck.load_tensor_file(hostile)
    message = _one_line(err.value)
    assert "weights_only=False" not in message and "add_safe_globals" not in message
    assert message.endswith("; use the official checkpoint file")

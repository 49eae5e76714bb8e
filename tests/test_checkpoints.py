"""Checkpoint registry, lookup, status, hashing and weights-only loading (DESIGN §6)."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path

import pytest
import torch

from mskbench.cli.main import main
from mskbench.errors import CheckpointError
from mskbench.segmenters import checkpoints as ck

OFFICIAL_KEYS = [
    "sam_vit_b", "sam_vit_l", "sam_vit_h", "medsam_vit_b",
    "sam2_hiera_tiny", "sam2_hiera_small", "sam2_hiera_base_plus", "sam2_hiera_large",
    "sam2.1_hiera_tiny", "sam2.1_hiera_small", "sam2.1_hiera_base_plus", "sam2.1_hiera_large",
]  # fmt: skip


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own checkpoint folder, no extra registry and an empty in-memory hash cache."""
    folder = tmp_path / "ckpts"
    folder.mkdir()
    monkeypatch.setenv(ck.CHECKPOINTS_ENV, str(folder))
    monkeypatch.delenv(ck.REGISTRY_ENV, raising=False)
    monkeypatch.setattr(ck, "_memory_hashes", {})
    return folder


def _state_file(path: Path, state: object) -> Path:
    torch.save(state, path)
    return path


def _extra_registry(tmp_path: Path, monkeypatch, **entries: dict) -> None:
    path = tmp_path / "extra.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv(ck.REGISTRY_ENV, str(path))


# --- registry -----------------------------------------------------------------------------------


def test_registry_lists_the_official_files_consistently():
    specs = ck.load_registry()
    assert set(OFFICIAL_KEYS) <= set(specs)
    for key in OFFICIAL_KEYS:
        spec = specs[key]
        assert spec.url.startswith("https://")
        assert spec.sha256 is None or len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        if spec.direct_download:  # the file name is the URL's last segment
            assert spec.url.rsplit("/", 1)[1] == spec.filename
    assert {specs[k].plugin for k in OFFICIAL_KEYS} == {"sam", "medsam", "sam2"}
    assert specs["sam_vit_b"].sha256 == "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"
    assert specs["sam2.1_hiera_large"].arch == "configs/sam2.1/sam2.1_hiera_l.yaml"
    assert not specs["medsam_vit_b"].direct_download


def test_distinct_files_have_distinct_hashes():
    hashes = [spec.sha256 for spec in ck.load_registry().values() if spec.sha256]
    assert len(hashes) == len(set(hashes))


def test_checkpoint_dir_default_and_env(monkeypatch, isolated):
    assert ck.checkpoint_dir() == isolated
    monkeypatch.delenv(ck.CHECKPOINTS_ENV)
    assert ck.checkpoint_dir() == Path("~/.cache/mskbench/checkpoints").expanduser()


def test_unknown_key_suggests_the_nearest():
    with pytest.raises(CheckpointError, match="did you mean 'sam_vit_b'"):
        ck.get_spec("sam_vit_bb")


def test_extra_registry_adds_and_validates_entries(tmp_path, monkeypatch):
    _extra_registry(tmp_path, monkeypatch, lab_ft={"filename": "ft.pth", "url": "https://x/ft.pth", "plugin": "sam"})
    spec = ck.get_spec("lab_ft")
    assert spec.origin.endswith("extra.json") and spec.sha256 is None
    _extra_registry(tmp_path, monkeypatch, bad={"filename": "a.pth", "url": "https://x", "plugin": "sam", "sha": "0"})
    with pytest.raises(CheckpointError, match="unknown field 'sha'.*did you mean 'sha256'"):
        ck.load_registry()
    _extra_registry(tmp_path, monkeypatch, bad={"filename": "a.pth", "url": "u", "plugin": "sam", "sha256": "abc"})
    with pytest.raises(CheckpointError, match="64 hex digits"):
        ck.load_registry()
    (tmp_path / "extra.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ck.load_registry()


# --- lookup and status --------------------------------------------------------------------------


def test_missing_checkpoint_is_one_line_naming_file_url_folder_and_fetch(isolated):
    with pytest.raises(CheckpointError) as err:
        ck.resolve_checkpoint("sam_vit_b", None)
    message = str(err.value)
    assert "\n" not in message
    for part in ("sam_vit_b_01ec64.pth", "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
                 str(isolated), "checkpoint = \"PATH\"", "mskbench models fetch sam_vit_b"):  # fmt: skip
        assert part in message


def test_manual_download_checkpoint_does_not_offer_fetch():
    with pytest.raises(CheckpointError) as err:
        ck.resolve_checkpoint("medsam_vit_b", None)
    assert "by hand" in str(err.value) and "models fetch" not in str(err.value)


def test_explicit_path_wins_over_the_folder(tmp_path, isolated):
    (isolated / "sam_vit_b_01ec64.pth").write_bytes(b"in folder")
    mine = _state_file(tmp_path / "mine.pth", {"w": torch.ones(1)})
    assert ck.resolve_checkpoint("sam_vit_b", str(mine)) == mine
    assert ck.resolve_checkpoint("sam_vit_b", None) == isolated / "sam_vit_b_01ec64.pth"
    with pytest.raises(CheckpointError, match="does not exist"):
        ck.resolve_checkpoint("sam_vit_b", str(tmp_path / "nope.pth"))


def test_status_found_mismatch_unknown_missing(tmp_path, monkeypatch, isolated):
    payload = b"pretend weights"
    _extra_registry(
        tmp_path, monkeypatch,
        tiny={"filename": "tiny.pth", "url": "https://x/tiny.pth", "plugin": "sam",
              "sha256": hashlib.sha256(payload).hexdigest()},
    )  # fmt: skip
    assert ck.checkpoint_status("tiny") == ("missing", isolated / "tiny.pth")
    (isolated / "tiny.pth").write_bytes(payload)
    assert ck.checkpoint_status("tiny")[0] == "found"
    (isolated / "tiny.pth").write_bytes(b"pretend weights, truncated?")
    assert ck.checkpoint_status("tiny")[0] == "hash_mismatch"
    own = tmp_path / "finetune.pth"  # another name: the user's own weights, no official hash applies
    own.write_bytes(b"fine-tuned")
    assert ck.checkpoint_status("tiny", str(own)) == ("unknown_hash", own)
    assert ck.expected_sha256("tiny", own) is None
    (isolated / "samri_vitb_bp.pth").write_bytes(b"x")  # registered without a published hash
    assert ck.checkpoint_status("samri_vitb_bp")[0] == "unknown_hash"


# --- hashing ------------------------------------------------------------------------------------


def test_sha256_file_matches_hashlib_and_is_cached_across_processes(tmp_path, monkeypatch):
    path = tmp_path / "w.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    reads = []
    real = ck.sha256_uncached
    monkeypatch.setattr(ck, "sha256_uncached", lambda p, *a: reads.append(p) or real(p, *a))
    assert ck.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert ck.sha256_file(path) == hashlib.sha256(data).hexdigest()
    monkeypatch.setattr(ck, "_memory_hashes", {})  # a new process: only the on-disk cache remains
    assert ck.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert len(reads) == 1
    path.write_bytes(data[:-1])  # changed file: size and mtime differ, so it is hashed again
    assert ck.sha256_file(path) == hashlib.sha256(data[:-1]).hexdigest()
    assert len(reads) == 2


def test_sha256_cache_survives_an_unwritable_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(ck.CHECKPOINTS_ENV, str(tmp_path / "file-not-folder"))
    (tmp_path / "file-not-folder").write_text("x")
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc")
    assert ck.sha256_file(path) == hashlib.sha256(b"abc").hexdigest()


# --- loading ------------------------------------------------------------------------------------


def test_load_state_dict_and_sam2_style_nesting(tmp_path):
    state = {"a.weight": torch.arange(6.0).reshape(2, 3), "a.bias": torch.zeros(2)}
    flat = _state_file(tmp_path / "flat.pth", state)
    nested = _state_file(tmp_path / "nested.pt", {"model": state})
    for path in (flat, nested):
        loaded = ck.load_checkpoint_state(path, hashlib.sha256(path.read_bytes()).hexdigest())
        assert loaded.keys() == state.keys()
        assert all(torch.equal(loaded[k], state[k]) for k in state)


def test_hash_mismatch_is_one_clear_error(tmp_path):
    path = _state_file(tmp_path / "w.pth", {"w": torch.ones(2)})
    with pytest.raises(CheckpointError, match="delete it and download it again") as err:
        ck.load_checkpoint_state(path, "0" * 64)
    assert "\n" not in str(err.value)


class _Payload:
    """A class weights_only unpickling must refuse (arbitrary code could hide in such objects)."""


@pytest.mark.parametrize(
    "writer",
    [
        lambda p: p.write_text("this is a text file, not weights\n"),
        lambda p: p.write_bytes(b""),
        lambda p: p.write_bytes(pickle.dumps({"w": _Payload()})),
        lambda p: torch.save({"w": _Payload()}, p),
        lambda p: torch.save({"epoch": 3, "lr": 0.1}, p),
        lambda p: p.write_bytes(_truncated_checkpoint()),
    ],
    ids=["text", "empty", "plain-pickle", "torch-pickle-with-object", "no-tensors", "truncated"],
)
def test_non_checkpoints_are_one_checkpoint_error(tmp_path, writer):
    path = tmp_path / "bad.pth"
    writer(path)
    with pytest.raises(CheckpointError) as err:
        ck.load_checkpoint_state(path, None)
    message = str(err.value)
    assert "\n" not in message and str(path) in message


@pytest.mark.parametrize(
    "writer, expected",
    [
        (lambda p: p.write_text("weights: see README\n"), "is not a PyTorch checkpoint (it does not begin as files"),
        (lambda p: p.write_bytes(b""), "is an empty file"),
        (lambda p: p.write_bytes(_truncated_checkpoint()), "is not a PyTorch checkpoint (RuntimeError: "),
        (lambda p: p.write_bytes(pickle.dumps({"w": _Payload()})), "contains Python objects"),
    ],
    ids=["text", "empty", "truncated", "plain-pickle"],
)
def test_non_checkpoints_are_told_apart(tmp_path, writer, expected):
    """A text file is not 'Python objects': torch reads any bytes as pickle opcodes, mskbench must not echo it."""
    path = tmp_path / "bad.pth"
    writer(path)
    with pytest.raises(CheckpointError, match=re.escape(expected)):
        ck.load_checkpoint_state(path, None)


def _truncated_checkpoint() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.ones(1000)}, buffer)
    return buffer.getvalue()[:2000]


def test_state_for_another_architecture_is_one_line():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    wrong = torch.nn.Sequential(torch.nn.Linear(4, 5)).state_dict()
    with pytest.raises(CheckpointError, match=r"does not fit the vit_b architecture \(0 missing, 0 unexpected, 2 wrong-shape"):
        ck.apply_state_dict(model, wrong, path=Path("x.pth"), arch="vit_b")
    renamed = {"encoder." + k: v for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="2 missing, 2 unexpected"):
        ck.apply_state_dict(model, renamed, path=Path("x.pth"), arch="vit_b")
    right = torch.nn.Sequential(torch.nn.Linear(4, 3)).state_dict()
    ck.apply_state_dict(model, right, path=Path("x.pth"), arch="vit_b")
    assert torch.equal(model[0].weight, right["0.weight"])


# --- `mskbench models` --------------------------------------------------------------------------


def test_models_json_lists_every_checkpoint_with_status(capsys, isolated):
    (isolated / "sam2.1_hiera_tiny.pt").write_bytes(b"not the official bytes")
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {row["name"]: row for row in rows}
    assert set(OFFICIAL_KEYS) <= set(by_name)
    for row in rows:
        assert {"name", "plugin", "status", "path", "url"} <= set(row)
        assert row["status"] in ck.STATUSES
    assert by_name["sam2.1_hiera_tiny"]["status"] == "hash_mismatch"
    assert by_name["sam_vit_h"] == {**by_name["sam_vit_h"], "status": "missing", "plugin": "sam",
                                    "path": str(isolated / "sam_vit_h_4b8939.pth")}  # fmt: skip


def test_models_table_says_where_it_looks(capsys, isolated):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "Looking in" in out and "MSKBENCH_CHECKPOINTS" in out and "sam2.1_hiera_base_plus" in out


def test_pickled_objects_are_refused_not_executed(tmp_path):
    path = _state_file(tmp_path / "obj.pth", {"w": torch.ones(1), "extra": _Payload()})
    with pytest.raises(CheckpointError) as err:
        ck.load_checkpoint_state(path, None)
    assert str(err.value) == (
        f"checkpoint {path} contains Python objects that mskbench will not load (only tensors are accepted; "
        "it refers to test_checkpoints._Payload); use the official checkpoint file"
    )


@pytest.mark.parametrize(
    "writer, expected",
    [
        (lambda p: p.write_text("see README\n"), "is not a PyTorch checkpoint (it does not begin as files torch.save"),
        (lambda p: p.write_bytes(b""), "is an empty file"),
        (lambda p: p.mkdir(), "is a directory, not a file"),
    ],
    ids=["text", "empty", "directory"],
)
def test_an_own_checkpoint_that_cannot_be_one_fails_before_loading(tmp_path, writer, expected):
    """`validate` (the plugins' preflight) reads the first bytes of the user's own file, nothing more."""
    path = tmp_path / "mine.pth"
    writer(path)
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {path} (given for 'sam_vit_b') {expected}")):
        ck.resolve_checkpoint("sam_vit_b", str(path))


def test_a_directory_given_as_checkpoint_is_named_as_such(tmp_path, isolated):
    folder = tmp_path / "weights"
    folder.mkdir()
    with pytest.raises(CheckpointError, match="is a directory, not a file"):
        ck.resolve_checkpoint("sam_vit_b", str(folder))
    with pytest.raises(CheckpointError, match="is a directory, not a file"):
        ck.load_checkpoint_state(folder, None)
    (isolated / "sam_vit_b_01ec64.pth").mkdir()
    with pytest.raises(CheckpointError, match="is a directory, not a file; remove it and download"):
        ck.resolve_checkpoint("sam_vit_b", None)

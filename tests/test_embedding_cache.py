"""On-disk embedding cache: hits and misses, the size bound, corruption, and unchanged decode results."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from mskbench.errors import UserError
from mskbench.segmenters.baselines import GrabCutBox, OtsuBox
from mskbench.segmenters.cache import CachedSegmenter, EmbeddingCache, cache_key_prefix, image_content_hash
from mskbench.types import Prompt

PREFIX = cache_key_prefix("test_model", "ab" * 32, "none")


def slices(n: int, seed: int = 0, shape=(64, 80)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape).astype(np.uint8) for _ in range(n)]


class TinyConvSegmenter:
    """A torch 'model' whose embedding mixes what real ones hold: tensors, arrays, tuples, scalars."""

    supported_prompts = frozenset({"box"})

    def __init__(self):
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.calls: list[int] = []

    def encode(self, images):
        self.calls.append(len(images))
        with torch.no_grad():
            # one image at a time: a batched conv rounds differently with the batch size (1.8e-7 here),
            # and this stand-in checks the cache's contract, not batching (see the SAM-family round trip)
            features = [self.conv(torch.as_tensor(image, dtype=torch.float32)[None, None] / 255)[0] for image in images]
        return [
            {
                "features": f,
                "high_res": (f[:2] * 2, [f[2:]]),
                "original_size": image.shape,
                "mean": np.float32(image.mean()),
                "image": image,
                "note": None,
            }
            for f, image in zip(features, images, strict=True)
        ]

    def decode(self, embedding, prompts):
        score = embedding["features"].sum(0).numpy() + embedding["high_res"][1][0].sum(0).numpy()
        return np.stack([score > float(embedding["mean"]) / 255 for _ in prompts])

    def describe(self):
        return {"name": "tiny_conv"}


def box(x0, y0, x1, y1):
    return Prompt(kind="box", label=1, prompter="t", seed=0, box=(x0, y0, x1, y1))


def entry_files(cache: EmbeddingCache):
    return sorted(cache.directory.glob("*/*.emb"))


# --- hits and misses ----------------------------------------------------------------------------


def test_second_encode_is_served_from_disk_and_equal(tmp_path):
    model = TinyConvSegmenter()
    cached = CachedSegmenter(model, EmbeddingCache(tmp_path, 10**8), PREFIX)
    images = slices(3)
    first = cached.encode(images)
    reopened = CachedSegmenter(model, EmbeddingCache(tmp_path, 10**8), PREFIX)  # a later run
    second = reopened.encode(images)
    assert model.calls == [3]
    assert (reopened.cache.hits, reopened.cache.misses) == (3, 0)
    for a, b in zip(first, second, strict=True):
        assert torch.equal(a["features"], b["features"]) and a["features"].dtype == b["features"].dtype
        assert isinstance(b["high_res"], tuple) and isinstance(b["high_res"][1], list)
        assert torch.equal(a["high_res"][1][0], b["high_res"][1][0])
        assert b["original_size"] == a["original_size"] and b["note"] is None
        assert isinstance(b["mean"], np.float32) and b["mean"] == a["mean"]
        assert b["image"].dtype == np.uint8 and np.array_equal(b["image"], a["image"])


def test_only_misses_are_encoded_in_one_batch(tmp_path):
    model = TinyConvSegmenter()
    cached = CachedSegmenter(model, EmbeddingCache(tmp_path, 10**8), PREFIX)
    a, b, c, d = slices(4)
    cached.encode([a, b])
    cached.encode([c, a, d, b])
    assert model.calls == [2, 2]
    assert (cached.cache.hits, cached.cache.misses) == (2, 4)


def test_key_covers_model_checkpoint_and_preprocessing(tmp_path):
    model = TinyConvSegmenter()
    cache = EmbeddingCache(tmp_path, 10**8)
    images = slices(1)
    for prefix in (
        PREFIX,
        cache_key_prefix("other_model", "ab" * 32, "none"),
        cache_key_prefix("test_model", "cd" * 32, "none"),
        cache_key_prefix("test_model", "ab" * 32, "resize1024"),
    ):
        CachedSegmenter(model, cache, prefix).encode(images)
    assert model.calls == [1, 1, 1, 1] and len(cache) == 4


def test_content_hash_sees_every_pixel_shape_and_dtype():
    (image,) = slices(1)
    changed = image.copy()
    changed[-1, -1] ^= 1
    hashes = {image_content_hash(x) for x in (image, changed, image.reshape(80, 64), image.astype(np.uint16))}
    assert len(hashes) == 4 and image_content_hash(image.copy()) == image_content_hash(image)


# --- decode results -----------------------------------------------------------------------------


@pytest.mark.parametrize("model_factory", [GrabCutBox, OtsuBox, TinyConvSegmenter])
def test_decode_is_identical_with_and_without_cache(tmp_path, model_factory):
    yy, xx = np.mgrid[:64, :80]
    rng = np.random.default_rng(5)
    images = [
        np.clip(60 + 120 * ((yy - 30) ** 2 + (xx - 40 - k) ** 2 < 200) + rng.normal(0, 10, (64, 80)), 0, 255).astype(
            np.uint8
        )
        for k in range(3)
    ]
    prompts = [box(20, 10, 60, 50), box(25, 15, 55, 45)]
    plain = model_factory()
    expected = [plain.decode(e, prompts) for e in plain.encode(images)]
    for _ in range(2):  # first pass fills the cache, second is served from it
        cached = CachedSegmenter(model_factory(), EmbeddingCache(tmp_path, 10**8), PREFIX)
        got = [cached.decode(e, prompts) for e in cached.encode(images)]
        assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))
    assert cached.cache.hits == 3
    assert cached.supported_prompts == plain.supported_prompts
    assert cached.describe()["embedding_cache"] == str(tmp_path)


# --- size bound ---------------------------------------------------------------------------------


def _entry_size(tmp_path) -> int:
    probe = EmbeddingCache(tmp_path / "probe", 10**8)
    probe.put("00" * 32, {"x": torch.zeros(1000)})
    return probe.total_bytes


def test_eviction_keeps_the_cache_under_its_bound_least_recently_used_first(tmp_path):
    size = _entry_size(tmp_path)
    cache = EmbeddingCache(tmp_path / "c", 3 * size + size // 2)
    keys = [f"{i:02d}" * 32 for i in range(5)]
    for key in keys[:3]:
        cache.put(key, {"x": torch.zeros(1000)})
    assert cache.get(keys[0]) is not None  # touch the oldest: now keys[1] is least recently used
    cache.put(keys[3], {"x": torch.zeros(1000)})
    assert cache.evictions == 1 and cache.get(keys[1]) is None and cache.get(keys[0]) is not None
    cache.put(keys[4], {"x": torch.zeros(1000)})
    assert cache.total_bytes <= cache.max_bytes and len(cache) == 3
    assert sum(p.stat().st_size for p in entry_files(cache)) == cache.total_bytes
    assert cache.get(keys[2]) is None  # evicted second


def test_lru_order_survives_reopening(tmp_path):
    size = _entry_size(tmp_path)
    cache = EmbeddingCache(tmp_path / "c", 10 * size)
    keys = [f"{i:02d}" * 32 for i in range(3)]
    for key in keys:
        cache.put(key, {"x": torch.zeros(1000)})
    for path in entry_files(cache):  # give the writes distinct, old access times
        os.utime(path, (time.time() - 100, time.time() - 100))
    time.sleep(0.01)
    cache.get(keys[0])  # most recent access
    reopened = EmbeddingCache(tmp_path / "c", 2 * size + size // 2)
    reopened.put("ff" * 32, {"x": torch.zeros(1000)})
    assert reopened.get(keys[0]) is not None and reopened.get("ff" * 32) is not None
    assert len(reopened) == 2


def test_an_entry_larger_than_the_bound_is_not_stored(tmp_path):
    cache = EmbeddingCache(tmp_path, 100)
    cache.put("aa" * 32, {"x": torch.zeros(1000)})
    assert len(cache) == 0 and cache.get("aa" * 32) is None


def test_bad_size_and_unwritable_folder_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="must be positive"):
        EmbeddingCache(tmp_path, 0)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="cannot create embedding cache folder"):
        EmbeddingCache(tmp_path / "file" / "sub", 10**6)


# --- corruption and atomic writes ---------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "foreign"])
def test_corrupted_entries_are_detected_and_recomputed(tmp_path, damage):
    model = TinyConvSegmenter()
    images = slices(2)
    expected = CachedSegmenter(model, EmbeddingCache(tmp_path, 10**8), PREFIX).encode(images)
    victim = entry_files(EmbeddingCache(tmp_path, 10**8))[0]
    blob = victim.read_bytes()
    victim.write_bytes(
        {
            "flip": blob[:-50] + bytes([blob[-50] ^ 0xFF]) + blob[-49:],
            "truncate": blob[: len(blob) // 2],
            "empty": b"",
            "foreign": b"not an embedding at all",
        }[damage]
    )
    cached = CachedSegmenter(model, EmbeddingCache(tmp_path, 10**8), PREFIX)
    again = cached.encode(images)
    assert cached.cache.corrupted == 1 and cached.cache.hits == 1
    assert model.calls == [2, 1]
    assert all(torch.equal(a["features"], b["features"]) for a, b in zip(expected, again, strict=True))
    fresh = CachedSegmenter(model, EmbeddingCache(tmp_path, 10**8), PREFIX)
    fresh.encode(images)
    assert fresh.cache.hits == 2 and fresh.cache.corrupted == 0  # the recomputed entry was stored again


def test_writes_leave_no_temporary_files_and_stale_ones_are_cleaned(tmp_path):
    cache = EmbeddingCache(tmp_path, 10**8)
    cache.put("ab" * 32, {"x": torch.ones(3)})
    assert list(tmp_path.rglob("*.tmp")) == []
    stale = tmp_path / "ab" / "killed-writer.tmp"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    EmbeddingCache(tmp_path, 10**8)
    assert not stale.exists()


def test_uncacheable_embeddings_run_uncached(tmp_path, caplog):
    class Opaque(TinyConvSegmenter):
        def encode(self, images):
            return [{"handle": object()} for _ in images]

    cached = CachedSegmenter(Opaque(), EmbeddingCache(tmp_path, 10**8), PREFIX)
    assert len(cached.encode(slices(2))) == 2
    assert len(cached.cache) == 0 and "not caching embeddings" in caplog.text


def test_segmenter_key_prefix_follows_the_manifest_but_not_the_checkpoint_path():
    class Described:
        def __init__(self, **manifest):
            self.manifest = manifest

        def describe(self):
            return self.manifest

    from mskbench.segmenters.cache import segmenter_key_prefix

    base = dict(architecture="sam", variant="vit_b", checkpoint="/a/sam.pth", checkpoint_sha256="ab" * 32,
                precision="fp32", preprocessing="ResizeLongestSide(1024)")  # fmt: skip
    prefix = segmenter_key_prefix("sam", Described(**base))
    assert segmenter_key_prefix("sam", Described(**{**base, "checkpoint": "/b/moved.pth"})) == prefix
    for change in ({"precision": "bf16"}, {"checkpoint_sha256": "cd" * 32}, {"preprocessing": "square1024"}):
        assert segmenter_key_prefix("sam", Described(**{**base, **change})) != prefix
    assert segmenter_key_prefix("medsam", Described(**base)) != prefix


# --- a real SAM-family segmenter ----------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["sam", "sam2"])
def test_round_trip_with_a_real_sam_family_segmenter(tmp_path, plugin):
    """Embeddings of a SAM / SAM 2 segmenter (small random model) through the cache as a run uses it:
    keyed by the manifest, stored, served in a later run without an encoder call, decoded identically."""
    from sam_family_tiny import phantom, prompt, tiny_sam, tiny_sam2

    from mskbench.segmenters.cache import segmenter_key_prefix
    from mskbench.segmenters.sam import SamSegmenter
    from mskbench.segmenters.sam2_image import Sam2Segmenter

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        if plugin == "sam":
            segmenter = SamSegmenter(tiny_sam(seed=2), device="cpu", precision="fp32", variant="tiny")
        else:
            segmenter = Sam2Segmenter(tiny_sam2(seed=2), device="cpu", precision="fp32", variant="tiny")
        images = [phantom(120, 170, seed=i) for i in range(2)] + [phantom(100, 170, seed=9)]
        prefix = segmenter_key_prefix(plugin, segmenter)
        plain = CachedSegmenter(segmenter, EmbeddingCache(tmp_path, 10**9), prefix).encode(images)  # all misses
        calls = []
        hook = segmenter.model.image_encoder.register_forward_hook(lambda *args: calls.append(1))
        try:
            later = CachedSegmenter(segmenter, EmbeddingCache(tmp_path, 10**9), prefix)
            served = later.encode(images)
        finally:
            hook.remove()
        assert calls == [] and (later.cache.hits, later.cache.misses) == (3, 0)
        prompts = [
            prompt("box", 1, box=(10, 12, 120, 90)),
            prompt("box+point", 2, box=(30, 20, 160, 99), points=[(80, 50)], point_labels=[1]),
            prompt("point", 3, points=[(60, 40)], point_labels=[1]),
        ]
        for fresh, stored in zip(plain, served, strict=True):
            assert fresh.keys() == stored.keys()
            for key, value in fresh.items():
                if isinstance(value, torch.Tensor):
                    assert torch.equal(stored[key], value) and stored[key].dtype == value.dtype, key
                else:
                    assert stored[key] == value and type(stored[key]) is type(value), key
            np.testing.assert_array_equal(later.decode(stored, prompts), segmenter.decode(fresh, prompts))
        assert later.describe()["architecture"] == plugin
    finally:
        torch.set_num_threads(before)

"""Build one planned model the way every process that runs it must: the plugin's factory, then the embedding cache.

The driver builds each model once to check it and record its manifest;
a Ray device actor (:mod:`mskbench.execution.executors.device_actors`)
builds the same model again on its own GPU, so both go through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mskbench.plan import Plan, construct


def construct_planned(plan: Plan, name: str, device: str) -> Any:
    """The plugin factory's model ``name`` on ``device``, with the suite's checkpoint."""
    planned = plan.models[name]
    return construct(planned.info, planned.params, f"models.{name}", device=device, checkpoint=planned.entry.checkpoint)


def with_embedding_cache(plan: Plan, name: str, model: Any) -> Any:
    """``model`` behind the suite's embedding cache (``[output] embedding_cache``), if it has one and ``model`` is 2D."""
    directory = plan.suite.output.get("embedding_cache")
    if not directory or plan.models[name].kind.kind != "slice":
        return model
    from mskbench.segmenters.cache import CachedSegmenter, EmbeddingCache, segmenter_key_prefix

    max_gb = float(plan.suite.output.get("embedding_cache_max_gb", 2.0))
    cache = EmbeddingCache(Path(directory), max_bytes=int(max_gb * 1e9))
    return CachedSegmenter(model, cache, key_prefix=segmenter_key_prefix(plan.models[name].entry.plugin, model))


def build_planned_model(plan: Plan, name: str, device: str) -> Any:
    """:func:`construct_planned` then :func:`with_embedding_cache`: what a device actor holds."""
    return with_embedding_cache(plan, name, construct_planned(plan, name, device))

"""Checks on what a model plugin's ``encode`` and ``decode`` return (issue 11, item 8).

The runner trusts nothing a plugin hands back: a mask array of the wrong
shape would otherwise hit a numpy broadcast traceback, a float mask with NaN
would silently become True, and ``zip`` would silently drop slices when
``encode`` returns too few embeddings. Each check either returns masks the
runner can use (bool, ``(n_prompts, H, W)``) or raises one
:class:`~mskbench.errors.PluginError` line naming the model entry, its plugin
and what it returned.

Accepted masks (the Segmenter protocol, :mod:`mskbench.protocols`): a numpy
array of shape ``(len(prompts), H, W)`` for an H×W slice, either bool or a
numeric dtype whose values are all 0 or 1 (uint8 0/1 masks are common).
Anything else is refused rather than guessed at: a float map with other values
(probabilities, logits) must be thresholded by the plugin, which knows its own
threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mskbench.errors import PluginError

_SHOWN_VALUES = 3


def model_label(name: str, plugin: str) -> str:
    """How errors name a model: its suite entry and its plugin."""
    return f"models.{name} (plugin '{plugin}')"


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {tuple(value.shape)}"
    return f"{type(value).__module__}.{type(value).__qualname__}".removeprefix("builtins.")


def check_embeddings(embeddings: Any, n_images: int, who: str) -> list[Any]:
    """``encode``'s result as a list of one embedding per image, or one error line."""
    if embeddings is None or isinstance(embeddings, (str, bytes, np.ndarray)) or not isinstance(embeddings, Sequence):
        raise PluginError(
            f"{who}: encode returned {_kind(embeddings)} for {n_images} slices; expected a list with one embedding per slice"
        )
    if len(embeddings) != n_images:
        raise PluginError(
            f"{who}: encode returned {len(embeddings)} embeddings for {n_images} slices; expected one per slice"
        )
    return list(embeddings)


def check_masks(masks: Any, n_prompts: int, shape: tuple[int, int], who: str) -> np.ndarray:
    """``decode``'s result as a bool ``(n_prompts, H, W)`` array, or one error line."""
    height, width = shape
    expected = f"expected a bool array of shape ({n_prompts}, {height}, {width}) (one {height}x{width} mask per prompt)"
    if not isinstance(masks, np.ndarray):
        raise PluginError(f"{who}: decode returned {_kind(masks)} for {n_prompts} prompts; {expected}")
    if masks.ndim != 3 or masks.shape[1:] != (height, width):
        raise PluginError(
            f"{who}: decode returned masks of shape {tuple(masks.shape)} for {n_prompts} prompts on a "
            f"{height}x{width} slice; {expected}"
        )
    if masks.shape[0] != n_prompts:
        raise PluginError(f"{who}: decode returned {masks.shape[0]} masks for {n_prompts} prompts; {expected}")
    if masks.dtype == np.bool_:
        return masks
    if not (np.issubdtype(masks.dtype, np.integer) or np.issubdtype(masks.dtype, np.floating)):
        raise PluginError(f"{who}: decode returned masks of dtype {masks.dtype}; {expected}")
    if np.issubdtype(masks.dtype, np.floating):
        nan = np.isnan(masks)
        if nan.any():
            raise PluginError(
                f"{who}: decode returned float masks with {int(nan.sum())} NaN values; {expected} "
                "(NaN is not a mask decision)"
            )
    other = (masks != 0) & (masks != 1)
    if other.any():
        values = ", ".join(f"{v:g}" for v in np.unique(masks[other])[:_SHOWN_VALUES])
        raise PluginError(
            f"{who}: decode returned {masks.dtype} masks with values other than 0 and 1 (e.g. {values}); {expected} "
            "(threshold scores inside the plugin)"
        )
    return masks.astype(bool)

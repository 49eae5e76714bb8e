"""An example mskbench plugin: one model and one metric, registered through hooks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mskbench.hookspecs import hookimpl
from mskbench.params import Param
from mskbench.protocols import MetricValue
from mskbench.types import Prompt


class MeanThreshold:
    """Keeps the pixels inside the box that are brighter than the box mean (+ offset)."""

    supported_prompts = frozenset({"box"})

    def __init__(self, offset: float = 0.0, device: str = "cpu", checkpoint: str | None = None):
        self.offset = offset

    def encode(self, images: Sequence[np.ndarray]) -> list[dict]:
        return [{"image": np.asarray(image)} for image in images]

    def decode(self, embedding: dict, prompts: Sequence[Prompt]) -> np.ndarray:
        image = embedding["image"]
        masks = np.zeros((len(prompts), *image.shape), dtype=bool)
        for i, prompt in enumerate(prompts):
            x0, y0, x1, y1 = (int(round(v)) for v in prompt.box)
            region = image[y0 : y1 + 1, x0 : x1 + 1].astype(float)
            if region.size:
                masks[i, y0 : y1 + 1, x0 : x1 + 1] = region > region.mean() + self.offset
        return masks

    def describe(self) -> dict:
        return {"architecture": "mean_threshold", "offset": self.offset}


class VolumeSimilarity:
    """1 - |P - R| / (P + R): agrees on size only, blind to position."""

    names = ("volume_similarity",)

    def compute(self, reference, prediction, spacing, case_state) -> dict[str, MetricValue]:
        if case_state == "both_empty":
            return {"volume_similarity": MetricValue(float("nan"))}
        ref, pred = int(reference.sum()), int(prediction.sum())
        return {"volume_similarity": MetricValue(1.0 - abs(pred - ref) / (pred + ref))}


@hookimpl
def mskbench_register_models(register):
    register(
        name="mean_threshold",
        factory=MeanThreshold,
        description="Pixels in the box brighter than the box mean (example plugin).",
        params={"offset": Param("float", default=0.0, help="Added to the box mean before thresholding.")},
    )


@hookimpl
def mskbench_register_metrics(register):
    register(
        name="volume_similarity",
        factory=VolumeSimilarity,
        description="Volume similarity 1 - |P-R|/(P+R) (example plugin).",
    )

"""The `yolo` prompter: boxes from a detector trained by `mskbench detector train`.

Per slice it predicts once, keeps the ``top_k`` highest-scoring boxes of
each requested label's class whose score is at least ``conf``, and returns
them with their score and class. A label the detector misses gets no
prompt (the harness scores it ``miss``); a box for a label absent from the
reference is kept (scored ``false_positive``). ``is_detector`` tells the
runner to record :func:`mskbench.prompting.detections.detection_records`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mskbench.errors import PluginError
from mskbench.prompting.boxes import clip_box, from_continuous
from mskbench.prompting.yolo_weights import build_model, read_card
from mskbench.types import LabelInfo, Prompt, SliceRef


class YoloPrompter:
    """Detector boxes as prompts; not an oracle, it never reads the reference."""

    produces = frozenset({"box"})
    is_detector = True
    reference_free = True

    def __init__(self, weights: str, conf: float = 0.25, top_k: int = 1, imgsz: int = 0, device: str = "cpu") -> None:
        if not 0.0 <= conf <= 1.0:
            raise PluginError(f"conf: {conf!r} must be within [0, 1]")
        if top_k < 1:
            raise PluginError(f"top_k: {top_k!r} must be >= 1")
        self.card = read_card(weights)
        self.conf = conf
        self.top_k = top_k
        self.imgsz = imgsz or self.card.imgsz
        self.device = device
        self.model = build_model(self.card)
        self._checked: set[tuple[int, ...]] = set()

    def check_label_map(self, label_map: Mapping[int, LabelInfo]) -> None:
        """Raise one PluginError line unless every label of the dataset is a class, by id and name."""
        wrong = [
            f"{label} ({info.name})"
            for label, info in sorted(label_map.items())
            if self.card.label_names.get(label) != info.name
        ]
        if wrong:
            raise PluginError(self._mismatch(wrong))

    def _check_labels(self, labels: Sequence[int]) -> None:
        key = tuple(labels)
        if key in self._checked:
            return
        missing = [str(label) for label in labels if label not in self.card.class_of_label]
        if missing:
            raise PluginError(self._mismatch(missing))
        self._checked.add(key)

    def _mismatch(self, labels: list[str]) -> str:
        return (
            f"detector {self.card.weights.name} was trained on dataset '{self.card.dataset}' with labels "
            f"{self.card.describe_labels()}; it has no class for label{'s' if len(labels) > 1 else ''} "
            f"{', '.join(labels)}; retrain it on this dataset with `mskbench detector train`"
        )

    def prompts(
        self,
        image: np.ndarray,
        reference: np.ndarray,
        labels: Sequence[int],
        rng: np.random.Generator,
        where: SliceRef,
    ) -> list[Prompt]:
        self._check_labels(labels)
        rgb = np.repeat(np.asarray(image, dtype=np.uint8)[:, :, None], 3, axis=2)
        result = self.model.predict(rgb, imgsz=self.imgsz, conf=self.conf, device=self.device, verbose=False)[0]
        xyxy = result.boxes.xyxy.cpu().numpy()
        scores = result.boxes.conf.cpu().numpy()
        classes = result.boxes.cls.cpu().numpy().astype(int)
        prompts = []
        for label in labels:
            cls = self.card.class_of_label[label]
            rows = np.flatnonzero(classes == cls)
            rows = rows[np.argsort(-scores[rows], kind="stable")][: self.top_k]
            for rank, row in enumerate(rows):
                box, clipped = clip_box(from_continuous(xyxy[row]), image.shape[:2])
                prompts.append(
                    Prompt(
                        kind="box", label=int(label), prompter="", seed=0,
                        instance=0 if self.top_k == 1 else rank + 1,
                        box=box, score=float(scores[row]), detector_class=int(cls), clipped=clipped,
                    )
                )
        return prompts

"""Slices and reference masks written as an ultralytics YOLO detection dataset.

One class per label; the box of a label on a slice is the tight box of the
whole label (as the `gt_box` prompter in per-label mode makes it), so the
detector learns exactly the prompt it stands in for. Slices without any
label are written with an empty label file: they teach the detector to
stay silent where a structure is absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from mskbench.prompting.boxes import tight_box, to_continuous


def yolo_lines(reference: np.ndarray, class_of_label: Mapping[int, int]) -> list[str]:
    """``class x_center y_center width height`` lines (normalised) for the labels present."""
    height, width = reference.shape
    lines = []
    for label, cls in class_of_label.items():
        box = tight_box(reference == label)
        if box is None:
            continue
        x0, y0, x1, y1 = to_continuous(box)
        lines.append(
            f"{cls} {(x0 + x1) / 2 / width:.6f} {(y0 + y1) / 2 / height:.6f} "
            f"{(x1 - x0) / width:.6f} {(y1 - y0) / height:.6f}"
        )
    return lines


def write_split(
    root: Path,
    split: str,
    slices: Iterable[tuple[str, np.ndarray, np.ndarray]],
    class_of_label: Mapping[int, int],
) -> int:
    """Write (name, uint8 image, reference) slices under ``root/images|labels/split``; return the count."""
    import cv2

    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, image, reference in slices:
        if not cv2.imwrite(str(images / f"{name}.png"), np.ascontiguousarray(image, dtype=np.uint8)):
            raise OSError(f"could not write {images / name}.png")
        text = "\n".join(yolo_lines(reference, class_of_label))
        (labels / f"{name}.txt").write_text(text + "\n" if text else "")
        count += 1
    return count


def write_data_yaml(root: Path, names: Mapping[int, str]) -> Path:
    """The dataset yaml ultralytics reads (absolute paths, so no settings dir is consulted)."""
    import yaml

    path = root / "data.yaml"
    content = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(names)}
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path

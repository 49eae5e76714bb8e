"""Plant subject-level results with known effects into an mskbench DuckDB (schema from mskbench.store).

Dice of subject i, label l, model m = base + subject effect + label effect +
model offset + te_effect * (TE - 20 ms) + residual noise, clipped to [0, 1].
Biomarker prediction = reference * (1 + scale error) + model bias + noise.
A subject row's slice mean is its value + ``slice_mean_offset[model]``.
With `slice_size_effect` set, every (subject, label) also gets slice Dice rows at
the area fractions `SLICE_AREAS`: the subject's Dice, less the effect on the
slices whose object is small (< 0.5 % of the slice).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mskbench.store import RowBuffer, Store, to_json, utcnow

SLICE_AREAS = (0.002, 0.01, 0.02, 0.03, 0.05, 0.08)
"""One small, three medium, two large objects (fixed bins); in pairs, the three tertiles."""


@dataclass
class Plan:
    datasets: Mapping[str, int] = field(default_factory=lambda: {"knee": 24})
    models: Mapping[str, float] = field(default_factory=lambda: {"sam": 0.0, "medsam": -0.05})
    prompters: Sequence[str] = ("gt_box",)
    labels: Sequence[str] = ("femoral_cartilage", "tibial_cartilage")
    seeds: Sequence[int] = (0,)
    base: float = 0.8
    subject_sd: float = 0.05
    noise_sd: float = 0.02
    te_effect: float = 0.0
    te_by_dataset: Mapping[str, float] = field(default_factory=dict)
    biomarker_bias: Mapping[str, float] = field(default_factory=dict)
    biomarker_noise: float = 0.05
    nan_subjects: Mapping[str, Sequence[str]] = field(default_factory=dict)
    missing_subjects: Mapping[str, Sequence[str]] = field(default_factory=dict)
    detector_prompters: Sequence[str] = ()
    slice_mean_offset: Mapping[str, float] = field(default_factory=dict)
    tissues: Mapping[str, str] = field(default_factory=dict)
    prompter_offsets: Mapping[str, float] = field(default_factory=dict)
    slice_size_effect: float | None = None
    run_id: str = "run-1"
    seed: int = 0


def plant(path: str | Path, plan: Plan | None = None, **overrides) -> Path:
    """Write the plan's rows into a fresh database at `path`; returns the path."""
    plan = plan or Plan(**overrides)
    rng = np.random.default_rng(plan.seed)
    path = Path(path)
    store = Store(path)
    buf = RowBuffer()
    buf.add("runs", run_id=plan.run_id, suite_name="planted", suite_hash="abc123", suite_path="suites/planted.toml",
            config=to_json({"seed": plan.seed}), manifest=to_json({"python": "3.11", "packages": {"numpy": "2"}}),
            started_at=utcnow(), finished_at=utcnow(), status="finished")
    for d_index, (dataset, n_subjects) in enumerate(plan.datasets.items()):
        subjects = [f"{dataset}-{i:03d}" for i in range(n_subjects)]
        te_center = plan.te_by_dataset.get(dataset, 20.0 + 10.0 * d_index)
        te = te_center + rng.normal(0, 4.0, n_subjects)
        flip = rng.uniform(10, 90, n_subjects)
        thickness = rng.uniform(0.5, 4.0, n_subjects)
        spacing = rng.uniform(0.3, 0.8, n_subjects)
        is_3d = rng.integers(0, 2, n_subjects)
        subject_effect = rng.normal(0, plan.subject_sd, n_subjects)
        for i, subject in enumerate(subjects):
            buf.add("subjects", run_id=plan.run_id, dataset=dataset, subject_id=subject, split="test",
                    anatomy="knee", field_strength_t=3.0, vendor="GE", sequence="DESS", te_ms=float(te[i]),
                    tr_ms=15.0, flip_angle_deg=float(flip[i]), slice_thickness_mm=float(thickness[i]),
                    pixel_spacing_mm=float(spacing[i]), acquisition_type="3D" if is_3d[i] else "2D",
                    sex="F", age_years=50.0, weight_kg=70.0, spacing=to_json([0.5, 0.5, 1.0]),
                    shape=to_json([16, 64, 64]), n_slices=16, source_sha256=to_json({"image.nii.gz": "0" * 64}))
        reference_thickness = rng.uniform(1.5, 3.0, n_subjects)
        for model, offset in plan.models.items():
            for prompter in plan.prompters:
                for seed in plan.seeds:
                    cell = f"{dataset}|{model}|{prompter}|{seed}"
                    buf.add("cells", run_id=plan.run_id, cell_id=cell, dataset=dataset, model=model,
                            prompter=prompter, seed=seed, dataset_plugin=dataset, model_plugin=model,
                            prompter_plugin=prompter, params=to_json({}), status="done", skip_reason=None)
                    for i, subject in enumerate(subjects):
                        if subject in plan.missing_subjects.get(model, ()):
                            buf.add("subject_status", run_id=plan.run_id, cell_id=cell, dataset=dataset,
                                    subject_id=subject, status="skipped", reason="planted", finished_at=utcnow())
                            continue
                        for l_index, label in enumerate(plan.labels):
                            dice = (plan.base + subject_effect[i] - 0.03 * l_index + offset
                                    + plan.prompter_offsets.get(prompter, 0.0)
                                    + plan.te_effect * (te[i] - 20.0) + rng.normal(0, plan.noise_sd))
                            dice = float(np.clip(dice, 0.0, 1.0))
                            if subject in plan.nan_subjects.get(model, ()):
                                dice = float("nan")
                            if plan.slice_size_effect is not None:
                                for k, area in enumerate(SLICE_AREAS):
                                    small = area < 0.005
                                    buf.add("slice_metrics", run_id=plan.run_id, cell_id=cell, subject_id=subject,
                                            round=0, slice_index=k, label=l_index + 1, label_name=label,
                                            case_state="hit", area_fraction=area,
                                            size_bin="small" if small else ("large" if area > 0.035 else "medium"),
                                            metric="dice", value=dice - (plan.slice_size_effect if small else 0.0),
                                            substituted=False)
                            shift = plan.slice_mean_offset.get(model, 0.0)
                            for metric, value, sub in (("dice", dice, False), ("hd95", 10 * (1 - dice), dice == 0)):
                                buf.add("subject_metrics", run_id=plan.run_id, cell_id=cell, subject_id=subject,
                                        label=l_index + 1, label_name=label,
                                        case_state="hit" if np.isfinite(dice) else "both_empty", metric=metric,
                                        value=value, substituted=sub, n_slices=16,
                                        slice_mean=value + (shift if metric == "dice" else -10 * shift),
                                        tissue=plan.tissues.get(label))
                        ref = float(reference_thickness[i])
                        pred = ref * (1 + rng.normal(0, plan.biomarker_noise)) + plan.biomarker_bias.get(model, 0.0)
                        for source, value in (("reference", ref), ("prediction", pred)):
                            buf.add("biomarkers", run_id=plan.run_id, cell_id=cell, subject_id=subject,
                                    structure="femoral_cartilage", biomarker="cartilage_thickness",
                                    method="medial_axis", source=source, instance=0, value=value, unit="mm")
                        if prompter in plan.detector_prompters:
                            for s in range(4):
                                present = s < 3
                                detected = bool(present and rng.random() < 0.8) or (not present and rng.random() < 0.2)
                                buf.add("detections", run_id=plan.run_id, cell_id=cell, subject_id=subject,
                                        slice_index=s, label=1, reference_present=present, detected=detected,
                                        score=float(rng.uniform(0.3, 1.0)) if detected else None,
                                        box_iou=float(rng.uniform(0.5, 0.95)) if detected and present else None,
                                        hit=bool(detected and present))
                        buf.add("prompts", run_id=plan.run_id, cell_id=cell, subject_id=subject, slice_index=8,
                                prompt_index=0, label=1, instance=0, kind="box", x_min=10.0, y_min=12.0,
                                x_max=40.0, y_max=30.0, points=None, point_labels=None, prompter=prompter,
                                seed=seed, score=None, detector_class=None, clipped=False)
                        buf.add("subject_status", run_id=plan.run_id, cell_id=cell, dataset=dataset,
                                subject_id=subject, status="done", reason=None, finished_at=utcnow())
    store.write(buf)
    store.close()
    return path


def empty_db(path: str | Path) -> Path:
    """A DuckDB file with a table that is not mskbench's."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE other (x INTEGER)")
    con.close()
    return Path(path)

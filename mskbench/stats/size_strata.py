"""Dice by reference object size: SAMRI's bins and tertiles, with a test across bins (DESIGN §9).

An object is one label on one slice where the reference holds it; its size
is its area as a fraction of the slice (stored per slice row as
``area_fraction``). Two binnings:

- ``samri``: small < 0.5 %, medium 0.5–3.5 %, large > 3.5 % (SAMRI's bins,
  :func:`mskbench.metrics.engine.size_bin`);
- ``tertile``: T1–T3 at the 1/3 and 2/3 quantiles of each label's objects in
  the dataset (:func:`mskbench.metrics.engine.tertile_bins`; a femur's small
  third is not a cartilage's), the same cut points for every model and
  prompter because the reference is the same.

Per (dataset, model, prompter, binning, bin): n objects, n subjects, mean
Dice and a 95 % subject-cluster bootstrap percentile CI (slices of one
subject are not independent, so subjects are resampled with all their
objects). Across bins: Kruskal–Wallis (``scipy.stats.kruskal``) on the
object values, as the source study did; it treats objects as independent,
so read its p-value as descriptive.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from mskbench.metrics.engine import tertile_bins

CELL_KEYS = ["dataset", "model", "prompter"]
BINNINGS = {"samri": ("small", "medium", "large"), "tertile": ("T1", "T2", "T3")}
OBJECT_KEYS = ["subject_id", "slice_index", "structure"]


def with_tertiles(objects: pd.DataFrame) -> pd.DataFrame:
    """Add ``tertile``: cut points from the distinct reference objects of each (dataset, label)."""
    if objects.empty:
        return objects.assign(tertile=pd.Series(dtype=object))
    distinct = objects.drop_duplicates(["dataset", *OBJECT_KEYS])[["dataset", *OBJECT_KEYS, "area_fraction"]]
    distinct = distinct.assign(tertile=distinct.groupby(["dataset", "structure"])["area_fraction"].transform(
        tertile_bins))
    return objects.merge(distinct.drop(columns="area_fraction"), on=["dataset", *OBJECT_KEYS], how="left")


def cluster_mean_ci(values: np.ndarray, clusters: np.ndarray, rng: np.random.Generator, n_boot: int,
                    alpha: float = 0.05) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` when whole clusters (subjects) are resampled."""
    codes, which = np.unique(clusters, return_inverse=True)
    sums = np.bincount(which, weights=values, minlength=len(codes))
    counts = np.bincount(which, minlength=len(codes)).astype(float)
    drawn = rng.integers(0, len(codes), size=(n_boot, len(codes)))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    low, high = np.percentile(means, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


def size_strata(objects: pd.DataFrame, rng_for: Callable[[Sequence[object]], np.random.Generator], n_boot: int,
                alpha: float = 0.05, min_objects: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summaries, tests): one row per (cell, binning, bin) and one Kruskal–Wallis row per (cell, binning)."""
    objects = with_tertiles(objects[np.isfinite(objects["value"].astype(float))]) if not objects.empty else objects
    summary_rows, test_rows = [], []
    for key, cell in (objects.groupby(CELL_KEYS, sort=True) if not objects.empty else []):
        labels = dict(zip(CELL_KEYS, key))
        for binning, bins in BINNINGS.items():
            column = "size_bin" if binning == "samri" else "tertile"
            samples = []
            for name in bins:
                part = cell[cell[column] == name]
                values = part["value"].to_numpy(float)
                row = labels | {"binning": binning, "bin": name, "n_objects": len(values),
                                "n_subjects": part["subject_id"].nunique(),
                                "mean": float(values.mean()) if len(values) else np.nan,
                                "median": float(np.median(values)) if len(values) else np.nan,
                                "ci_low": np.nan, "ci_high": np.nan}
                if len(values):
                    rng = rng_for(("size_strata", *key, binning, name))
                    row["ci_low"], row["ci_high"] = cluster_mean_ci(values, part["subject_id"].to_numpy(), rng,
                                                                    n_boot, alpha)
                    samples.append(values)
                summary_rows.append(row)
            test_rows.append(labels | {"binning": binning} | kruskal_across(samples, min_objects))
    summary = pd.DataFrame(summary_rows, columns=[*CELL_KEYS, "binning", "bin", "n_objects", "n_subjects", "mean",
                                                  "median", "ci_low", "ci_high"])
    tests = pd.DataFrame(test_rows, columns=[*CELL_KEYS, "binning", "n_bins", "statistic", "p_value", "status",
                                             "reason"])
    return summary, tests


def kruskal_across(samples: list[np.ndarray], min_objects: int) -> dict[str, object]:
    """Kruskal–Wallis H across the bins holding at least ``min_objects`` objects, or why not."""
    used = [s for s in samples if len(s) >= min_objects]
    row: dict[str, object] = {"n_bins": len(used), "statistic": np.nan, "p_value": np.nan}
    if len(used) < 2:
        return row | {"status": "not computed",
                      "reason": f"{len(used)} bin(s) with at least {min_objects} objects; 2 needed"}
    if np.ptp(np.concatenate(used)) == 0:
        return row | {"statistic": 0.0, "p_value": 1.0, "status": "computed", "reason": "all values identical"}
    result = stats.kruskal(*used)
    return row | {"statistic": float(result.statistic), "p_value": float(result.pvalue), "status": "computed",
                  "reason": ""}

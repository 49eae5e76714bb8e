"""Dice against object size, from the per-slice rows the scorer stores (slice_metrics.area_fraction, size_bin).

Object size is the reference area over the slice area. Two binnings, as in
SAMRI: the fixed bins small (< 0.5 %), medium (0.5–3.5 %) and large
(> 3.5 %) of `mskbench.metrics.engine.size_bin`, and tertiles of the
dataset's own sizes per label (`tertile_bins`, cut points from the distinct
reference slices, so every model is binned alike). The value of a bin is the
mean slice Dice over every slice in it (slices pooled, as SAMRI reports).
Slices without reference (no object size) are left out.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from mskbench.metrics.engine import TERTILES, tertile_bins
from mskbench.stats import data
from mskbench.stats.rounds import FINAL, RoundChoice

FIXED_BINS = ("small", "medium", "large")
SLICE_KEYS = ["subject_id", "label_name", "slice_index"]


def slice_dice(con: duckdb.DuckDBPyConnection, dataset: str, at_round: RoundChoice = FINAL) -> pd.DataFrame:
    """Slice Dice with the object size, latest run, at the chosen round; empty without slice rows."""
    if "slice_metrics" not in data.tables(con):
        return pd.DataFrame()
    step = "coalesce(s.round, 0)" if "round" in data._columns(con, "slice_metrics") else "0"
    order = data._latest_run_order(con)
    rows = con.execute(
        f"""
        SELECT c.model, c.prompter, c.seed, s.subject_id, s.label_name, s.slice_index, s.area_fraction,
               s.size_bin, s.value, {step} AS round
        FROM slice_metrics s JOIN cells c USING (run_id, cell_id)
        WHERE c.dataset = ? AND s.metric = 'dice' AND s.area_fraction > 0
        QUALIFY row_number() OVER (
            PARTITION BY c.model, c.prompter, c.seed, s.subject_id, s.label_name, s.slice_index
                         {'' if at_round == FINAL else ', ' + step}
            ORDER BY {order}, {step} DESC) = 1
        """,
        [dataset],
    ).df()
    return rows if at_round == FINAL else rows[rows["round"] == at_round]


def size_strata(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per binning, rows (cell, bin, order, mean, n_slices): the pooled mean slice Dice of each bin."""
    if rows.empty:
        return {}
    sizes = rows[[*SLICE_KEYS, "area_fraction"]].drop_duplicates(SLICE_KEYS)
    sizes["tertile"] = sizes.groupby("label_name")["area_fraction"].transform(tertile_bins)
    rows = rows.merge(sizes[[*SLICE_KEYS, "tertile"]], on=SLICE_KEYS)
    rows["cell"] = rows["model"] + " / " + rows["prompter"]
    out = {}
    for name, column, order in (("size bin (% of slice area)", "size_bin", FIXED_BINS),
                                ("size tertile per label", "tertile", TERTILES)):
        means = rows.groupby(["cell", column])["value"].agg(mean="mean", n_slices="count").reset_index()
        means = means.rename(columns={column: "bin"})
        means["order"] = means["bin"].map({b: i for i, b in enumerate(order)})
        out[name] = means
    return out

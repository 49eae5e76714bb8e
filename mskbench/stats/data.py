"""Read the subject-level records the analyses run on (DESIGN §5, §9).

Every analysis works on one value per (dataset, model, prompter, subject,
structure): when a subject was evaluated under several prompt seeds the seed
values are averaged (the prompt noise is not the subject's variability), and
when several runs hold the same (cell, subject) the most recent run wins.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mskbench.errors import StoreError, UserError
from mskbench.interaction.summary import DERIVED_METRICS
from mskbench.params import suggest
from mskbench.stats import rounds
from mskbench.stats.rounds import FINAL, RoundChoice

REQUIRED_TABLES = ("cells", "subject_metrics")
ALL_LABELS = "mean over labels"
"""Structure name of the per-subject mean over a dataset's labels."""
TISSUE_PREFIX = "tissue: "
"""Structure names of the tissue tier: ``tissue: cartilage`` is the subject's mean over its cartilage labels."""

VOLUME = "volume"
SLICE_MEAN = "slice_mean"
SUBJECT_VALUES = (VOLUME, SLICE_MEAN)
"""What a subject's value is: the metric of the 3D volume (default), or the mean of its slice values
(the source study's subject Dice); ``--subject-value``."""

ACQUISITION_COLUMNS = (
    "te_ms", "tr_ms", "flip_angle_deg", "slice_thickness_mm", "pixel_spacing_mm",
    "acquisition_type", "field_strength_t", "vendor",
)


def open_results(path: str | Path) -> duckdb.DuckDBPyConnection:
    """Open a results database read-only and check it holds mskbench's tables."""
    from mskbench.store import Store

    con = Store.open_for_reading(path).con
    missing = [t for t in REQUIRED_TABLES if t not in tables(con)]
    if missing:
        con.close()
        raise StoreError(
            f"{path}: not an mskbench results database (missing table {', '.join(missing)}); "
            f"pass the --db written by `mskbench run`"
        )
    return con


def tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _latest_run_order(con: duckdb.DuckDBPyConnection) -> str:
    """ORDER BY clause ranking rows by recency of their run (runs table optional)."""
    if "runs" in tables(con):
        return "(SELECT started_at FROM runs r WHERE r.run_id = c.run_id) DESC NULLS LAST, c.run_id DESC"
    return "c.run_id DESC"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]).fetchall()}


def _metric_round(con: duckdb.DuckDBPyConnection) -> str:
    """The round of a subject_metrics row ``m``; databases from before rounds hold round 0 only."""
    return "m.round" if "round" in _columns(con, "subject_metrics") else "0"


def _biomarker_round(con: duckdb.DuckDBPyConnection) -> str:
    """The round of a biomarkers row ``b``: NULL for a reference (it does not depend on the round).

    A prediction without a round was written before the column existed, when
    biomarkers were measured on the final round only: it reads as that
    (cell, subject)'s last scored round.
    """
    stored = "b.round" if "round" in _columns(con, "biomarkers") else "NULL"
    final = (f"(SELECT max({_metric_round(con)}) FROM subject_metrics m WHERE m.run_id = b.run_id "
             f"AND m.cell_id = b.cell_id AND m.subject_id = b.subject_id)")
    return f"CASE WHEN b.source = 'reference' THEN NULL ELSE coalesce({stored}, {final}, 0) END"


SUBJECT_KEYS = ["dataset", "model", "prompter", "subject_id", "structure", "metric"]


def subject_metrics(con: duckdb.DuckDBPyConnection, metrics: Sequence[str] | None = None,
                    at_round: RoundChoice = FINAL, subject_value: str = VOLUME) -> pd.DataFrame:
    """One row per (dataset, model, prompter, subject, structure, metric) at the chosen round.

    Columns: value (seed mean, NaN when every seed was excluded), excluded
    (the value is NaN, e.g. both masks empty), substituted (any seed's value
    was a substitute such as HD95 = image diagonal), n_seeds.
    Adds the structure ``ALL_LABELS`` (the subject's mean over its labels) and
    the tissue tier ``tissue: <class>`` (mean over the labels of a tissue class
    holding at least two of the dataset's labels).
    ``at_round`` (:mod:`mskbench.stats.rounds`): ``final`` reads each cell's last
    round of the latest run; ``N`` reads round N and leaves out derived metrics.
    ``subject_value``: ``volume`` reads the metric of the 3D volume,
    ``slice_mean`` the mean of the subject's finite slice values (derived
    interaction metrics have no slice values and are left out).
    """
    rows = _metric_rows(con, metrics, every_round=at_round != FINAL, subject_value=subject_value)
    if at_round != FINAL or subject_value != VOLUME:
        rows = rows[~rows["metric"].isin(DERIVED_METRICS)]
    if at_round != FINAL:
        rows = rounds.keep_round(rows, at_round)
    return _per_subject(rows, SUBJECT_KEYS)


def subject_metric_rounds(con: duckdb.DuckDBPyConnection, metric: str) -> pd.DataFrame:
    """Like :func:`subject_metrics` for one metric, at every round (column ``round``), for the round curves."""
    return _per_subject(_metric_rows(con, [metric], every_round=True), [*SUBJECT_KEYS, "round"])


def check_subject_value(subject_value: str, option: str = "--subject-value") -> str:
    """``volume`` or ``slice_mean``; anything else is one usage line."""
    if subject_value not in SUBJECT_VALUES:
        raise UserError(f"{option} {subject_value}: unknown{suggest(subject_value, list(SUBJECT_VALUES))}; "
                        f"choose {' or '.join(SUBJECT_VALUES)}")
    return subject_value


def _tissue(con: duckdb.DuckDBPyConnection) -> str:
    """A subject_metrics row's tissue class; NULL in databases from before the column (guessed from the name later)."""
    return "m.tissue" if "tissue" in _columns(con, "subject_metrics") else "NULL"


def _metric_rows(con: duckdb.DuckDBPyConnection, metrics: Sequence[str] | None, every_round: bool,
                 subject_value: str = VOLUME) -> pd.DataFrame:
    """Seed-level rows of the latest run: every round, or each (cell, subject)'s last round only."""
    check_subject_value(subject_value)
    if subject_value == SLICE_MEAN and "slice_mean" not in _columns(con, "subject_metrics"):
        raise UserError("--subject-value slice_mean: this database has no subject_metrics.slice_mean column; "
                        "rerun the suite with this release, or use --subject-value volume")
    where = ""
    params: list[object] = []
    if metrics:
        where = f"WHERE m.metric IN ({', '.join('?' for _ in metrics)})"
        params = list(metrics)
    step = _metric_round(con)
    return con.execute(
        f"""
        SELECT c.dataset, c.model, c.prompter, c.seed, m.subject_id, m.label_name AS structure,
               m.metric, m.{'value' if subject_value == VOLUME else 'slice_mean'} AS value,
               coalesce(m.substituted, false) AS substituted, {step} AS round, {_tissue(con)} AS tissue
        FROM subject_metrics m JOIN cells c USING (run_id, cell_id)
        {where}
        QUALIFY row_number() OVER (
            PARTITION BY c.dataset, c.model, c.prompter, c.seed, m.subject_id, m.label_name, m.metric
                         {', ' + step if every_round else ''}
            ORDER BY {_latest_run_order(con)}, {step} DESC) = 1
        """,
        params,
    ).df()


def _per_subject(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Seed means per ``keys``, plus the mean over labels (``ALL_LABELS``) and the tissue tier."""
    if rows.empty:
        return pd.DataFrame(columns=[*keys, "value", "excluded", "substituted", "n_seeds"])
    rows = rows.assign(value=rows["value"].astype(float))
    per_subject = rows.groupby(keys, sort=True).agg(
        value=("value", "mean"), substituted=("substituted", "any"), n_seeds=("seed", "nunique"),
        tissue=("tissue", "first"),
    ).reset_index()
    per_subject["excluded"] = per_subject["value"].isna()
    subject_keys = [k for k in keys if k != "structure"]
    return pd.concat([per_subject.drop(columns="tissue"), _label_mean(per_subject, subject_keys),
                      tissue_tier(per_subject, subject_keys)], ignore_index=True)


def _label_mean(per_subject: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The per-subject mean over labels, for datasets with more than one label."""
    n_labels = per_subject.groupby("dataset")["structure"].nunique()
    multi = per_subject[per_subject["dataset"].isin(n_labels[n_labels > 1].index)]
    if multi.empty:
        return multi.iloc[0:0].drop(columns="tissue", errors="ignore")
    out = multi.groupby(keys, sort=True).agg(
        value=("value", "mean"), substituted=("substituted", "any"), n_seeds=("n_seeds", "max")
    ).reset_index()
    out["structure"] = ALL_LABELS
    out["excluded"] = out["value"].isna()
    return out.drop(columns="tissue", errors="ignore")


def tissue_tier(per_subject: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per-subject means over the labels of each tissue class that holds at least two of a dataset's labels.

    The tissue class is the one the dataset declared (stored per row since
    the ``tissue`` column exists); older databases guess it from the label
    name (:func:`mskbench.data.labels.guess_tissue`). A class with one label
    would only repeat that label's row, so it gets none; ``other`` is no
    tissue (it collects whatever is unclassified), so it gets none either.
    """
    from mskbench.data.labels import guess_tissue
    from mskbench.types import TissueClass

    tissue = per_subject["tissue"].where(per_subject["tissue"].notna(),
                                         per_subject["structure"].map(lambda name: str(guess_tissue(name))))
    frame = per_subject.assign(tissue=tissue)
    n_labels = frame.groupby(["dataset", "tissue"])["structure"].transform("nunique")
    multi = frame[(n_labels > 1) & (frame["tissue"] != str(TissueClass.OTHER))]
    if multi.empty:
        return multi.iloc[0:0].drop(columns="tissue")
    out = multi.groupby([*keys, "tissue"], sort=True).agg(
        value=("value", "mean"), substituted=("substituted", "any"), n_seeds=("n_seeds", "max")
    ).reset_index()
    out["structure"] = TISSUE_PREFIX + out.pop("tissue")
    out["excluded"] = out["value"].isna()
    return out


def whole_subject(values: pd.DataFrame) -> pd.DataFrame:
    """Rows describing the whole subject: the label mean, or the only label of a one-label dataset."""
    multi = set(values.loc[values["structure"] == ALL_LABELS, "dataset"])
    return values[(values["structure"] == ALL_LABELS) | ~values["dataset"].isin(multi)]


def slice_objects(con: duckdb.DuckDBPyConnection, metric: str = "dice", at_round: RoundChoice = FINAL) -> pd.DataFrame:
    """One row per reference object (dataset, model, prompter, subject, slice, label) at the chosen round.

    Only slices where the label is present in the reference (``area_fraction``
    > 0: an object has a size). Columns: structure, area_fraction (object
    pixels / slice pixels), size_bin (SAMRI's small / medium / large), value
    (seed mean of ``metric``). Empty when the database holds no slice rows.
    """
    if "slice_metrics" not in tables(con):
        return pd.DataFrame(columns=["dataset", "model", "prompter", "subject_id", "slice_index", "structure",
                                     "area_fraction", "size_bin", "value"])
    step = "m.round" if "round" in _columns(con, "slice_metrics") else "0"
    rows = con.execute(
        f"""
        SELECT c.dataset, c.model, c.prompter, c.seed, m.subject_id, m.slice_index, m.label_name AS structure,
               m.area_fraction, m.size_bin, m.value, {step} AS round
        FROM slice_metrics m JOIN cells c USING (run_id, cell_id)
        WHERE m.metric = ? AND m.area_fraction > 0
        QUALIFY row_number() OVER (
            PARTITION BY c.dataset, c.model, c.prompter, c.seed, m.subject_id, m.slice_index, m.label_name
                         {'' if at_round == FINAL else ', ' + step}
            ORDER BY {_latest_run_order(con)}, {step} DESC) = 1
        """,
        [metric],
    ).df()
    if at_round != FINAL:
        rows = rounds.keep_round(rows, at_round, "slice")
    keys = ["dataset", "model", "prompter", "subject_id", "slice_index", "structure"]
    if rows.empty:
        return rows.drop(columns=["seed", "round"])
    return rows.assign(value=rows["value"].astype(float)).groupby(keys, sort=True).agg(
        area_fraction=("area_fraction", "first"), size_bin=("size_bin", "first"), value=("value", "mean")
    ).reset_index()


def biomarker_pairs(con: duckdb.DuckDBPyConnection, at_round: RoundChoice = FINAL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and prediction biomarker values side by side, the prediction at the chosen round.

    Returns (pairs, dropped): pairs has one row per (dataset, model, prompter,
    structure, biomarker, method, unit, subject, instance) with columns
    ``reference`` and ``prediction``; dropped counts the rows without a
    finite partner per group (column ``unpaired``).
    """
    if "biomarkers" not in tables(con):
        return pd.DataFrame(), pd.DataFrame()
    step = _biomarker_round(con)
    rows = con.execute(
        f"""
        SELECT c.dataset, c.model, c.prompter, c.seed, b.subject_id, b.structure, b.biomarker,
               coalesce(b.method, '') AS method, coalesce(b.unit, '') AS unit,
               coalesce(b.instance, 0) AS instance, b.source, b.value, {step} AS round
        FROM biomarkers b JOIN cells c USING (run_id, cell_id)
        QUALIFY row_number() OVER (
            PARTITION BY c.dataset, c.model, c.prompter, c.seed, b.subject_id, b.structure, b.biomarker,
                         b.method, b.instance, b.source {'' if at_round == FINAL else ', ' + step}
            ORDER BY {_latest_run_order(con)}, {step} DESC NULLS LAST) = 1
        """
    ).df()
    if at_round != FINAL:
        reference = rows["source"] == "reference"
        chosen = rounds.keep_round(rows[~reference], at_round, "biomarker prediction", required=False,
                                   hint='; measure every round with [biomarkers] rounds = "all"')
        cells = chosen[["dataset", "model", "prompter"]].drop_duplicates()
        rows = pd.concat([rows[reference].merge(cells), chosen], ignore_index=True)
    if rows.empty:
        return pd.DataFrame(), pd.DataFrame()
    rows["value"] = rows["value"].astype(float)
    group = ["dataset", "model", "prompter", "structure", "biomarker", "method", "unit"]
    keys = group + ["subject_id", "instance"]
    wide = rows.groupby([*keys, "source"], sort=True)["value"].mean().unstack("source")
    for source in ("reference", "prediction"):
        if source not in wide:
            wide[source] = np.nan
    wide = wide[["reference", "prediction"]].reset_index()
    wide.columns.name = None
    finite = np.isfinite(wide["reference"]) & np.isfinite(wide["prediction"])
    dropped = wide[~finite].groupby(group).size().rename("unpaired").reset_index()
    return wide[finite].reset_index(drop=True), dropped


def acquisition(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per (dataset, subject) with the acquisition parameters (latest run)."""
    if "subjects" not in tables(con):
        return pd.DataFrame(columns=["dataset", "subject_id", *ACQUISITION_COLUMNS])
    order = "(SELECT started_at FROM runs r WHERE r.run_id = s.run_id) DESC NULLS LAST, s.run_id DESC" \
        if "runs" in tables(con) else "s.run_id DESC"
    return con.execute(
        f"""
        SELECT s.dataset, s.subject_id, {', '.join('s.' + c for c in ACQUISITION_COLUMNS)}
        FROM subjects s
        QUALIFY row_number() OVER (PARTITION BY s.dataset, s.subject_id ORDER BY {order}) = 1
        """
    ).df()


def skipped_counts(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Subjects the runner skipped, per (dataset, model, prompter)."""
    if "subject_status" not in tables(con):
        return pd.DataFrame(columns=["dataset", "model", "prompter", "skipped"])
    return con.execute(
        """
        SELECT c.dataset, c.model, c.prompter, count(DISTINCT s.subject_id) AS skipped
        FROM subject_status s JOIN cells c USING (run_id, cell_id)
        WHERE s.status = 'skipped' GROUP BY ALL
        """
    ).df()


def known_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [row[0] for row in con.execute("SELECT DISTINCT model FROM cells ORDER BY 1").fetchall()]


def check_names(given: Sequence[str], known: Sequence[str], option: str) -> None:
    """Raise a one-line UserError for a name that is not in the database."""
    for name in given:
        if name not in known:
            listed = ", ".join(known) or "none"
            raise UserError(f"{option} {name}: not in the database{suggest(name, list(known))}; known: {listed}")

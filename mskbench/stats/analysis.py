"""All of DESIGN §9 in one call, and the `stats_*` tables it writes back to DuckDB."""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from mskbench.errors import StoreError, UserError
from mskbench.stats import data
from mskbench.stats.agreement import agreement_row
from mskbench.stats.compare import Thresholds, compare_models
from mskbench.stats.finetune_effects import finetune_effects, model_training
from mskbench.stats.gp_regression import gp_row
from mskbench.stats.icc_mixed import N_BOOT_ICC
from mskbench.stats.mixed import acquisition_effects
from mskbench.stats.prompter_pairs import compare_prompters
from mskbench.stats.ranking import ranking
from mskbench.stats.size_strata import size_strata
from mskbench.stats.rounds import FINAL, RoundChoice, check_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StatsSettings:
    """Everything that changes a number: recorded in `stats_settings`."""

    alpha: float = 0.05
    min_subjects: int = 6
    n_boot: int = 1000
    seed: int = 0
    metrics: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    round: RoundChoice = FINAL
    n_boot_icc: int = N_BOOT_ICC
    subject_value: str = data.VOLUME

    @property
    def tests(self) -> Thresholds:
        return Thresholds(alpha=self.alpha, min_subjects=self.min_subjects)

    def rng_for(self, key: Sequence[object]) -> np.random.Generator:
        """A generator per analysis block, derived from the seed and the block's names."""
        digest = zlib.crc32("\x1f".join(map(str, key)).encode())
        return np.random.default_rng([self.seed, digest])


@dataclass
class StatsResults:
    """The analysis tables; names match the DuckDB tables (`stats_<name>`)."""

    summary: pd.DataFrame
    friedman: pd.DataFrame
    pairwise: pd.DataFrame
    ranking: pd.DataFrame
    agreement: pd.DataFrame
    unpaired_biomarkers: pd.DataFrame
    mixed_effects: pd.DataFrame
    mixed_status: pd.DataFrame
    vif: pd.DataFrame
    gp_regression: pd.DataFrame = field(default_factory=pd.DataFrame)
    prompter_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    size_strata: pd.DataFrame = field(default_factory=pd.DataFrame)
    size_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: StatsSettings = field(default_factory=StatsSettings)
    # fine-tuning covariates from the cells' model-card columns (mskbench.stats.finetune_effects)
    finetune_effects: pd.DataFrame = field(default_factory=pd.DataFrame)
    finetune_vif: pd.DataFrame = field(default_factory=pd.DataFrame)
    finetune_status: pd.DataFrame = field(default_factory=pd.DataFrame)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLE_NAMES}

    def to_json(self) -> str:
        payload = {"settings": asdict(self.settings)}
        payload |= {name: records(frame) for name, frame in self.tables().items()}
        return json.dumps(payload, indent=2, default=str)


TABLE_NAMES = ("summary", "friedman", "pairwise", "ranking", "agreement", "unpaired_biomarkers",
               "mixed_effects", "mixed_status", "vif", "gp_regression", "prompter_pairs", "size_strata", "size_tests",
               "finetune_effects", "finetune_vif", "finetune_status")


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    def clean(value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def summarize(values: pd.DataFrame, skipped: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd, median and n per (dataset, model, prompter, metric, structure), with the counts beside."""
    keys = ["dataset", "model", "prompter", "metric", "structure"]
    grouped = values.groupby(keys, sort=True)
    out = grouped["value"].agg(n="count", mean="mean", sd="std", median="median").reset_index()
    out["excluded"] = grouped["excluded"].sum().to_numpy().astype(int)
    out["substituted"] = grouped["substituted"].sum().to_numpy().astype(int)
    out = out.merge(skipped, on=["dataset", "model", "prompter"], how="left")
    out["skipped"] = out["skipped"].fillna(0).astype(int)
    return out


def agreement(pairs: pd.DataFrame, settings: StatsSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The agreement table, and the GP regression of each group where Bland–Altman rejected normality."""
    keys = ["dataset", "model", "prompter", "structure", "biomarker", "method", "unit"]
    if pairs.empty:
        empty = pd.DataFrame(columns=[*keys, "status", "reason"])
        return empty, empty.copy()
    rows, gp_rows = [], []
    for key, group in pairs.groupby(keys, sort=True):
        labels = dict(zip(keys, key))
        row = agreement_row(group, settings.tests, settings.rng_for(("agreement", *key)), settings.n_boot,
                            settings.n_boot_icc)
        rows.append(labels | row)
        if row["status"] != "computed":
            gp_rows.append(labels | {"status": "not computed", "reason": row["reason"]})
            continue
        rejected = row["ba_method"] == "nonparametric"
        why = (f"Shapiro–Wilk p = {row['shapiro_p']:.3g}, Levene p = {row['levene_p']:.3g} "
               f"({'normal, constant-spread differences rejected' if rejected else 'not rejected; OLS applies'})")
        gp_rows.append(labels | gp_row(group["reference"].to_numpy(float), group["prediction"].to_numpy(float),
                                       rejected, why, settings.seed))
    return pd.DataFrame(rows), pd.DataFrame(gp_rows)


def compute_stats(con: duckdb.DuckDBPyConnection, settings: StatsSettings) -> StatsResults:
    """Read the subject-level rows and run every analysis."""
    if settings.models:
        data.check_names(settings.models, data.known_models(con), "--model")
    check_metrics(settings.metrics, settings.round)
    values = data.subject_metrics(con, list(settings.metrics) or None, settings.round, settings.subject_value)
    if settings.metrics:
        known = set(values["metric"])
        missing = [m for m in settings.metrics if m not in known]
        if missing:
            listed = [r[0] for r in con.execute("SELECT DISTINCT metric FROM subject_metrics ORDER BY 1").fetchall()]
            data.check_names(missing, listed, "--metric")
    if settings.models:
        values = values[values["model"].isin(settings.models)]
    if values.empty:
        raise UserError("the database holds no subject metrics yet; finish a `mskbench run` first")
    log.info("analysing %d subject rows in %d comparison blocks", len(values),
             values.groupby(["dataset", "prompter", "metric", "structure"]).ngroups)
    friedman, pairwise = compare_models(values, settings.tests)
    ranks = ranking(values, lambda key: settings.rng_for(("ranking", *key)), settings.n_boot, settings.min_subjects)
    pairs, unpaired = data.biomarker_pairs(con, settings.round)
    if settings.models and not pairs.empty:
        pairs = pairs[pairs["model"].isin(settings.models)]
    coef, vif, status = acquisition_effects(values, data.acquisition(con), settings.min_subjects)
    ft_coef, ft_vif, ft_status = finetune_effects(values, model_training(con), data.acquisition(con),
                                                  settings.min_subjects)
    agreement_table, gp_table = agreement(pairs, settings)
    objects = data.slice_objects(con, "dice", settings.round)
    if settings.models:
        objects = objects[objects["model"].isin(settings.models)]
    strata, size_tests = size_strata(objects, settings.rng_for, settings.n_boot, settings.alpha)
    return StatsResults(
        summary=summarize(values, data.skipped_counts(con)), friedman=friedman, pairwise=pairwise,
        ranking=ranks, agreement=agreement_table, unpaired_biomarkers=unpaired,
        mixed_effects=coef, mixed_status=status, vif=vif, gp_regression=gp_table,
        prompter_pairs=compare_prompters(values, settings.tests), size_strata=strata, size_tests=size_tests,
        settings=settings, finetune_effects=ft_coef, finetune_vif=ft_vif, finetune_status=ft_status,
    )


def settings_row(settings: StatsSettings) -> dict[str, object]:
    """The settings as one `stats_settings` row (lists joined by commas, the round as text)."""
    return asdict(settings) | {"metrics": ",".join(settings.metrics), "models": ",".join(settings.models),
                               "round": str(settings.round)}


def read_tables(con: duckdb.DuckDBPyConnection, settings: StatsSettings) -> StatsResults | None:
    """The stored `stats_*` tables when `write_tables` wrote them with these settings after the latest run
    started; None when they are missing, stale or from other settings (then compute them)."""
    names = data.tables(con)
    if "stats_settings" not in names or not {f"stats_{name}" for name in TABLE_NAMES} <= names:
        return None
    stored = con.execute("SELECT * FROM stats_settings").df().to_dict(orient="records")
    wanted = settings_row(settings)
    if len(stored) != 1 or any(stored[0].get(key) != value for key, value in wanted.items()):
        return None
    if "runs" in names:
        latest = con.execute(
            "SELECT max(greatest(started_at, coalesce(finished_at, started_at))) FROM runs").fetchone()[0]
        if latest is not None and pd.Timestamp(latest) > pd.Timestamp(stored[0]["created_at"]):
            return None
    frames = {}
    for name in TABLE_NAMES:
        frame = con.execute(f"SELECT * FROM stats_{name}").df()
        frames[name] = pd.DataFrame() if frame.empty and list(frame.columns) == ["status"] else frame
    return StatsResults(**frames, settings=settings)


def write_tables(path: str | Path, results: StatsResults) -> list[str]:
    """Replace the `stats_*` tables in the results database; returns their names."""
    from mskbench.store import Store

    try:
        store = Store.open_for_writing(path, schema=False)
    except StoreError as exc:
        raise StoreError(f"{exc}; or pass --no-write to skip storing the stats tables") from None
    written = []
    with store, store.transaction() as con:
        for name, frame in results.tables().items():
            table = f"stats_{name}"
            if frame.empty and not len(frame.columns):
                frame = pd.DataFrame({"status": pd.Series(dtype="string")})
            con.register("_frame", frame)
            con.execute(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _frame")
            con.unregister("_frame")
            written.append(table)
        settings = pd.DataFrame([settings_row(results.settings)
                                 | {"created_at": datetime.now(timezone.utc).replace(tzinfo=None)}])
        con.register("_frame", settings)
        con.execute("CREATE OR REPLACE TABLE stats_settings AS SELECT * FROM _frame")
        con.unregister("_frame")
        written.append("stats_settings")
    return written

"""`mskbench leaderboard`: a static site, index plus one page per dataset.

Each dataset page has one sortable table per prompter: the models ranked by
the mean whole-subject metric, with the bootstrap rank interval, whether the
model is significantly different from the leader (Wilcoxon, BH-adjusted),
and the biomarker agreement columns (ICC, bias, limits of agreement).
Every run that fed the page links to its manifest page (HTML + JSON).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import duckdb
import pandas as pd

from mskbench.output_paths import make_folder, write_text
from mskbench.report.html import Column, esc, field, fmt, note, page, table
from mskbench.stats import data
from mskbench.stats.analysis import StatsResults, StatsSettings, compute_stats
from mskbench.stats.compare import higher_is_better
from mskbench.stats.rounds import round_label


def slug(name: str) -> str:
    """A safe file name for any user string (distinct names never collide)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:40] or "x"
    return f"{readable}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def _vs_leader(results: StatsResults, dataset: str, prompter: str, metric: str, structure: str,
               leader: str) -> dict[str, dict]:
    pairs = results.pairwise
    if pairs.empty:
        return {}
    block = pairs[(pairs["dataset"] == dataset) & (pairs["prompter"] == prompter) & (pairs["metric"] == metric)
                  & (pairs["structure"] == structure)
                  & ((pairs["model_a"] == leader) | (pairs["model_b"] == leader))]
    out = {}
    for row in block.to_dict(orient="records"):
        other = row["model_b"] if row["model_a"] == leader else row["model_a"]
        out[other] = row
    return out


def _marker(row: dict | None) -> tuple[str, float]:
    if row is None:
        return '<span class="muted">leader</span>', -1.0
    if row["status"] != "computed":
        return '<span class="muted">not tested</span>', 2.0
    p_adj = row["p_adjusted"]
    if row["significant"]:
        return f'<span class="sig" title="BH-adjusted p = {esc(fmt(p_adj))}">▼ worse (p={esc(fmt(p_adj, 2))})</span>', p_adj
    return f'<span title="BH-adjusted p = {esc(fmt(p_adj))}">≈ (p={esc(fmt(p_adj, 2))})</span>', p_adj


def board_rows(results: StatsResults, dataset: str, prompter: str, metric: str) -> list[dict]:
    """Rows of one (dataset, prompter) board, best first."""
    ranks = results.ranking
    summary = data.whole_subject(results.summary)
    summary = summary[(summary["dataset"] == dataset) & (summary["prompter"] == prompter)
                      & (summary["metric"] == metric)]
    if summary.empty:
        return []
    structure = summary["structure"].iloc[0]
    ranks = ranks[(ranks["dataset"] == dataset) & (ranks["prompter"] == prompter) & (ranks["metric"] == metric)
                  & (ranks["structure"] == structure)] if not ranks.empty else ranks
    rows = summary.merge(ranks[["model", "rank", "rank_low", "rank_high", "p_best"]], on="model", how="left") \
        if not ranks.empty else summary.assign(rank=pd.NA, rank_low=pd.NA, rank_high=pd.NA, p_best=pd.NA)
    rows = rows.sort_values("mean", ascending=not higher_is_better(metric)).to_dict(orient="records")
    leader = rows[0]["model"]
    versus = _vs_leader(results, dataset, prompter, metric, structure, leader)
    agreement = results.agreement
    for row in rows:
        row["structure"] = structure
        row["vs_leader"] = None if row["model"] == leader else versus.get(row["model"])
        if row["model"] != leader and row["vs_leader"] is None:
            row["vs_leader"] = {"status": "not computed", "p_adjusted": float("nan"), "significant": False}
        if not agreement.empty and "icc" in agreement:
            mine = agreement[(agreement["dataset"] == dataset) & (agreement["prompter"] == prompter)
                             & (agreement["model"] == row["model"])]
            row["agreement"] = {f"{a['structure']} {a['biomarker']}": a for a in mine.to_dict(orient="records")}
        else:
            row["agreement"] = {}
    return rows


def board_columns(rows: list[dict], metric: str) -> list[Column]:
    columns = [
        Column("rank", lambda r: esc(fmt(r.get("rank"))), lambda r: r.get("rank")),
        field("model"),
        Column(f"mean {metric}", lambda r: esc(fmt(r["mean"])), lambda r: r["mean"]),
        Column("sd", lambda r: esc(fmt(r["sd"])), lambda r: r["sd"]),
        field("median"), field("n"),
        Column("rank interval (95%)", lambda r: esc(f"{fmt(r.get('rank_low'))}–{fmt(r.get('rank_high'))}"),
               lambda r: r.get("rank_low")),
        Column("P(rank 1)", lambda r: esc(fmt(r.get("p_best"), 2)), lambda r: r.get("p_best")),
        Column("vs leader", lambda r: _marker(r["vs_leader"])[0], lambda r: _marker(r["vs_leader"])[1]),
        field("excluded"), field("substituted"),
    ]
    names = sorted({name for row in rows for name in row["agreement"]})
    for name in names:
        def get(r, key, name=name):
            value = r["agreement"].get(name, {}).get(key)
            return value

        columns += [
            Column(f"{name}: ICC", lambda r, g=get: esc(fmt(g(r, "icc"))), lambda r, g=get: g(r, "icc")),
            Column(f"{name}: bias", lambda r, g=get: esc(fmt(g(r, "bias"))), lambda r, g=get: g(r, "bias")),
            Column(f"{name}: limits", lambda r, g=get: esc(f"[{fmt(g(r, 'loa_lower'))}, {fmt(g(r, 'loa_upper'))}]"),
                   lambda r, g=get: g(r, "loa_upper")),
        ]
    return columns


def run_links(con: duckdb.DuckDBPyConnection, dataset: str | None, prefix: str) -> str:
    where, params = ("WHERE dataset = ?", [dataset]) if dataset is not None else ("", [])
    runs = [r[0] for r in con.execute(f"SELECT DISTINCT run_id FROM cells {where} ORDER BY 1", params).fetchall()]
    links = ", ".join(f'<a href="{prefix}runs/{slug(r)}.html">{esc(r)}</a>' for r in runs)
    return f"<p>Runs: {links or 'none'}</p>"


def manifest_pages(con: duckdb.DuckDBPyConnection, out: Path) -> list[Path]:
    """One HTML page and one JSON file per run: suite, config, environment manifest."""
    if "runs" not in data.tables(con):
        return []
    folder = make_folder(out / "runs", "--out")
    written = []
    for row in con.execute("SELECT * FROM runs ORDER BY started_at").df().to_dict(orient="records"):
        record = {k: (json.loads(v) if k in ("config", "manifest") and isinstance(v, str) else v)
                  for k, v in row.items()}
        text = json.dumps(record, indent=2, sort_keys=True, default=str)
        json_path = folder / f"{slug(row['run_id'])}.json"
        write_text(json_path, text, "--out")
        body = (f'<p><a href="../index.html">← leaderboards</a> · <a href="{esc(json_path.name)}">JSON</a></p>'
                f"<pre>{esc(text)}</pre>")
        html_path = folder / f"{slug(row['run_id'])}.html"
        write_text(html_path, page(f"Run {row['run_id']}", body), "--out")
        written += [html_path, json_path]
    return written


def write_leaderboard(db: str | Path, out: str | Path, settings: StatsSettings, metric: str = "dice") -> list[Path]:
    """Write index.html, one page per dataset and the run manifests; returns the paths."""
    out = Path(out)
    con = data.open_results(db)
    try:
        metrics = [r[0] for r in con.execute("SELECT DISTINCT metric FROM subject_metrics ORDER BY 1").fetchall()]
        data.check_names([metric], metrics, "--metric")
        results = compute_stats(con, settings)
        make_folder(out, "--out")
        written = manifest_pages(con, out)
        index_rows = []
        direction = "higher is better" if higher_is_better(metric) else "lower is better"
        at_round = round_label(settings.round)
        for dataset in sorted(set(results.summary["dataset"])):
            path = out / f"{slug(dataset)}.html"
            sections = []
            for prompter in sorted(set(results.summary.loc[results.summary["dataset"] == dataset, "prompter"])):
                rows = board_rows(results, dataset, prompter, metric)
                if not rows:
                    continue
                index_rows.append({"dataset": dataset, "prompter": prompter, "leader": rows[0]["model"],
                                   "mean": rows[0]["mean"], "models": len(rows), "page": path.name})
                sections.append(f"<h2>Prompter: {esc(prompter)}</h2>"
                                f"<p class=\"muted\">structure: {esc(rows[0]['structure'])}; ranked by mean "
                                f"subject {esc(metric)} ({direction}) at {esc(at_round)}</p>"
                                + table(rows, board_columns(rows, metric), table_id=f"board-{slug(prompter)}"))
            body = ('<p><a href="index.html">← all datasets</a></p>' + run_links(con, dataset, "")
                    + ("".join(sections) or note(f"No {metric} rows for this dataset.")))
            write_text(path, page(f"Leaderboard: {dataset}", body), "--out")
            written.append(path)
        columns = [Column("dataset", lambda r: f'<a href="{esc(r["page"])}">{esc(r["dataset"])}</a>',
                          lambda r: r["dataset"]),
                   field("prompter"), field("leader"), field("mean", f"leader mean {metric}"), field("models")]
        body = (f"<p>Ranked by mean subject {esc(metric)} ({direction}) at {esc(at_round)} (--round). "
                "Rank intervals come from a bootstrap over subjects; ▼ marks a model significantly worse than "
                "the leader (Wilcoxon signed-rank, Benjamini–Hochberg within the board).</p>"
                + table(index_rows, columns, table_id="index") + run_links(con, None, ""))
        index = out / "index.html"
        write_text(index, page("mskbench leaderboards", body), "--out")
        written.insert(0, index)
    finally:
        con.close()
    return written

"""What `mskbench run` prints: the dry-run plan and the end-of-run summary table."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.table import Table

from mskbench.plan import Plan
from mskbench.store import Store

SUMMARY_SQL = """
WITH final AS (
    SELECT cell_id, max(round) AS round FROM subject_metrics WHERE run_id = ? GROUP BY cell_id
), per_subject AS (
    SELECT m.cell_id, m.subject_id,
           avg(m.value) FILTER (WHERE m.metric = ?) AS headline,
           avg(m.value) FILTER (WHERE m.metric = 'dsc_auc') AS dsc_auc
    FROM subject_metrics m JOIN final f ON m.cell_id = f.cell_id AND m.round = f.round
    WHERE m.run_id = ? AND m.metric IN (?, 'dsc_auc') AND NOT isnan(m.value)
    GROUP BY m.cell_id, m.subject_id
), skipped AS (
    SELECT cell_id, count(*) AS n FROM subject_status WHERE run_id = ? AND status = 'skipped' GROUP BY cell_id
)
SELECT c.dataset, c.model, c.prompter, c.seed, c.status, avg(p.headline) AS final_value, avg(p.dsc_auc) AS dsc_auc,
       count(p.subject_id) AS n, coalesce(max(s.n), 0) AS skipped
FROM cells c
LEFT JOIN per_subject p USING (cell_id)
LEFT JOIN skipped s USING (cell_id)
WHERE c.run_id = ?
GROUP BY c.dataset, c.model, c.prompter, c.seed, c.status
ORDER BY c.dataset, final_value DESC NULLS LAST, c.model, c.prompter, c.seed
"""


def headline_metric(metric_names: Sequence[str] | None) -> str:
    """The metric the summary shows: Dice, or the suite's first metric when Dice is not selected."""
    return "dice" if not metric_names or "dice" in metric_names else metric_names[0]


def summary_rows(db_path: str, run_id: str, metric: str = "dice") -> list[tuple]:
    """Per cell: the mean over subjects of ``metric`` (mean over labels) at the cell's final round."""
    with Store.open_for_reading(db_path) as store:
        return store.execute(SUMMARY_SQL, [run_id, metric, run_id, metric, run_id, run_id]).fetchall()


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def print_summary(db_path: str, run_id: str, console: Console, metric: str = "dice") -> None:
    """Mean subject ``metric`` of the final round (mean over labels, then over subjects) per cell; with
    interactive cells also ``dsc_auc`` (docs/interactive.md)."""
    rows = summary_rows(db_path, run_id, metric)
    interactive = any(row[6] is not None for row in rows)
    name = "Dice" if metric == "dice" else metric
    table = Table(title=f"run {run_id} — mean subject {name}{' (final round)' if interactive else ''} ({db_path})")
    final = "final_dsc" if metric == "dice" else f"final {metric}"
    columns = ["dataset", "model", "prompter", "seed", final if interactive else f"mean {name}"]
    columns += ["dsc_auc"] if interactive else []
    for column in [*columns, "n", "skipped"]:
        table.add_column(column, justify="left" if column in ("dataset", "model", "prompter") else "right")
    for dataset, model, prompter, seed, status, value, auc, n, skipped in rows:
        values = ["skipped" if status == "skipped" else _number(value)]
        values += [_number(auc)] if interactive else []
        table.add_row(dataset, model, prompter, str(seed), *values, str(n), str(skipped))
    console.print(table)


def dry_run_report(plan: Plan, limit_subjects: int | None, console: Console) -> None:
    """List the cells, then load each subject (streamed) to count evaluated slices."""
    from mskbench.execution.subject_task import load_prepared
    from mskbench.runner import subject_ids

    table = Table(title=f"suite {plan.suite.name}: {len(plan.cells)} cells")
    for column in ("cell", "status"):
        table.add_column(column)
    for cell in plan.cells:
        table.add_row(cell.cell_id, f"skipped: {plan.skipped[cell.cell_id]}" if cell.cell_id in plan.skipped else "planned")
    console.print(table)
    for name, planned in plan.datasets.items():
        ids = subject_ids(planned, limit_subjects)
        n_slices = sum(len(load_prepared(planned, subject_id)[1].slice_indices) for subject_id in ids)
        console.print(
            f"{name}: {len(ids)} subjects ({planned.entry.split}), {n_slices} slices, {len(plan.cells_for(name))} cells"
        )

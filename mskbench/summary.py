"""What `mskbench run` prints: the dry-run plan and the end-of-run summary table."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from mskbench.plan import Plan
from mskbench.store import Store

SUMMARY_SQL = """
WITH per_subject AS (
    SELECT m.cell_id, m.subject_id, avg(m.value) AS dice
    FROM subject_metrics m
    WHERE m.run_id = ? AND m.metric = 'dice' AND NOT isnan(m.value)
    GROUP BY m.cell_id, m.subject_id
), skipped AS (
    SELECT cell_id, count(*) AS n FROM subject_status WHERE run_id = ? AND status = 'skipped' GROUP BY cell_id
)
SELECT c.dataset, c.model, c.prompter, c.seed, c.status, avg(p.dice) AS mean_dice, count(p.subject_id) AS n,
       coalesce(max(s.n), 0) AS skipped
FROM cells c
LEFT JOIN per_subject p USING (cell_id)
LEFT JOIN skipped s USING (cell_id)
WHERE c.run_id = ?
GROUP BY c.dataset, c.model, c.prompter, c.seed, c.status
ORDER BY c.dataset, mean_dice DESC NULLS LAST, c.model, c.prompter, c.seed
"""


def summary_rows(db_path: str, run_id: str) -> list[tuple]:
    with Store(db_path, read_only=True) as store:
        return store.execute(SUMMARY_SQL, [run_id, run_id, run_id]).fetchall()


def print_summary(db_path: str, run_id: str, console: Console) -> None:
    """Mean subject Dice (mean over labels, then over subjects) per cell."""
    table = Table(title=f"run {run_id} — mean subject Dice ({db_path})")
    for column in ("dataset", "model", "prompter", "seed", "mean Dice", "n", "skipped"):
        table.add_column(column, justify="right" if column in ("seed", "mean Dice", "n", "skipped") else "left")
    for dataset, model, prompter, seed, status, dice, n, skipped in summary_rows(db_path, run_id):
        shown = "skipped" if status == "skipped" else ("—" if dice is None else f"{dice:.3f}")
        table.add_row(dataset, model, prompter, str(seed), shown, str(n), str(skipped))
    console.print(table)


def dry_run_report(plan: Plan, limit_subjects: int | None, console: Console) -> None:
    """List the cells, then load each subject (streamed) to count evaluated slices."""
    from mskbench.runner import load_prepared, subject_ids

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

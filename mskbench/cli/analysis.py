"""Top-level commands that read a results database: stats, report, leaderboard, gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mskbench.cli.main import app
from mskbench.errors import UserError

DbOption = Annotated[Path, typer.Option("--db", help="Results database written by `mskbench run`.")]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed of every bootstrap.")]
BootOption = Annotated[int, typer.Option("--n-boot", min=100, help="Bootstrap resamples.")]
MinSubjectsOption = Annotated[int, typer.Option("--min-subjects", min=3,
                                                help="Fewer paired subjects: the test is not computed.")]
RoundOption = Annotated[str, typer.Option(
    "--round", help="Interaction round to read: 'final' (each cell's last round) or N (0 = the initial prompt).")]
SubjectValueOption = Annotated[str, typer.Option(
    "--subject-value", help="A subject's value: 'volume' (the metric of the 3D volume) or 'slice_mean' "
                            "(the mean of its slice values, the source study's subject Dice).")]


def _settings(seed: int, n_boot: int, min_subjects: int, alpha: float, metrics: list[str] | None,
              models: list[str] | None, round_text: str, subject_value: str = "volume", n_boot_icc: int | None = None):
    from mskbench.stats.analysis import StatsSettings
    from mskbench.stats.data import check_subject_value
    from mskbench.stats.icc_mixed import N_BOOT_ICC
    from mskbench.stats.rounds import check_metrics, parse_round

    if not 0 < alpha < 1:
        raise UserError(f"--alpha {alpha}: must be between 0 and 1, e.g. 0.05")
    chosen = parse_round(round_text)
    check_metrics(metrics or (), chosen)
    return StatsSettings(alpha=alpha, min_subjects=min_subjects, n_boot=n_boot, seed=seed,
                         metrics=tuple(metrics or ()), models=tuple(models or ()), round=chosen,
                         subject_value=check_subject_value(subject_value),
                         n_boot_icc=N_BOOT_ICC if n_boot_icc is None else n_boot_icc)


@app.command("stats")
def stats_command(
    db: DbOption,
    json_out: Annotated[bool, typer.Option("--json", help="Print every table as JSON.")] = False,
    metric: Annotated[list[str] | None, typer.Option("--metric", help="Metric(s) to analyse (default: all).")] = None,
    model: Annotated[list[str] | None, typer.Option("--model", help="Model(s) to include (default: all).")] = None,
    alpha: Annotated[float, typer.Option("--alpha", help="Significance level.")] = 0.05,
    seed: SeedOption = 0,
    n_boot: BootOption = 1000,
    min_subjects: MinSubjectsOption = 6,
    round_text: RoundOption = "final",
    subject_value: SubjectValueOption = "volume",
    n_boot_icc: Annotated[int, typer.Option("--n-boot-icc", min=100,
                                            help="Subject resamples of the mixed-model ICC.")] = 10_000,
    write: Annotated[bool, typer.Option("--write/--no-write", help="Store the stats_* tables in the database.")] = True,
) -> None:
    """Friedman, Wilcoxon + BH, rank intervals, biomarker agreement (ICCs, Bland–Altman, GP), prompter pairs,
    Dice by object size, acquisition effects."""
    from mskbench.store import Store, database_errors

    Store.check_readable(db)  # a bad --db fails in a second, before the analysis libraries load
    from mskbench.stats.analysis import compute_stats, write_tables
    from mskbench.stats.data import open_results
    from mskbench.stats.summary_text import stats_text

    settings = _settings(seed, n_boot, min_subjects, alpha, metric, model, round_text, subject_value, n_boot_icc)
    con = open_results(db)
    try:
        with database_errors(db):  # damage found while reading: the same one line as at open
            results = compute_stats(con, settings)
    finally:
        con.close()
    if write:
        write_tables(db, results)
    typer.echo(results.to_json() if json_out else stats_text(results, db if write else None))


@app.command("report")
def report_command(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    metric: Annotated[str, typer.Option("--metric", help="Primary metric of the headline (subject value, mean "
                                                         "over labels).")] = "dice",
    seed: SeedOption = 0,
    n_boot: BootOption = 1000,
    min_subjects: MinSubjectsOption = 6,
    round_text: RoundOption = "final",
    subject_value: SubjectValueOption = "volume",
) -> None:
    """One self-contained HTML report, headline first (inline CSS/JS, embedded figures, no network)."""
    from mskbench.output_paths import writable_file
    from mskbench.stats.rounds import check_metrics
    from mskbench.store import Store, database_errors

    Store.check_readable(db)  # a bad --db or --out fails in a second, before the analysis libraries load
    writable_file(out, "--out", "report.html")
    settings = _settings(seed, n_boot, min_subjects, 0.05, None, None, round_text, subject_value)
    check_metrics([metric], settings.round)
    from mskbench.report.report import write_report

    with database_errors(db):
        path = write_report(db, out, settings, metric)
    typer.echo(f"wrote {path}")


@app.command("leaderboard")
def leaderboard_command(
    db: DbOption,
    out: Annotated[Path, typer.Option("--out", help="Folder of the static site.")] = Path("leaderboards"),
    metric: Annotated[str, typer.Option("--metric", help="Metric that ranks the models.")] = "dice",
    seed: SeedOption = 0,
    n_boot: BootOption = 1000,
    min_subjects: MinSubjectsOption = 6,
    round_text: RoundOption = "final",
    subject_value: SubjectValueOption = "volume",
) -> None:
    """A static site: index plus one page per dataset, sortable, with rank intervals."""
    from mskbench.output_paths import writable_folder
    from mskbench.stats.rounds import check_metrics
    from mskbench.store import Store, database_errors

    Store.check_readable(db)  # a bad --db or --out fails in a second, before the analysis libraries load
    settings = _settings(seed, n_boot, min_subjects, 0.05, None, None, round_text, subject_value)
    check_metrics([metric], settings.round)
    writable_folder(out, "--out")
    from mskbench.report.leaderboard import write_leaderboard

    with database_errors(db):
        pages = write_leaderboard(db, out, settings, metric)
    typer.echo(f"wrote {len(pages)} page(s) under {out}; open {out / 'index.html'}")


@app.command("gate")
def gate_command(
    db: DbOption,
    baseline: Annotated[str, typer.Option("--baseline", help="Model in production.")],
    candidate: Annotated[str, typer.Option("--candidate", help="Model proposed to replace it.")],
    dataset: Annotated[list[str] | None, typer.Option("--dataset", help="Dataset(s) to judge on (default: all).")] = None,
    prompter: Annotated[list[str] | None, typer.Option("--prompter", help="Prompter(s) (default: all).")] = None,
    metric: Annotated[str, typer.Option("--metric", help="Subject-level metric.")] = "dice",
    structure: Annotated[str | None, typer.Option("--structure",
                                                  help="Label to judge (default: the mean over labels).")] = None,
    margin: Annotated[float, typer.Option("--margin", min=0.0, help="Largest tolerated loss, metric units.")] = 0.01,
    method: Annotated[str, typer.Option("--method", help="bootstrap or wilcoxon.")] = "bootstrap",
    biomarker: Annotated[str | None, typer.Option("--biomarker", help="Biomarker whose bias is bounded.")] = None,
    max_abs_bias: Annotated[float | None, typer.Option("--max-abs-bias", min=0.0,
                                                       help="Bound on |bias| (biomarker units).")] = None,
    seed: SeedOption = 0,
    n_boot: BootOption = 2000,
    min_subjects: MinSubjectsOption = 6,
    round_text: RoundOption = "final",
    subject_value: SubjectValueOption = "volume",
    json_out: Annotated[bool, typer.Option("--json", help="Print the verdicts as JSON.")] = False,
    allow_missing: Annotated[bool, typer.Option(
        "--allow-missing", help="Judge the paired subjects only, instead of rejecting a candidate that lacks "
                                "results for subjects the baseline has.")] = False,
) -> None:
    """Paired non-inferiority of CANDIDATE vs BASELINE: exit 0 promote, 1 reject, 2 usage error."""
    from mskbench.store import Store, database_errors

    Store.check_readable(db)  # a bad --db fails in a second, before the analysis libraries load
    from mskbench.stats.data import check_subject_value
    from mskbench.stats.gate import METHODS, GateSettings
    from mskbench.stats.gate_run import GateRequest, run_gate, verdict_json, verdict_text
    from mskbench.stats.rounds import check_metrics, parse_round

    if method not in METHODS:
        from mskbench.params import suggest

        raise UserError(f"--method {method}: unknown{suggest(method, METHODS)}; choose one of {', '.join(METHODS)}")
    if (biomarker is None) != (max_abs_bias is None):
        raise UserError("--biomarker and --max-abs-bias go together; give both or neither")
    chosen = parse_round(round_text)
    check_metrics([metric], chosen)
    request = GateRequest(baseline=baseline, candidate=candidate, datasets=tuple(dataset or ()),
                          prompters=tuple(prompter or ()), metric=metric, structure=structure,
                          biomarker=biomarker, max_abs_bias=max_abs_bias, round=chosen,
                          subject_value=check_subject_value(subject_value))
    settings = GateSettings(margin=margin, method=method, n_boot=n_boot, min_subjects=min_subjects, seed=seed,
                            allow_missing=allow_missing)
    with database_errors(db):
        verdicts, promote = run_gate(db, request, settings)
    typer.echo(verdict_json(verdicts, promote, allow_missing, chosen, request.subject_value) if json_out
               else verdict_text(verdicts, promote, request, settings))
    raise typer.Exit(0 if promote else 1)

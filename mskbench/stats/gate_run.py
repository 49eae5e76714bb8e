"""`mskbench gate`: read the database, check the names, run every check, render the verdict."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mskbench.errors import UserError
from mskbench.stats import data
from mskbench.stats.analysis import records
from mskbench.stats.gate import GateSettings, biomarker_gate, metric_gate
from mskbench.stats.rounds import FINAL, RoundChoice


@dataclass(frozen=True)
class GateRequest:
    baseline: str
    candidate: str
    datasets: tuple[str, ...] = ()
    prompters: tuple[str, ...] = ()
    metric: str = "dice"
    structure: str | None = None
    biomarker: str | None = None
    max_abs_bias: float | None = None
    round: RoundChoice = FINAL
    subject_value: str = data.VOLUME


def _distinct(con, sql: str) -> list[str]:
    return [row[0] for row in con.execute(sql).fetchall() if row[0] is not None]


def run_gate(db: str | Path, request: GateRequest, settings: GateSettings) -> tuple[pd.DataFrame, bool]:
    """All verdict rows and whether every one passed (no rows = reject)."""
    con = data.open_results(db)
    try:
        data.check_names([request.baseline, request.candidate], data.known_models(con), "--baseline/--candidate")
        if request.baseline == request.candidate:
            raise UserError(f"--candidate {request.candidate}: same as --baseline; name two different models")
        data.check_names(request.datasets, _distinct(con, "SELECT DISTINCT dataset FROM cells ORDER BY 1"), "--dataset")
        data.check_names(request.prompters, _distinct(con, "SELECT DISTINCT prompter FROM cells ORDER BY 1"),
                         "--prompter")
        data.check_names([request.metric], _distinct(con, "SELECT DISTINCT metric FROM subject_metrics ORDER BY 1"),
                         "--metric")
        values = data.subject_metrics(con, [request.metric], request.round, request.subject_value)
        if request.structure is not None:
            data.check_names([request.structure], sorted(set(values["structure"])), "--structure")
        pairs = pd.DataFrame()
        if request.biomarker is not None:
            pairs, _ = data.biomarker_pairs(con, request.round)
            known = sorted(set(pairs["biomarker"])) if not pairs.empty else []
            data.check_names([request.biomarker], known, "--biomarker")
    finally:
        con.close()
    values = _restrict(values, request)
    frames = [metric_gate(values, request.baseline, request.candidate, request.metric, request.structure, settings)]
    if request.biomarker is not None:
        frames.append(biomarker_gate(_restrict(pairs, request), request.candidate, request.biomarker,
                                     float(request.max_abs_bias), settings))
    verdicts = pd.concat([f for f in frames if not f.empty], ignore_index=True) if any(
        not f.empty for f in frames) else pd.DataFrame(columns=["check", "dataset", "prompter", "passed", "reason"])
    promote = bool(len(verdicts)) and bool(verdicts["passed"].all())
    return verdicts, promote


def _restrict(frame: pd.DataFrame, request: GateRequest) -> pd.DataFrame:
    if request.datasets:
        frame = frame[frame["dataset"].isin(request.datasets)]
    if request.prompters:
        frame = frame[frame["prompter"].isin(request.prompters)]
    return frame


def verdict_json(verdicts: pd.DataFrame, promote: bool, allow_missing: bool = False,
                 at_round: RoundChoice = FINAL, subject_value: str = data.VOLUME) -> str:
    """``missing_in_candidate`` per check counts the subjects the candidate lacks; ``allow_missing`` says whether
    they were ignored (``--allow-missing``) instead of rejecting; ``round`` is the ``--round`` judged and
    ``subject_value`` the ``--subject-value``."""
    return json.dumps({"promote": promote, "allow_missing": allow_missing, "round": at_round,
                       "subject_value": subject_value, "checks": records(verdicts)}, indent=2, default=str)


def verdict_text(verdicts: pd.DataFrame, promote: bool, request: GateRequest, settings: GateSettings) -> str:
    """A short fixed-width table a CI log shows well."""
    header = (f"gate: {request.candidate} vs {request.baseline}  metric={request.metric}  "
              f"round={request.round}  subject-value={request.subject_value}  margin={settings.margin:g}  "
              f"method={settings.method}"
              f"{'  allow-missing' if settings.allow_missing else ''}")
    lines = [header, f"{'check':<28} {'structure':<20} {'dataset':<14} {'prompter':<12} {'n':>4} {'missing':>7} "
                     f"{'mean diff':>10} {'95% CI':>20}  verdict"]
    missing_total = 0
    for row in verdicts.to_dict(orient="records"):
        ci = (f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]" if pd.notna(row.get("ci_low")) else "—")
        mean = f"{row['mean_diff']:+.4f}" if pd.notna(row.get("mean_diff")) else "—"
        missing = row.get("missing_in_candidate")
        missing_total += int(missing) if pd.notna(missing) else 0
        shown = str(int(missing)) if pd.notna(missing) else "—"
        names = [str(row[k])[:w] for k, w in (("check", 28), ("structure", 20), ("dataset", 14), ("prompter", 12))]
        lines.append(f"{names[0]:<28} {names[1]:<20} {names[2]:<14} {names[3]:<12} {int(row['n_subjects']):>4} "
                     f"{shown:>7} {mean:>10} {ci:>20}  {'PASS' if row['passed'] else 'FAIL'}: {row['reason']}")
    if verdicts.empty:
        lines.append("no (dataset, prompter) holds both models; nothing to judge")
    if missing_total and settings.allow_missing:
        lines.append(f"--allow-missing: {missing_total} subject(s) the baseline has but the candidate has no result "
                     f"for were left out; the verdict judges the paired subjects only")
    elif missing_total:
        lines.append(f"missing: the candidate has no result for {missing_total} subject(s) the baseline has; "
                     f"that rejects (--allow-missing judges the paired subjects only)")
    elif settings.allow_missing:
        lines.append("--allow-missing: no subject was missing; every subject the baseline has was judged")
    lines.append(f"verdict: {'PROMOTE' if promote else 'REJECT'}")
    return "\n".join(lines)

"""How a replayed run's clicks differ from those of the run it replayed (``mskbench run --replay-prompts``).

Replay reuses round-0 prompts only; the clicks of later rounds are placed
anew from the new run's predictions, so a changed model, model parameter or
placement code moves them. Per (cell, subject) this reports the first round
whose clicks differ and the fraction of identical clicks. Clicks are compared
position by position within a round, in recorded order (slice, then order on
the slice); a click is its label, slice, point and sign. A cell is compared
with the replayed run's cell of the same (dataset, model, prompter, seed), or,
when that run lacked the model, with its first model by name: the one whose
round-0 prompts were replayed (:class:`mskbench.replay.PromptReplay`).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from mskbench.store import Store

_CellKey = tuple[str, str, str, int]  # dataset, model, prompter, seed
_Click = tuple[int, int, str, str]  # slice, label, points JSON, point_labels JSON
_Clicks = dict[str, dict[int, list[_Click]]]  # subject -> round -> clicks in recorded order


@dataclass(frozen=True)
class SubjectDivergence:
    """One (cell, subject): ``first_round`` whose clicks differ (None: all identical), identical / total clicks."""

    subject_id: str
    first_round: int | None
    identical: int
    total: int


@dataclass(frozen=True)
class CellDivergence:
    dataset: str
    model: str
    prompter: str
    seed: int
    subjects: list[SubjectDivergence]

    def line(self) -> str:
        """One summary line, e.g. ``cvpr25_clicks × sam: diverge from round 2 in 1/4 subjects``."""
        diverged = [s for s in self.subjects if s.first_round is not None]
        head = f"{self.prompter} × {self.model} ({self.dataset}, seed {self.seed}): clicks"
        if not diverged:
            return f"{head} identical in {len(self.subjects)}/{len(self.subjects)} subjects"
        identical, total = sum(s.identical for s in self.subjects), sum(s.total for s in self.subjects)
        first = min(s.first_round for s in diverged)
        return (f"{head} diverge from round {first} in {len(diverged)}/{len(self.subjects)} subjects "
                f"({identical}/{total} clicks identical)")


def _clicks(store: Store, run_id: str) -> dict[_CellKey, _Clicks]:
    rows = store.execute(
        """
        SELECT c.dataset, c.model, c.prompter, c.seed, p.subject_id, p.round, p.slice_index, p.label,
               p.points, p.point_labels
        FROM prompts p JOIN cells c USING (run_id, cell_id)
        WHERE p.run_id = ? AND p.round > 0
        ORDER BY c.dataset, c.model, c.prompter, c.seed, p.subject_id, p.round, p.slice_index, p.prompt_index
        """,
        [run_id],
    ).fetchall()
    out: dict[_CellKey, _Clicks] = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for dataset, model, prompter, seed, subject, round_, k, label, points, point_labels in rows:
        out[(dataset, model, prompter, seed)][subject][round_].append((k, label, str(points), str(point_labels)))
    return out


def _finished_subjects(store: Store, run_id: str) -> dict[_CellKey, list[str]]:
    rows = store.execute(
        """
        SELECT DISTINCT c.dataset, c.model, c.prompter, c.seed, s.subject_id
        FROM subject_status s JOIN cells c USING (run_id, cell_id)
        WHERE s.run_id = ? AND s.status = 'done' ORDER BY ALL
        """,
        [run_id],
    ).fetchall()
    out: dict[_CellKey, list[str]] = defaultdict(list)
    for *key, subject in rows:
        out[tuple(key)].append(subject)
    return out


def compare_subject(subject_id: str, new: dict[int, list[_Click]], old: dict[int, list[_Click]]) -> SubjectDivergence:
    """First differing round and identical clicks (same position in the same round) of one subject."""
    first, identical, total = None, 0, 0
    for round_ in sorted(set(new) | set(old)):
        a, b = new.get(round_, []), old.get(round_, [])
        same = sum(x == y for x, y in zip(a, b))
        identical, total = identical + same, total + max(len(a), len(b))
        if first is None and a != b:
            first = round_
    return SubjectDivergence(subject_id, first, identical, total)


def click_divergence(store: Store, run_id: str, replayed_run_id: str) -> list[CellDivergence]:
    """Per interactive cell of ``run_id`` (one with clicks in either run), its clicks against ``replayed_run_id``'s."""
    new, old = _clicks(store, run_id), _clicks(store, replayed_run_id)
    first_model: dict[tuple[str, str, int], str] = {}
    for dataset, model, prompter, seed in sorted(old):
        first_model.setdefault((dataset, prompter, seed), model)
    out = []
    for key, subjects in sorted(_finished_subjects(store, run_id).items()):
        dataset, model, prompter, seed = key
        source = key if key in old else (dataset, first_model.get((dataset, prompter, seed), model), prompter, seed)
        if key not in new and source not in old:
            continue  # a one-shot cell: no clicks in either run
        mine, theirs = new.get(key, {}), old.get(source, {})
        rows = [compare_subject(s, mine.get(s, {}), theirs.get(s, {})) for s in subjects]
        out.append(CellDivergence(dataset, model, prompter, seed, rows))
    return out


def divergence_report(store: Store, run_id: str, replayed_run_id: str) -> list[str]:
    """The lines ``mskbench run --replay-prompts`` prints after its summary; none without interactive cells."""
    cells = click_divergence(store, run_id, replayed_run_id)
    if not cells:
        return []
    return [f"clicks of rounds >= 1 against replayed run {replayed_run_id} (placed anew from this run's predictions):",
            *(f"  {cell.line()}" for cell in cells)]

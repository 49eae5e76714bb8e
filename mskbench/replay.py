"""Re-use the prompts recorded by an earlier run (``mskbench run --replay-prompts RUN_ID``).

Only round-0 prompts are replayed: the clicks of later rounds depend on the
model's predictions, so they are placed anew (and recorded) in the new run.
"""

from __future__ import annotations

import json
from collections import defaultdict

from mskbench.errors import StoreError
from mskbench.store import Store
from mskbench.types import Prompt

_Key = tuple[str, str, int, str, int]  # dataset, prompter, seed, subject, slice


class PromptReplay:
    """All prompts of one recorded run, looked up per (dataset, prompter, seed, subject, slice).

    A run stores the same prompts once per model; the first model's copy is used.
    """

    def __init__(self, store: Store, run_id: str):
        known = store.execute("SELECT 1 FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if known is None:
            raise StoreError(f"--replay-prompts {run_id}: no such run in {store.path}; list runs with `mskbench runs`")
        rows = store.execute(
            """
            SELECT c.dataset, c.prompter, c.seed, p.subject_id, p.slice_index, c.model, p.prompt_index,
                   p.kind, p.label, p.instance, p.x_min, p.y_min, p.x_max, p.y_max, p.points, p.point_labels,
                   p.seed, p.score, p.detector_class, p.clipped, p.first_slice, p.last_slice
            FROM prompts p JOIN cells c USING (run_id, cell_id)
            WHERE p.run_id = ? AND p.round = 0 ORDER BY c.model, p.prompt_index
            """,
            [run_id],
        ).fetchall()
        self._by_subject: dict[tuple[str, str, int, str], dict[int, list[Prompt]]] = defaultdict(dict)
        first_model: dict[_Key, str] = {}
        for (dataset, prompter, seed, subject, k, model, _, kind, label, instance,
             x0, y0, x1, y1, points, point_labels, prompt_seed, score, det_class, clipped, first, last) in rows:
            key = (dataset, prompter, seed, subject, k)
            if first_model.setdefault(key, model) != model:
                continue
            self._by_subject[key[:4]].setdefault(k, []).append(
                Prompt(
                    kind=kind, label=label, prompter=prompter, seed=prompt_seed, instance=instance,
                    box=None if x0 is None else (x0, y0, x1, y1),
                    points=tuple(tuple(pt) for pt in json.loads(points)),
                    point_labels=tuple(json.loads(point_labels)),
                    score=score, detector_class=det_class, clipped=bool(clipped), slice_index=k,
                    extent=None if first is None else (first, last),
                )
            )
        self._covered = {key[:3] for key in self._by_subject}
        finished = store.execute(
            """
            SELECT DISTINCT c.dataset, c.prompter, c.seed, s.subject_id
            FROM subject_status s JOIN cells c USING (run_id, cell_id)
            WHERE s.run_id = ? AND s.status = 'done'
            """,
            [run_id],
        ).fetchall()
        self._subjects = set(finished)
        self.run_id = run_id

    def subject_prompts(self, dataset: str, prompter: str, seed: int, subject_id: str) -> dict[int, list[Prompt]]:
        """The recorded round-0 prompts of one subject by slice; a subject or cell it lacks is one error line."""
        if (dataset, prompter, seed) not in self._covered:
            raise StoreError(
                f"--replay-prompts {self.run_id}: that run has no prompts for dataset '{dataset}', "
                f"prompter '{prompter}', seed {seed}; replay a run of the same suite"
            )
        if (dataset, prompter, seed, subject_id) not in self._subjects:
            raise StoreError(
                f"--replay-prompts {self.run_id}: that run did not evaluate subject '{subject_id}' of dataset "
                f"'{dataset}' with prompter '{prompter}'; replay with the same subjects (e.g. the same --limit-subjects)"
            )
        return {k: list(prompts) for k, prompts in self._by_subject.get((dataset, prompter, seed, subject_id), {}).items()}

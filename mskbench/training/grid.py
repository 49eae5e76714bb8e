"""Ablation grids: `mskbench train --grid GRID.toml` trains every combination of some recipe values.

A grid file names a base recipe and, under ``[grid]``, recipe key paths with the values to try::

    recipe = "source_study_tiny.toml"          # relative to the grid file
    [grid]
    "datasets.knee.subjects" = [1, 2]          # a [[datasets]] entry is addressed by its name
    "train.mode" = ["decoder", "full"]
    "prompt.max_shift" = [0, 20]
    [evaluate]                                  # optional: the suite written for the runs
    split = "test"

The product of the lists is expanded into runs, each a full recipe validated before any training starts (the
recipe's own checks: types, ranges, did-you-mean). Each run trains into ``OUT/<run name>``, the name made of
the varied values (``subjects-1_mode-decoder_max-shift-0``), and leaves its checkpoint and card there. A run
whose card is there and records the same recipe is finished and skipped, so a killed grid is continued by
running the same command again (an interrupted run resumes from its last epoch). Finally ``OUT/suite.toml``
evaluates every run and the base model on the held-out split (docs/training.md). A randomly initialised base
has no weights file, so the grid writes one: the run ``base`` is the base recipe with ``train.epochs = 0``
(``OUT/base/model.pt``, the exact start of every run with the same base, and its card, which records the
architecture the plugins build; :func:`untrained_base`).
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Callable, Mapping
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mskbench.errors import CheckpointError, SuiteError, UserError
from mskbench.params import Param, ParamsSchema, suggest, validate_params
from mskbench.suite import DEVICE
from mskbench.training.card import CARD_NAME, read_card

GRID_SCHEMA: ParamsSchema = {
    "recipe": Param("str", help="the base recipe file, relative to the grid file"),
    "grid": Param("dict", help="recipe key paths, each with the list of values to try"),
    "evaluate": Param("dict", {}, help="the suite written for the runs"),
}
EVALUATE_SCHEMA: ParamsSchema = {
    "split": Param("str", "test", choices=("train", "val", "test", "all"),
                   help="the split the suite evaluates (the leakage guard refuses the runs' training subjects)"),
    "prompters": Param("list", None, items="dict", min_items=1, help="the suite's [[prompters]] (default: gt_box)"),
    "base": Param("bool", True, help="evaluate the base model too (when it has weights to load)"),
    "seeds": Param("list", None, items="int", min_items=1, minimum=0),
    "metrics": Param("list", None, items="str", min_items=1, help="the suite's [metrics] names (default: all)"),
    "biomarkers": Param("bool", True, help="false: the suite measures no biomarkers"),
    "device": DEVICE,
}
_NAME_CHARS = re.compile(r"[^A-Za-z0-9.+-]+")
#: the untrained base's run folder and suite model name (a varied run's name always has a "-")
BASE_RUN = "base"


@dataclass(frozen=True)
class GridRun:
    """One combination: its folder name, the varied values and the full recipe (the base with them set)."""

    name: str
    values: dict[str, Any]
    recipe: dict[str, Any]


@dataclass(frozen=True)
class Grid:
    path: Path
    recipe_path: Path
    base: dict[str, Any]  # the base recipe as read
    runs: tuple[GridRun, ...]
    evaluate: dict[str, Any]
    base_run: GridRun | None = None  # the untrained base the suite evaluates (:func:`untrained_base`)

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def trained(self) -> tuple[GridRun, ...]:
        """What `mskbench train --grid` writes: every run, then the untrained base when there is one."""
        return self.runs + ((self.base_run,) if self.base_run else ())


@dataclass(frozen=True)
class Trainer:
    """How a grid trains, injected so the grid logic is tested without training.

    ``check(recipe, where)`` validates a recipe and returns it as its card will record it (``card.recipe``);
    ``train(recipe, out_dir, resume)`` trains it into ``out_dir`` and returns the card's path.
    """

    check: Callable[[dict[str, Any], str], dict[str, Any]]
    train: Callable[[dict[str, Any], Path, bool], Path]


def _read(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise SuiteError(f"{path}: {what} not found{' (it is a directory)' if path.is_dir() else ''}; check the path")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{path}: TOML syntax error: {exc}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{path}: not a UTF-8 text file; a {what} is a .toml file") from None


def _entry_name(entry: Mapping[str, Any]) -> str:
    """A [[datasets]] entry's name as recipes and suites give it (the plugin when unnamed)."""
    return str(entry.get("name") or entry.get("plugin"))


def _target(config: dict[str, Any], path: str, where: str) -> tuple[dict[str, Any], str]:
    """The table holding the last key of a dotted ``path`` in ``config``, and that key; tables must exist."""
    parts = path.split(".")
    if len(parts) < 2 or not all(parts):
        raise SuiteError(f"{where}: expected a recipe key path like \"train.mode\" or \"datasets.knee.subjects\"")
    node: Any = config
    for depth, part in enumerate(parts[:-1]):
        here = ".".join(parts[:depth]) or "the recipe"
        if isinstance(node, list):
            entries = [e for e in node if isinstance(e, Mapping)]
            names = [_entry_name(e) for e in entries]
            if part not in names:
                raise SuiteError(f"{where}: {here} has no entry named '{part}'{suggest(part, names)}; entries: "
                                 f"{', '.join(names) or 'none'}")
            node = entries[names.index(part)]
        elif isinstance(node, Mapping) and isinstance(node.get(part), (Mapping, list)):
            node = node[part]
        else:
            tables = node.items() if isinstance(node, Mapping) else ()
            known = sorted(k for k, v in tables if isinstance(v, (Mapping, list)))
            raise SuiteError(f"{where}: {here} has no table '{part}'{suggest(part, known)}; tables: "
                             f"{', '.join(known) or 'none'} (add the table to the recipe to vary its keys)")
    if not isinstance(node, dict):
        raise SuiteError(f"{where}: '{parts[-2]}' is a list of entries; name one, as in \"datasets.knee.subjects\"")
    return node, parts[-1]


def _label(value: Any) -> str:
    text = _NAME_CHARS.sub("-", str(value).lower() if isinstance(value, bool) else str(value)).strip("-")
    return text or "x"


def _short_names(paths: list[str]) -> dict[str, str]:
    """Each key path's shortest tail of segments that no other path of the grid ends with."""
    out = {}
    for path in paths:
        parts = path.split(".")
        for n in range(1, len(parts) + 1):
            tail = ".".join(parts[-n:])
            if not any(other != path and (other == tail or other.endswith("." + tail)) for other in paths):
                break
        out[path] = tail
    return out


def expand(base: dict[str, Any], grid: Mapping[str, Any], where: str, default_name: str) -> tuple[GridRun, ...]:
    """Every combination of the grid's lists applied to a copy of ``base``, named by the varied values; each
    run's ``recipe.name`` is the base recipe's name (``default_name`` when unnamed) and the run's name."""
    if not grid:
        raise SuiteError(f"{where}.grid: no key paths; give at least one, "
                         "e.g. \"train.mode\" = [\"decoder\", \"full\"]")
    axes = []
    for path, values in grid.items():
        at = f"{where}.grid.\"{path}\""
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{at}: expected a non-empty list of values to try, got {values!r}")
        if len({repr(v) for v in values}) != len(values):
            raise SuiteError(f"{at}: {values!r} repeats a value; each value is one run")
        _target(base, path, at)
        axes.append((path, values))
    short = _short_names([path for path, _ in axes])
    named = base.get("recipe")
    recipe_name = named.get("name") if isinstance(named, Mapping) else None
    runs, seen = [], {}
    for combination in itertools.product(*(values for _, values in axes)):
        recipe = deepcopy(base)
        chosen = {}
        for (path, _), item in zip(axes, combination):
            table, last = _target(recipe, path, where)
            table[last] = item
            chosen[path] = item
        name = "_".join(f"{_label(short[path])}-{_label(item)}" for path, item in chosen.items())
        if name in seen:
            raise SuiteError(f"{where}.grid: the runs {seen[name]} and {chosen} get the same folder name '{name}'; "
                             "make the values differ after replacing characters other than letters, digits, . + -")
        seen[name] = chosen
        recipe.setdefault("recipe", {})["name"] = f"{recipe_name or default_name}_{name}"
        runs.append(GridRun(name, chosen, recipe))
    return tuple(runs)


def untrained_base(base: dict[str, Any], evaluate: Mapping[str, Any], default_name: str) -> GridRun | None:
    """The randomly initialised base as the run ``base`` of zero epochs, so the suite can evaluate the start of
    the runs; None when the base loads weights of its own (the suite names its checkpoint) or ``[evaluate]
    base = false``."""
    table = base.get("base")
    if not evaluate["base"] or not isinstance(table, Mapping) or table.get("init") != "random":
        return None
    recipe = deepcopy(base)
    recipe.setdefault("train", {})["epochs"] = 0
    named = base.get("recipe")
    recipe_name = named.get("name") if isinstance(named, Mapping) else None
    recipe.setdefault("recipe", {})["name"] = f"{recipe_name or default_name}_{BASE_RUN}"
    return GridRun(BASE_RUN, {}, recipe)


def load_grid(path: str | Path) -> Grid:
    """Read a grid file and its base recipe, check the keys, and expand the runs (not yet checked as recipes)."""
    path = Path(path).resolve()
    values = validate_params(GRID_SCHEMA, _read(path, "grid file"), str(path), noun="key", error=SuiteError)
    evaluate = validate_params(EVALUATE_SCHEMA, values["evaluate"], f"{path}: evaluate", noun="key",
                               error=SuiteError)
    recipe_path = (path.parent / values["recipe"]).resolve()
    base = _read(recipe_path, "recipe (the grid's `recipe`)")
    runs = expand(base, values["grid"], str(path), recipe_path.stem)
    return Grid(path, recipe_path, base, runs, evaluate, untrained_base(base, evaluate, recipe_path.stem))


def check_runs(grid: Grid, trainer: Trainer) -> dict[str, dict[str, Any]]:
    """Every run's recipe as its card will record it; the first invalid one is one line naming the run."""
    checked = {}
    for run in grid.trained:
        varied = ", ".join(f"{path} = {item!r}" for path, item in run.values.items()) or "train.epochs = 0"
        try:
            checked[run.name] = trainer.check(run.recipe, f"{grid.path} run {run.name}")
        except UserError as exc:
            raise type(exc)(f"{grid.path}: run {run.name} ({varied}): {exc}") from None
    return checked


def finished(out_dir: Path, recipe: dict[str, Any]) -> bool:
    """Whether ``out_dir`` holds this recipe's finished run; a finished run of another recipe is an error."""
    path = out_dir / CARD_NAME
    if not path.exists():
        return False
    try:
        card = read_card(path)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} (in a grid run folder: remove {out_dir} to train it again)") from None
    if card.recipe != recipe:
        raise UserError(f"{out_dir}: holds a finished run of another recipe (the grid or its recipe changed since); "
                        f"remove the folder to train it again, or give another --out")
    return True


def run_grid(grid: Grid, out: Path, trainer: Trainer, checked: dict[str, dict[str, Any]],
             report: Callable[[str], None]) -> dict[str, Path]:
    """Train every unfinished run into ``out/<run>``; ``checked`` is :func:`check_runs`; the card path per run."""
    cards = {}
    for index, run in enumerate(grid.trained, 1):
        run_dir = out / run.name
        step = f"run {index}/{len(grid.trained)} {run.name}"
        if finished(run_dir, checked[run.name]):
            report(f"{step}: finished before, skipped")
            cards[run.name] = run_dir / CARD_NAME
            continue
        resume = run_dir.exists() and any(run_dir.iterdir())
        report(f"{step}: {'resuming' if resume else 'training'}")
        cards[run.name] = trainer.train(run.recipe, run_dir, resume)
    return cards

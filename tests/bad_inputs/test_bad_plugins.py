"""A misbehaving model plugin through the real CLI (issue 11, item 8).

``setup`` installs a fake distribution without pip: a module and its
``.dist-info`` (entry point group ``mskbench``) in ``{tmp}/site``, put on
``PYTHONPATH``. Its one model, ``bad_model``, misbehaves as its ``mode``
param says. A run of one phantom subject must end in one error line naming
the model entry, its plugin and what it returned, exit code 2, and the
earlier results untouched; a well-behaved mode runs (so the failures are the
checks', not a plugin that failed to load).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness import BadInput, check, run_cli

PLUGIN = '''
import numpy as np

from mskbench.errors import PluginError
from mskbench.hookspecs import hookimpl
from mskbench.params import Param


class BadModel:
    supported_prompts = frozenset({"box"})

    def __init__(self, mode):
        self.mode = mode

    def encode(self, images):
        embeddings = [{"shape": image.shape} for image in images]
        if self.mode == "encode_user_error":
            raise PluginError("bad_model: this encoder refuses the slice")
        if self.mode == "encode_none":
            return None
        if self.mode == "encode_too_few":
            return embeddings[:-1]
        return embeddings

    def decode(self, embedding, prompts):
        n, (h, w) = len(prompts), embedding["shape"]
        masks = np.zeros((n, h, w), bool)
        for mask, p in zip(masks, prompts):
            x0, y0, x1, y1 = (int(v) for v in p.box)
            mask[y0 : y1 + 1, x0 : x1 + 1] = True
        mode = self.mode
        if mode == "wrong_shape":
            return np.zeros((n, h, w + 1), bool)
        if mode == "wrong_count":
            return np.concatenate([masks, masks[:1]])
        if mode == "nan":
            scores = masks.astype(np.float32)
            scores[:, 0, 0] = np.nan
            return scores
        if mode == "probabilities":
            return masks * np.float32(0.7)
        if mode == "strings":
            return np.where(masks, "yes", "no")
        if mode == "objects":
            return masks.astype(object)
        if mode == "none":
            return None
        if mode == "uint8":
            return masks.astype(np.uint8)
        return masks

    def describe(self):
        return {"name": "bad_model", "mode": self.mode}


def factory(mode, device, checkpoint):
    return BadModel(mode)


factory.supported_prompts = BadModel.supported_prompts


@hookimpl
def mskbench_register_models(register):
    register(name="bad_model", factory=factory, description="A model that misbehaves as told.",
             params={"mode": Param("str", default="ok", help="which misbehaviour")})
'''

SUITE = """
[suite]
name = "bad_plugin"
device = "cpu"

[[datasets]]
name = "knee"
plugin = "phantom"
params = {{ anatomy = "knee", subjects = 1, seed = 0, pixel_spacing_min = 2.0, pixel_spacing_max = 2.0, supersample = 1 }}
split = "all"

[[models]]
name = "bad"
plugin = "bad_model"
params = {{ mode = "{mode}" }}

[[prompters]]
name = "gt_box"
plugin = "gt_box"

[metrics]
names = ["dice"]

[biomarkers]
enabled = false
"""

ENV = {"PYTHONPATH": "{tmp}/site", "MSKBENCH_LOAD_PLUGINS": "mskbench-bad-models"}
RUN = ["run", "{tmp}/suite.toml", "--db", "{db}", "--limit-subjects", "1"]
WHO = "models.bad (plugin 'bad_model')"


def install(mode: str):
    """A setup writing the fake distribution and a one-subject suite using ``mode``."""

    def setup(tmp: Path) -> None:
        site = tmp / "site"
        info = site / "mskbench_bad_models-0.1.dist-info"
        info.mkdir(parents=True)
        (site / "bad_models.py").write_text(PLUGIN)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mskbench-bad-models\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[mskbench]\nmodels = bad_models\n")
        (tmp / "suite.toml").write_text(textwrap.dedent(SUITE.format(mode=mode)))

    return setup


def case(mode: str, expect: str) -> BadInput:
    return BadInput(f"model-{mode.replace('_', '-')}", RUN, setup=install(mode), expect=expect, env=ENV)


CASES = [
    case("wrong_shape", f"{WHO}: decode returned masks of shape"),
    case("wrong_count", f"{WHO}: decode returned"),
    case("nan", f"{WHO}: decode returned float masks with"),
    case("probabilities", "values other than 0 and 1 (e.g. 0.7)"),
    case("strings", f"{WHO}: decode returned masks of dtype <U3"),
    case("objects", f"{WHO}: decode returned masks of dtype object"),
    case("none", f"{WHO}: decode returned None"),
    case("encode_none", f"{WHO}: encode returned None"),
    case("encode_too_few", f"{WHO}: encode returned"),
    case("encode_user_error", "bad_model: this encoder refuses the slice"),
]


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_bad_plugin_output(bad: BadInput, tmp_path: Path, template_db: Path) -> None:
    check(bad, tmp_path, template_db)


def test_the_fake_plugin_runs_when_it_behaves(tmp_path: Path) -> None:
    """The control: the plugin loads and runs, and 0/1 uint8 masks are accepted as masks."""
    install("uint8")(tmp_path)
    env = {key: value.format(tmp=tmp_path) for key, value in ENV.items()}
    done = run_cli(["run", "suite.toml", "--db", "ok.duckdb", "--limit-subjects", "1"], tmp_path, env)
    assert done.returncode == 0, done.stderr

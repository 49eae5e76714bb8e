"""Plugin discovery: entry points, isolation of broken plugins, conflicts, allow-list, docs."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest

from mskbench import hookspecs
from mskbench.errors import PluginError
from mskbench.plugin_manager import HOOK_KINDS, load_registry


def make_distribution(root: Path, name: str, module_source: str, entry: str = "plug") -> None:
    """A minimal installed distribution: dist-info with an entry point, plus its module."""
    module = f"{name.replace('-', '_')}_mod"
    (root / f"{module}.py").write_text(module_source)
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[mskbench]\n{entry} = {module}\n")


GOOD = '''
from mskbench.hookspecs import hookimpl
class Model:
    supported_prompts = frozenset({"box"})
    def __init__(self, device="cpu", checkpoint=None): pass
@hookimpl
def mskbench_register_models(register):
    register(name="{name}", factory=Model, description="test model")
'''


def registry_from(root: Path, monkeypatch, allow: str | None = None):
    monkeypatch.syspath_prepend(str(root))
    if allow is not None:
        monkeypatch.setenv("MSKBENCH_LOAD_PLUGINS", allow)
    else:
        monkeypatch.delenv("MSKBENCH_LOAD_PLUGINS", raising=False)
    eps = [ep for dist in distributions(path=[str(root)]) for ep in dist.entry_points if ep.group == "mskbench"]
    builtin = [ep for dist in distributions() if dist.metadata["Name"] == "mskbench" for ep in dist.entry_points if ep.group == "mskbench"]
    return load_registry(builtin + eps)


def test_builtins_are_registered_through_the_entry_point_group():
    registry = load_registry()
    for kind, name in [("dataset", "phantom"), ("model", "box_fill"), ("prompter", "gt_box"),
                       ("biomarker", "cartilage_thickness"), ("metric", "overlap")]:
        info = registry.get(kind, name, "test")
        assert info.distribution == "mskbench"
    assert not registry.failures, registry.failures


def test_broken_import_is_isolated(tmp_path, monkeypatch):
    make_distribution(tmp_path, "broken-plugin", "raise RuntimeError('boom at import')\n")
    make_distribution(tmp_path, "good-plugin", GOOD.replace("{name}", "good_model"))
    registry = registry_from(tmp_path, monkeypatch)
    assert registry.get("model", "good_model", "t").distribution == "good-plugin"
    failure = next(f for f in registry.failures if f.distribution == "broken-plugin")
    assert "boom at import" in failure.error
    assert "box_fill" in registry.names("model")


def test_failing_registration_is_isolated(tmp_path, monkeypatch):
    source = GOOD.replace('register(name="{name}", factory=Model, description="test model")', "raise ValueError('bad register')")
    make_distribution(tmp_path, "bad-register", source)
    registry = registry_from(tmp_path, monkeypatch)
    assert any("bad register" in f.error for f in registry.failures)
    assert "gt_box" in registry.names("prompter")


def test_duplicate_name_names_both_distributions(tmp_path, monkeypatch):
    make_distribution(tmp_path, "dup-plugin", GOOD.replace("{name}", "box_fill"))
    registry = registry_from(tmp_path, monkeypatch)
    with pytest.raises(PluginError, match="'mskbench' and 'dup-plugin'"):
        registry.get("model", "box_fill", "models[0]")


def test_allow_list(tmp_path, monkeypatch):
    make_distribution(tmp_path, "alpha-plugin", GOOD.replace("{name}", "alpha"))
    registry = registry_from(tmp_path, monkeypatch, allow="")
    assert "alpha" not in registry.names("model") and "box_fill" in registry.names("model")
    registry = registry_from(tmp_path, monkeypatch, allow="alpha-plugin")
    assert "alpha" in registry.names("model")


def test_allow_list_naming_an_uninstalled_distribution_warns_once(tmp_path, monkeypatch, caplog):
    make_distribution(tmp_path, "alpha-plugin", GOOD.replace("{name}", "alpha"))
    with caplog.at_level("WARNING", logger="mskbench.plugin_manager"):
        registry = registry_from(tmp_path, monkeypatch, allow="alpha_plugin, Beta_Plugin, gamma")
    assert "alpha" in registry.names("model")
    warnings = [r.getMessage() for r in caplog.records if "MSKBENCH_LOAD_PLUGINS" in r.getMessage()]
    assert warnings == [
        "MSKBENCH_LOAD_PLUGINS names Beta_Plugin, gamma, which is not an installed mskbench plugin distribution; "
        "installed: alpha-plugin"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="mskbench.plugin_manager"):
        registry_from(tmp_path, monkeypatch, allow="alpha-plugin,mskbench")
    assert not [r for r in caplog.records if "MSKBENCH_LOAD_PLUGINS" in r.getMessage()]


def test_allow_list_warning_is_one_stderr_line(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mskbench", "plugins", "--json"], capture_output=True, text=True,
        env={**_env(), "MSKBENCH_LOAD_PLUGINS": "no-such-dist"}, check=True,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "names no-such-dist" in lines[0] and "installed:" in lines[0], done.stderr


def test_unknown_name_suggests():
    with pytest.raises(PluginError, match=r"unknown model 'box_fil' \(did you mean 'box_fill'\?\)"):
        load_registry().get("model", "box_fil", "models[0]")


def test_plugins_json_cli_lists_broken_plugin(tmp_path):
    make_distribution(tmp_path, "broken-plugin", "import not_a_real_module_xyz\n")
    out = subprocess.run(
        [sys.executable, "-m", "mskbench", "plugins", "--json"],
        capture_output=True, text=True, env={**_env(), "PYTHONPATH": str(tmp_path)}, check=True,
    )
    rows = json.loads(out.stdout)
    keys = {"name", "kind", "distribution", "version", "description", "error"}
    assert all(keys <= set(row) for row in rows)
    kinds = {row["kind"] for row in rows if row["error"] is None}
    assert kinds == {"dataset", "model", "prompter", "biomarker", "metric"}
    broken = [row for row in rows if row["distribution"] == "broken-plugin"]
    assert broken and "not_a_real_module_xyz" in broken[0]["error"]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "MSKBENCH_LOAD_PLUGINS"}


def test_docs_document_every_hook_with_its_signature(repo):
    text = (repo / "docs" / "plugins.md").read_text()
    documented = dict(re.findall(r"^### `(mskbench_\w+)\((.*?)\)`", text, flags=re.M))
    for name in HOOK_KINDS:
        spec = getattr(hookspecs, name)
        params = ", ".join(inspect.signature(spec).parameters)
        assert name in documented, f"docs/plugins.md lacks a section for {name}"
        assert documented[name] == params, f"docs/plugins.md shows {name}({documented[name]}), spec is ({params})"

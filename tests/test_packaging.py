"""Packaging and CI wiring that a fresh clone depends on."""

from __future__ import annotations

import re
import tomllib


def test_every_package_folder_is_listed_in_pyproject(repo):
    config = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {".".join(p.parent.relative_to(repo).parts) for p in (repo / "mskbench").rglob("__init__.py")}
    found |= {"mskbench_builtins." + ".".join(p.parent.relative_to(repo / "plugins").parts) if p.parent != repo / "plugins" else "mskbench_builtins"
              for p in (repo / "plugins").rglob("__init__.py")}
    found = {f.rstrip(".") for f in found if "__pycache__" not in f}
    assert found == listed, f"add to or remove from [tool.setuptools] packages: {found ^ listed}"


def test_ci_runs_the_readme_test_command(repo):
    readme = (repo / "README.md").read_text()
    match = re.search(r"<!-- test-command -->\s*```bash\n(.+?)\n```", readme, flags=re.S)
    assert match, "README must mark its test command with <!-- test-command -->"
    command = match.group(1).strip()
    assert command in (repo / ".ci" / "run").read_text()


def test_schema_doc_lists_every_column(repo):
    from mskbench.store import TABLES

    text = (repo / "docs" / "schema.md").read_text()
    documented = set(re.findall(r"^\| (\w+) \| (\w+) \| (\w+) \|", text, flags=re.M))
    expected = {(t, c, typ) for t, cols in TABLES.items() for c, typ in cols}
    assert expected <= documented, f"docs/schema.md misses {sorted(expected - documented)}"

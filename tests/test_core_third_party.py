"""The third-party path, proven: pip-install the example plugin and use it in a suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from pathlib import Path

import duckdb
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory):
    """pip-install examples/mskbench-example-plugin into a private directory."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO / "examples" / "mskbench-example-plugin")],
        check=True,
    )
    return target


def cli(args, site, **env):
    environment = {k: v for k, v in os.environ.items() if k != "MSKBENCH_LOAD_PLUGINS"}
    environment.update(PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "mskbench", *args], capture_output=True, text=True, env=environment)


@pytest.mark.slow
def test_installed_plugin_appears_and_runs_in_a_suite(plugin_site, repo, tmp_path):
    listed = cli(["plugins", "--json"], plugin_site)
    assert listed.returncode == 0, listed.stderr
    rows = {(r["kind"], r["name"]): r for r in json.loads(listed.stdout)}
    model = rows[("model", "mean_threshold")]
    assert model["distribution"] == "mskbench-example-plugin"
    assert model["version"] == "0.2.0" and model["error"] is None
    assert rows[("metric", "volume_similarity")]["distribution"] == "mskbench-example-plugin"

    db = tmp_path / "example.duckdb"
    ran = cli(["run", str(repo / "examples" / "mskbench-example-plugin" / "suite.toml"), "--db", str(db)], plugin_site)
    assert ran.returncode == 0, ran.stderr
    con = duckdb.connect(str(db), read_only=True)
    values = con.execute("""
        SELECT c.model, m.metric, avg(m.value) FROM subject_metrics m JOIN cells c USING (run_id, cell_id)
        WHERE NOT isnan(m.value) GROUP BY ALL""").fetchall()
    con.close()
    by = {(model, metric): value for model, metric, value in values}
    assert 0 < by[("mean_threshold", "dice")] < 1
    assert 0 < by[("mean_threshold", "volume_similarity")] <= 1
    # The filled box over-segments, so its volume similarity is below 1 as well.
    assert by[("box_fill", "volume_similarity")] < 1


def test_allow_list_excludes_the_installed_plugin(plugin_site):
    listed = cli(["plugins", "--json"], plugin_site, MSKBENCH_LOAD_PLUGINS="")
    names = {r["name"] for r in json.loads(listed.stdout)}
    assert "mean_threshold" not in names and "box_fill" in names

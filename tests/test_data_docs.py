"""The docs promise only what exists: phantom anatomies, and the test files they cite."""

from __future__ import annotations

import re


def test_datasets_doc_lists_exactly_the_phantom_anatomies(repo):
    from mskbench.phantom.generate import ANATOMIES

    row = next(line for line in (repo / "docs" / "datasets.md").read_text().splitlines() if line.startswith("| `phantom` |"))
    offered = set(re.findall(r"[a-z]+", row.split("|")[2])) - {"and", "phantoms", "with", "analytic", "truth"}
    assert offered == set(ANATOMIES)


def test_docs_cite_only_test_files_that_exist(repo):
    cited = {
        (doc.name, path)
        for doc in [repo / "README.md", *(repo / "docs").glob("*.md")]
        for path in re.findall(r"\btests/[\w/]+\.py\b", doc.read_text())
    }
    assert cited, "no doc cites a test file: this check has nothing to check"
    missing = sorted((doc, path) for doc, path in cited if not (repo / path).is_file())
    assert not missing, f"docs cite test files that do not exist: {missing}"

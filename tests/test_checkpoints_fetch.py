"""`mskbench models fetch`: download, resume with HTTP Range, sha256 check (local server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
from pathlib import Path

import pytest

from mskbench.cli.main import main
from mskbench.errors import CheckpointError
from mskbench.segmenters import checkpoints as ck
from mskbench.segmenters.download import fetch_checkpoint

PAYLOAD = bytes((i * 7919) % 251 for i in range(300_000))
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD at /tiny.pth, honouring a single 'bytes=N-' range unless told not to."""

    honour_range = True
    cut_after: int | None = None  # send only this many body bytes, then drop the connection
    requests: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/download-page":  # what a file host answers with instead of the file
            body = b"<!doctype html><html><body>Click here to download</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path != "/tiny.pth":
            self.send_error(404, "Not Found")
            return
        header = self.headers.get("Range")
        type(self).requests.append(header)
        match = re.fullmatch(r"bytes=(\d+)-", header or "")
        if match and self.honour_range:
            start = int(match.group(1))
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.end_headers()
                return
            body = PAYLOAD[start:]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            body = PAYLOAD
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.cut_after is not None:
            self.wfile.write(body[: self.cut_after])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server():
    _Handler.requests = []
    _Handler.honour_range = True
    _Handler.cut_after = None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def registry(tmp_path, monkeypatch, server):
    """A registry entry for the served file, added the way users add their own (MSKBENCH_CHECKPOINT_REGISTRY)."""
    folder = tmp_path / "ckpts"
    monkeypatch.setenv(ck.CHECKPOINTS_ENV, str(folder))
    monkeypatch.setattr(ck, "_memory_hashes", {})
    entries = {
        "tiny": {"filename": "tiny.pth", "url": f"{server}/tiny.pth", "plugin": "sam",
                 "sha256": PAYLOAD_SHA, "size": len(PAYLOAD)},
        "tiny_wrong_hash": {"filename": "tiny.pth", "url": f"{server}/tiny.pth", "plugin": "sam",
                            "sha256": "ab" * 32},
        "tiny_404": {"filename": "gone.pth", "url": f"{server}/gone.pth", "plugin": "sam"},
        "no_hash": {"filename": "tiny.pth", "url": f"{server}/tiny.pth", "plugin": "sam"},
        "web_page": {"filename": "page.pth", "url": f"{server}/download-page", "plugin": "sam"},
    }  # fmt: skip
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(entries))
    monkeypatch.setenv(ck.REGISTRY_ENV, str(path))
    return folder


def test_fetch_downloads_verifies_and_reports_found(registry, capsys):
    assert main(["models", "fetch", "tiny"]) == 0
    assert (registry / "tiny.pth").read_bytes() == PAYLOAD
    assert not (registry / "tiny.pth.part").exists()
    assert _Handler.requests == [None]
    assert ck.checkpoint_status("tiny") == ("found", registry / "tiny.pth")
    assert str(registry / "tiny.pth") in capsys.readouterr().out


def test_fetch_resumes_a_partial_download_with_range(registry):
    registry.mkdir(parents=True)
    (registry / "tiny.pth.part").write_bytes(PAYLOAD[:123_456])
    seen = []
    path = fetch_checkpoint("tiny", on_progress=lambda done, total: seen.append((done, total)))
    assert path.read_bytes() == PAYLOAD
    assert _Handler.requests == ["bytes=123456-"]
    assert seen[0] == (123_456, len(PAYLOAD)) and seen[-1] == (len(PAYLOAD), len(PAYLOAD))


def test_fetch_restarts_when_the_server_ignores_range(registry):
    _Handler.honour_range = False
    registry.mkdir(parents=True)
    (registry / "tiny.pth.part").write_bytes(b"garbage that must not stay in front")
    assert fetch_checkpoint("tiny").read_bytes() == PAYLOAD


def test_fetch_finishes_a_complete_part_file_without_downloading(registry):
    registry.mkdir(parents=True)
    (registry / "tiny.pth.part").write_bytes(PAYLOAD)
    assert fetch_checkpoint("tiny").read_bytes() == PAYLOAD
    assert _Handler.requests == []


def test_fetch_of_a_present_verified_file_downloads_nothing(registry):
    registry.mkdir(parents=True)
    (registry / "tiny.pth").write_bytes(PAYLOAD)
    assert fetch_checkpoint("tiny") == registry / "tiny.pth"
    assert _Handler.requests == []


def test_fetch_never_overwrites_a_present_file_with_another_hash(registry):
    registry.mkdir(parents=True)
    (registry / "tiny.pth").write_bytes(b"someone's file")
    with pytest.raises(CheckpointError, match="exists but its sha256 differs"):
        fetch_checkpoint("tiny")
    assert (registry / "tiny.pth").read_bytes() == b"someone's file"


def test_hash_mismatch_after_download_removes_the_file(registry, capsys):
    assert main(["models", "fetch", "tiny_wrong_hash"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: downloaded") and "expected abababab" in err and err.count("\n") == 1
    assert not (registry / "tiny.pth").exists() and not (registry / "tiny.pth.part").exists()


def test_mirror_url_still_checks_the_official_hash(registry, server, tmp_path):
    dest = tmp_path / "elsewhere"
    assert main(["models", "fetch", "tiny_404", "--url", f"{server}/tiny.pth", "--sha256", PAYLOAD_SHA,
                 "--dest", str(dest)]) == 0  # fmt: skip
    assert (dest / "gone.pth").read_bytes() == PAYLOAD
    with pytest.raises(CheckpointError, match="expected abababab"):
        fetch_checkpoint("tiny_wrong_hash", tmp_path / "other", url=f"{server}/tiny.pth")


def test_http_error_is_one_line(registry, capsys):
    assert main(["models", "fetch", "tiny_404"]) == 2
    err = capsys.readouterr().err
    assert "HTTP 404" in err and err.count("\n") == 1


def test_unreachable_server_keeps_nothing_and_says_so(registry, monkeypatch, tmp_path):
    path = tmp_path / "registry.json"
    path.write_text(json.dumps({"dead": {"filename": "d.pth", "url": "http://127.0.0.1:9/d.pth", "plugin": "sam"}}))
    monkeypatch.setenv(ck.REGISTRY_ENV, str(path))
    with pytest.raises(CheckpointError, match="cannot reach http://127.0.0.1:9/d.pth"):
        fetch_checkpoint("dead")


def test_manual_download_models_explain_where_to_get_them(registry, capsys, monkeypatch):
    monkeypatch.delenv(ck.REGISTRY_ENV)
    assert main(["models", "fetch", "medsam_vit_b"]) == 2
    err = capsys.readouterr().err
    assert "by hand" in err and "drive.google.com" in err and str(registry) in err


def test_fetched_file_loads_its_hash_from_the_cache(registry, monkeypatch):
    fetch_checkpoint("tiny")
    monkeypatch.setattr(ck, "_memory_hashes", {})
    monkeypatch.setattr(ck, "sha256_uncached", lambda *a: pytest.fail("re-hashed a freshly fetched file"))
    assert ck.sha256_file(Path(registry / "tiny.pth")) == PAYLOAD_SHA


def test_malformed_sha256_option_is_rejected_before_downloading(registry, capsys):
    assert main(["models", "fetch", "tiny", "--sha256", "deadbeef"]) == 2
    assert "64 hex digits" in capsys.readouterr().err and _Handler.requests == []


def test_a_dropped_connection_keeps_the_part_and_the_next_fetch_resumes(registry, capsys):
    _Handler.cut_after = 100_000
    assert main(["models", "fetch", "tiny"]) == 2
    assert "rerun to resume" in capsys.readouterr().err
    assert (registry / "tiny.pth.part").read_bytes() == PAYLOAD[:100_000]
    _Handler.cut_after = None
    assert fetch_checkpoint("tiny").read_bytes() == PAYLOAD
    assert _Handler.requests == [None, "bytes=100000-"]


def test_fetch_without_a_known_hash_warns_in_one_line(registry, caplog):
    with caplog.at_level("WARNING", logger="mskbench.segmenters.download"):
        assert fetch_checkpoint("no_hash").read_bytes() == PAYLOAD
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        "no sha256 is known for 'no_hash' and none was given with --sha256: the download cannot be verified"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="mskbench.segmenters.download"):
        fetch_checkpoint("no_hash", registry / "again", sha256=PAYLOAD_SHA)
        fetch_checkpoint("tiny", registry / "third")
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_a_web_page_instead_of_the_file_is_refused_and_nothing_kept(registry, server, capsys):
    with pytest.raises(CheckpointError) as err:
        fetch_checkpoint("web_page")
    assert str(err.value).startswith(f"{server}/download-page returned a web page (text/html), not a checkpoint;")
    assert not (registry / "page.pth").exists() and not (registry / "page.pth.part").exists()
    # also with a hash given: the page is refused for what it is, before any byte is written
    assert main(["models", "fetch", "tiny", "--url", f"{server}/download-page"]) == 2
    err_text = capsys.readouterr().err
    assert "returned a web page" in err_text and err_text.count("\n") == 1
    assert not (registry / "tiny.pth.part").exists()

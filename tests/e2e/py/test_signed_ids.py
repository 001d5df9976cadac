"""Signed upload identifiers: issued per user, refused when forged, altered or foreign."""

import tempfile
from pathlib import Path

import pytest
import requests

from conftest import Chunkd


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="chunkd-ids-") as d:
        s = Chunkd(Path(d), env={"CHUNKD_SIGNING__KEY": "progress-id-key-0123456789abcdef01", "CHUNKD_AUTH__MODE": "header"})
        s.base = s.endpoint.rsplit("/files/", 1)[0]
        yield s
        s.stop()


def as_user(user):
    return {"X-Forwarded-User": user}


def upload(server, progress_id, user):
    return requests.post(
        f"{server.base}/upload",
        params={"X-Progress-ID": progress_id},
        files={"file": ("a.txt", b"hello")},
        headers=as_user(user),
    )


def test_issued_ids_work_only_for_their_user(server):
    issued = requests.post(f"{server.base}/ids", headers=as_user("alice"))
    assert issued.status_code == 201
    pid = issued.json()["id"]
    assert requests.get(f"{server.base}/ids/{pid}", headers=as_user("alice")).json()["valid"] is True
    assert requests.get(f"{server.base}/ids/{pid}", headers=as_user("bob")).status_code == 403
    assert upload(server, pid, "bob").status_code == 403, "foreign"
    altered = pid[:-1] + ("0" if pid[-1] != "0" else "1")
    assert upload(server, altered, "alice").status_code == 403, "altered"
    assert upload(server, "0" * 32 + "-" + "0" * 24, "alice").status_code == 403, "forged"
    assert upload(server, "../../etc", "alice").status_code == 400, "malformed"
    ok = upload(server, pid, "alice")
    assert ok.status_code == 200 and ok.json()["files"][0]["size"] == 5
    progress = requests.get(f"{server.base}/progress", params={"X-Progress-ID": pid}, headers=as_user("alice")).json()
    assert progress["state"] == "done"

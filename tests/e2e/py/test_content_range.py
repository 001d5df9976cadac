"""The drf-chunked-upload and django-chunked-upload contracts, spoken with `requests`
exactly as their JavaScript and Python clients do, against the chunkd binary."""

import hashlib
import os

import requests

from conftest import sha256

CHUNK = 256 * 1024


def base(chunkd):
    return chunkd.endpoint.replace("/files/", "/chunked/")


def test_drf_protocol_put_chunks_resume_and_complete(chunkd):
    data = os.urandom(5 * CHUNK + 1234)
    total = len(data)
    # First chunk creates the upload; the response names its URL.
    r = requests.put(
        base(chunkd),
        files={"file": ("report.pdf", data[:CHUNK])},
        data={"filename": "report.pdf"},
        headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{total}"},
    )
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    offset = r.json()["offset"]
    # A client that lost track asks where the upload stands, then continues there.
    offset = requests.get(url).json()["offset"]
    assert offset == CHUNK
    while offset < total:
        end = min(offset + CHUNK, total)
        r = requests.put(url, files={"file": ("blob", data[offset:end])}, headers={"Content-Range": f"bytes {offset}-{end - 1}/{total}"})
        assert r.status_code == 200, r.text
        offset = r.json()["offset"]
    bad = requests.post(url, data={"md5": hashlib.md5(b"other").hexdigest()})
    assert bad.status_code == 400
    done = requests.post(url, data={"md5": hashlib.md5(data).hexdigest()})
    assert done.status_code == 200 and done.json()["status"] == "complete"
    assert sha256(requests.get(url + "/content").content) == sha256(data)
    assert sha256(chunkd.stored(url)) == sha256(data)


def test_django_protocol_posts_with_upload_id_then_complete(chunkd):
    data = os.urandom(3 * CHUNK)
    total = len(data)
    upload_id = None
    for start in range(0, total, CHUNK):
        fields = {"upload_id": upload_id} if upload_id else {}
        r = requests.post(
            base(chunkd),
            data=fields,
            files={"file": ("data.bin", data[start : start + CHUNK])},
            headers={"Content-Range": f"bytes {start}-{start + CHUNK - 1}/{total}"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        upload_id = body["upload_id"]
        assert body["offset"] == start + CHUNK
        # Unfinished uploads expire; a finished one is kept.
        assert body["expires"].endswith("Z") if body["status"] == "uploading" else body["expires"] is None
    stale = requests.post(
        base(chunkd),
        data={"upload_id": upload_id},
        files={"file": ("data.bin", data[:CHUNK])},
        headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{total}"},
    )
    assert stale.status_code == 400
    done = requests.post(base(chunkd) + "complete", data={"upload_id": upload_id, "md5": hashlib.md5(data).hexdigest()})
    assert done.status_code == 200, done.text
    assert sha256(chunkd.stored(done.json()["url"])) == sha256(data)


def test_one_shot_post_with_md5(chunkd):
    data = os.urandom(100_000)
    r = requests.post(base(chunkd), files={"file": ("one.bin", data)}, data={"md5": hashlib.md5(data).hexdigest()})
    assert r.status_code == 200 and r.json()["status"] == "complete", r.text
    assert sha256(chunkd.stored(r.json()["url"])) == sha256(data)


def test_refused_chunks_leave_a_pooled_connection_usable(chunkd):
    """A stale chunk is refused before its body is read; a Session that reuses its
    connection must still get every next answer (it used to fail now and then with
    "connection closed without response")."""
    data = os.urandom(2 * CHUNK)
    session = requests.Session()
    first = session.put(
        base(chunkd),
        files={"file": ("a.bin", data[:CHUNK])},
        headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{len(data)}"},
    )
    assert first.status_code == 200, first.text
    url = first.json()["url"]
    for _ in range(20):
        stale = session.put(
            url,
            files={"file": ("a.bin", data[:CHUNK])},
            headers={"Content-Range": f"bytes 0-{CHUNK - 1}/{len(data)}"},
        )
        assert stale.status_code == 400, stale.text
        assert stale.json()["offset"] == CHUNK
        assert session.get(url).json()["offset"] == CHUNK
    rest = session.put(
        url,
        files={"file": ("a.bin", data[CHUNK:])},
        headers={"Content-Range": f"bytes {CHUNK}-{len(data) - 1}/{len(data)}"},
    )
    assert rest.status_code == 200, rest.text
    assert sha256(chunkd.stored(url)) == sha256(data)

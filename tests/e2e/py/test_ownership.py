"""Per-user uploads: tokens minted by PyJWT (as a Django/Flask app would), uploads by tuspy."""

import os
import tempfile
import time
from pathlib import Path

import jwt
import pytest
import requests
from tusclient import client
from tusclient.exceptions import TusCommunicationError

from conftest import Chunkd, sha256

KEY = "a-shared-secret-of-at-least-32-bytes!!"
TUS = {"Tus-Resumable": "1.0.0"}


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="chunkd-auth-") as d:
        s = Chunkd(
            Path(d),
            env={"CHUNKD_AUTH__MODE": "token", "CHUNKD_AUTH__TOKEN_KEY": KEY, "CHUNKD_AUTH__REQUIRED": "true"},
        )
        yield s
        s.stop()


def bearer(user, key=KEY, ttl=300):
    token = jwt.encode({"sub": user, "exp": int(time.time()) + ttl}, key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def test_an_upload_belongs_to_the_identity_that_created_it(server):
    data = os.urandom(1 << 20)
    alice = client.TusClient(server.endpoint, headers=bearer("alice"))
    up = alice.uploader(file_stream=__import__("io").BytesIO(data), chunk_size=256 * 1024)
    up.upload()
    assert sha256(server.stored(up.url)) == sha256(data)
    assert requests.get(up.url, headers=bearer("alice")).content == data
    for method in ("HEAD", "GET", "DELETE"):
        r = requests.request(method, up.url, headers={**TUS, **bearer("bob")})
        assert r.status_code == 404, (method, r.status_code)
    r = requests.patch(
        up.url,
        data=b"x",
        headers={**TUS, **bearer("bob"), "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
    )
    assert r.status_code == 404
    assert sha256(server.stored(up.url)) == sha256(data), "bob changed nothing"


def test_missing_forged_and_expired_tokens_are_refused(server):
    with pytest.raises(TusCommunicationError):
        client.TusClient(server.endpoint).uploader(file_stream=__import__("io").BytesIO(b"x"), chunk_size=1).upload()
    for headers in (bearer("mallory", key="not-the-key-but-also-32-bytes-long"), bearer("alice", ttl=-10)):
        r = requests.post(server.endpoint, headers={**TUS, **headers, "Upload-Length": "1"})
        assert r.status_code == 403, r.status_code
    # Discovery stays open.
    assert requests.options(server.endpoint).headers["Tus-Version"] == "1.0.0"


def test_ietf_draft_uploads_have_owners_too(server):
    uploads = server.endpoint.replace("/files/", "/uploads")
    # No interop version: Python's http.client would take a 104 for the final response.
    draft = {}
    r = requests.post(uploads, data=b"", headers={**draft, **bearer("alice"), "Upload-Complete": "?0"})
    assert r.status_code == 201, r.text
    location = r.headers["Location"]
    assert requests.post(uploads, data=b"", headers={**draft, "Upload-Complete": "?0"}).status_code == 403
    append = {**draft, "Content-Type": "application/partial-upload", "Upload-Offset": "0", "Upload-Complete": "?1"}
    for method in ("HEAD", "DELETE"):
        assert requests.request(method, location, headers={**draft, **bearer("bob")}).status_code == 404, method
    assert requests.patch(location, data=b"bob's", headers={**append, **bearer("bob")}).status_code == 404
    data = os.urandom(100_000)
    r = requests.patch(location, data=data, headers={**append, **bearer("alice")})
    assert r.status_code == 200, r.text
    assert r.headers["Upload-Complete"] == "?1"
    assert sha256(server.stored(location)) == sha256(data), "bob changed nothing"

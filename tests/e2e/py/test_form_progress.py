"""A plain form upload by curl, with the progress endpoint polled while it runs."""

import hashlib
import os
import subprocess
import tempfile
import time

import requests

from conftest import sha256


def test_curl_form_upload_with_progress_polling(chunkd):
    base = chunkd.endpoint.rsplit("/files/", 1)[0]
    data = os.urandom(24 << 20)
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(data)
        f.flush()
        # Rate-limited so the upload lasts long enough to be watched mid-way.
        curl = subprocess.Popen(
            ["curl", "-sS", "--limit-rate", "12M", "-F", "note=hello", "-F", f"file=@{f.name};type=application/x-demo",
             f"{base}/upload?X-Progress-ID=curl-1"],
            stdout=subprocess.PIPE,
        )
        states = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            p = requests.get(f"{base}/progress", headers={"X-Progress-ID": "curl-1"}).json()
            states.append(p)
            if p["state"] == "done":
                break
        out, _ = curl.communicate(timeout=60)
    assert curl.returncode == 0
    mid = [s for s in states if s["state"] == "uploading" and 0 < s["received"] < s["size"]]
    assert mid, f"never saw the upload in progress: {states[:5]}"
    received = [s["received"] for s in states if s["state"] == "uploading"]
    assert received == sorted(received), "progress only moves forward"
    assert states[-1]["state"] == "done"
    reply = __import__("json").loads(out)
    stored = reply["files"][0]
    assert stored["size"] == len(data)
    assert stored["md5"] == hashlib.md5(data).hexdigest()
    assert stored["sha256"] == sha256(data)
    assert stored["content_type"] == "application/x-demo"
    assert reply["fields"]["note"] == "hello"
    assert sha256(requests.get(stored["url"]).content) == sha256(data)
    assert requests.delete(f"{base}/progress", headers={"X-Progress-ID": "curl-1"}).status_code == 204


def _form_upload_in_two_writes(base: str, data: bytes) -> dict:
    """POSTs `data` as a form file part, sending the closing boundary
    in a write of its own after a pause: the parser then ends the part with an empty
    chunk, which the store used to refuse (500) for empty files and for sizes such as
    262144 and 300000 bytes."""
    import http.client
    import json
    from urllib.parse import urlparse

    url = urlparse(base)
    boundary = "chunkdtwowrites"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.bin\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body_len = len(head) + len(data) + len(tail)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("POST", "/upload")
    conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
    conn.putheader("Content-Length", str(body_len))
    conn.endheaders()
    conn.send(head + data)
    # Not a synchronisation (the test passes however the bytes are read once fixed):
    # the pause makes the server read the data before the delimiter exists.
    time.sleep(0.2)
    conn.send(tail)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200, body[:500]
    return json.loads(body)


def test_form_files_whose_delimiter_arrives_late_are_stored(chunkd):
    base = chunkd.endpoint.rsplit("/files/", 1)[0]
    for size in (0, 1, 262143, 262144, 300000):
        data = os.urandom(size)
        stored = _form_upload_in_two_writes(base, data)["files"][0]
        assert stored["size"] == size
        assert stored["sha256"] == sha256(data)
        assert sha256(requests.get(stored["url"]).content) == sha256(data)

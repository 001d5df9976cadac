"""tuspy (the Python tus client) and raw requests against the chunkd binary."""

import io
import os
from pathlib import Path

import requests
from tusclient import client

from conftest import sha256

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}


def uploader(chunkd, data, **kw):
    tus = client.TusClient(chunkd.endpoint)
    return tus.uploader(file_stream=io.BytesIO(data), metadata={"filename": "py.bin"}, **kw)


def test_single_request_upload(chunkd):
    data = os.urandom(3 * MIB + 11)
    up = uploader(chunkd, data, chunk_size=len(data))
    up.upload()
    assert sha256(chunkd.stored(up.url)) == sha256(data)


def test_chunked_upload_with_per_chunk_checksums(chunkd):
    data = os.urandom(2 * MIB + 3)
    up = uploader(chunkd, data, chunk_size=512 * 1024, upload_checksum=True)
    up.upload()
    assert up.offset == len(data)
    assert sha256(chunkd.stored(up.url)) == sha256(data)


def test_stopped_upload_resumes_from_the_server_offset(chunkd):
    data = os.urandom(4 * MIB)
    first = uploader(chunkd, data, chunk_size=MIB)
    first.upload(stop_at=2 * MIB)
    head = requests.head(first.url, headers=TUS)
    assert int(head.headers["Upload-Offset"]) == 2 * MIB
    resumed = uploader(chunkd, data, chunk_size=MIB, url=first.url)
    assert resumed.offset == 2 * MIB
    resumed.upload()
    assert sha256(requests.get(first.url).content) == sha256(data)


def create(chunkd, length):
    r = requests.post(chunkd.endpoint, headers={**TUS, "Upload-Length": str(length)})
    assert r.status_code == 201
    return r.headers["Location"]


def test_checksum_mismatch_is_460_and_discards_the_chunk(chunkd):
    url = create(chunkd, 11)
    headers = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    bad = requests.patch(url, data=b"hello world", headers={**headers, "Upload-Checksum": "sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA="})
    assert bad.status_code == 460
    assert requests.head(url, headers=TUS).headers["Upload-Offset"] == "0"
    unknown = requests.patch(url, data=b"hello world", headers={**headers, "Upload-Checksum": "blake9 AAAA"})
    assert unknown.status_code == 400
    good = requests.patch(url, data=b"hello world", headers={**headers, "Upload-Checksum": "sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0="})
    assert good.status_code == 204
    assert chunkd.stored(url) == b"hello world"


def test_chunked_transfer_encoding_with_a_checksum_trailer(chunkd):
    import hashlib
    import base64
    import socket
    from urllib.parse import urlparse

    data = os.urandom(300_000)
    url = create(chunkd, len(data))
    u = urlparse(url)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (data[:100_000], data[100_000:]))
    request = (
        f"PATCH {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        "Transfer-Encoding: chunked\r\nTrailer: Upload-Checksum\r\nConnection: close\r\n\r\n"
    ).encode() + chunks + f"0\r\nUpload-Checksum: sha256 {digest}\r\n\r\n".encode()
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(request)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 204"), reply[:200]
    assert sha256(chunkd.stored(url)) == sha256(data)


def test_bad_ids_never_touch_the_filesystem(chunkd):
    base = chunkd.endpoint.rstrip("/")
    for bad in ["..", "..%2f..%2fetc%2fpasswd", "%00", "a" * 10_000, "x.part", "state.sqlite3"]:
        r = requests.patch(
            f"{base}/{bad}",
            data=b"x",
            headers={**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"},
        )
        # urllib3 resolves a bare ".." before sending: that PATCH reaches the upload
        # page at /, which takes none (405).
        allowed = (404, 414, 431, 405) if bad == ".." else (404, 414, 431)
        assert r.status_code in allowed, (bad, r.status_code)
    names = {p.name for p in Path(chunkd.data_dir).iterdir()}
    assert names <= {"files", "state.sqlite3", "state.sqlite3-wal", "state.sqlite3-shm"}, names


def raw_exchange(url, head: bytes, body: bytes, expect_continue: bool):
    """Sends a request head, waits for 100 Continue when asked, then the body."""
    import socket
    from urllib.parse import urlparse

    u = urlparse(url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        s.sendall(head)
        first = b""
        if expect_continue:
            while b"\r\n\r\n" not in first:
                chunk = s.recv(4096)
                if not chunk:
                    break
                first += chunk
            if not first.startswith(b"HTTP/1.1 100"):
                return first  # a final answer instead of 100: the body is never sent
            first = b""
        s.sendall(body)
        reply = first
        while chunk := s.recv(65536):
            reply += chunk
        return reply


def test_expect_100_continue(chunkd):
    from urllib.parse import urlparse

    url = create(chunkd, 5)
    path, host = urlparse(url).path, urlparse(url).netloc

    def head(offset):
        return (
            f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            "Content-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        ).encode()

    # A request the server refuses is answered before any body is sent.
    refused = raw_exchange(url, head(3), b"", expect_continue=True)
    assert refused.startswith(b"HTTP/1.1 409"), refused[:100]
    accepted = raw_exchange(url, head(0), b"hello", expect_continue=True)
    assert accepted.startswith(b"HTTP/1.1 204"), accepted[:100]
    assert chunkd.stored(url) == b"hello"

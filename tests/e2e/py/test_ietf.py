"""The IETF resumable-upload draft over raw sockets, for every interop version chunkd
speaks: the 104 bytes on the wire, Location identical in interim and final responses,
and optimistic uploads (URLSession's way) cut off mid-body and resumed with HEAD + PATCH.
"""

import hashlib
import os
import select
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from conftest import Chunkd, sha256

VERSIONS = [3, 4, 5, 6, 7, 8]
TIMEOUT = 30


def completeness(version: int, complete: bool) -> tuple[str, str]:
    """Interop 3 says `Upload-Incomplete`, with the opposite meaning."""
    if version == 3:
        return "Upload-Incomplete", "?0" if complete else "?1"
    return "Upload-Complete", "?1" if complete else "?0"


def is_complete(version: int, head: "Head") -> bool:
    name, value = completeness(version, True)
    return head.header(name) == value


class Head:
    def __init__(self, raw: bytes):
        self.raw = raw
        text = raw.decode("latin-1")
        lines = text.split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split(" ")[1])
        self.headers = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                self.headers.append((name.strip().lower(), value.strip()))

    def header(self, name: str):
        for n, v in self.headers:
            if n == name.lower():
                return v
        return None


class Conn:
    """One HTTP/1.1 connection, written and read byte by byte."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.host = parts.netloc
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)
        self.reader = self.sock.makefile("rb")

    def request(self, method: str, url: str, headers: dict, body: bytes = b""):
        path = urlsplit(url).path
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    def send(self, data: bytes):
        self.sock.sendall(data)

    def head(self) -> Head:
        raw = b""
        while True:
            line = self.reader.readline()
            assert line, f"connection closed inside a response head: {raw!r}"
            raw += line
            if line == b"\r\n":
                return Head(raw)

    def body(self, head: Head) -> bytes:
        n = int(head.header("content-length") or 0)
        return self.reader.read(n)

    def final(self) -> tuple[list[Head], Head]:
        """Interim responses, then the final one."""
        interims = []
        while True:
            head = self.head()
            if head.status >= 200:
                return interims, head
            interims.append(head)

    def close(self):
        self.reader.close()
        self.sock.close()


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="chunkd-ietf-") as d:
        s = Chunkd(Path(d))
        s.uploads = s.endpoint.replace("/files/", "/uploads")
        yield s
        s.stop()


def creation_headers(version: int | None, complete: bool, length: int | None, body_len: int):
    headers = {"Content-Length": str(body_len), "Content-Type": "application/octet-stream"}
    if version is not None:
        headers["Upload-Draft-Interop-Version"] = str(version)
        name, value = completeness(version, complete)
        headers[name] = value
    else:
        headers["Upload-Complete"] = "?1" if complete else "?0"
    if length is not None:
        headers["Upload-Length"] = str(length)
    return headers


def downloaded(server, upload_url: str) -> bytes:
    upload_id = upload_url.rstrip("/").split("/")[-1]
    r = requests.get(server.endpoint + upload_id, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.content


@pytest.mark.parametrize("version", VERSIONS)
def test_the_104_comes_before_the_body_and_names_the_final_location(server, version):
    data = os.urandom(300_000)
    conn = Conn(server.uploads)
    conn.request("POST", server.uploads, creation_headers(version, True, len(data), len(data)))
    # Nothing of the body has been sent: the 104 is the server's answer to the head alone.
    interim = conn.head()
    assert interim.status_line == "HTTP/1.1 104 Upload Resumption Supported"
    assert interim.header("upload-draft-interop-version") == str(version)
    assert interim.header("upload-limit")
    location = interim.header("location")
    assert location.startswith(server.uploads + "/")
    # The exact bytes: a status line, CRLF-terminated fields, an empty line, no body.
    assert interim.raw.startswith(b"HTTP/1.1 104 Upload Resumption Supported\r\nlocation: ")
    assert interim.raw.endswith(b"\r\n\r\n") and b"content-length" not in interim.raw
    conn.send(data)
    progress, final = conn.final()
    assert all(p.header("location") is None for p in progress)
    assert final.status == 201
    assert final.header("location") == location
    assert is_complete(version, final)
    assert int(final.header("upload-offset")) == len(data)
    assert sha256(downloaded(server, location)) == sha256(data)
    conn.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_an_optimistic_upload_cut_off_mid_body_resumes_byte_identical(server, version):
    data = os.urandom(2_000_000)
    conn = Conn(server.uploads)
    headers = creation_headers(version, True, None, len(data))
    headers["Content-Disposition"] = 'inline; filename="cut.bin"'
    conn.request("POST", server.uploads, headers)
    location = conn.head().header("location")
    sent = 700_000
    conn.send(data[:sent])
    conn.sock.shutdown(socket.SHUT_RDWR)
    conn.close()

    probe = Conn(location)
    probe.request("HEAD", location, {"Upload-Draft-Interop-Version": str(version)})
    head = probe.head()
    assert head.status == 204
    assert head.header("cache-control") == "no-store"
    assert not is_complete(version, head)
    offset = int(head.header("upload-offset"))
    assert 0 <= offset <= sent
    # The length came from Upload-Complete + Content-Length of the cut request.
    assert head.header("upload-length") == str(len(data))
    probe.close()

    rest = data[offset:]
    name, value = completeness(version, True)
    patch = {
        "Upload-Draft-Interop-Version": str(version),
        "Upload-Offset": str(offset),
        name: value,
        "Content-Length": str(len(rest)),
    }
    if version >= 6:
        patch["Content-Type"] = "application/partial-upload"
    resume = Conn(location)
    resume.request("PATCH", location, patch, rest)
    _, final = resume.final()
    body = resume.body(final)
    assert final.status == 200, body
    assert is_complete(version, final)
    assert int(final.header("upload-offset")) == len(data)
    assert sha256(downloaded(server, location)) == sha256(data)
    resume.close()


def test_no_104_without_an_interop_version(server):
    data = b"plain optimistic upload"
    conn = Conn(server.uploads)
    conn.request("POST", server.uploads, creation_headers(None, True, None, len(data)), data)
    first = conn.head()
    assert first.status == 201, first.raw
    assert first.header("upload-complete") == "?1"
    assert sha256(downloaded(server, first.header("location"))) == sha256(data)
    conn.close()


@pytest.mark.parametrize("version", [2, 9, "6.0", "x"])
def test_an_unspoken_interop_version_is_refused_without_a_104(server, version):
    conn = Conn(server.uploads)
    conn.request(
        "POST",
        server.uploads,
        {"Upload-Draft-Interop-Version": str(version), "Upload-Complete": "?1", "Content-Length": "0"},
    )
    first = conn.head()
    assert first.status == 400
    assert b"not spoken here" in conn.body(first)
    conn.close()


@pytest.mark.parametrize("version", [6, 8])
def test_a_newer_request_makes_a_running_append_let_go(server, version):
    """Newest wins: a client that lost its connection can resume while the server
    still waits on the old request."""
    data = os.urandom(1_000_000)
    create = Conn(server.uploads)
    create.request("POST", server.uploads, creation_headers(version, False, len(data), 0))
    _, created = create.final()
    location = created.header("location")
    create.close()

    stalled = Conn(location)
    stalled.request(
        "PATCH",
        location,
        {
            "Upload-Draft-Interop-Version": str(version),
            "Upload-Offset": "0",
            "Upload-Complete": "?1",
            "Content-Type": "application/partial-upload",
            "Content-Length": str(len(data)),
        },
    )
    stalled.send(data[:400_000])
    # A HEAD that reaches the server before the PATCH took the upload finds it idle, and
    # the PATCH then waits for the rest of its body: ask again until the PATCH has
    # answered (it lost the upload to the newer request).
    for _ in range(10):
        probe = Conn(location)
        probe.request("HEAD", location, {"Upload-Draft-Interop-Version": str(version)})
        head = probe.head()
        probe.close()
        assert head.status == 204
        offset = int(head.header("upload-offset"))
        assert offset <= 400_000
        if select.select([stalled.sock], [], [], 5)[0]:
            break
    _, old = stalled.final()
    assert old.status == 409
    stalled.close()

    finish = Conn(location)
    finish.request(
        "PATCH",
        location,
        {
            "Upload-Draft-Interop-Version": str(version),
            "Upload-Offset": str(offset),
            "Upload-Complete": "?1",
            "Content-Type": "application/partial-upload",
            "Content-Length": str(len(data) - offset),
        },
        data[offset:],
    )
    _, final = finish.final()
    assert final.status == 200
    assert sha256(downloaded(server, location)) == sha256(data)
    finish.close()


def test_long_appends_report_committed_offsets_in_104s():
    with tempfile.TemporaryDirectory(prefix="chunkd-ietf-progress-") as d:
        server = Chunkd(
            Path(d),
            env={"CHUNKD_CHECKPOINT_BYTES": "65536", "CHUNKD_IETF__PROGRESS_INTERVAL": "0s"},
        )
        try:
            uploads = server.endpoint.replace("/files/", "/uploads")
            data = os.urandom(4_000_000)
            conn = Conn(uploads)
            conn.request(
                "POST",
                uploads,
                creation_headers(8, True, len(data), len(data)),
            )
            location = conn.head().header("location")
            for i in range(0, len(data), 250_000):
                conn.send(data[i : i + 250_000])
            progress, final = conn.final()
            assert final.status == 201
            offsets = [int(p.header("upload-offset")) for p in progress]
            assert offsets, "no progress 104 during a 4 MB append with 64 KiB checkpoints"
            assert offsets == sorted(offsets) and offsets[-1] <= len(data)
            assert all(o % 65536 == 0 or o == len(data) for o in offsets)
            assert all(p.header("location") is None for p in progress)
            assert all(p.header("upload-draft-interop-version") == "8" for p in progress)
            assert hashlib.sha256(server.stored(location)).hexdigest() == sha256(data)
            conn.close()
        finally:
            server.stop()

"""connections.max_uploads_per_client on the release binary: an anonymous client (one
address) with that many uploads running gets 429 in tus terms, a client on another
address keeps being served, and an ended upload gives its place back."""

import http.client
import socket
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import Chunkd, sha256

TUS = {"Tus-Resumable": "1.0.0"}
SIZE = 1000


@pytest.fixture(scope="module")
def limited():
    with tempfile.TemporaryDirectory(prefix="chunkd-py-") as d:
        server = Chunkd(Path(d), env={"CHUNKD_CONNECTIONS__MAX_UPLOADS_PER_CLIENT": "2"})
        yield server
        server.stop()


def create(endpoint):
    r = requests.post(endpoint, headers={**TUS, "Upload-Length": str(SIZE)}, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["Location"]


class Stalled:
    """A PATCH whose first bytes the server is reading (it said 100 Continue) and whose
    rest waits for `finish`."""

    def __init__(self, url, data):
        host, port = url.split("//")[1].split("/")[0].split(":")
        self.data = data
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        path = "/" + url.split("//")[1].split("/", 1)[1]
        self.sock.sendall(
            (f"PATCH {path} HTTP/1.1\r\nHost: {host}\r\nTus-Resumable: 1.0.0\r\n"
             "Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
             f"Content-Length: {len(data)}\r\nExpect: 100-continue\r\n\r\n").encode())
        # The server asks for the body once the handler runs: the upload holds its place.
        assert self.read_head().startswith(b"HTTP/1.1 100"), "no 100 Continue"
        self.sock.sendall(data[:10])

    def read_head(self):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            assert chunk, f"connection closed after {head!r}"
            head += chunk
        return head

    def finish(self):
        self.sock.sendall(self.data[10:])
        head = self.read_head()
        self.sock.close()
        return int(head.split()[1])


def patch_from(address, url, data):
    """A whole PATCH sent from `address` (a loopback address of its own)."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10, source_address=(address, 0))
    path = "/" + url.split("//")[1].split("/", 1)[1]
    conn.request("PATCH", path, body=data, headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def test_a_client_at_its_limit_gets_429_and_another_address_is_served(limited):
    data = bytes(range(256)) * 4
    data = data[:SIZE]
    urls = [create(limited.endpoint) for _ in range(4)]
    running = [Stalled(urls[0], data), Stalled(urls[1], data)]
    r = requests.patch(urls[2], data=data, headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, timeout=10)
    assert r.status_code == 429, r.text
    assert r.headers.get("Tus-Resumable") == "1.0.0"
    assert "too many uploads" in r.text
    # Another address is another client.
    assert patch_from("127.0.0.2", urls[3], data) == 204
    assert sha256(requests.get(urls[3], timeout=10).content) == sha256(data)
    started = time.monotonic()
    assert requests.options(limited.endpoint, headers=TUS, timeout=10).ok
    print(f"OPTIONS while one client is at its limit: {(time.monotonic() - started) * 1000:.2f} ms")
    # One upload ends; the refused one now goes through.
    assert running[0].finish() == 204
    r = requests.patch(urls[2], data=data, headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}, timeout=10)
    assert r.status_code == 204, r.text
    assert running[1].finish() == 204
    for url in urls:
        assert sha256(requests.get(url, timeout=10).content) == sha256(data)

"""TLS (a CA and certificates made here with openssl), HTTP/2 by ALPN and h2c with prior
knowledge, a unix socket and several listeners at once, driven by Debian's curl; the
certificate replaced and reloaded on SIGHUP while a connection stays open; startup
errors that name the setting."""

import hashlib
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BIN, Chunkd, sha256


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=chunkd test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)


def make_leaf(d: Path, name: str):
    """A certificate for 127.0.0.1 and localhost, signed by the CA: name.pem, name.key."""
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{name}.pem", cwd=d)


@pytest.fixture(scope="module")
def certs():
    with tempfile.TemporaryDirectory(prefix="chunkd-tls-") as d:
        d = Path(d)
        make_ca(d)
        make_leaf(d, "first")
        make_leaf(d, "second")
        yield d


def curl(*args):
    """curl's stdout (the -w output last), failing on any HTTP error."""
    run = subprocess.run(["curl", "-sS", "--fail-with-body", "--max-time", "60", *args],
                         capture_output=True, text=True, timeout=90)
    assert run.returncode == 0, run.stderr + run.stdout
    return run.stdout


def tus_upload(base_args, origin, data: bytes, body_file: Path):
    """Creates a tus upload and sends `data` in one PATCH with curl; the upload's URL and
    the HTTP versions curl spoke."""
    body_file.write_bytes(data)
    out = curl(*base_args, "-i", "-X", "POST", "-H", "Tus-Resumable: 1.0.0",
               "-H", f"Upload-Length: {len(data)}", "-w", "\n%{http_version}", f"{origin}/files/")
    location = re.search(r"(?im)^location: (\S+)", out).group(1)
    # Upload URLs say the scheme the client came by (https over TLS).
    assert location.startswith(f"{origin}/files/"), (location, origin)
    created_version = out.strip().splitlines()[-1]
    path = "/files/" + location.rstrip("/").split("/")[-1]
    version = curl(*base_args, "-X", "PATCH", "-H", "Tus-Resumable: 1.0.0", "-H", "Upload-Offset: 0",
                   "-H", "Content-Type: application/offset+octet-stream",
                   "--data-binary", f"@{body_file}", "-o", "/dev/null", "-w", "%{http_version}",
                   f"{origin}{path}")
    return path, {created_version, version}


def start(certs: Path, data_dir: Path, listen: str, also=(), cert="first"):
    env = {"CHUNKD_TLS__CERT_FILE": str(certs / "live.pem"), "CHUNKD_TLS__KEY_FILE": str(certs / "live.key")}
    (certs / "live.pem").write_bytes((certs / f"{cert}.pem").read_bytes())
    (certs / "live.key").write_bytes((certs / f"{cert}.key").read_bytes())
    if also:
        env["CHUNKD_ALSO_LISTEN"] = "[" + ",".join(f'"{a}"' for a in also) + "]"
    return Chunkd(data_dir, env=env, listen=listen)


def test_tls_http2_h2c_and_a_unix_socket_at_once(certs, tmp_path):
    sock = tmp_path / "chunkd.sock"
    plain_port = free_port()
    server = start(certs, tmp_path / "data", "tls://127.0.0.1:0",
                   also=[f"127.0.0.1:{plain_port}", f"unix:{sock}"])
    try:
        origin = server.endpoint.split("/files/")[0]
        assert origin.startswith("https://127.0.0.1:")
        ca = ["--cacert", str(certs / "ca.pem")]
        body = tmp_path / "body.bin"
        cases = [
            ("TLS, HTTP/2 by ALPN", ca + ["--http2"], origin, {"2"}),
            ("TLS, HTTP/1.1", ca + ["--http1.1"], origin, {"1.1"}),
            ("h2c, prior knowledge", ["--http2-prior-knowledge"], f"http://127.0.0.1:{plain_port}", {"2"}),
            ("unix socket", ["--unix-socket", str(sock)], "http://localhost", {"1.1"}),
        ]
        for name, args, where, versions in cases:
            data = os.urandom(700_000)
            path, spoken = tus_upload(args, where, data, body)
            assert spoken == versions, (name, spoken)
            stored = (server.data_dir / "files" / path.split("/")[-1]).read_bytes()
            assert sha256(stored) == sha256(data), name
            # And back, byte-identical, the same way.
            fetched = tmp_path / "fetched.bin"
            curl(*args, "-o", str(fetched), f"{where}{path}")
            assert sha256(fetched.read_bytes()) == sha256(data), name
        # The IETF draft's 104 interim response still reaches an HTTP/1.1 client over TLS.
        out = subprocess.run(
            ["curl", "-sS", "-i", "--max-time", "60", *ca, "--http1.1", "-X", "POST",
             "-H", "Upload-Draft-Interop-Version: 6", "-H", "Upload-Complete: ?1",
             "--data-binary", "interim", f"{origin}/uploads"],
            capture_output=True, text=True, timeout=90).stdout
        assert re.search(r"(?m)^HTTP/1.1 104", out), out
        assert re.search(r"(?m)^HTTP/1.1 20[01]", out), out
    finally:
        server.stop()
    assert not sock.exists(), "the socket is removed at shutdown"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def presented(port, ca: Path) -> str:
    """The SHA-256 of the certificate a new TLS connection to `port` gets."""
    context = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


def test_sighup_reloads_the_certificate_and_open_connections_stay(certs, tmp_path):
    server = start(certs, tmp_path / "data", "tls://127.0.0.1:0")
    try:
        port = int(server.endpoint.split(":")[2].split("/")[0])
        first = presented(port, certs / "ca.pem")
        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        kept = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        kept.request("GET", "/healthz")
        assert kept.getresponse().read() == b"ok\n"

        # A broken file on SIGHUP keeps the certificate in use.
        (certs / "live.pem").write_text("not a certificate")
        server.proc.send_signal(signal.SIGHUP)
        kept.request("GET", "/healthz")
        assert kept.getresponse().read() == b"ok\n"
        assert presented(port, certs / "ca.pem") == first

        (certs / "live.pem").write_bytes((certs / "second.pem").read_bytes())
        (certs / "live.key").write_bytes((certs / "second.key").read_bytes())
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while presented(port, certs / "ca.pem") == first:
            assert time.monotonic() < deadline, "the new certificate was never presented"
            time.sleep(0.05)
        # The connection opened before both reloads still serves.
        kept.request("GET", "/healthz")
        assert kept.getresponse().read() == b"ok\n"
        kept.close()
    finally:
        server.stop()


def startup_error(listen, env):
    with tempfile.TemporaryDirectory(prefix="chunkd-listen-") as d:
        run = subprocess.run([BIN, "--listen", listen, "--data-dir", d, "serve"],
                             env={**os.environ, "RUST_LOG": "warn", **env},
                             capture_output=True, text=True, timeout=60)
    assert run.returncode != 0, run.stdout
    assert "panicked" not in run.stderr, run.stderr
    return run.stderr


def test_startup_errors_name_the_setting(certs, tmp_path):
    missing = startup_error("tls://127.0.0.1:0", {"CHUNKD_TLS__CERT_FILE": str(tmp_path / "nope.pem"),
                                                  "CHUNKD_TLS__KEY_FILE": str(certs / "first.key")})
    assert "tls.cert_file" in missing and "nope.pem" in missing, missing
    unconfigured = startup_error("tls://127.0.0.1:0", {})
    assert "tls.cert_file and tls.key_file" in unconfigured, unconfigured
    mismatched = startup_error("tls://127.0.0.1:0", {"CHUNKD_TLS__CERT_FILE": str(certs / "first.pem"),
                                                     "CHUNKD_TLS__KEY_FILE": str(certs / "second.key")})
    assert "does not fit" in mismatched, mismatched
    regular = tmp_path / "a-file"
    regular.write_text("keep me")
    taken = startup_error(f"unix:{regular}", {})
    assert "listen: cannot listen on unix:" in taken and "not a socket" in taken, taken
    assert regular.read_text() == "keep me"
    bad = startup_error("example.com", {})
    assert "host:port" in bad, bad

"""`chunkd upload`, the command-line tus client, against chunkd (tus and the IETF draft),
rustus and @tus/server: several files, chunks, parallel parts, checksums, metadata,
tokens, refusals, --list/--cancel, kill -9 and Ctrl-C with a resume, progress bars in a
real terminal (tmux) and plain lines when piped, and bounded memory."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import jwt
import pytest
import requests

from conftest import BIN, Chunkd, sha256

MIB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
BENCH_HOME = Path(os.environ.get("BENCH_HOME", Path.home() / ".cache" / "chunkd-bench"))
RUSTUS = BENCH_HOME / "rustus" / "bin" / "rustus"
TUS_NODE = BENCH_HOME / "tus-node" / "server.mjs"
KEY = "a-cli-upload-secret-of-at-least-32-bytes"


def need(path, what):
    """A missing peer fails the run under CI (scripts/install-peers.sh installs it)."""
    if path is None or not Path(path).exists():
        message = f"{what} is missing: run scripts/install-peers.sh"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def wait_until(condition, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload(*args, state, check=None, timeout=120, env=None):
    """Runs `chunkd upload ARGS --state-file STATE` with piped output."""
    result = subprocess.run(
        [BIN, "upload", *map(str, args), "--state-file", str(state)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHUNKD_")}, **(env or {})},
    )
    if check is not None:
        assert result.returncode == check, (result.returncode, result.stdout, result.stderr)
    return result


def urls(result):
    return result.stdout.split()


def files(tmp_path, *sizes):
    paths = []
    for i, size in enumerate(sizes):
        p = tmp_path / f"file{i}.bin"
        p.write_bytes(os.urandom(size))
        paths.append(p)
    return paths


def tus_metadata(url, headers=None):
    head = requests.head(url, headers={**TUS, **(headers or {})})
    assert head.status_code == 200, head.status_code
    import base64

    pairs = [p.strip().split(" ") for p in head.headers.get("Upload-Metadata", "").split(",") if p.strip()]
    return {p[0]: base64.b64decode(p[1]).decode() if len(p) > 1 else "" for p in pairs}


class Throttle:
    """Fault injection: a TCP proxy that passes the client's bytes on at `rate` bytes per
    second (None: at once) and counts them, so an upload is slow enough to be cut."""

    def __init__(self, port, rate=None):
        self.port, self.rate, self.sent = port, rate, 0
        self.lock = threading.Lock()
        self.open = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port))
            with self.lock:
                self.open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src, dst, upstream):
        try:
            while data := src.recv(64 * 1024):
                if upstream:
                    with self.lock:
                        self.sent += len(data)
                    if self.rate:
                        time.sleep(len(data) / self.rate)  # the throttle itself
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Drops every open connection, as a network loss does."""
        with self.lock:
            cut, self.open = self.open, []
        for s in cut:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def remembered(state):
    return json.loads(Path(state).read_text())["uploads"] if Path(state).exists() else {}


# ---------------------------------------------------------------- against chunkd


@pytest.fixture(scope="module")
def strict():
    """A chunkd that wants a token and takes at most 1 MiB."""
    with tempfile.TemporaryDirectory(prefix="chunkd-cli-") as d:
        s = Chunkd(
            Path(d),
            env={
                "CHUNKD_AUTH__MODE": "token",
                "CHUNKD_AUTH__TOKEN_KEY": KEY,
                "CHUNKD_AUTH__REQUIRED": "true",
                "CHUNKD_MAX_SIZE": str(MIB),
            },
        )
        yield s
        s.stop()


def test_several_files_in_chunks_with_metadata_piped(chunkd, tmp_path):
    paths = files(tmp_path, 3 * MIB + 5, 1, 0)
    r = upload(*paths, "--to", chunkd.endpoint, "--chunk-size", "1MiB", "--metadata", "team=blue",
               state=tmp_path / "s.json", check=0)
    assert len(urls(r)) == 3
    for path, url in zip(paths, urls(r)):
        assert sha256(chunkd.stored(url)) == sha256(path.read_bytes())
    meta = tus_metadata(urls(r)[0])
    assert meta == {"filename": "file0.bin", "filetype": "application/octet-stream", "team": "blue"}
    # Piped: plain lines, a few per file (not one per chunk), no escape codes.
    assert "\x1b" not in r.stderr
    lines = r.stderr.splitlines()
    assert any(re.match(r"file0\.bin: done, ", line) for line in lines), r.stderr
    assert sum(line.startswith("file0.bin:") for line in lines) <= 6, r.stderr
    assert remembered(tmp_path / "s.json") == {}, "finished uploads are forgotten"
    # The endpoint may come from the environment.
    r = upload(paths[1], state=tmp_path / "s.json", env={"CHUNKD_UPLOAD_URL": chunkd.endpoint}, check=0)
    assert sha256(chunkd.stored(urls(r)[0])) == sha256(paths[1].read_bytes())


def test_parallel_parts_are_joined_by_concatenation_with_checksums(chunkd, tmp_path):
    [path] = files(tmp_path, 5 * MIB + 3)
    r = upload(path, "--to", chunkd.endpoint, "--parallel", "4", "--checksum", "sha1",
               "--chunk-size", "512KiB", state=tmp_path / "s.json", check=0)
    [url] = urls(r)
    head = requests.head(url, headers=TUS)
    assert head.headers["Upload-Concat"].startswith("final;")
    assert len(head.headers["Upload-Concat"].split()) == 4
    assert sha256(chunkd.stored(url)) == sha256(path.read_bytes())
    assert tus_metadata(url)["filename"] == "file0.bin"


def test_ietf_draft_with_digests(chunkd, tmp_path):
    paths = files(tmp_path, 2 * MIB + 7, 0)
    ietf = chunkd.endpoint.replace("/files/", "/uploads")
    r = upload(*paths, "--to", ietf, "--protocol", "ietf", "--checksum", "sha256", "--chunk-size", "1MiB",
               "--parallel", "2", state=tmp_path / "s.json", check=0)
    assert "no concatenation: sending one part" in r.stderr
    for path, url in zip(paths, urls(r)):
        assert "/uploads/" in url
        assert sha256(chunkd.stored(url)) == sha256(path.read_bytes())


def test_a_checksum_the_server_does_not_list_is_a_usage_error(chunkd, tmp_path):
    [path] = files(tmp_path, 10)
    ietf = chunkd.endpoint.replace("/files/", "/uploads")
    r = upload(path, "--to", ietf, "--protocol", "ietf", "--checksum", "md5", state=tmp_path / "s.json", check=2)
    assert "does not take md5" in r.stderr
    assert upload(path, "--to", chunkd.endpoint, "--chunk-size", "lots", state=tmp_path / "s.json").returncode == 2
    assert upload(path, state=tmp_path / "s.json").returncode == 2, "--to is required"


def test_a_malformed_rust_log_is_ignored_with_a_warning(chunkd, tmp_path):
    [path] = files(tmp_path, 10)
    r = upload(path, "--to", chunkd.endpoint, state=tmp_path / "s.json", check=0,
               env={"RUST_LOG": "chunkd_client=[{"})
    assert "RUST_LOG" in r.stderr and "ignored" in r.stderr
    assert sha256(chunkd.stored(urls(r)[0])) == sha256(path.read_bytes())


def test_tokens_go_in_headers_and_refusals_exit_3(strict, tmp_path):
    small, large = files(tmp_path, 300 * 1024, MIB + 1)
    state = tmp_path / "s.json"
    r = upload(small, "--to", strict.endpoint, state=state, check=3)
    assert "403" in r.stderr
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 300}, KEY, algorithm="HS256")
    auth = f"Authorization: Bearer {token}"
    r = upload(small, "--to", strict.endpoint, "-H", auth, "--chunk-size", "100k", state=state, check=0)
    assert sha256(strict.stored(urls(r)[0])) == sha256(small.read_bytes())
    r = upload(large, "--to", strict.endpoint, "-H", auth, state=state, check=3)
    assert "limit" in r.stderr
    # One refused, one uploaded: not every failure is a refusal, but every failed one is.
    r = upload(small, large, "--to", strict.endpoint, "-H", auth, state=state, check=3)
    assert len(urls(r)) == 1


def test_network_failure_after_retries_exits_4(tmp_path):
    [path] = files(tmp_path, 10)
    r = upload(path, "--to", f"http://127.0.0.1:{free_port()}/files/", "--retries", "1",
               state=tmp_path / "s.json", check=4)
    assert "attempt 1 failed" in r.stderr or "onnect" in r.stderr


def test_https_trusts_the_system_roots_or_ssl_cert_file(tmp_path):
    from test_listeners import make_ca, make_leaf

    make_ca(tmp_path)
    make_leaf(tmp_path, "leaf")
    env = {"CHUNKD_TLS__CERT_FILE": str(tmp_path / "leaf.pem"), "CHUNKD_TLS__KEY_FILE": str(tmp_path / "leaf.key")}
    server = Chunkd(tmp_path / "data", env=env, listen="tls://127.0.0.1:0")
    try:
        assert server.endpoint.startswith("https://")
        [path] = files(tmp_path, MIB + 1)
        state = tmp_path / "s.json"
        started = time.monotonic()
        r = upload(path, "--to", server.endpoint, "--retries", "5", state=state, check=4)
        assert "invalid peer certificate" in r.stderr, r.stderr
        assert time.monotonic() - started < 5, "an untrusted certificate is not retried"
        r = upload(path, "--to", server.endpoint, state=state, env={"SSL_CERT_FILE": str(tmp_path / "ca.pem")}, check=0)
        assert sha256(server.stored(urls(r)[0])) == sha256(path.read_bytes())
    finally:
        server.stop()


def start(path, endpoint, state, *extra):
    return subprocess.Popen(
        [BIN, "upload", str(path), "--to", endpoint, "--chunk-size", "1MiB", "--state-file", str(state), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def interrupt(proxy, path, endpoint, state, after, *extra, sig=signal.SIGKILL):
    """Starts an upload through `proxy`, lets `after` more bytes through, sends `sig`
    and waits for the client to end; the ended client."""
    sent = proxy.sent
    client = start(path, endpoint, state, *extra)
    wait_until(lambda: proxy.sent - sent > after, what=f"{after} bytes sent")
    client.send_signal(sig)
    client.wait(timeout=10)
    return client


def direct(url, chunkd):
    """An upload URL through the proxy, as chunkd itself serves it."""
    return chunkd.endpoint.rstrip("/").rsplit("/files", 1)[0] + urlsplit(url).path


@pytest.mark.parametrize("protocol,parallel", [("tus", 1), ("ietf", 1), ("tus", 3)])
def test_kill_9_mid_upload_then_the_same_command_resumes(chunkd, tmp_path, protocol, parallel):
    [path] = files(tmp_path, 64 * MIB)
    state = tmp_path / "s.json"
    proxy = Throttle(urlsplit(chunkd.endpoint).port, rate=16 * MIB)
    endpoint = proxy.endpoint + ("/files/" if protocol == "tus" else "/uploads")
    try:
        # SIGKILL: nothing is saved at the end.
        client = interrupt(proxy, path, endpoint, state, 4 * MIB * parallel,
                           "--protocol", protocol, "--parallel", str(parallel))
        [entry] = remembered(state).values()
        assert len(entry["parts"]) == parallel
        offsets = [int(requests.head(direct(p["url"], chunkd), headers=TUS).headers["Upload-Offset"])
                   for p in entry["parts"]]
        offset = sum(offsets)
        assert all(o > 0 for o in offsets) and offset < 64 * MIB, offsets
        before = proxy.sent
        proxy.rate = None
        r = subprocess.run(client.args, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        m = re.search(r"resuming at (\d+) bytes", r.stderr)
        assert m and int(m.group(1)) == offset, r.stderr
        [url] = urls(r)
        if parallel == 1:
            assert url == entry["parts"][0]["url"]
        # The rest went once: far less than the file again.
        assert proxy.sent - before < 64 * MIB - offset + 2 * MIB * parallel
        assert proxy.sent < 1.5 * 64 * MIB
        assert sha256(chunkd.stored(url)) == sha256(path.read_bytes())
    finally:
        proxy.close()


def test_a_dropped_connection_is_retried_from_the_server_offset(chunkd, tmp_path):
    [path] = files(tmp_path, 16 * MIB)
    proxy = Throttle(urlsplit(chunkd.endpoint).port, rate=16 * MIB)
    try:
        client = start(path, proxy.endpoint + "/files/", tmp_path / "s.json")
        wait_until(lambda: proxy.sent > 3 * MIB, what="a few chunks sent")
        proxy.rate = None
        proxy.cut()
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        assert re.search(r"attempt 1 failed .*; retrying in", err), err
        assert proxy.sent < 1.5 * 16 * MIB, "only the cut chunk went again"
        assert sha256(chunkd.stored(out.strip())) == sha256(path.read_bytes())
    finally:
        proxy.close()


def test_ctrl_c_exits_130_is_listed_and_resumes_or_cancels(chunkd, tmp_path):
    a, b = files(tmp_path, 16 * MIB, 16 * MIB)
    state = tmp_path / "s.json"
    proxy = Throttle(urlsplit(chunkd.endpoint).port, rate=16 * MIB)
    endpoint = proxy.endpoint + "/files/"
    try:
        for path in (a, b):
            client = interrupt(proxy, path, endpoint, state, 2 * MIB, sig=signal.SIGINT)
            assert client.returncode == 130
            assert "interrupted" in client.stderr.read()
        listed = upload("--list", state=state, check=0).stdout.splitlines()
        assert sorted(line.split("\t")[0] for line in listed) == [str(a), str(b)]
        assert all(line.split("\t")[1] == str(16 * MIB) for line in listed)
        proxy.rate = None

        r = upload(a, "--to", endpoint, "--chunk-size", "1MiB", state=state, check=0)
        assert re.search(r"resuming at [1-9]\d* bytes", r.stderr), r.stderr
        assert sha256(chunkd.stored(urls(r)[0])) == sha256(a.read_bytes())

        [entry] = remembered(state).values()
        url = entry["parts"][0]["url"]
        r = upload(b, "--to", endpoint, "--cancel", state=state, check=0)
        assert "cancelled" in r.stderr
        assert requests.head(direct(url, chunkd), headers=TUS).status_code == 404
        assert upload("--list", state=state, check=0).stdout == ""
        upload(b, "--to", endpoint, "--cancel", state=state, check=1)
    finally:
        proxy.close()


def test_a_changed_file_starts_a_new_upload(chunkd, tmp_path):
    [path] = files(tmp_path, 4 * MIB)
    state = tmp_path / "s.json"
    proxy = Throttle(urlsplit(chunkd.endpoint).port, rate=16 * MIB)
    try:
        interrupt(proxy, path, proxy.endpoint + "/files/", state, MIB)
        [old] = remembered(state).values()
        path.write_bytes(os.urandom(4 * MIB))
        proxy.rate = None
        r = upload(path, "--to", proxy.endpoint + "/files/", state=state, check=0)
        assert "resuming" not in r.stderr
        assert urls(r) != [old["parts"][0]["url"]]
        assert sha256(chunkd.stored(urls(r)[0])) == sha256(path.read_bytes())
        assert remembered(state) == {}, "the changed file's old entry is gone too"
    finally:
        proxy.close()


def test_memory_stays_bounded_with_large_chunks(chunkd, tmp_path):
    path = tmp_path / "sparse.bin"
    with open(path, "wb") as f:
        f.truncate(256 * MIB)  # sparse: costs no disk to make
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as o, open(err, "w") as e:
        client = subprocess.Popen(
            [BIN, "upload", str(path), "--to", chunkd.endpoint, "--chunk-size", "128MiB", "--quiet",
             "--state-file", str(tmp_path / "s.json")],
            stdout=o,
            stderr=e,
        )
        # The peak of the client's own memory (VmHWM; rusage would count this process's,
        # which the child shared until its exec). It only grows: the last reading counts.
        peak_kib = 0
        status = Path(f"/proc/{client.pid}/status")
        while client.poll() is None:
            try:
                m = re.search(r"VmHWM:\s+(\d+) kB", status.read_text())
                peak_kib = max(peak_kib, int(m.group(1))) if m else peak_kib
            except OSError:
                pass
            time.sleep(0.01)
    assert client.returncode == 0, err.read_text()
    assert err.read_text() == ""
    assert 0 < peak_kib < 64 * 1024, f"client peak RSS {peak_kib} KiB"
    url = out.read_text().strip()
    assert chunkd.stored(url) == bytes(256 * MIB)


# ---------------------------------------------------------------- in a terminal


def test_progress_bars_in_a_terminal(chunkd, tmp_path):
    need(shutil.which("tmux"), "tmux")
    a, b = files(tmp_path, 8 * MIB, 8 * MIB)
    proxy = Throttle(urlsplit(chunkd.endpoint).port, rate=8 * MIB)
    sock = f"chunkd-cli-{os.getpid()}"
    tmux = ["tmux", "-L", sock]
    done = tmp_path / "done"
    command = (f"{BIN} upload {a} {b} --to {proxy.endpoint}/files/ --chunk-size 256KiB "
               f"--state-file {tmp_path / 's.json'} > {tmp_path / 'urls'}; echo $? > {done}; sleep 60")
    try:
        subprocess.run([*tmux, "new-session", "-d", "-s", "up", "-x", "150", "-y", "20", command], check=True)
        screen = ""

        def drawn():
            nonlocal screen
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "up"], capture_output=True, text=True).stdout
            return re.search(r"file0\.bin +\[=+", screen) and re.search(r"total \(2 files\) +\[", screen)

        wait_until(drawn, what="a file's bar and the total")
        assert re.search(r"/\s*8\.00 MiB", screen), screen
        assert "ETA" in screen and "MiB/s" in screen
        proxy.rate = None
        wait_until(done.exists, what="the upload to end")
        wait_until(lambda: done.read_text().strip() != "", what="its exit code")
        assert done.read_text().strip() == "0"
        for path, url in zip((a, b), (tmp_path / "urls").read_text().split()):
            assert sha256(chunkd.stored(url)) == sha256(path.read_bytes())
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
        proxy.close()


# ---------------------------------------------------------------- other tus servers


class Peer:
    def __init__(self, args, port, data, cwd=None):
        self.data = data
        self.endpoint = f"http://127.0.0.1:{port}/files/"
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                return requests.options(self.endpoint, timeout=1).status_code < 300
            except requests.ConnectionError:
                return False

        wait_until(up, what=f"{args[0]} to answer")

    def stored(self, url):
        return (self.data / url.rstrip("/").split("/")[-1]).read_bytes()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def rustus():
    need(RUSTUS, "rustus 0.5.10")
    with tempfile.TemporaryDirectory(prefix="chunkd-cli-rustus-") as d:
        port = free_port()
        peer = Peer([str(RUSTUS), "--host", "127.0.0.1", "--port", str(port), "--data-dir", d, "--info-dir", d,
                     "--max-body-size", str(16 * MIB), "--log-level", "ERROR", "--tus-extensions",
                     "getting,creation,termination,creation-with-upload,creation-defer-length,concatenation,checksum"],
                    port, Path(d))
        yield peer
        peer.stop()


@pytest.fixture(scope="module")
def tus_node():
    need(TUS_NODE, "@tus/server")
    need(shutil.which("node"), "node")
    with tempfile.TemporaryDirectory(prefix="chunkd-cli-tus-node-") as d:
        port = free_port()
        peer = Peer(["node", str(TUS_NODE), str(port), d], port, Path(d), cwd=TUS_NODE.parent)
        peer.endpoint = peer.endpoint.rstrip("/")
        yield peer
        peer.stop()


def test_rustus_with_parallel_parts_and_checksums(rustus, tmp_path):
    paths = files(tmp_path, 3 * MIB + 1, 1000, 0)
    r = upload(*paths, "--to", rustus.endpoint, "--parallel", "3", "--checksum", "sha1", "--chunk-size", "1MiB",
               "--metadata", "team=red", state=tmp_path / "s.json", check=0)
    for path, url in zip(paths, urls(r)):
        assert sha256(rustus.stored(url)) == sha256(path.read_bytes())
    assert tus_metadata(urls(r)[0])["team"] == "red"


def test_rustus_resumes_after_kill_9(rustus, tmp_path):
    [path] = files(tmp_path, 16 * MIB)
    state = tmp_path / "s.json"
    proxy = Throttle(urlsplit(rustus.endpoint).port, rate=16 * MIB)
    try:
        client = interrupt(proxy, path, proxy.endpoint + "/files/", state, 3 * MIB)
        proxy.rate = None
        r = subprocess.run(client.args, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert re.search(r"resuming at [1-9]\d* bytes", r.stderr), r.stderr
        assert proxy.sent < 1.5 * 16 * MIB
        assert sha256(rustus.stored(urls(r)[0])) == sha256(path.read_bytes())
    finally:
        proxy.close()


def test_tus_node_server_without_concatenation_falls_back(tus_node, tmp_path):
    paths = files(tmp_path, 2 * MIB + 9, 0)
    state = tmp_path / "s.json"
    r = upload(*paths, "--to", tus_node.endpoint, "--parallel", "4", "--chunk-size", "1MiB", state=state, check=0)
    assert "lacks the concatenation extension" in r.stderr
    for path, url in zip(paths, urls(r)):
        assert sha256(tus_node.stored(url)) == sha256(path.read_bytes())
    r = upload(paths[0], "--to", tus_node.endpoint, "--checksum", "sha1", state=state, check=2)
    assert "does not take sha1" in r.stderr

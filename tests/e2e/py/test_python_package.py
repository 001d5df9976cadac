"""The Python package (`pip install` of the built wheel): chunkd's engine inside WSGI
workers under gunicorn, several processes on one data directory, and `python -m chunkd`."""

import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from tusclient import client as tus

from conftest import ROOT, sha256

VENV = Path(os.environ.get("CHUNKD_WHEEL_VENV", ROOT / "target" / "wheel-venv"))
APPS = Path(__file__).resolve().parent / "pyapps"
TUS = {"Tus-Resumable": "1.0.0"}
MiB = 1 << 20


def venv_bin(name: str) -> str:
    path = VENV / "bin" / name
    assert path.exists(), f"{path} missing: scripts/test-all.sh builds the wheel and installs it there"
    return str(path)


class Gunicorn:
    """gunicorn serving pyapps/wsgi_app.py on a free port of 127.0.0.1."""

    def __init__(self, data_dir: Path, workers: int, app: str = "wsgi_app:application", env: dict | None = None,
                 extra: tuple = ()):
        # A file, not a pipe: a pipe nobody reads would stop gunicorn once full.
        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log")
        self.proc = subprocess.Popen(
            [venv_bin("gunicorn"), "--chdir", str(APPS), "-w", str(workers), "-k", "gthread",
             "--threads", "4", "-b", "127.0.0.1:0", "--graceful-timeout", "5", *extra, app],
            stderr=self.log,
            env={**os.environ, "APP_DATA_DIR": str(data_dir), **(env or {}), "RUST_LOG": "warn"},
        )
        # gunicorn logs its address, then one line per worker it boots.
        wait_for(lambda: self.output().count("Booting worker") >= workers or self.proc.poll() is not None,
                 "gunicorn's workers")
        m = re.search(r"Listening at: (http://\S+)", self.output())
        if self.proc.poll() is not None or not m:
            raise RuntimeError("gunicorn did not start: " + self.output())
        self.url = m.group(1)
        self.endpoint = self.url + "/files/"

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def workers(self) -> set[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return {int(p) for p in out.stdout.split()}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        # Whatever a worker logged (a failed signal receiver, say) shows with a failure.
        print(self.output())
        self.log.close()


@pytest.fixture
def data_dir():
    with tempfile.TemporaryDirectory(prefix="chunkd-wheel-") as d:
        yield Path(d)


@pytest.fixture
def pair(data_dir):
    """Two gunicorn masters on one data directory: which process gets a request is the
    test's choice, not the kernel's."""
    a, b = Gunicorn(data_dir, 2), Gunicorn(data_dir, 2)
    yield a, b
    a.stop()
    b.stop()


def stored(data_dir: Path, url: str) -> bytes:
    return (data_dir / "files" / url.rstrip("/").rsplit("/", 1)[-1]).read_bytes()


def create(endpoint: str, length: int, user: str | None = None) -> str:
    headers = {**TUS, "Upload-Length": str(length), **({"X-App-User": user} if user else {})}
    r = requests.post(endpoint, headers=headers)
    assert r.status_code == 201, r.text
    return r.headers["Location"]


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def patch(base: str, url: str, offset: int, body: bytes) -> requests.Response:
    headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
    return requests.patch(base + path_of(url), headers=headers, data=body)


def head(base: str, url: str, user: str | None = None) -> requests.Response:
    return requests.head(base + path_of(url), headers={**TUS, **({"X-App-User": user} if user else {})})


@pytest.mark.parametrize("preload", [False, True], ids=["imported-per-worker", "preloaded-then-forked"])
def test_tuspy_uploads_through_gunicorn_with_four_workers(data_dir, preload):
    # --preload imports the app in the master, then forks: the engine must start in
    # each worker, on its first request, never before the fork.
    server = Gunicorn(data_dir, 4, extra=("--preload",) if preload else ())
    try:
        data = os.urandom(6 * MiB + 123)
        uploader = tus.TusClient(server.endpoint).uploader(
            file_stream=io.BytesIO(data), chunk_size=512 * 1024)
        uploader.upload()
        assert sha256(stored(data_dir, uploader.url)) == sha256(data)
        got = requests.get(uploader.url)
        assert got.status_code == 200
        assert sha256(got.content) == sha256(data)
        assert int(got.headers["X-Worker"]) in server.workers()
    finally:
        server.stop()


def test_chunks_alternating_between_processes_make_one_file(pair, data_dir):
    a, b = pair
    data = os.urandom(5 * MiB)
    url = create(a.endpoint, len(data))
    served_by = set()
    for i, offset in enumerate(range(0, len(data), MiB)):
        base = (a, b)[i % 2].url
        r = patch(base, url, offset, data[offset:offset + MiB])
        assert r.status_code == 204, r.text
        assert r.headers["Upload-Offset"] == str(min(offset + MiB, len(data)))
        served_by.add(int(r.headers["X-Worker"]))
    assert served_by & a.workers() and served_by & b.workers()
    assert sha256(stored(data_dir, url)) == sha256(data)


def test_the_application_user_owns_the_upload(pair):
    a, b = pair
    url = create(a.endpoint, 10, user="alice")
    assert head(b.url, url, user="alice").status_code == 200
    # Another user, or nobody, is told nothing of alice's upload.
    assert head(b.url, url, user="bob").status_code == 404
    assert head(a.url, url).status_code == 404
    # What a client says of itself counts for nothing when the application says who.
    assert requests.head(b.url + path_of(url), headers={**TUS, "X-Forwarded-User": "alice"}).status_code == 404
    r = requests.patch(b.url + path_of(url), data=b"0123456789", headers={
        **TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream", "X-App-User": "bob"})
    assert r.status_code == 404
    assert head(a.url, url, user="alice").headers["Upload-Offset"] == "0"


class SlowPatch:
    """A PATCH that sends part of its body, then waits: a client on a stalled network."""

    def __init__(self, base: str, url: str, offset: int, total: int, first: bytes):
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.sendall((
            f"PATCH {path_of(url)} HTTP/1.1\r\nHost: {host}:{port}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {total}\r\n\r\n").encode() + first)

    def close(self):
        self.sock.close()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.ConnectionError:
        return False


def wait_for(condition, what: str, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def part_size(data_dir: Path, url: str) -> int:
    part = data_dir / "files" / (url.rsplit("/", 1)[-1] + ".part")
    return part.stat().st_size if part.exists() else 0


def test_the_newest_request_wins_across_processes(pair, data_dir):
    a, b = pair
    data = os.urandom(4 * MiB)
    url = create(a.endpoint, len(data))
    slow = SlowPatch(a.url, url, 0, len(data), data[:MiB])
    try:
        wait_for(lambda: part_size(data_dir, url) >= MiB, "the first MiB on disk")
        # A resume on the other process: the stalled request is asked to let go, and
        # what it received is the upload's offset.
        r = head(b.url, url)
        assert r.status_code == 200
        offset = int(r.headers["Upload-Offset"])
        assert offset == MiB
    finally:
        # Its worker thread sits in wsgi.input.read() until the client sends or goes
        # away (WSGI has no way to interrupt it), so only then is the answer sent.
        slow.close()
    r = patch(b.url, url, offset, data[offset:])
    assert r.status_code == 204, r.text
    assert sha256(stored(data_dir, url)) == sha256(data)


def test_a_worker_killed_mid_patch_leaves_the_upload_resumable(pair, data_dir):
    a, b = pair
    data = os.urandom(4 * MiB)
    url = create(a.endpoint, len(data))
    slow = SlowPatch(a.url, url, 0, len(data), data[:MiB + 5])
    try:
        wait_for(lambda: part_size(data_dir, url) >= MiB, "the first MiB on disk")
        # Every worker of a, so the one holding the PATCH (and its lock) dies.
        for pid in a.workers():
            os.kill(pid, signal.SIGKILL)
    finally:
        slow.close()
    r = head(b.url, url)
    assert r.status_code == 200
    offset = int(r.headers["Upload-Offset"])
    # What was committed before the kill (checkpoints every 256 KiB) survives.
    assert MiB - 256 * 1024 <= offset <= MiB + 5
    r = patch(b.url, url, offset, data[offset:])
    assert r.status_code == 204, r.text
    assert sha256(stored(data_dir, url)) == sha256(data)


def test_python_m_chunkd_serve_runs_the_server(data_dir):
    proc = subprocess.Popen(
        [venv_bin("python"), "-m", "chunkd", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir), "serve"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "RUST_LOG": "warn"})
    try:
        line = proc.stdout.readline()
        m = re.search(r"chunkd: tus uploads at (\S+)", line)
        assert m, line
        data = os.urandom(3 * MiB)
        uploader = tus.TusClient(m.group(1)).uploader(
            file_stream=io.BytesIO(data), chunk_size=MiB)
        uploader.upload()
        assert sha256(stored(data_dir, uploader.url)) == sha256(data)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()


class Django(Gunicorn):
    """The Django project in pyapps/djangosite under gunicorn, its database migrated."""

    def __init__(self, data_dir: Path, workers: int):
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "djangosite.settings",
                    "DJANGO_DB": str(data_dir / "django.sqlite3"), "APP_DATA_DIR": str(data_dir / "chunkd")}
        subprocess.run([venv_bin("python"), "-m", "django", "migrate", "-v0"], cwd=APPS, env=self.env, check=True)
        super().__init__(data_dir, workers, app="djangosite.wsgi:application", env=self.env)
        self.endpoint = self.url + "/uploads/files/"

    def login(self, name: str) -> str:
        r = requests.get(f"{self.url}/login/{name}/")
        assert r.status_code == 200, r.text
        return f"sessionid={r.cookies['sessionid']}"

    def attachments(self, cookie: str) -> list:
        r = requests.get(f"{self.url}/attachments/", headers={"Cookie": cookie})
        assert r.status_code == 200, r.text
        return r.json()["attachments"]


def node_tus_upload(endpoint: str, data: bytes, chunk: int, cookie: str, tmp: Path, protocol: str = "tus-v1") -> str:
    """tus-js-client's upload; ``cookie`` is a Cookie header, or else a user's name for
    X-App-User."""
    source = tmp / "node-upload.bin"
    source.write_bytes(data)
    out = subprocess.run(["node", str(APPS / "tus_upload.mjs"), endpoint, str(source), str(chunk), cookie, protocol],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def browser_upload(lib: str, origin: str, target: str, data: bytes, cookie: str, tmp: Path) -> dict:
    source = tmp / f"{lib}-upload.bin"
    source.write_bytes(data)
    out = subprocess.run(["node", str(APPS / "browser_upload.mjs"), lib, origin, target, str(source), cookie],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_django_under_gunicorn_the_user_owns_uploads_and_the_signal_attaches_them(data_dir):
    site = Django(data_dir, 4)
    try:
        alice, bob = site.login("alice"), site.login("bob")
        # tus-js-client and tuspy, each as alice, chunks landing on whichever worker.
        first = os.urandom(3 * MiB + 17)
        url = node_tus_upload(site.endpoint, first, 512 * 1024, alice, data_dir)
        assert url.startswith(site.endpoint)
        second = os.urandom(2 * MiB)
        uploader = tus.TusClient(site.endpoint, headers={"Cookie": alice}).uploader(
            file_stream=io.BytesIO(second), chunk_size=256 * 1024)
        uploader.upload()
        for upload_url, data in ((url, first), (uploader.url, second)):
            assert sha256(stored(data_dir / "chunkd", upload_url)) == sha256(data)
            # Only alice sees them: bob and the anonymous are told nothing.
            path = path_of(upload_url)
            assert requests.head(site.url + path, headers={**TUS, "Cookie": alice}).status_code == 200
            assert requests.head(site.url + path, headers={**TUS, "Cookie": bob}).status_code == 404
            assert requests.head(site.url + path, headers=TUS).status_code == 404
        # Resumable.js, its chunks in parallel on any worker, assembled into one file.
        third = os.urandom(2 * MiB + 77 * 1024)
        reply = browser_upload("resumable", site.url, site.url + "/uploads/resumable", third, alice, data_dir)
        assert reply["complete"] is True
        assert sha256((data_dir / "chunkd" / "files" / reply["id"]).read_bytes()) == sha256(third)
        # upload_finished made a row per file, in whichever worker finished it.
        wait_for(lambda: len(site.attachments(alice)) == 3, "the attachments")
        rows = {row["upload_id"]: row for row in site.attachments(alice)}
        for upload_id, data in ((url.rsplit("/", 1)[-1], first), (uploader.url.rsplit("/", 1)[-1], second),
                                (reply["id"], third)):
            row = rows[upload_id]
            assert (row["size"], row["sha256"]) == (len(data), sha256(data))
        assert site.attachments(bob) == []
        # The project's post-finish hook noted each file, from the outbox.
        ids = {url.rsplit("/", 1)[-1], uploader.url.rsplit("/", 1)[-1], reply["id"]}
        wait_for(lambda: ids <= set(requests.get(f"{site.url}/finish-notes/").json()["uploads"]), "the finish notes")
        # Its pre-create hook refuses in tus's terms: over the quota, or a program.
        r = requests.post(site.endpoint, headers={**TUS, "Upload-Length": str(5 * MiB), "Cookie": alice})
        assert (r.status_code, "quota" in r.text) == (413, True)
        r = requests.post(site.endpoint, headers={**TUS, "Upload-Length": "10", "Cookie": alice,
                                                  "Upload-Metadata": "filename eC5leGU="})
        assert (r.status_code, r.text.strip()) == (415, "ERR_UPLOAD_REJECTED: no programs")
    finally:
        site.stop()


def test_flask_under_gunicorn_with_flow_js_and_blueimp(data_dir):
    server = Gunicorn(data_dir, 4, app="flask_app:app")
    try:
        alice = "session=" + requests.get(f"{server.url}/login/alice").cookies["session"]
        bob = "session=" + requests.get(f"{server.url}/login/bob").cookies["session"]
        data = os.urandom(3 * MiB + 5)
        reply = browser_upload("flow", server.url, server.url + "/uploads/flow", data, alice, data_dir)
        assert reply["complete"] is True
        assert sha256((data_dir / "chunkd" / "files" / reply["id"]).read_bytes()) == sha256(data)
        # The assembled file is alice's upload, downloadable by her alone.
        url = f"{server.url}/uploads/files/{reply['id']}"
        got = requests.get(url, headers={"Cookie": alice})
        assert got.status_code == 200 and sha256(got.content) == sha256(data)
        assert requests.get(url, headers={"Cookie": bob}).status_code == 404
        # upload_finished ran in the application's context of the worker that finished it.
        finished = data_dir / "finished.jsonl"
        wait_for(lambda: finished.exists() and reply["id"] in finished.read_text(), "the finished note")
        note = next(json.loads(line) for line in finished.read_text().splitlines() if reply["id"] in line)
        assert (note["owner"], note["length"]) == ("alice", len(data))
        assert note["pid"] in server.workers()
        # blueimp's Content-Range chunks, completed with the md5, as django-chunked-upload's page does.
        source = data_dir / "blueimp.bin"
        blue = os.urandom(MiB + 333)
        source.write_bytes(blue)
        out = subprocess.run(["node", str(APPS / "blueimp_upload.mjs"), server.url, server.url + "/uploads/chunked",
                              str(source), alice], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        completed = json.loads(out.stdout)
        assert completed["status"] == "complete"
        assert sha256((data_dir / "chunkd" / "files" / completed["id"]).read_bytes()) == sha256(blue)
        wait_for(lambda: completed["id"] in finished.read_text(), "blueimp's finished note")
        # The application's pre-create hook, in its context, refuses by name.
        r = requests.post(server.url + "/uploads/files/", headers={
            **TUS, "Upload-Length": "10", "Cookie": alice, "Upload-Metadata": "filename YmxvY2tlZC5iaW4="})
        assert (r.status_code, r.text.strip()) == (403, "ERR_UPLOAD_REJECTED: that name is blocked")
    finally:
        server.stop()


def test_starlette_under_uvicorn_with_the_ietf_draft(data_dir):
    proc = subprocess.Popen(
        [venv_bin("uvicorn"), "--workers", "2", "--host", "127.0.0.1", "--port", "0", "--app-dir", str(APPS),
         "starlette_app:app"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "APP_DATA_DIR": str(data_dir), "RUST_LOG": "warn"})
    try:
        line = proc.stderr.readline()
        m = re.search(r"running on (http://\S+)", line)
        assert m, line
        base = m.group(1)
        endpoint = base + "/uploads/ietf"
        wait_for(lambda: answers(base + "/"), "uvicorn's workers")
        for chunk in (MiB, 64 * MiB):  # several requests, then a single one
            data = os.urandom(3 * MiB + 9)
            url = node_tus_upload(endpoint, data, chunk, "alice", data_dir, protocol="ietf-draft-05")
            assert url.startswith(endpoint + "/"), url
            assert sha256(stored(data_dir, url)) == sha256(data)
            r = requests.head(url, headers={"Upload-Draft-Interop-Version": "6", "X-App-User": "alice"})
            assert (r.status_code, r.headers["Upload-Offset"]) == (204, str(len(data)))
            assert requests.head(url, headers={"Upload-Draft-Interop-Version": "6", "X-App-User": "bob"}).status_code == 404
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
        proc.stderr.close()


def test_django_keeps_the_drf_chunked_upload_contract(data_dir):
    """What drf-chunked-upload's clients send, through the Django app under gunicorn."""
    site = Django(data_dir, 4)
    try:
        alice = site.login("alice")
        chunked = site.url + "/uploads/chunked"
        chunk = 256 * 1024
        data = os.urandom(5 * chunk + 1234)
        total = len(data)
        r = requests.put(chunked, files={"file": ("report.pdf", data[:chunk])}, data={"filename": "report.pdf"},
                         headers={"Content-Range": f"bytes 0-{chunk - 1}/{total}", "Cookie": alice})
        assert r.status_code == 200, r.text
        url, offset = r.json()["url"], r.json()["offset"]
        assert url.startswith(chunked + "/")
        while offset < total:
            end = min(offset + chunk, total)
            r = requests.put(url, files={"file": ("blob", data[offset:end])},
                             headers={"Content-Range": f"bytes {offset}-{end - 1}/{total}", "Cookie": alice})
            assert r.status_code == 200, r.text
            offset = r.json()["offset"]
        done = requests.post(url, data={"md5": hashlib.md5(data).hexdigest()}, headers={"Cookie": alice})
        assert done.status_code == 200 and done.json()["status"] == "complete"
        assert sha256(requests.get(url + "/content", headers={"Cookie": alice}).content) == sha256(data)
        upload_id = done.json()["id"]
        wait_for(lambda: [row["upload_id"] for row in site.attachments(alice)] == [upload_id], "the attachment")
    finally:
        site.stop()


def test_pyramid_under_gunicorn_the_authenticated_user_owns_uploads(data_dir):
    server = Gunicorn(data_dir, 2, app="pyramid_app:app")
    try:
        def ticket(name):
            r = requests.get(f"{server.url}/login/{name}")
            assert r.status_code == 200, r.text
            return f"auth_tkt={r.cookies['auth_tkt']}"

        alice, bob = ticket("alice"), ticket("bob")
        data = os.urandom(2 * MiB + 3)
        uploader = tus.TusClient(server.url + "/uploads/files/", headers={"Cookie": alice}).uploader(
            file_stream=io.BytesIO(data), chunk_size=512 * 1024)
        uploader.upload()
        assert sha256(stored(data_dir, uploader.url)) == sha256(data)
        path = path_of(uploader.url)
        got = requests.get(server.url + path, headers={"Cookie": alice})
        assert got.status_code == 200 and sha256(got.content) == sha256(data)
        assert requests.head(server.url + path, headers={**TUS, "Cookie": bob}).status_code == 404
        assert requests.head(server.url + path, headers=TUS).status_code == 404
    finally:
        server.stop()


PRELUDE = """
import io, os, threading
import chunkd.wsgi

def env(method, path, **headers):
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "HTTP_HOST": "app.test",
            "HTTP_TUS_RESUMABLE": "1.0.0", **headers}
"""


def run_in_wheel(script: str, data_dir: Path) -> str:
    """``script`` in the wheel's venv, an App at hand through PRELUDE's ``env``."""
    out = subprocess.run([venv_bin("python"), "-c", PRELUDE + script], capture_output=True, text=True,
                         timeout=60, env={**os.environ, "APP_DATA_DIR": str(data_dir)})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_concurrent_first_requests_of_a_process_all_get_answers(data_dir):
    # Eight threads of one process reach a fresh App at once: one builds the engine
    # while the others wait for it, none holding what the builder needs.
    out = run_in_wheel("""
app = chunkd.wsgi.App({"data_dir": os.environ["APP_DATA_DIR"]})
statuses = []
def ask():
    app(env("OPTIONS", "/files/"), lambda status, headers: statuses.append(status))
threads = [threading.Thread(target=ask) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join(30)
print(sorted(statuses))
""", data_dir)
    assert out.strip() == str(["200 OK"] * 8), out


def test_required_identity_in_app_mode_refuses_the_anonymous(data_dir):
    out = run_in_wheel("""
app = chunkd.wsgi.App({"data_dir": os.environ["APP_DATA_DIR"], "auth": {"required": True}},
                      owner=lambda environ: environ.get("HTTP_X_APP_USER"))
for who in ({}, {"HTTP_X_APP_USER": "alice"}):
    app(env("POST", "/files/", HTTP_UPLOAD_LENGTH="10", **who), lambda status, headers: print(status))
""", data_dir)
    refused, created = out.splitlines()[:2]
    assert refused.startswith("403"), out
    assert created.startswith("201"), out


def test_workers_on_s3_and_postgres_share_uploads_as_binaries_do(data_dir):
    """The settings of several binaries (S3 store, PostgreSQL state, its locks) make the
    workers of two gunicorn masters one cluster."""
    from test_scale_out import PART, env, s3_client

    bucket, schema = f"wheel{os.urandom(6).hex()}", f"wheel_{os.urandom(6).hex()}"
    cluster = {
        "CHUNKD_STORE": "s3", "CHUNKD_S3__ENDPOINT": env("CHUNKD_TEST_S3_ENDPOINT"), "CHUNKD_S3__BUCKET": bucket,
        "CHUNKD_S3__ACCESS_KEY": env("CHUNKD_TEST_S3_ACCESS_KEY"),
        "CHUNKD_S3__SECRET_KEY": env("CHUNKD_TEST_S3_SECRET_KEY"), "CHUNKD_S3__PREFIX": "uploads/",
        "CHUNKD_S3__PART_SIZE": str(PART), "CHUNKD_S3__CREATE_BUCKET": "true",
        "CHUNKD_STATE": "postgres", "CHUNKD_POSTGRES__URL": env("CHUNKD_TEST_PG_URL"),
        "CHUNKD_POSTGRES__SCHEMA": schema, "CHUNKD_CHECKPOINT_BYTES": str(PART),
    }
    for name in "ab":
        (data_dir / name).mkdir()
    a = Gunicorn(data_dir / "a", 2, env=cluster)
    b = Gunicorn(data_dir / "b", 2, env=cluster)
    try:
        data = os.urandom(3 * PART + 12345)
        url = create(a.endpoint, len(data))
        offset = 0
        for i in range(4):
            end = min(offset + PART, len(data))
            r = patch((a, b)[i % 2].url, url, offset, data[offset:end])
            assert r.status_code == 204, r.text
            offset = int(r.headers["Upload-Offset"])
        assert offset == len(data)
        got = requests.get(b.url + path_of(url))
        assert got.status_code == 200 and sha256(got.content) == sha256(data)
        stored_object = s3_client().get_object(Bucket=bucket, Key="uploads/" + url.rsplit("/", 1)[-1])
        assert sha256(stored_object["Body"].read()) == sha256(data)
        assert head(a.url, url, user="bob").status_code == 404
    finally:
        a.stop()
        b.stop()


def test_an_engine_built_before_a_fork_is_built_anew_in_the_child(data_dir):
    # What gunicorn --preload does to an app that served a request in the master: the
    # child inherits an engine whose threads it does not have.
    out = run_in_wheel("""
app = chunkd.wsgi.App({"data_dir": os.environ["APP_DATA_DIR"]})
def create():
    got = []
    body = app(env("POST", "/files/", HTTP_UPLOAD_LENGTH="10"), lambda status, headers: got.append(status))
    b"".join(body)
    return got[0]
print("parent", create(), flush=True)
pid = os.fork()
if pid == 0:
    print("child", create(), flush=True)
    os._exit(0)
_, status = os.waitpid(pid, 0)
print("parent again", create(), os.waitstatus_to_exitcode(status))
""", data_dir)
    assert out.splitlines() == ["parent 201 Created", "child 201 Created", "parent again 201 Created 0"], out

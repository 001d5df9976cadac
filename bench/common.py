"""What both benchmarks share: servers as child processes with their CPU time and peak
RSS, and two tus clients: one on http.client sending from memory, one sending each
chunk from a file with sendfile(2) (zero-copy, as curl or a native client would)."""

import http.client
import os
import socket
import statistics
import subprocess
import time
from urllib.parse import urlparse

MIB = 1 << 20
GIB = 1 << 30
TUS = {"Tus-Resumable": "1.0.0"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, argv, port, env=None, cwd=None):
        self.name, self.argv, self.port, self.env, self.cwd = name, argv, port, env, cwd
        self.proc = None

    @property
    def endpoint(self):
        return f"http://127.0.0.1:{self.port}/files/"

    def start(self):
        self.proc = subprocess.Popen(
            self.argv, cwd=self.cwd, env={**os.environ, **(self.env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
                time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not listen on {self.port}")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def measured_pid(self):
        """The process whose CPU, memory and writes are the server's."""
        return self.proc.pid

    def cpu_seconds(self):
        fields = open(f"/proc/{self.measured_pid()}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def reset_peak_rss(self):
        with open(f"/proc/{self.measured_pid()}/clear_refs", "w") as f:
            f.write("5")

    def disk_writes_mib(self):
        """Bytes this process has sent to the block layer (its temp files, its state)."""
        for line in open(f"/proc/{self.measured_pid()}/io"):
            if line.startswith("write_bytes:"):
                return int(line.split()[1]) / MIB
        return float("nan")

    def peak_rss_mib(self):
        return self._status_mib("VmHWM:")

    def rss_mib(self):
        return self._status_mib("VmRSS:")

    def _status_mib(self, field):
        for line in open(f"/proc/{self.measured_pid()}/status"):
            if line.startswith(field):
                return int(line.split()[1]) / 1024
        return float("nan")


def connect(url):
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=300, blocksize=MIB)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def create(conn, endpoint, length):
    conn.request("POST", urlparse(endpoint).path, headers={**TUS, "Upload-Length": str(length)})
    r = conn.getresponse()
    r.read()
    assert r.status == 201, f"POST: {r.status}"
    return urlparse(r.getheader("Location")).path


def patch(conn, path, offset, body):
    headers = {**TUS, "Content-Type": "application/offset+octet-stream",
               "Upload-Offset": str(offset), "Content-Length": str(len(body))}
    conn.request("PATCH", path, body=body, headers=headers)
    r = conn.getresponse()
    r.read()
    assert r.status == 204, f"PATCH: {r.status}"
    return int(r.getheader("Upload-Offset"))


def upload(endpoint, data, chunk):
    conn = connect(endpoint)
    try:
        path = create(conn, endpoint, len(data))
        offset = 0
        while offset < len(data):
            offset = patch(conn, path, offset, data[offset:offset + chunk])
        return path
    finally:
        conn.close()


def patch_from_file(conn, path, offset, file, count):
    """A PATCH whose body the kernel copies from `file` straight to the socket."""
    u = conn.host, conn.port
    head = (f"PATCH {path} HTTP/1.1\r\nHost: {u[0]}:{u[1]}\r\nTus-Resumable: 1.0.0\r\n"
            f"Content-Type: application/offset+octet-stream\r\nUpload-Offset: {offset}\r\n"
            f"Content-Length: {count}\r\n\r\n")
    conn.sock.sendall(head.encode())
    sent = conn.sock.sendfile(file, offset, count)
    assert sent == count, f"sendfile sent {sent} of {count}"
    r = http.client.HTTPResponse(conn.sock, method="PATCH")
    r.begin()
    r.read()
    assert r.status == 204, f"PATCH: {r.status}"
    return int(r.getheader("Upload-Offset"))


def upload_from_file(endpoint, file_path, chunk):
    """The same upload as `upload`, each chunk sent with sendfile(2) from `file_path`."""
    size = os.path.getsize(file_path)
    conn = connect(endpoint)
    try:
        with open(file_path, "rb") as file:
            path = create(conn, endpoint, size)
            offset = 0
            while offset < size:
                offset = patch_from_file(conn, path, offset, file, min(chunk, size - offset))
        return path
    finally:
        conn.close()


def payload_file(data, name):
    """`data` in a file on tmpfs (/dev/shm), so that dropping the page cache before a
    measurement does not turn the client's reads into disk reads."""
    base = "/dev/shm" if os.path.isdir("/dev/shm") else "/tmp"
    file_path = os.path.join(base, f"chunkd-bench-{os.getpid()}-{name}")
    with open(file_path, "wb") as f:
        f.write(data)
    return file_path


def settle_disk():
    """Starts a measurement from a clean page cache: the previous server's dirty pages
    are written back now, not during the next server's measurement."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3")
    except OSError:
        pass  # not root: the sync above is all we can do


def median(values):
    return statistics.median(values) if values else float("nan")


def add_run_options(ap):
    """The options both benchmarks take: where to work, and how long to run."""
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="256 MiB instead of 1 GiB, one run")


def size_and_runs(args):
    return (256 * MIB if args.quick else GIB), (1 if args.quick else args.runs)

"""Crash harness: chunkd is killed with SIGKILL at random moments while one client per
protocol (tus, tus concatenation, IETF, Resumable.js, Content-Range, form) uploads
random files, then restarted on the same data; after each restart every acknowledged
offset, chunk and file must still be served, and each upload resumes from the server's
offset. At the end every upload is finished and downloaded: its sha256 must be the
sent file's.

    python crash_harness.py --kills 100 --backend fs|s3+postgres [--seed N] [--report FILE]

s3+postgres needs the test services (scripts/services.sh, CHUNKD_TEST_* variables).
tests/e2e/py/test_crash.py runs a few kills of each in the test command; docs/crash.md
records the long run."""

import argparse
import collections
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import requests

from crash_clients import PROTOCOLS, Lost

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("CHUNKD_BIN", str(ROOT / "target" / "release" / "chunkd"))
PART = 5 << 20
# One client's cookies across every request and restart, as a browser keeps them: the
# Resumable.js endpoints name an anonymous uploader by its cookie.
JAR = requests.cookies.RequestsCookieJar()
# Connection failures are how a client sees the kill.
GONE = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.Timeout)


def backend_env(backend):
    if backend == "fs":
        return {"CHUNKD_CHECKPOINT_BYTES": str(256 << 10)}, 6 << 20
    if backend != "s3+postgres":
        raise SystemExit(f"unknown backend {backend}")
    need = ["CHUNKD_TEST_S3_ENDPOINT", "CHUNKD_TEST_S3_ACCESS_KEY", "CHUNKD_TEST_S3_SECRET_KEY", "CHUNKD_TEST_PG_URL"]
    missing = [n for n in need if not os.environ.get(n)]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not set: start the services (scripts/services.sh)")
    env = {
        "CHUNKD_STORE": "s3",
        "CHUNKD_S3__ENDPOINT": os.environ["CHUNKD_TEST_S3_ENDPOINT"],
        "CHUNKD_S3__BUCKET": f"crash{uuid.uuid4().hex[:12]}",
        "CHUNKD_S3__ACCESS_KEY": os.environ["CHUNKD_TEST_S3_ACCESS_KEY"],
        "CHUNKD_S3__SECRET_KEY": os.environ["CHUNKD_TEST_S3_SECRET_KEY"],
        "CHUNKD_S3__PART_SIZE": str(PART),
        "CHUNKD_S3__CREATE_BUCKET": "true",
        "CHUNKD_STATE": "postgres",
        "CHUNKD_POSTGRES__URL": os.environ["CHUNKD_TEST_PG_URL"],
        "CHUNKD_POSTGRES__SCHEMA": f"crash_{uuid.uuid4().hex[:12]}",
        # A killed holder's leases lapse this fast, so the restarted server takes over.
        "CHUNKD_POSTGRES__LOCK_TTL": "2s",
        "CHUNKD_CHECKPOINT_BYTES": str(PART),
    }
    return env, 12 << 20


class Server:
    """chunkd on a fixed port and data dir, started again after each kill."""

    def __init__(self, data_dir, env):
        self.data_dir = data_dir
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CHUNKD_TEST_") and k != "CHUNKD_BIN"},
            "RUST_LOG": os.environ.get("CHUNKD_CRASH_RUST_LOG", "warn"),
            **env,
        }
        self.port = 0
        self.proc = None
        self.log = open(data_dir / "chunkd.log", "ab")

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "--listen", f"127.0.0.1:{self.port}", "--data-dir", str(self.data_dir / "data"), "serve"],
            stdout=subprocess.PIPE, stderr=self.log, env=self.env, text=True,
        )
        line = self.proc.stdout.readline()  # the endpoint, once it listens (or EOF)
        m = re.search(r"chunkd: tus uploads at http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"chunkd did not start: {line!r}; see {self.log.name}")
        self.port = int(m.group(1))
        self.base = f"http://127.0.0.1:{self.port}"

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


class Worker(threading.Thread):
    """Uploads one protocol's files back to back until the server goes away."""

    def __init__(self, protocol, rng, max_size, base, current, finished):
        super().__init__(daemon=True)
        self.protocol, self.rng, self.max_size, self.base = protocol, rng, max_size, base
        self.current = current
        self.finished = finished  # uploads this worker completed in this round
        self.in_request = False
        self.error = None

    def run(self):
        s = session()
        try:
            while True:
                if self.current is None or self.current.finished:
                    self.current = self.protocol(self.rng, self.max_size)
                self.in_request = True
                self.current.advance(s, self.base)
                self.in_request = False
                if self.current.finished:
                    self.finished.append(self.current)
        except GONE:
            pass
        except Exception as e:  # an answer no client should get
            self.error = f"{self.protocol.protocol}: {e!r}"

    def phase(self):
        return self.current.phase if self.in_request and self.current else "between requests"


def run(kills, backend, seed, log=print):
    """Returns the tally; raises AssertionError when anything acknowledged was lost."""
    rng = random.Random(seed)
    env, max_size = backend_env(backend)
    tally = collections.Counter()
    phases = collections.Counter()
    interrupted = set()
    d = tempfile.mkdtemp(prefix="chunkd-crash-")
    try:
        server = Server(Path(d), env)
        currents = {p: None for p in PROTOCOLS}
        everything = []
        try:
            for kill in range(kills):
                server.start()
                verify([u for u in currents.values() if u], server.base)
                finished = []
                workers = [Worker(p, random.Random(rng.random()), max_size, server.base, currents[p], finished) for p in PROTOCOLS]
                for w in workers:
                    w.start()
                # The kill's moment is the random point under test, not a synchronisation.
                killer = threading.Timer(rng.uniform(0.005, 0.4), server.kill)
                killer.start()
                killer.join()
                for w in workers:
                    w.join(timeout=60)
                    assert not w.is_alive(), f"{w.protocol.protocol} client still running after the kill"
                    assert w.error is None, w.error
                    phases[f"{w.protocol.protocol}: {w.phase()}"] += 1
                    currents[w.protocol] = w.current
                    if w.current and not w.current.finished:
                        interrupted.add(id(w.current))
                everything += finished
                tally["kills"] += 1
                server.start()
                verify(finished + [u for u in currents.values() if u], server.base)
                server.stop()
                if (kill + 1) % 10 == 0:
                    log(f"  {kill + 1} kills, {len(everything)} uploads finished")
            # Finish what is left on a server left alone, then check every file.
            server.start()
            s = session()
            for u in currents.values():
                if u is None:
                    continue
                for _ in range(10_000):
                    if u.finished:
                        break
                    u.advance(s, server.base)
                everything.append(u)
            verify(everything, server.base)
            server.stop()
        except BaseException:
            server.log.flush()
            log(f"chunkd's log (last lines):\n{tail(server.log.name)}\nits data: {d}")
            d = None  # kept for a look
            raise
        finally:
            if server.proc and server.proc.poll() is None:
                server.kill()
    finally:
        if d:
            shutil.rmtree(d)
    for u in everything:
        tally[f"{u.protocol} uploads byte-identical"] += 1
        if id(u) in interrupted:
            tally["resumed after a kill, byte-identical"] += 1
    return tally, phases


def tail(path, lines=30):
    with open(path, errors="replace") as f:
        return "".join(f.readlines()[-lines:])


def session():
    s = requests.Session()
    s.cookies = JAR
    return s


def verify(uploads, base):
    s = session()
    for u in uploads:
        u.verify(s, base)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--backend", default="fs", choices=["fs", "s3+postgres"])
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--report", help="append the tally to this file as JSON")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    print(f"crash harness: {args.kills} kills on {args.backend}, seed {seed}")
    try:
        tally, phases = run(args.kills, args.backend, seed)
    except (Lost, AssertionError) as e:
        print(f"FAILED (seed {seed}): {e}")
        sys.exit(1)
    for k, v in sorted(tally.items()):
        print(f"  {k}: {v}")
    print("  at the kill:")
    for k, v in sorted(phases.items()):
        print(f"    {k}: {v}")
    if args.report:
        with open(args.report, "a") as f:
            f.write(json.dumps({"backend": args.backend, "seed": seed, "tally": tally, "phases": phases}) + "\n")


if __name__ == "__main__":
    main()

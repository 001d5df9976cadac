#!/usr/bin/env python3
"""The Python package's benchmark: one upload of 1 GiB in 8 MiB tus PATCHes through
chunkd's WSGI app under gunicorn and its ASGI app under uvicorn and under gunicorn's
uvicorn worker, against the chunkd binary and against tussi (a pure-Python tus server
from PyPI, ASGI) under the same two.
Every server fsyncs what it acknowledges. Both clients of bench/common.py; MiB/s and
the serving process's peak RSS, medians of the runs; every stored file checked by
sha256. Run by bench/run-python.sh."""

import argparse
import hashlib
import os
import shutil
import sys
import time

from common import (MIB, Server, add_run_options, free_port, median, payload_file, settle_disk,
                    size_and_runs, upload, upload_from_file)

HERE = os.path.dirname(os.path.abspath(__file__))
CHUNK = 8 * MIB


class Served(Server):
    """A server whose work happens in one child process (gunicorn's or uvicorn's worker):
    its memory is the one measured."""

    def measured_pid(self):
        children = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
        return int(children[0]) if children else self.proc.pid


def servers(args, work):
    venv = lambda name: os.path.join(args.venv, "bin", name)  # noqa: E731
    apps = os.path.join(HERE, "python")

    def data(name):
        d = os.path.join(work, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    made = []
    port = free_port()
    d = data("binary")
    made.append((Server("chunkd binary", [args.chunkd, "--listen", f"127.0.0.1:{port}", "--data-dir", d, "serve"],
                        port, env={"RUST_LOG": "warn"}), lambda p, d=d: os.path.join(d, "files", p.rsplit("/", 1)[-1])))
    port = free_port()
    d = data("wsgi")
    made.append((Served("chunkd WSGI, gunicorn gthread", [venv("gunicorn"), "--chdir", apps, "-w", "1", "-k", "gthread",
                                                          "--threads", "4", "-b", f"127.0.0.1:{port}", "chunkd_wsgi:application"],
                        port, env={"BENCH_DATA_DIR": d, "RUST_LOG": "warn"}),
                 lambda p, d=d: os.path.join(d, "files", p.rsplit("/", 1)[-1])))
    port = free_port()
    d = data("asgi")
    made.append((Served("chunkd ASGI, uvicorn", [venv("uvicorn"), "--app-dir", apps, "--port", str(port), "--no-access-log",
                                                 "--workers", "1", "chunkd_asgi:app"],
                        port, env={"BENCH_DATA_DIR": d, "RUST_LOG": "warn"}),
                 lambda p, d=d: os.path.join(d, "files", p.rsplit("/", 1)[-1])))
    for name, module in (("chunkd ASGI", "chunkd_asgi:app"), ("tussi 3.1.0", "tussi_asgi:app")):
        port = free_port()
        d = data(module.split("_")[0] + "-gunicorn")
        done = "files" if module.startswith("chunkd") else "done"
        made.append((Served(f"{name}, gunicorn uvicorn-worker",
                            [venv("gunicorn"), "--chdir", apps, "-w", "1", "-k", "uvicorn_worker.UvicornWorker",
                             "-b", f"127.0.0.1:{port}", module],
                            port, env={"BENCH_DATA_DIR": d, "RUST_LOG": "warn"}),
                     lambda p, d=d, done=done: os.path.join(d, done, p.rsplit("/", 1)[-1])))
    port = free_port()
    d = data("tussi")
    made.append((Served("tussi 3.1.0, uvicorn", [venv("uvicorn"), "--app-dir", apps, "--port", str(port), "--no-access-log",
                                                 "--workers", "1", "tussi_asgi:app"],
                        port, env={"BENCH_DATA_DIR": d}),
                 lambda p, d=d: os.path.join(d, "done", p.rsplit("/", 1)[-1])))
    return made


def sha256_file(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--chunkd", required=True)
    ap.add_argument("--venv", required=True, help="a venv with chunkd's wheel, gunicorn, uvicorn and tussi")
    ap.add_argument("--only", default="", help="the servers whose names contain this")
    add_run_options(ap)
    args = ap.parse_args()
    size, runs = size_and_runs(args)
    os.makedirs(args.work, exist_ok=True)
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    source = payload_file(data, "python")
    results = {}
    try:
        for run in range(runs):
            for server, stored in servers(args, os.path.join(args.work, f"run{run}")):
                if args.only not in server.name:
                    continue
                for client in ("http.client", "sendfile"):
                    settle_disk()
                    server.start()
                    try:
                        # uvicorn and gunicorn listen before their worker has imported the app.
                        upload(server.endpoint, b"x", 1)
                        server.reset_peak_rss()
                        t = time.perf_counter()
                        path = (upload(server.endpoint, data, CHUNK) if client == "http.client"
                                else upload_from_file(server.endpoint, source, CHUNK))
                        elapsed = time.perf_counter() - t
                        rss = server.peak_rss_mib()
                    finally:
                        server.stop()
                    assert sha256_file(stored(path)) == digest, f"{server.name}: stored bytes differ"
                    # A GiB per measurement: kept, the runs would fill the disk.
                    os.unlink(stored(path))
                    results.setdefault((server.name, client), []).append((size / MIB / elapsed, rss))
                    print(f"run {run + 1} {server.name} ({client}): {size / MIB / elapsed:.0f} MiB/s, "
                          f"peak RSS {rss:.0f} MiB", file=sys.stderr)
    finally:
        os.unlink(source)
        shutil.rmtree(args.work, ignore_errors=True)
    print(f"One upload of {size // MIB} MiB in {CHUNK // MIB} MiB PATCHes, medians of {runs} run(s); "
          "every server fsyncs what it acknowledges.\n")
    print("| server | client | MiB/s | peak RSS MiB |")
    print("|---|---|---|---|")
    for (name, client), values in results.items():
        print(f"| {name} | {client} | {median([v[0] for v in values]):.0f} | {median([v[1] for v in values]):.0f} |")


if __name__ == "__main__":
    main()

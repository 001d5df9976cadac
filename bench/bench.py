#!/usr/bin/env python3
"""Side-by-side benchmark of tus servers on this machine, in one run.

Scenarios (each repeated --runs times; the tables quote medians):
  1. one 1 GiB upload in 8 MiB PATCHes, and as one PATCH: MiB/s, server CPU s, peak RSS
  2. 256 uploads of 4 MiB (POST + PATCH) at concurrency 64: uploads/s, p99, peak RSS
  3. HEAD requests/s on one upload (wrk, 16 connections, 5 s)
Targets: the same client against a discarding sink (the limit), and the disk's
sequential write speed with fdatasync.

Client and servers share this machine's cores; compare ratios, not absolutes.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import (GIB, MIB, Server, add_run_options, connect, create, free_port, median, payload_file, settle_disk,
                    size_and_runs, upload, upload_from_file)


class Client:
    """One way of sending a payload: from memory with http.client, or with sendfile(2)
    from a copy of it on tmpfs."""

    def __init__(self, name, data, zero_copy):
        self.name, self.size = name, len(data)
        self.data = data
        self.file = payload_file(data, f"{len(data)}") if zero_copy else None

    def upload(self, endpoint, chunk):
        if self.file:
            return upload_from_file(endpoint, self.file, chunk)
        return upload(endpoint, self.data, chunk)

    def remove(self):
        if self.file:
            os.unlink(self.file)


CLIENTS = [("http.client", False), ("sendfile", True)]


def measure_big(server, client, chunk):
    settle_disk()
    server.reset_peak_rss()
    cpu = server.cpu_seconds()
    t = time.perf_counter()
    client.upload(server.endpoint, chunk)
    elapsed = time.perf_counter() - t
    return {"mibs": client.size / MIB / elapsed, "cpu": server.cpu_seconds() - cpu, "rss": server.peak_rss_mib()}


def measure_concurrent(server, client, uploads=256, concurrency=64):
    settle_disk()
    server.reset_peak_rss()
    latencies = []
    lock = threading.Lock()

    def one(_):
        t = time.perf_counter()
        client.upload(server.endpoint, client.size)
        with lock:
            latencies.append(time.perf_counter() - t)

    t = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(uploads)))
    elapsed = time.perf_counter() - t
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return {"ups": uploads / elapsed, "p99": p99 * 1000, "rss": server.peak_rss_mib()}


def measure_head(server, wrk_script):
    conn = connect(server.endpoint)
    path = create(conn, server.endpoint, 10)
    conn.close()
    url = f"http://127.0.0.1:{server.port}{path}"
    out = subprocess.run(["wrk", "-t1", "-c16", "-d5s", "-s", wrk_script, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    assert not non2xx, f"{server.name}: HEAD answered non-2xx: {out}"
    return {"rps": rps}


def disk_write_mibs(directory, size=GIB, block=8 * MIB):
    settle_disk()
    path = os.path.join(directory, "dd.bin")
    buf = os.urandom(block)
    t = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for _ in range(size // block):
            os.write(fd, buf)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - t
    os.unlink(path)
    return size / MIB / elapsed


def clear_files(work):
    """Every stored upload in the servers' directories below `work` (chunkd keeps them in
    `files/`, one level down), but not chunkd's state database nor the files at the top
    (wrk's script): GiBs per round would fill the disk."""
    for d in os.listdir(work):
        if not os.path.isdir(os.path.join(work, d)):
            continue
        for root, _, files in os.walk(os.path.join(work, d)):
            for f in files:
                if not f.startswith("state.sqlite3"):
                    os.unlink(os.path.join(root, f))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunkd", required=True)
    ap.add_argument("--rustus", required=True)
    ap.add_argument("--tus-node", required=True)
    ap.add_argument("--sink", required=True)
    add_run_options(ap)
    args = ap.parse_args()
    size, runs = size_and_runs(args)

    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    wrk_script = os.path.join(work, "head.lua")
    with open(wrk_script, "w") as f:
        f.write('wrk.method = "HEAD"\nwrk.headers["Tus-Resumable"] = "1.0.0"\n')

    def data_dir(name):
        d = os.path.join(work, name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        return d

    # Every client of the benchmark is one address: no per-client limit, as for the peers.
    unlimited = {"RUST_LOG": "error", "CHUNKD_CONNECTIONS__MAX_UPLOADS_PER_CLIENT": "0"}

    def servers():
        p = free_port()
        yield Server("chunkd", [args.chunkd, "--listen", f"127.0.0.1:{p}", "--data-dir", data_dir("chunkd"), "serve"],
                     p, env=unlimited)
        p = free_port()
        yield Server("chunkd sync=never", [args.chunkd, "--listen", f"127.0.0.1:{p}", "--data-dir", data_dir("chunkd-nosync"), "serve"],
                     p, env={**unlimited, "CHUNKD_SYNC": "never"})
        p = free_port()
        d = data_dir("rustus")
        yield Server("rustus 0.5.10", [args.rustus, "--host", "127.0.0.1", "--port", str(p), "--data-dir", d, "--info-dir", d,
                                       "--max-body-size", str(size + MIB), "--log-level", "ERROR",
                                       "--tus-extensions", "getting,creation,termination,creation-with-upload,creation-defer-length,concatenation"], p)
        p = free_port()
        yield Server("@tus/server 2.4.5", ["node", args.tus_node, str(p), data_dir("tus-node")], p,
                     cwd=os.path.dirname(args.tus_node))
        p = free_port()
        yield Server("limit: discarding sink", [args.sink, f"127.0.0.1:{p}"], p)

    print(f"# chunkd benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(f"Machine: {os.cpu_count()} cores, {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') // GIB} GiB; "
          f"client, server and disk share it. Upload size {size // MIB} MiB; medians of {runs} run(s).\n", flush=True)

    data = memoryview(os.urandom(size))
    small = memoryview(os.urandom(4 * MIB))
    clients = [(Client(name, data, zc), Client(name, small, zc)) for name, zc in CLIENTS]
    # All servers run side by side; every round measures each of them in turn, so a noisy
    # moment on this shared machine falls on all of them rather than on one.
    started = []
    try:
        for server in servers():
            server.start()
            started.append(server)
        scenarios = ["head"] + [f"{scen}/{c.name}" for c, _ in clients for scen in ("chunked", "single", "conc")]
        rows = {s.name: {scen: [] for scen in scenarios} for s in started}
        for round_ in range(runs):
            for server in started:
                r = rows[server.name]
                for big, few in clients:
                    r[f"chunked/{big.name}"].append(measure_big(server, big, 8 * MIB))
                    r[f"single/{big.name}"].append(measure_big(server, big, big.size))
                    r[f"conc/{big.name}"].append(measure_concurrent(server, few))
                    clear_files(work)  # keep the disk from filling between measurements
                r["head"].append(measure_head(server, wrk_script))
            print(f"- round {round_ + 1}/{runs} done", file=sys.stderr, flush=True)
    finally:
        for server in started:
            server.stop()
        for pair in clients:
            for client in pair:
                client.remove()
    disk = median([disk_write_mibs(work) for _ in range(runs)])

    def m(name, scen, key):
        return median([x[key] for x in rows[name][scen]])

    for client, _ in clients:
        c = client.name
        print(f"Client: {c}.\n")
        print("| server | 8 MiB PATCHes MiB/s | CPU s | peak RSS MiB | one PATCH MiB/s | CPU s | peak RSS MiB "
              "| 256×4 MiB @64 uploads/s | p99 ms | peak RSS MiB |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for name in rows:
            print(f"| {name} | {m(name, f'chunked/{c}', 'mibs'):.0f} | {m(name, f'chunked/{c}', 'cpu'):.2f} "
                  f"| {m(name, f'chunked/{c}', 'rss'):.0f} | {m(name, f'single/{c}', 'mibs'):.0f} "
                  f"| {m(name, f'single/{c}', 'cpu'):.2f} | {m(name, f'single/{c}', 'rss'):.0f} "
                  f"| {m(name, f'conc/{c}', 'ups'):.1f} | {m(name, f'conc/{c}', 'p99'):.0f} | {m(name, f'conc/{c}', 'rss'):.0f} |")
        print()
    print("| server | HEAD req/s (wrk, 16 connections) |\n|---|---|")
    for name in rows:
        print(f"| {name} | {m(name, 'head', 'rps'):.0f} |")
    print(f"\nDisk sequential write with fdatasync: {disk:.0f} MiB/s.\n")

    peers = [n for n in rows if not n.startswith(("chunkd", "limit"))]
    limit = "limit: discarding sink"
    names = [c.name for c, _ in clients]

    def best(name, scen, key):
        """A server's figure with the client that suits it best."""
        if scen == "head":
            return m(name, "head", key)
        return max(m(name, f"{scen}/{c}", key) for c in names)

    for ours_name in [n for n in rows if n.startswith("chunkd")]:
        print(f"Ratios for {ours_name} (its worst client against each peer's best client):\n")
        for scen, key, label in [("chunked", "mibs", "8 MiB PATCHes"), ("single", "mibs", "one PATCH"),
                                 ("conc", "ups", "256×4 MiB @64"), ("head", "rps", "HEAD")]:
            if scen == "head":
                ours = m(ours_name, "head", key)
            else:
                ours = min(m(ours_name, f"{scen}/{c}", key) for c in names)
            peer = max(best(p, scen, key) for p in peers)
            line = f"- {label}: {ours / peer:.2f}× the best peer"
            line += f", {ours / best(limit, scen, key) * 100:.0f}% of the sink"
            if scen in ("chunked", "single"):
                line += f", {ours / disk * 100:.0f}% of the disk's write speed"
            print(line)
        print()


if __name__ == "__main__":
    main()

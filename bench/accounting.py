#!/usr/bin/env python3
"""What per-request accounting costs: chunkd with metrics off, with /metrics on (the
default), and with /metrics and the access log on, side by side in one run.

Small requests are where a per-request cost shows: sequential tus uploads of 4 KiB
(POST + PATCH on one keep-alive connection) and HEAD requests on one upload. Each
configuration is measured --runs times, interleaved; the table quotes medians and the
ratio to metrics off. Usage: bench/accounting.py --chunkd target/release/chunkd --work DIR
"""

import argparse
import os
import shutil
import time

from common import TUS, Server, connect, create, free_port, median, patch


def small_uploads(endpoint, count=2000, size=4096):
    conn = connect(endpoint)
    body = os.urandom(size)
    t = time.perf_counter()
    for _ in range(count):
        path = create(conn, endpoint, size)
        patch(conn, path, 0, body)
    elapsed = time.perf_counter() - t
    conn.close()
    return count / elapsed


def heads(endpoint, count=5000):
    conn = connect(endpoint)
    path = create(conn, endpoint, 10)
    t = time.perf_counter()
    for _ in range(count):
        conn.request("HEAD", path, headers=TUS)
        r = conn.getresponse()
        r.read()
        assert r.status == 200, r.status
    elapsed = time.perf_counter() - t
    conn.close()
    return count / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunkd", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    base = {"CHUNKD_CONNECTIONS__MAX_UPLOADS_PER_CLIENT": "0"}
    configs = {
        "metrics off": {**base, "RUST_LOG": "error", "CHUNKD_METRICS__ENABLED": "false"},
        "metrics on": {**base, "RUST_LOG": "error"},
        "metrics + access log": {**base, "RUST_LOG": "error,chunkd::access=info"},
    }
    results = {name: {"uploads": [], "heads": []} for name in configs}
    for _ in range(args.runs):
        for name, env in configs.items():
            d = os.path.join(args.work, "accounting")
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
            port = free_port()
            server = Server(name, [args.chunkd, "--listen", f"127.0.0.1:{port}", "--data-dir", d, "serve"],
                            port, env=env)
            server.start()
            try:
                results[name]["uploads"].append(small_uploads(server.endpoint))
                results[name]["heads"].append(heads(server.endpoint))
            finally:
                server.stop()
    off = {k: median(v) for k, v in results["metrics off"].items()}
    print(f"| chunkd ({args.runs} runs, medians) | 4 KiB uploads/s | ratio | HEAD/s | ratio |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        u, h = median(r["uploads"]), median(r["heads"])
        print(f"| {name} | {u:.0f} | {u / off['uploads']:.2f} | {h:.0f} | {h / off['heads']:.2f} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""chunkd on S3 against @tus/server with @tus/s3-store, and boto3's own multipart upload
as the ceiling, all on one s3s-fs server, in one run.

Scenarios (each repeated --runs times; the tables quote medians):
  1. one 1 GiB upload in 8 MiB chunks: MiB/s, server CPU s, peak RSS, local disk writes
  2. 64 concurrent uploads of 16 MiB, each in 8 MiB chunks: MiB/s in all, p99 of one
     upload, peak RSS, local disk writes, and the RSS left once the burst is over
The ceiling is boto3 uploading the same bytes to the same S3 server as 8 MiB parts, one
part after another as a tus client sends its chunks (and, for reference, with boto3's
default 10 threads). Every stored object is checked by sha256 after the measurement.

Client, servers and the S3 server share this machine's cores; compare ratios.
"""

import argparse
import hashlib
import io
import os
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from common import GIB, MIB, Server, add_run_options, free_port, median, settle_disk, size_and_runs, upload

ACCESS_KEY = "chunkdbenchkey"
SECRET_KEY = "chunkdbenchsecret1234"
CHUNK = 8 * MIB
CONCURRENT = 64
CONCURRENT_SIZE = 16 * MIB


def s3_client(endpoint):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=CONCURRENT + 8),
    )


class Boto3:
    """The ceiling: no tus server in between, the client talks to S3 itself."""

    def __init__(self, name, endpoint, bucket, threads):
        self.name, self.bucket = name, bucket
        self.s3 = s3_client(endpoint)
        self.transfer = TransferConfig(multipart_threshold=CHUNK, multipart_chunksize=CHUNK,
                                       use_threads=threads > 1, max_concurrency=threads)

    def upload(self, data, key):
        self.s3.upload_fileobj(io.BytesIO(data), self.bucket, key, Config=self.transfer)
        return key


class TusServer:
    """A tus server on S3: the object is named after the upload id in its URL."""

    def __init__(self, server, bucket):
        self.server, self.bucket, self.name = server, bucket, server.name

    def upload(self, data, _key):
        return urlparse(upload(self.server.endpoint, data, CHUNK)).path.rsplit("/", 1)[1]


def stored_sha256(s3, bucket, key):
    h = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(MIB):
        h.update(chunk)
    return h.hexdigest()


def measure(target, payloads, s3, stats):
    """Uploads every payload at once (one thread each); returns MiB/s in all, the p99
    of one upload, and the server's peak RSS, CPU and disk writes."""
    settle_disk()
    if stats:
        stats.reset_peak_rss()
        cpu, disk = stats.cpu_seconds(), stats.disk_writes_mib()
    latencies, keys = [], []
    lock = threading.Lock()

    def one(i):
        t = time.perf_counter()
        key = target.upload(payloads[i], f"boto3-{time.time_ns()}-{i}")
        with lock:
            latencies.append(time.perf_counter() - t)
            keys.append((i, key))

    t = time.perf_counter()
    with ThreadPoolExecutor(len(payloads)) as pool:
        list(pool.map(one, range(len(payloads))))
    elapsed = time.perf_counter() - t
    result = {"mibs": sum(len(p) for p in payloads) / MIB / elapsed, "p99": percentile(latencies, 0.99) * 1000}
    if stats:
        result |= {"rss": stats.peak_rss_mib(), "cpu": stats.cpu_seconds() - cpu,
                   "disk": stats.disk_writes_mib() - disk}
    for i, key in keys:
        expected = hashlib.sha256(payloads[i]).hexdigest()
        got = stored_sha256(s3, target.bucket, key)
        assert got == expected, f"{target.name}: object {key} has sha256 {got}, sent {expected}"
    return result


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def clear_bucket_dir(s3_dir, bucket):
    """s3s-fs keeps objects as plain files: emptying the directory keeps the disk from
    filling between measurements without a listing per object."""
    d = os.path.join(s3_dir, bucket)
    for name in os.listdir(d):
        p = os.path.join(d, name)
        shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chunkd", required=True)
    ap.add_argument("--chunkd-mimalloc", help="chunkd built with --features mimalloc")
    ap.add_argument("--tus-node-s3", required=True)
    ap.add_argument("--s3s-fs", required=True)
    add_run_options(ap)
    args = ap.parse_args()
    size, runs = size_and_runs(args)

    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    s3_dir = os.path.join(work, "s3")
    os.makedirs(s3_dir)

    def data_dir(name):
        d = os.path.join(work, name)
        os.makedirs(d)
        return d

    p = free_port()
    s3_server = Server("s3s-fs", [args.s3s_fs, "--host", "127.0.0.1", "--port", str(p), "--access-key", ACCESS_KEY,
                                  "--secret-key", SECRET_KEY, s3_dir], p, env={"RUST_LOG": "error"})
    s3_endpoint = f"http://127.0.0.1:{p}"
    p = free_port()
    chunkd = Server("chunkd, S3 store", [args.chunkd, "--listen", f"127.0.0.1:{p}", "--data-dir", data_dir("chunkd"), "serve"],
                    p, env={"RUST_LOG": "error", "CHUNKD_CONNECTIONS__MAX_UPLOADS_PER_CLIENT": "0", "TMPDIR": data_dir("chunkd-tmp"), "CHUNKD_STORE": "s3",
                            "CHUNKD_S3__ENDPOINT": s3_endpoint, "CHUNKD_S3__BUCKET": "chunkd",
                            "CHUNKD_S3__ACCESS_KEY": ACCESS_KEY, "CHUNKD_S3__SECRET_KEY": SECRET_KEY,
                            "CHUNKD_S3__PART_SIZE": str(CHUNK), "CHUNKD_MAX_SIZE": str(2 * GIB)})
    chunkd_mimalloc = None
    if args.chunkd_mimalloc:
        p = free_port()
        chunkd_mimalloc = Server("chunkd, S3 store, mimalloc", [args.chunkd_mimalloc, *chunkd.argv[1:]], p,
                                 env={**chunkd.env, "TMPDIR": data_dir("chunkd-mimalloc-tmp")})
        chunkd_mimalloc.argv[chunkd_mimalloc.argv.index("--listen") + 1] = f"127.0.0.1:{p}"
        chunkd_mimalloc.argv[chunkd_mimalloc.argv.index("--data-dir") + 1] = data_dir("chunkd-mimalloc")
    p = free_port()
    tus_node = Server("@tus/server 2.4.5 + @tus/s3-store 2.0.7",
                      ["node", args.tus_node_s3, str(p), s3_endpoint, "tusnode", ACCESS_KEY, SECRET_KEY], p,
                      cwd=os.path.dirname(args.tus_node_s3), env={"TMPDIR": data_dir("tus-node-tmp")})

    print(f"# chunkd S3 benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print(f"Machine: {os.cpu_count()} cores; client, servers and s3s-fs share it. One upload of {size // MIB} MiB "
          f"in {CHUNK // MIB} MiB chunks; {CONCURRENT} concurrent uploads of {CONCURRENT_SIZE // MIB} MiB; "
          f"medians of {runs} run(s).\n", flush=True)

    big = [memoryview(os.urandom(size))]
    many = [memoryview(os.urandom(CONCURRENT_SIZE)) for _ in range(CONCURRENT)]
    started = []
    try:
        for server in (s3_server, chunkd, chunkd_mimalloc, tus_node):
            if server:
                server.start()
                started.append(server)
        s3 = s3_client(s3_endpoint)
        for bucket in ("chunkd", "tusnode", "boto3"):
            s3.create_bucket(Bucket=bucket)
        targets = [(TusServer(chunkd, "chunkd"), chunkd)]
        if chunkd_mimalloc:
            targets.append((TusServer(chunkd_mimalloc, "chunkd"), chunkd_mimalloc))
        targets += [(TusServer(tus_node, "tusnode"), tus_node),
                   (Boto3("ceiling: boto3, parts one after another", s3_endpoint, "boto3", 1), None),
                   (Boto3("boto3, 10 threads (its default)", s3_endpoint, "boto3", 10), None)]
        rows = {t.name: {"big": [], "many": []} for t, _ in targets}
        # The single uploads come first: memory an allocator keeps after the concurrent
        # burst would otherwise count as their peak. Every round measures each target in
        # turn, so a noisy moment on this shared machine falls on all of them.
        for scenario, payloads in (("big", big), ("many", many)):
            for round_ in range(runs):
                for target, stats in targets:
                    rows[target.name][scenario].append(measure(target, payloads, s3, stats))
                    clear_bucket_dir(s3_dir, target.bucket)
                print(f"- {scenario}: round {round_ + 1}/{runs} done", file=sys.stderr, flush=True)
        # What each server still holds once the burst is over (allocators keep some).
        idle_rss = {t.name: stats.rss_mib() for t, stats in targets if stats}
        leftovers = {name: os.listdir(os.path.join(work, name)) for name in os.listdir(work) if name.endswith("-tmp")}
    finally:
        for server in reversed(started):
            server.stop()

    def m(name, scen, key):
        values = [x[key] for x in rows[name][scen] if key in x]
        return median(values) if values else None

    def cell(value, fmt):
        return "n/a" if value is None else format(value, fmt)

    print(f"| | {size // MIB} MiB in {CHUNK // MIB} MiB chunks: MiB/s | server CPU s | peak RSS MiB | local disk writes MiB "
          f"| {CONCURRENT}×{CONCURRENT_SIZE // MIB} MiB at once: MiB/s | p99 ms | peak RSS MiB | local disk writes MiB "
          f"| RSS after MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in rows:
        print(f"| {name} | {cell(m(name, 'big', 'mibs'), '.0f')} | {cell(m(name, 'big', 'cpu'), '.2f')} "
              f"| {cell(m(name, 'big', 'rss'), '.0f')} | {cell(m(name, 'big', 'disk'), '.0f')} "
              f"| {cell(m(name, 'many', 'mibs'), '.0f')} | {cell(m(name, 'many', 'p99'), '.0f')} "
              f"| {cell(m(name, 'many', 'rss'), '.0f')} | {cell(m(name, 'many', 'disk'), '.0f')} "
              f"| {cell(idle_rss.get(name), '.0f')} |")
    print()
    ours, peer, ceiling = chunkd.name, tus_node.name, targets[-2][0].name
    for scen, label in (("big", f"one {size // MIB} MiB upload"), ("many", f"{CONCURRENT} concurrent uploads")):
        print(f"- {label}: chunkd is {m(ours, scen, 'mibs') / m(peer, scen, 'mibs'):.2f}× @tus/s3-store and "
              f"{m(ours, scen, 'mibs') / m(ceiling, scen, 'mibs') * 100:.0f}% of boto3")
    for name, files in leftovers.items():
        print(f"- files left in {name}: {len(files)}")


if __name__ == "__main__":
    main()

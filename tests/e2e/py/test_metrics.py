"""/metrics read by the Prometheus project's own text-format parser (prometheus_client),
with counters that move by what real tuspy uploads did; the separate listener; the access
log as JSON."""

import io
import json
import os
import re
import socket
import subprocess
import tempfile
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families
from tusclient import client

from conftest import BIN, Chunkd, sha256


def base(server):
    return server.endpoint.split("/files/")[0]


def scrape(url):
    """Every sample at `url`, parsed: {(name, frozenset(labels)): value}."""
    r = requests.get(url, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples, name, **labels):
    """The sum over the series of `name` that carry `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def test_counters_move_with_real_uploads(chunkd):
    before = scrape(f"{base(chunkd)}/metrics")
    sizes = [300_000, 1_000_001]
    urls = []
    for size in sizes:
        data = os.urandom(size)
        up = client.TusClient(chunkd.endpoint).uploader(
            file_stream=io.BytesIO(data), chunk_size=256 * 1024, metadata={"filename": "m.bin"})
        up.upload()
        assert sha256(chunkd.stored(up.url)) == sha256(data)
        urls.append(up.url)
    assert requests.get(urls[0], timeout=10).status_code == 200
    assert requests.head(f"{chunkd.endpoint}nonexistent", headers={"Tus-Resumable": "1.0.0"},
                         timeout=10).status_code == 404
    after = scrape(f"{base(chunkd)}/metrics")

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("chunkd_uploads_created_total") == len(sizes)
    assert moved("chunkd_uploads_finished_total") == len(sizes)
    assert moved("chunkd_bytes_received_total", protocol="tus") == sum(sizes)
    assert moved("chunkd_bytes_stored_total") == sum(sizes)
    assert moved("chunkd_bytes_served_total", protocol="tus") >= sizes[0]
    patches = sum(-(-size // (256 * 1024)) for size in sizes)
    assert moved("chunkd_requests_total", protocol="tus", method="PATCH", status="2xx") == patches
    assert moved("chunkd_requests_total", protocol="tus", method="POST", status="2xx") == len(sizes)
    assert moved("chunkd_errors_total", code="ERR_UPLOAD_NOT_FOUND") == 1
    # Histograms: a count per call, and buckets a PromQL histogram_quantile can use.
    assert moved("chunkd_request_duration_seconds_count", protocol="tus", method="PATCH") == patches
    assert moved("chunkd_store_operation_duration_seconds_count", store="data",
                 operation="write", outcome="ok") == patches
    assert moved("chunkd_store_operation_duration_seconds_count", store="state",
                 backend="sqlite", operation="update", outcome="ok") >= patches
    assert value(after, "chunkd_store_operation_duration_seconds_bucket", le="+Inf") > 0
    assert value(after, "chunkd_uploads_in_flight") == 0
    assert value(after, "chunkd_connections_open") >= 1
    assert moved("chunkd_connections_total") >= 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_separate_listener_serves_metrics_and_the_main_one_does_not():
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="chunkd-metrics-") as d:
        server = Chunkd(Path(d), env={"CHUNKD_METRICS__LISTEN": f"127.0.0.1:{port}"})
        try:
            up = client.TusClient(server.endpoint).uploader(
                file_stream=io.BytesIO(b"x" * 1000), chunk_size=1000)
            up.upload()
            assert requests.get(f"{base(server)}/metrics", timeout=10).status_code == 404
            samples = scrape(f"http://127.0.0.1:{port}/metrics")
            assert value(samples, "chunkd_uploads_finished_total") == 1
        finally:
            server.stop()


def test_an_address_in_use_is_a_startup_error_naming_the_setting():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with tempfile.TemporaryDirectory(prefix="chunkd-metrics-") as d:
            run = subprocess.run(
                [BIN, "--listen", "127.0.0.1:0", "--data-dir", d, "serve"],
                env={**os.environ, "CHUNKD_METRICS__LISTEN": f"127.0.0.1:{port}"},
                capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert f"metrics.listen: cannot listen on 127.0.0.1:{port}" in run.stderr, run.stderr


def test_the_access_log_is_json_with_each_request(tmp_path):
    log = tmp_path / "chunkd.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(
            [BIN, "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"), "serve"],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
            env={"PATH": os.environ["PATH"], "CHUNKD_LOG__FORMAT": "json",
                 "RUST_LOG": "warn,chunkd::access=info"})
        try:
            endpoint = re.search(r"chunkd: tus uploads at (\S+)", proc.stdout.readline()).group(1)
            data = os.urandom(70_000)
            up = client.TusClient(endpoint).uploader(
                file_stream=io.BytesIO(data), chunk_size=50_000)
            up.upload()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    upload_id = up.url.rstrip("/").split("/")[-1]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    access = [line["fields"] for line in lines if line.get("target") == "chunkd::access"]
    patches = [f for f in access if f["method"] == "PATCH"]
    assert [f["bytes_in"] for f in patches] == [50_000, 20_000], access
    for f in access:
        assert f["protocol"] == "tus" and f["upload.id"] == upload_id, f
        assert f["status"] in (201, 204) and f["identity"] == "anonymous", f
        assert f["remote"].startswith("127.0.0.1:") and f["complete"] is True, f

"""Three chunkd instances as one service: bytes in S3 (s3s-fs), records and locks in
PostgreSQL, all started by scripts/test-all.sh (CHUNKD_TEST_S3_*, CHUNKD_TEST_PG_URL).
Chunks of one upload go to alternating instances; an instance is killed mid-PATCH and
the upload resumes on another; every instance collects expired uploads at once. boto3
checks what ended up in the bucket.
"""

import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config

from conftest import Chunkd, sha256

TUS = {"Tus-Resumable": "1.0.0"}
PART = 5 << 20


def env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run scripts/test-all.sh (it starts S3 and PostgreSQL)")
    return value


def s3_client():
    return boto3.client(
        "s3",
        endpoint_url=env("CHUNKD_TEST_S3_ENDPOINT"),
        aws_access_key_id=env("CHUNKD_TEST_S3_ACCESS_KEY"),
        aws_secret_access_key=env("CHUNKD_TEST_S3_SECRET_KEY"),
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
    )


class Cluster:
    def __init__(self, n, extra=None):
        self.bucket = f"scale{uuid.uuid4().hex[:12]}"
        self.schema = f"e2e_{uuid.uuid4().hex[:12]}"
        self.dirs = [tempfile.TemporaryDirectory(prefix="chunkd-scale-") for _ in range(n)]
        common = {
            "CHUNKD_STORE": "s3",
            "CHUNKD_S3__ENDPOINT": env("CHUNKD_TEST_S3_ENDPOINT"),
            "CHUNKD_S3__BUCKET": self.bucket,
            "CHUNKD_S3__ACCESS_KEY": env("CHUNKD_TEST_S3_ACCESS_KEY"),
            "CHUNKD_S3__SECRET_KEY": env("CHUNKD_TEST_S3_SECRET_KEY"),
            "CHUNKD_S3__PREFIX": "uploads/",
            "CHUNKD_S3__PART_SIZE": str(PART),
            "CHUNKD_S3__CREATE_BUCKET": "true",
            "CHUNKD_STATE": "postgres",
            "CHUNKD_POSTGRES__URL": env("CHUNKD_TEST_PG_URL"),
            "CHUNKD_POSTGRES__SCHEMA": self.schema,
            "CHUNKD_POSTGRES__LOCK_TTL": "2s",
            # Checkpoints on part boundaries: an acknowledged offset is whole parts.
            "CHUNKD_CHECKPOINT_BYTES": str(PART),
            **(extra or {}),
        }
        self.nodes = [Chunkd(Path(d.name), env=common) for d in self.dirs]

    def url(self, node, upload_url):
        """The same upload, addressed through another instance."""
        path = urlsplit(upload_url).path
        return self.nodes[node].endpoint.split("/files/")[0] + path

    def stop(self):
        for node in self.nodes:
            if node.proc.poll() is None:
                node.stop()
        for d in self.dirs:
            d.cleanup()

    def recorded_offset(self, upload_id):
        """The offset in the shared record, read straight from PostgreSQL."""
        out = subprocess.run(
            [
                "psql", env("CHUNKD_TEST_PG_URL"), "-tAc",
                f"SELECT record::json->>'offset' FROM {self.schema}.chunkd_uploads WHERE id = '{upload_id}'",
            ],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return int(out or 0)

    def stored(self, upload_url):
        key = "uploads/" + upload_url.rstrip("/").split("/")[-1]
        return s3_client().get_object(Bucket=self.bucket, Key=key)["Body"].read()


@pytest.fixture
def cluster():
    c = Cluster(3)
    yield c
    c.stop()


def create(node_endpoint, length):
    r = requests.post(node_endpoint, headers={**TUS, "Upload-Length": str(length)})
    assert r.status_code == 201, r.text
    return r.headers["Location"]


def patch(url, offset, chunk):
    return requests.patch(
        url,
        data=chunk,
        headers={**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"},
    )


def test_chunks_of_one_upload_alternate_between_instances(cluster):
    data = os.urandom(3 * PART + 123_456)
    url = create(cluster.nodes[0].endpoint, len(data))
    offset, node, chunk = 0, 0, 3_000_000
    while offset < len(data):
        r = patch(cluster.url(node, url), offset, data[offset : offset + chunk])
        assert r.status_code == 204, (node, r.status_code, r.text)
        offset = int(r.headers["Upload-Offset"])
        node = (node + 1) % 3
    # Every instance sees the finished upload; the bucket holds the exact bytes.
    for n in range(3):
        head = requests.head(cluster.url(n, url), headers=TUS)
        assert head.headers["Upload-Offset"] == str(len(data))
    assert sha256(requests.get(cluster.url(2, url)).content) == sha256(data)
    assert sha256(cluster.stored(url)) == sha256(data)
    keys = [o["Key"] for o in s3_client().list_objects_v2(Bucket=cluster.bucket).get("Contents", [])]
    assert keys == ["uploads/" + url.rstrip("/").split("/")[-1]], "no tail objects left behind"


def test_an_upload_survives_kill_9_of_its_instance(cluster):
    data = os.urandom(6 * PART)
    url = create(cluster.nodes[1].endpoint, len(data))
    target = urlsplit(cluster.url(1, url))
    sent = 2 * PART + PART // 2
    sock = socket.create_connection((target.hostname, target.port))
    sock.sendall(
        (
            f"PATCH {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        + data[:sent]
    )
    # Wait (passively: a request would make the PATCH let go) until the instance has
    # committed a part, then kill it.
    upload_id = url.rstrip("/").split("/")[-1]
    other = cluster.url(0, url)
    deadline = time.monotonic() + 60
    while cluster.recorded_offset(upload_id) < PART:
        assert time.monotonic() < deadline, "the instance never committed a part"
    cluster.nodes[1].proc.kill()
    cluster.nodes[1].proc.wait(timeout=30)
    sock.close()

    # Another instance takes over once the dead one's lock expires.
    head = requests.head(other, headers=TUS, timeout=60)
    assert head.status_code == 200
    offset = int(head.headers["Upload-Offset"])
    assert offset <= sent and offset % PART == 0, offset
    r = patch(other, offset, data[offset:])
    assert r.status_code == 204, r.text
    assert r.headers["Upload-Offset"] == str(len(data))
    assert sha256(cluster.stored(url)) == sha256(data)


def test_every_instance_collecting_expired_uploads_is_safe():
    c = Cluster(3, {"CHUNKD_EXPIRE_AFTER": "1s", "CHUNKD_GC_INTERVAL": "1s"})
    try:
        s3 = s3_client()
        urls = []
        for i in range(6):
            url = create(c.nodes[i % 3].endpoint, 10 * PART)
            r = patch(c.url(i % 3, url), 0, os.urandom(PART + 1000))
            assert r.status_code == 204
            urls.append(url)
        # Each upload now has a part and a tail object; all three instances purge.
        deadline = time.monotonic() + 60
        while any(requests.head(u, headers=TUS).status_code != 404 for u in urls):
            assert time.monotonic() < deadline, "expired uploads were not collected"
        # A record goes before its objects (a crash in between leaves objects, never a
        # record without them): the last purge may still be deleting when the record is
        # gone. Nothing may be left once it is done.
        left = s3.list_objects_v2(Bucket=c.bucket).get("Contents", [])
        while left and time.monotonic() < deadline:
            left = s3.list_objects_v2(Bucket=c.bucket).get("Contents", [])
        assert left == [], [o["Key"] for o in left]
        assert all(n.proc.poll() is None for n in c.nodes), "an instance died collecting"
    finally:
        c.stop()

"""Readiness through outages: PostgreSQL, then the S3 service, stopped in the middle of
an upload. /readyz goes 503 naming the part that is down and comes back when it is up;
the upload then resumes and the object matches by hash. /healthz answers throughout."""

import io
import os
import subprocess
import time

import pytest
import requests
from tusclient import client
from tusclient.exceptions import TusCommunicationError

from conftest import sha256
from test_scale_out import PART, Cluster, env, s3_client


@pytest.fixture
def cluster():
    c = Cluster(1)
    yield c
    # Whatever happened, the services are up for the tests after this one.
    services("start-postgres")
    services("start-s3")
    c.stop()


def services(command):
    subprocess.run([env("CHUNKD_TEST_SERVICES"), command], check=True, timeout=120,
                   stdout=subprocess.DEVNULL)


def base(node):
    return node.endpoint.split("/files/")[0]


def readiness(node, want_status, timeout=20):
    """Polls /readyz (bounded) until it answers `want_status`; returns its JSON."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(f"{base(node)}/readyz", timeout=10)
        if r.status_code == want_status:
            return r.json()
        if time.monotonic() > deadline:
            raise AssertionError(f"/readyz stayed {r.status_code}: {r.text}")
        time.sleep(0.05)


def test_readiness_follows_outages_and_the_upload_resumes(cluster):
    node = cluster.nodes[0]
    assert readiness(node, 200) == {"ready": True, "state": "ok", "store": "ok"}
    data = os.urandom(3 * PART + 11)
    up = client.TusClient(node.endpoint).uploader(
        file_stream=io.BytesIO(data), chunk_size=PART, metadata={"filename": "outage.bin"})
    up.upload_chunk()

    services("stop-postgres")
    down = readiness(node, 503)
    assert down["store"] == "ok" and down["state"] != "ok", down
    assert requests.get(f"{base(node)}/healthz", timeout=10).status_code == 200
    # A chunk sent now is refused, not half-counted.
    with pytest.raises(TusCommunicationError):
        up.upload_chunk()
    services("start-postgres")
    assert readiness(node, 200)["ready"]

    services("stop-s3")
    down = readiness(node, 503)
    assert down["state"] == "ok" and down["store"] != "ok", down
    with pytest.raises(TusCommunicationError):
        up.upload_chunk()
    services("start-s3")
    assert readiness(node, 200)["ready"]

    resumed = client.TusClient(node.endpoint).uploader(
        file_stream=io.BytesIO(data), chunk_size=PART, url=up.url)
    resumed.upload()
    upload_id = up.url.rstrip("/").split("/")[-1]
    stored = s3_client().get_object(Bucket=cluster.bucket, Key=f"uploads/{upload_id}")["Body"].read()
    assert sha256(stored) == sha256(data)

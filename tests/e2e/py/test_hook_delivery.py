"""Post-event delivery that survives outages, crashes and several instances, told to a
Django application (hookapp) that keeps one model row per finished upload and verifies
every signature: the receiver down while uploads finish, then up; chunkd killed with
SIGKILL between an upload's finish and its delivery; two instances on PostgreSQL."""

import io
import os
import signal
import tempfile
from pathlib import Path

import pytest
from tusclient import client

from conftest import Chunkd, sha256
from hookapp import server as hookapp_server
from test_scale_out import Cluster

SECRET = "django-hook-secret-of-sixteen-bytes"
POST_EVENTS = '["post-create", "post-receive", "post-finish"]'


@pytest.fixture(scope="module")
def app():
    with tempfile.TemporaryDirectory(prefix="chunkd-django-") as d:
        url, deliveries, finished, stop = hookapp_server.start(SECRET, Path(d))
        yield url, deliveries, finished
        stop()


@pytest.fixture
def receiver(app):
    url, deliveries, finished = app
    deliveries.down = False
    yield url, deliveries, finished
    deliveries.down = False


def hook_env(url):
    return {
        "CHUNKD_HOOKS__URL": url,
        "CHUNKD_HOOKS__SECRETS": f'["{SECRET}"]',
        "CHUNKD_HOOKS__EVENTS": POST_EVENTS,
        "CHUNKD_HOOKS__TIMEOUT": "2s",
        "CHUNKD_HOOKS__RETRY_BACKOFF": "100ms",
        "CHUNKD_HOOKS__MAX_RETRY_BACKOFF": "400ms",
        "CHUNKD_HOOKS__PROGRESS_INTERVAL": "0s",
    }


def tus_upload(endpoint, data, name):
    up = client.TusClient(endpoint).uploader(
        file_stream=io.BytesIO(data), chunk_size=256 * 1024, metadata={"filename": name})
    up.upload()
    return up.url.rstrip("/").split("/")[-1]


def of(seen, upload_id, accepted=None):
    return [(kind, key) for kind, uid, key, ok in seen
            if uid == upload_id and (accepted is None or ok == accepted)]


def assert_in_order(kinds):
    assert kinds[0] == "post-create" and kinds[-1] == "post-finish", kinds
    assert set(kinds[1:-1]) <= {"post-receive"}, kinds


def test_every_event_arrives_in_order_after_the_receiver_comes_back(receiver, tmp_path):
    url, deliveries, finished = receiver
    deliveries.down = True
    server = Chunkd(tmp_path, env=hook_env(url))
    try:
        files = {}
        for n in range(3):
            data = os.urandom(700 * 1024 + n)
            files[tus_upload(server.endpoint, data, f"f{n}.bin")] = data
        # The uploads are finished while every delivery so far was refused.
        deliveries.wait_for(lambda seen: all(
            ("post-create" in [k for k, _ in of(seen, uid, accepted=False)]) for uid in files))
        assert finished.objects.filter(upload_id__in=list(files)).count() == 0
        deliveries.down = False
        deliveries.wait_for(lambda seen: all(
            "post-finish" in [k for k, _ in of(seen, uid, accepted=True)] for uid in files))
    finally:
        server.stop()
    seen = list(deliveries.seen)
    for uid, data in files.items():
        accepted = of(seen, uid, accepted=True)
        assert_in_order([kind for kind, _ in accepted])
        # Each event has one key across all its attempts; no accepted event came twice.
        for kind in ("post-create", "post-finish"):
            keys = {key for k, key in of(seen, uid) if k == kind}
            assert len(keys) == 1, (kind, keys)
        accepted_keys = [key for _, key in accepted]
        assert len(accepted_keys) == len(set(accepted_keys)), accepted
        row = finished.objects.get(upload_id=uid)
        assert row.size == len(data) and row.protocol == "tus"
        assert sha256(Path(row.path).read_bytes()) == sha256(data)
    assert deliveries.bad_signatures == 0


def test_an_upload_finished_just_before_a_kill_is_delivered_after_the_restart(receiver, tmp_path):
    url, deliveries, finished = receiver
    deliveries.down = True
    server = Chunkd(tmp_path, env=hook_env(url))
    data = os.urandom(300 * 1024)
    uid = tus_upload(server.endpoint, data, "killed.bin")
    # Finished, and not delivered: SIGKILL now, no shutdown of any kind.
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    assert not of(deliveries.seen, uid, accepted=True)
    deliveries.down = False
    restarted = Chunkd(tmp_path, env=hook_env(url))
    try:
        seen = deliveries.wait_for(
            lambda seen: "post-finish" in [k for k, _ in of(seen, uid, accepted=True)])
    finally:
        restarted.stop()
    assert_in_order([kind for kind, _ in of(seen, uid, accepted=True)])
    row = finished.objects.get(upload_id=uid)
    assert sha256(Path(row.path).read_bytes()) == sha256(data)


def test_two_instances_on_postgres_deliver_each_event_once(receiver):
    url, deliveries, finished = receiver
    cluster = Cluster(2, extra=hook_env(url))
    try:
        files = {}
        for n in range(6):
            node = cluster.nodes[n % 2]
            data = os.urandom(200 * 1024 + n)
            files[tus_upload(node.endpoint, data, f"pg{n}.bin")] = data
        seen = deliveries.wait_for(lambda seen: all(
            "post-finish" in [k for k, _ in of(seen, uid, accepted=True)] for uid in files))
    finally:
        cluster.stop()
    for uid, data in files.items():
        accepted = of(seen, uid, accepted=True)
        assert_in_order([kind for kind, _ in accepted])
        keys = [key for _, key in accepted]
        assert len(keys) == len(set(keys)), f"an event was delivered twice: {accepted}"
        row = finished.objects.get(upload_id=uid)
        assert row.size == len(data) and row.protocol == "tus"

"""Hooks against a real Flask receiver that verifies signatures: pre-create refusing by
user and choosing the id, pre-access refusing another user's requests on tus and on
Resumable.js, post-events in order with the stored file where they say."""

import io
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests
from tusclient import client
from tusclient.exceptions import TusCommunicationError

from conftest import Chunkd, sha256
from hook_receiver import Receiver

SECRET = "hook-secret-of-sixteen-bytes-or-more"
TUS = {"Tus-Resumable": "1.0.0"}
ALICE = {"X-Api-Key": "key-alice"}
BOB = {"X-Api-Key": "key-bob"}


@pytest.fixture(scope="module")
def receiver():
    r = Receiver(SECRET)
    yield r
    r.stop()


@pytest.fixture(scope="module")
def server(receiver):
    with tempfile.TemporaryDirectory(prefix="chunkd-hooks-") as d:
        s = Chunkd(Path(d), env={
            "CHUNKD_HOOKS__URL": receiver.url,
            # An old key first: a rotation in progress, the receiver knows only the new one.
            "CHUNKD_HOOKS__SECRETS": f'["previous-key-0123456789", "{SECRET}"]',
        })
        yield s
        s.stop()


def events_of(events, upload_id):
    return [kind for kind, uid, _, _ in events if uid == upload_id]


def test_an_upload_is_told_in_order_and_stored_where_the_event_says(server, receiver):
    data = os.urandom(3 * 1024 * 1024 + 17)
    up = client.TusClient(server.endpoint, headers=ALICE).uploader(
        file_stream=io.BytesIO(data), chunk_size=1024 * 1024, metadata={"filename": "a.bin"})
    up.upload()
    upload_id = up.url.rstrip("/").split("/")[-1]
    events = receiver.wait_for(lambda ev: "post-finish" in events_of(ev, upload_id))
    kinds = events_of(events, upload_id)
    # Pre-hooks are asked in the request's order; post-events come from the outbox in
    # their own time, in order among themselves.
    asked = [k for k in kinds if k.startswith("pre-")]
    told = [k for k in kinds if k.startswith("post-")]
    assert asked[0] == "pre-create" and asked[-1] == "pre-finish", asked
    assert set(asked[1:-1]) == {"pre-access"}, asked
    assert told[0] == "post-create" and told[-1] == "post-finish", told
    assert set(told[1:-1]) == {"post-receive"}, told
    finished = [e for kind, uid, _, e in events if uid == upload_id and kind == "post-finish"][0]
    assert finished["Protocol"] == "tus"
    assert finished["Upload"]["Size"] == len(data) and finished["Upload"]["Offset"] == len(data)
    stored = Path(finished["Upload"]["Storage"]["Path"])
    assert sha256(stored.read_bytes()) == sha256(data)
    keys = [key for _, uid, key, _ in events if uid == upload_id]
    assert len(set(keys)) == len(keys), "each delivery has its own Idempotency-Key"
    assert receiver.bad_signatures == 0


def test_pre_create_refuses_by_user_and_by_file(server):
    for headers, meta, status, message in [
        ({}, {"filename": "x.bin"}, 401, "unknown API key"),
        (BOB, {"filename": "blocked.bin"}, 403, "no such files here"),
    ]:
        up = client.TusClient(server.endpoint, headers=headers)
        with pytest.raises(TusCommunicationError) as refused:
            up.uploader(file_stream=io.BytesIO(b"abc"), chunk_size=3, metadata=meta).upload()
        assert refused.value.status_code == status
        assert message in str(refused.value.response_content)


def test_pre_create_chooses_the_id(server, receiver):
    data = os.urandom(200_000)
    up = client.TusClient(server.endpoint, headers=BOB).uploader(
        file_stream=io.BytesIO(data), chunk_size=64 * 1024,
        metadata={"filename": "b.bin", "choose": "yes"})
    up.upload()
    upload_id = up.url.rstrip("/").split("/")[-1]
    assert upload_id.startswith("bob-chosen-"), up.url
    assert sha256(server.stored(up.url)) == sha256(data)
    events = receiver.wait_for(lambda ev: "post-finish" in events_of(ev, upload_id))
    finished = [e for kind, uid, _, e in events if uid == upload_id and kind == "post-finish"][0]
    assert finished["Upload"]["MetaData"] == {"filename": "b.bin", "choose": "yes", "user": "bob"}


def test_pre_access_refuses_another_users_head_and_patch_on_tus(server):
    created = requests.post(server.endpoint, headers={**TUS, **ALICE, "Upload-Length": "5"}, timeout=10)
    assert created.status_code == 201, created.text
    url = requests.compat.urljoin(server.endpoint, created.headers["Location"])
    patch = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
    head = requests.head(url, headers={**TUS, **BOB}, timeout=10)
    assert head.status_code == 403, head.status_code
    refused = requests.patch(url, headers={**patch, **BOB}, data=b"bobs!", timeout=10)
    assert refused.status_code == 403 and "not your upload" in refused.text, refused.text
    assert requests.head(url, headers={**TUS, **ALICE}, timeout=10).headers["Upload-Offset"] == "0"
    done = requests.patch(url, headers={**patch, **ALICE}, data=b"alice", timeout=10)
    assert done.status_code == 204, done.text
    fetched = requests.get(url, headers={**TUS, **ALICE}, timeout=10)
    assert fetched.content == b"alice"


def test_pre_access_refuses_another_users_chunk_test_on_resumablejs(server):
    # The requests Resumable.js sends (testChunks on, one chunk of two).
    base = server.endpoint.split("/files")[0]
    data = os.urandom(2000)
    params = {"resumableChunkSize": 1000, "resumableTotalSize": 2000, "resumableTotalChunks": 2,
              "resumableIdentifier": "2000-hooks", "resumableFilename": "r.bin",
              "resumableType": "application/octet-stream"}

    def chunk(n):
        return {**params, "resumableChunkNumber": n, "resumableCurrentChunkSize": 1000}

    sent = requests.post(f"{base}/resumable", params=chunk(1), data=data[:1000], headers=ALICE, timeout=10)
    assert sent.status_code == 200, sent.text
    assert requests.get(f"{base}/resumable", params=chunk(1), headers=ALICE, timeout=10).status_code == 200
    tested = requests.get(f"{base}/resumable", params=chunk(1), headers=BOB, timeout=10)
    assert tested.status_code == 403, (tested.status_code, tested.text)
    last = requests.post(f"{base}/resumable", params=chunk(2), data=data[1000:], headers=ALICE, timeout=10)
    assert last.status_code == 200 and last.json()["complete"], last.text
    stored = requests.get(f"{base}/files/{last.json()['id']}", headers=ALICE, timeout=10)
    assert sha256(stored.content) == sha256(data)


def finished_event(receiver, upload_id):
    events = receiver.wait_for(lambda ev: "post-finish" in events_of(ev, upload_id))
    return [e for kind, uid, _, e in events if uid == upload_id and kind == "post-finish"][0]


def test_pre_create_places_the_file_in_the_users_folder(server, receiver):
    data = os.urandom(700_000)
    up = client.TusClient(server.endpoint, headers=ALICE).uploader(
        file_stream=io.BytesIO(data), chunk_size=256 * 1024,
        metadata={"filename": "placed.bin", "place": "disk"})
    up.upload()
    upload_id = up.url.rstrip("/").split("/")[-1]
    finished = finished_event(receiver, upload_id)
    where = server.data_dir / "files" / "alice" / "placed.bin"
    assert Path(finished["Upload"]["Storage"]["Path"]) == where
    assert sha256(where.read_bytes()) == sha256(data)
    assert not (server.data_dir / "files" / upload_id).exists(), "the default place is unused"
    got = requests.get(up.url, headers={**TUS, **ALICE}, timeout=10)
    assert sha256(got.content) == sha256(data)
    # A second file wanting the same place is refused, the first one untouched.
    with pytest.raises(TusCommunicationError) as taken:
        client.TusClient(server.endpoint, headers=ALICE).uploader(
            file_stream=io.BytesIO(b"other"), chunk_size=5,
            metadata={"filename": "placed.bin", "place": "disk"}).upload()
    assert taken.value.status_code == 500
    assert sha256(where.read_bytes()) == sha256(data)


def test_stop_upload_ends_an_upload_from_post_receive(server, receiver):
    data = os.urandom(3 * 1024 * 1024)
    up = client.TusClient(server.endpoint, headers=ALICE).uploader(
        file_stream=io.BytesIO(data), chunk_size=1024 * 1024, metadata={"filename": "stop-me.bin"})
    up.upload_chunk()
    upload_id = up.url.rstrip("/").split("/")[-1]
    events = receiver.wait_for(lambda ev: "post-terminate" in events_of(ev, upload_id))
    told = [k for k in events_of(events, upload_id) if k.startswith("post-")]
    assert told[:2] == ["post-create", "post-receive"] and told[-1] == "post-terminate", told
    head = requests.head(up.url, headers={**TUS, **ALICE}, timeout=10)
    assert head.status_code == 404
    with pytest.raises(TusCommunicationError):
        up.upload_chunk()
    assert not (server.data_dir / "files" / f"{upload_id}.part").exists()


@pytest.fixture(scope="module")
def s3_server(receiver):
    from test_scale_out import env
    bucket = f"hooks{uuid.uuid4().hex[:12]}"
    archive = f"archive{uuid.uuid4().hex[:12]}"
    with tempfile.TemporaryDirectory(prefix="chunkd-hooks-s3-") as d:
        s = Chunkd(Path(d), env={
            "CHUNKD_HOOKS__URL": receiver.url,
            "CHUNKD_HOOKS__SECRETS": f'["{SECRET}"]',
            "CHUNKD_STORE": "s3",
            "CHUNKD_S3__ENDPOINT": env("CHUNKD_TEST_S3_ENDPOINT"),
            "CHUNKD_S3__BUCKET": bucket,
            "CHUNKD_S3__OTHER_BUCKETS": f'["{archive}"]',
            "CHUNKD_S3__ACCESS_KEY": env("CHUNKD_TEST_S3_ACCESS_KEY"),
            "CHUNKD_S3__SECRET_KEY": env("CHUNKD_TEST_S3_SECRET_KEY"),
            "CHUNKD_S3__CREATE_BUCKET": "true",
        })
        s.bucket = bucket
        s.archive = archive
        yield s
        s.stop()


def test_pre_create_places_the_object_under_the_users_key_prefix(s3_server, receiver):
    from test_scale_out import s3_client
    data = os.urandom(6 * 1024 * 1024 + 5)
    up = client.TusClient(s3_server.endpoint, headers=BOB).uploader(
        file_stream=io.BytesIO(data), chunk_size=2 * 1024 * 1024,
        metadata={"filename": "placed.bin", "place": "bucket"})
    up.upload()
    upload_id = up.url.rstrip("/").split("/")[-1]
    storage = finished_event(receiver, upload_id)["Upload"]["Storage"]
    assert storage["Bucket"] == s3_server.bucket
    assert storage["Key"] == f"users/bob/{upload_id}"
    s3 = s3_client()
    stored = s3.get_object(Bucket=s3_server.bucket, Key=storage["Key"])["Body"].read()
    assert sha256(stored) == sha256(data)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_server.bucket).get("Contents", [])]
    assert keys == [storage["Key"]], keys


def test_pre_finish_answers_the_completing_request(server):
    base = server.endpoint.split("/files")[0]
    data = os.urandom(300_000)
    sent = requests.post(f"{base}/upload", files={"file": ("processed.bin", data)}, headers=ALICE, timeout=10)
    assert sent.status_code == 200, sent.text
    assert sent.headers["X-Processed"] == "yes"
    assert sent.headers["Content-Type"] == "application/json"
    answer = sent.json()
    assert answer["user"] == "alice"
    stored = requests.get(f"{base}/files/{answer['processed']}", headers=ALICE, timeout=10)
    assert sha256(stored.content) == sha256(data)


def test_pre_create_places_the_object_in_another_configured_bucket(s3_server, receiver):
    from test_scale_out import s3_client
    data = os.urandom(5 * 1024 * 1024 + 99)
    up = client.TusClient(s3_server.endpoint, headers=ALICE).uploader(
        file_stream=io.BytesIO(data), chunk_size=1024 * 1024,
        metadata={"filename": "kept.bin", "place": "bucket", "bucket": s3_server.archive})
    up.upload()
    upload_id = up.url.rstrip("/").split("/")[-1]
    storage = finished_event(receiver, upload_id)["Upload"]["Storage"]
    assert (storage["Bucket"], storage["Key"]) == (s3_server.archive, f"users/alice/{upload_id}")
    stored = s3_client().get_object(Bucket=s3_server.archive, Key=storage["Key"])["Body"].read()
    assert sha256(stored) == sha256(data)
    got = requests.get(up.url, headers={**TUS, **ALICE}, timeout=10)
    assert sha256(got.content) == sha256(data)
    # A bucket the server was not given is refused, nothing stored.
    with pytest.raises(TusCommunicationError) as refused:
        client.TusClient(s3_server.endpoint, headers=ALICE).uploader(
            file_stream=io.BytesIO(b"x"), chunk_size=1,
            metadata={"filename": "x.bin", "place": "bucket", "bucket": "not-configured"}).upload()
    assert refused.value.status_code == 500


def test_parked_events_are_counted_and_replayed_by_the_command(receiver):
    import subprocess
    from conftest import BIN
    with tempfile.TemporaryDirectory(prefix="chunkd-parked-") as d:
        env = {"CHUNKD_HOOKS__URL": receiver.url, "CHUNKD_HOOKS__SECRETS": f'["{SECRET}"]',
               "CHUNKD_HOOKS__EVENTS": '["post-finish"]', "CHUNKD_HOOKS__RETRIES": "0"}
        s = Chunkd(Path(d), env=env)

        def parked(*args):
            run = subprocess.run([BIN, "--data-dir", d, "parked", *args], env={**os.environ, **env},
                                 capture_output=True, text=True, timeout=30, check=True)
            return run.stdout.strip()

        try:
            receiver.down = True
            data = os.urandom(1000)
            up = client.TusClient(s.endpoint, headers=ALICE).uploader(
                file_stream=io.BytesIO(data), chunk_size=1000, metadata={"filename": "late.bin"})
            up.upload()
            upload_id = up.url.rstrip("/").split("/")[-1]
            # One attempt, then parked: polled (bounded) as an operator would.
            for _ in range(500):
                if parked() == "1 parked post-event(s)":
                    break
                time.sleep(0.02)
            assert parked() == "1 parked post-event(s)"
            assert "post-finish" not in events_of(receiver.events, upload_id)
            receiver.down = False
            assert parked("--replay") == "replayed 1 parked post-event(s)"
            # The running server picks the replayed event up on its next look at the outbox.
            receiver.wait_for(lambda ev: "post-finish" in events_of(ev, upload_id))
            assert parked() == "0 parked post-event(s)"
        finally:
            receiver.down = False
            s.stop()

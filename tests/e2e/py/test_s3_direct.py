"""Browser-direct S3 multipart: chunkd signs, the client PUTs parts straight to S3
(s3s-fs, which checks the signatures), lists them after a "page reload", completes.
The part uploads are plain HTTP PUTs to the presigned URLs, as a browser sends them;
boto3 checks the object in the bucket.
"""

import os
import tempfile
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit, urlencode

import pytest
import requests

from conftest import Chunkd, sha256
from test_scale_out import PART, env, s3_client


@pytest.fixture(scope="module")
def server():
    with tempfile.TemporaryDirectory(prefix="chunkd-direct-") as d:
        bucket = f"direct{uuid.uuid4().hex[:12]}"
        s = Chunkd(
            Path(d),
            env={
                "CHUNKD_STORE": "s3",
                "CHUNKD_S3__ENDPOINT": env("CHUNKD_TEST_S3_ENDPOINT"),
                "CHUNKD_S3__BUCKET": bucket,
                "CHUNKD_S3__ACCESS_KEY": env("CHUNKD_TEST_S3_ACCESS_KEY"),
                "CHUNKD_S3__SECRET_KEY": env("CHUNKD_TEST_S3_SECRET_KEY"),
                "CHUNKD_S3__CREATE_BUCKET": "true",
                "CHUNKD_MAX_SIZE": str(40 << 20),
            },
        )
        s.bucket = bucket
        s.api = s.endpoint.split("/files/")[0] + "/s3/multipart"
        yield s
        s.stop()


def create(server, size=None, name="video.mp4"):
    body = {"filename": name, "type": "video/mp4", "metadata": {"album": "holidays"}}
    if size is not None:
        body["size"] = size
    r = requests.post(server.api, json=body)
    assert r.status_code == 200, r.text
    return r.json()["uploadId"], r.json()["key"]


def put_part(url, data):
    r = requests.put(url, data=data)
    assert r.status_code == 200, r.text
    return r.headers["ETag"]


def test_parts_go_straight_to_s3_and_survive_a_reload(server):
    data = os.urandom(2 * PART + 777_777)
    pieces = [data[:PART], data[PART : 2 * PART], data[2 * PART :]]
    upload_id, key = create(server, len(data))
    r = requests.get(f"{server.api}/{upload_id}/batch", params={"key": key, "partNumbers": "1,2"})
    assert r.status_code == 200, r.text
    urls = r.json()["presignedUrls"]
    etags = {1: put_part(urls["1"], pieces[0]), 2: put_part(urls["2"], pieces[1])}

    # The page reloads: the client only kept (uploadId, key) and asks what is stored.
    listed = requests.get(f"{server.api}/{upload_id}", params={"key": key}).json()
    assert [(p["PartNumber"], p["Size"]) for p in listed] == [(1, PART), (2, PART)]
    # Listed with the ETags the parts were stored with, as AWS lists them.
    assert all(p["ETag"] == etags[p["PartNumber"]] for p in listed)

    one = requests.get(f"{server.api}/{upload_id}/3", params={"key": key}).json()
    assert one["expires"] > 0
    etags[3] = put_part(one["url"], pieces[2])
    parts = [{"PartNumber": n, "ETag": e} for n, e in sorted(etags.items())]
    r = requests.post(f"{server.api}/{upload_id}/complete", params={"key": key}, json={"parts": parts})
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["size"] == len(data)
    obj = s3_client().get_object(Bucket=server.bucket, Key=key)["Body"].read()
    assert sha256(obj) == sha256(data)
    # The record is an ordinary finished upload: tus serves it, with its metadata.
    got = requests.get(done["location"])
    assert got.status_code == 200 and sha256(got.content) == sha256(data)
    assert 'filename="video.mp4"' in got.headers["content-disposition"]
    # Completing again (a lost answer) is harmless.
    again = requests.post(f"{server.api}/{upload_id}/complete", params={"key": key}, json={"parts": parts})
    assert again.status_code == 200 and again.json()["size"] == len(data)


def test_a_part_url_is_bound_to_its_part_and_upload(server):
    upload_id, key = create(server)
    url = requests.get(f"{server.api}/{upload_id}/1", params={"key": key}).json()["url"]
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert int(query["X-Amz-Expires"][0]) == 15 * 60
    # The same signature for part 2: S3 refuses it.
    query["partNumber"] = ["2"]
    forged = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    assert requests.put(forged, data=b"x" * 1000).status_code == 403
    # ...and for another upload's id.
    other_id, other_key = create(server)
    query["partNumber"] = ["1"]
    query["uploadId"] = [other_id]
    forged = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    assert requests.put(forged, data=b"x" * 1000).status_code == 403
    # The signed request itself works.
    assert requests.put(url, data=b"x" * 1000).status_code == 200


def test_bad_requests_are_refused(server):
    upload_id, key = create(server)
    bad = [
        (f"{server.api}/{upload_id}/0", {"key": key}, 400),
        (f"{server.api}/{upload_id}/10001", {"key": key}, 400),
        (f"{server.api}/{upload_id}/x", {"key": key}, 400),
        (f"{server.api}/{upload_id}/1", {"key": "../../etc/passwd"}, 404),
        (f"{server.api}/not-the-upload-id/1", {"key": key}, 404),
        (f"{server.api}/{upload_id}/batch", {"key": key, "partNumbers": "1,zz"}, 400),
    ]
    for url, params, status in bad:
        r = requests.get(url, params=params)
        assert r.status_code == status, (url, params, r.status_code, r.text)
        assert "error" in r.json()
    # Parts past the largest allowed upload are not even signed.
    assert requests.get(f"{server.api}/{upload_id}/9", params={"key": key}).status_code == 413
    assert requests.post(server.api, json={"filename": "big", "size": 41 << 20}).status_code == 413
    # Completion names only stored parts, numbered without gaps.
    r = requests.post(
        f"{server.api}/{upload_id}/complete",
        params={"key": key},
        json={"parts": [{"PartNumber": 1, "ETag": '"nope"'}]},
    )
    assert r.status_code == 400
    # The record refuses tus appends: its parts come from the client.
    tus = requests.patch(
        server.endpoint + key,
        data=b"x",
        headers={"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert tus.status_code == 501


def test_abort_removes_the_upload(server):
    upload_id, key = create(server)
    url = requests.get(f"{server.api}/{upload_id}/1", params={"key": key}).json()["url"]
    put_part(url, b"y" * 1000)
    r = requests.delete(f"{server.api}/{upload_id}", params={"key": key})
    assert r.status_code == 200
    assert requests.get(f"{server.api}/{upload_id}", params={"key": key}).status_code == 404
    assert requests.put(url, data=b"y" * 1000).status_code in (403, 404)

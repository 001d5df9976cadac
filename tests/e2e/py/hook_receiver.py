"""A Flask application receiving chunkd's hooks, as an application written for tusd's
hook JSON would: it verifies each delivery's signature, decides who may create and
touch uploads by an API key header, names and places some uploads itself, stops one,
and records every event. Run in a thread by the tests (werkzeug's server)."""

import hashlib
import hmac
import json
import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

USERS = {"key-alice": "alice", "key-bob": "bob"}


def signature_ok(secret: bytes, header: str, body: bytes, tolerance=300) -> bool:
    """The check the README shows: `t=<unix>,v1=<hex>[,v1=<hex>]`, HMAC-SHA256 over
    `<t>.<body>`, compared in constant time, old timestamps refused."""
    fields = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in fields if k == "t"]
    if len(stamps) != 1 or abs(time.time() - int(stamps[0])) > tolerance:
        return False
    expected = hmac.new(secret, f"{stamps[0]}.".encode() + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in fields if k == "v1")


class Receiver:
    def __init__(self, secret: str):
        self.secret = secret.encode()
        self.events = []  # (type, upload id, idempotency key, event)
        self.creators = {}  # upload id -> user
        self.bad_signatures = 0
        self.down = False  # answer 503 to everything, as a receiver being deployed
        self.changed = threading.Condition()
        self.app = self._app()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()

    def wait_for(self, predicate, timeout=20):
        """Waits (bounded) until `predicate(events)` holds; returns the events."""
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.events), timeout=timeout):
                seen = [(kind, uid) for kind, uid, _, _ in self.events]
                raise AssertionError(f"hooks never satisfied the test: {seen}")
            return list(self.events)

    def _app(self):
        app = Flask(__name__)

        @app.post("/hooks")
        def hooks():
            if self.down:
                return "deploying", 503
            body = request.get_data()
            if not signature_ok(self.secret, request.headers.get("Chunkd-Signature", ""), body):
                self.bad_signatures += 1
                return "bad signature", 401
            hook = request.get_json()
            kind, event = hook["Type"], hook["Event"]
            upload = event["Upload"]
            header = event["HTTPRequest"]["Header"]
            user = USERS.get((header.get("X-Api-Key") or [""])[0])
            answer = {}
            if kind == "pre-create":
                meta = upload["MetaData"]
                if user is None:
                    answer = {"RejectUpload": True, "HTTPResponse": {"StatusCode": 401, "Body": "unknown API key"}}
                elif meta.get("filename") == "blocked.bin":
                    answer = {"RejectUpload": True, "HTTPResponse": {"StatusCode": 403, "Body": "no such files here"}}
                else:
                    upload_id = upload["ID"]
                    change = {}
                    if meta.get("choose") == "yes":
                        upload_id = f"{user}-chosen-{len(self.creators)}"
                        change = {"ID": upload_id, "MetaData": {**meta, "user": user}}
                    # Each user's files in a folder (disk) or under a key prefix (S3).
                    if meta.get("place") == "disk":
                        change["Storage"] = {"Path": f"{user}/{meta['filename']}"}
                    elif meta.get("place") == "bucket":
                        # The application's own choice of bucket; the test names it.
                        bucket = meta.get("bucket", upload["Storage"]["Bucket"])
                        change["Storage"] = {"Key": f"users/{user}/", "Bucket": bucket}
                    if change:
                        answer = {"ChangeFileInfo": change}
                    self.creators[upload_id] = user
            elif kind == "pre-finish" and upload["MetaData"].get("filename") == "processed.bin":
                answer = {"HTTPResponse": {
                    "Body": json.dumps({"processed": upload["ID"], "user": user}),
                    "Header": {"Content-Type": "application/json", "X-Processed": "yes"},
                }}
            elif kind == "post-receive" and upload["MetaData"].get("filename") == "stop-me.bin":
                answer = {"StopUpload": True}
            elif kind == "pre-access":
                if self.creators.get(upload["ID"]) != user:
                    answer = {"RejectAccess": True, "HTTPResponse": {"StatusCode": 403, "Body": "not your upload"}}
            with self.changed:
                self.events.append((kind, upload["ID"], request.headers.get("Idempotency-Key"), event))
                self.changed.notify_all()
            return jsonify(answer)

        return app

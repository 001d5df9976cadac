"""Forward mode: the application is told about completed uploads and answers the client;
it never receives the bytes."""

import io
import json
import os
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from tusclient import client

from conftest import Chunkd, sha256


class Application(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Application.received.append((json.loads(body), self.headers.get("Cookie")))
        files = Application.received[-1][0]["files"]
        reply = json.dumps({"saved": [f["id"] for f in files]}).encode()
        self.send_response(201)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


def test_completed_form_upload_is_answered_by_the_application():
    app = ThreadingHTTPServer(("127.0.0.1", 0), Application)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="chunkd-fwd-") as d:
            config = Path(d) / "chunkd.toml"
            target = f"http://127.0.0.1:{app.server_port}/uploaded"
            config.write_text(
                f'[[forward]]\nprefix = "/upload"\ntarget = "{target}"\n'
                f'[[forward]]\nprefix = "/files"\ntarget = "{target}"\n'
            )
            server = Chunkd(Path(d) / "data", env={"CHUNKD_CONFIG": str(config)})
            try:
                base = server.endpoint.rsplit("/files/", 1)[0]
                data = os.urandom(3 << 20)
                r = requests.post(f"{base}/upload", files={"file": ("scan.pdf", data)}, cookies={"session": "s1"})
                assert r.status_code == 201, r.text
                description, cookie = Application.received[-1]
                assert r.json() == {"saved": [description["files"][0]["id"]]}
                stored = description["files"][0]
                assert stored["filename"] == "scan.pdf" and stored["size"] == len(data)
                assert stored["sha256"] == sha256(data)
                assert cookie == "session=s1"
                assert len(json.dumps(description)) < 2048, "the application got a description, not the bytes"
                assert sha256(requests.get(stored["url"]).content) == sha256(data)

                # tus clients keep tus's answers; the application is told all the same.
                up = client.TusClient(server.endpoint).uploader(
                    file_stream=io.BytesIO(data), chunk_size=1 << 20, metadata={"filename": "tus.bin"}
                )
                up.upload()
                told, _ = Application.received[-1]
                assert told["files"][0]["filename"] == "tus.bin" and told["files"][0]["size"] == len(data)
                assert told["files"][0]["url"] == up.url
                assert sha256(server.stored(up.url)) == sha256(data)
            finally:
                server.stop()
    finally:
        app.shutdown()

"""A Flask application using chunkd's extension, for the package's tests: its session
names the user; finished uploads are noted in a file, as an application would store
them."""

import json
import os
from pathlib import Path

from flask import Flask, current_app, jsonify, session

import chunkd
from chunkd.flask import Chunkd, upload_finished

DATA_DIR = Path(os.environ["APP_DATA_DIR"])
FINISHED = DATA_DIR / "finished.jsonl"

app = Flask(__name__)
app.secret_key = "test-only-not-secret"
app.config["CHUNKD_MOUNT"] = "/uploads"
app.config["CHUNKD_SETTINGS"] = {"data_dir": str(DATA_DIR / "chunkd")}
class Hooks:
    def pre_create(self, event):
        # Run within the application's context, as a view would be.
        if event["Event"]["Upload"]["MetaData"].get("filename") in current_app.config["BLOCKED_NAMES"]:
            raise chunkd.Reject(403, "that name is blocked")


app.config["BLOCKED_NAMES"] = {"blocked.bin"}
Chunkd(app, owner=lambda: session.get("user"), hooks=Hooks())


@app.get("/login/<name>")
def login(name):
    session["user"] = name
    return jsonify(user=name)


@upload_finished.connect_via(app)
def note(sender, upload, **kwargs):
    line = json.dumps({"id": upload["id"], "owner": upload["owner"], "length": upload["length"], "pid": os.getpid()})
    with FINISHED.open("a") as f:
        f.write(line + "\n")

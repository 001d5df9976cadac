"""Starts the built chunkd binary for the tuspy tests."""

import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = os.environ.get("CHUNKD_BIN", str(ROOT / "target" / "release" / "chunkd"))


class Chunkd:
    def __init__(self, data_dir: Path, env: dict | None = None, listen: str = "127.0.0.1:0"):
        self.data_dir = data_dir
        self.proc = subprocess.Popen(
            [BIN, "--listen", listen, "--data-dir", str(data_dir), "serve"],
            stdout=subprocess.PIPE,
            # The test services' addresses are for the tests, not settings of chunkd.
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("CHUNKD_TEST_")},
                "RUST_LOG": "warn",
                **(env or {}),
            },
            text=True,
        )
        line = self.proc.stdout.readline()  # chunkd prints its endpoint first
        m = re.search(r"chunkd: tus uploads at (\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError(f"chunkd did not start: {line!r}")
        self.endpoint = m.group(1)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)

    def stored(self, url: str) -> bytes:
        return (self.data_dir / "files" / url.rstrip("/").split("/")[-1]).read_bytes()


@pytest.fixture(scope="module")
def chunkd():
    with tempfile.TemporaryDirectory(prefix="chunkd-py-") as d:
        server = Chunkd(Path(d))
        yield server
        server.stop()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

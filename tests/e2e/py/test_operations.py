"""Running chunkd as a service: systemd's readiness protocol (a NOTIFY_SOCKET made here,
as systemd makes it), `chunkd check` reaching each configured part and naming what is
wrong, shell completions and the manual page from the command-line definitions."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

from conftest import BIN, Chunkd
from test_scale_out import env


def test_systemd_is_told_ready_then_stopping_and_signals_are_caught_from_ready_on(tmp_path):
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        notify.settimeout(30)
        server = Chunkd(tmp_path / "data", env={"NOTIFY_SOCKET": str(path)})
        try:
            assert notify.recv(4096).decode().split() == ["READY=1"]
            # Signals sent the moment it is ready are caught: SIGHUP (systemctl reload,
            # with no certificate to read) leaves it serving, SIGTERM drains it.
            server.proc.send_signal(signal.SIGHUP)
        finally:
            server.proc.send_signal(signal.SIGTERM)
            assert notify.recv(4096).decode().split() == ["STOPPING=1"]
            server.proc.wait(timeout=30)
    assert server.proc.returncode == 0


def check(extra_env, data_dir):
    run = subprocess.run(
        [BIN, "--data-dir", str(data_dir), "check"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("CHUNKD_")},
             "RUST_LOG": "error", **extra_env},
        capture_output=True, text=True, timeout=120)
    assert "panicked" not in run.stderr, run.stderr
    return run.returncode, run.stdout


def test_check_passes_on_the_embedded_defaults(tmp_path):
    code, out = check({}, tmp_path)
    assert code == 0, out
    assert "ok      state store (sqlite)" in out and "ok      data store (fs)" in out, out


def test_check_reaches_postgresql_and_the_s3_service(tmp_path):
    code, out = check({
        "CHUNKD_STORE": "s3",
        "CHUNKD_S3__ENDPOINT": env("CHUNKD_TEST_S3_ENDPOINT"),
        "CHUNKD_S3__BUCKET": f"check{uuid.uuid4().hex[:12]}",
        "CHUNKD_S3__ACCESS_KEY": env("CHUNKD_TEST_S3_ACCESS_KEY"),
        "CHUNKD_S3__SECRET_KEY": env("CHUNKD_TEST_S3_SECRET_KEY"),
        "CHUNKD_S3__CREATE_BUCKET": "true",
        "CHUNKD_STATE": "postgres",
        "CHUNKD_POSTGRES__URL": env("CHUNKD_TEST_PG_URL"),
        "CHUNKD_POSTGRES__SCHEMA": f"check_{uuid.uuid4().hex[:12]}",
    }, tmp_path)
    assert code == 0, out
    assert "ok      state store (postgres)" in out and "ok      data store (s3)" in out, out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_names_each_part_that_is_wrong(tmp_path):
    closed = free_port()
    code, out = check({
        "CHUNKD_LISTEN": "tls://127.0.0.1:0",
        "CHUNKD_TLS__CERT_FILE": str(tmp_path / "missing.pem"),
        "CHUNKD_TLS__KEY_FILE": str(tmp_path / "missing.key"),
        "CHUNKD_HOOKS__URL": f"http://127.0.0.1:{closed}/hooks",
        "CHUNKD_HOOKS__SECRETS": '["0123456789abcdef0123"]',
    }, tmp_path)
    assert code == 1, out
    assert "ok      state store (sqlite)" in out, out
    assert "FAILED  listener tls://127.0.0.1:0: TLS certificate: tls.cert_file" in out, out
    # A receiver that is away is a warning: the outbox keeps post-events for it.
    assert f"WARN    hook receiver 127.0.0.1:{closed}: cannot connect" in out, out
    assert "/hooks" not in out, "the URL's path and query stay out of the report"

    code, out = check({"CHUNKD_HOOKS__URL": f"http://u:secret@127.0.0.1:{closed}/hooks?t=1",
                       "CHUNKD_HOOKS__SECRETS": '["0123456789abcdef0123"]'}, tmp_path)
    assert code == 0 and "WARN    hook receiver" in out and "secret" not in out, out

    code, out = check({
        "CHUNKD_STATE": "postgres",
        "CHUNKD_POSTGRES__URL": f"postgres://chunkd@127.0.0.1:{closed}/chunkd",
    }, tmp_path)
    assert code == 1, out
    assert "FAILED  stores:" in out, out


def test_completions_and_the_manual_page_come_from_the_commands():
    bash = subprocess.run([BIN, "completions", "bash"], capture_output=True, text=True,
                          timeout=30, check=True).stdout
    assert "_chunkd()" in bash and "parked" in bash and "--data-dir" in bash
    # bash itself reads it without complaint.
    with tempfile.NamedTemporaryFile("w", suffix=".bash") as f:
        f.write(bash)
        f.flush()
        subprocess.run(["bash", "-n", f.name], check=True, timeout=30)
    man = subprocess.run([BIN, "man"], capture_output=True, text=True, timeout=30,
                         check=True).stdout
    assert man.startswith(".ie") or man.startswith(".TH"), man[:200]
    assert "chunkd" in man and "\\-\\-listen" in man, man[:2000]


def test_the_example_unit_is_valid_and_hardened(tmp_path):
    unit = (Path(__file__).resolve().parents[3] / "deploy" / "chunkd.service").read_text()
    local = tmp_path / "chunkd.service"
    local.write_text(unit.replace("/usr/local/bin/chunkd", BIN))
    verify = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True,
                            text=True, timeout=60)
    assert verify.returncode == 0 and not verify.stderr.strip(), verify.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(local)],
                              capture_output=True, text=True, timeout=60)
    exposure = re.search(r"Overall exposure level for chunkd.service: ([0-9.]+)", security.stdout)
    assert exposure, security.stdout + security.stderr
    # systemd rates 0 (locked down) to 10 (exposed); its "OK" band is below 2.
    assert float(exposure.group(1)) < 2.0, security.stdout


def test_the_example_configuration_loads(tmp_path):
    example = Path(__file__).resolve().parents[3] / "deploy" / "chunkd.toml"
    run = subprocess.run([BIN, "--data-dir", str(tmp_path), "config"],
                         env={"PATH": os.environ["PATH"], "CHUNKD_CONFIG": str(example)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert 'listen = "tls://0.0.0.0:8443"' in run.stdout, run.stdout

#!/usr/bin/env bash
# Builds the Python package's source distribution, installs it with pip into a fresh venv
# (pip runs maturin, which compiles the workspace the sdist carries: minutes on 2 cores),
# and answers a tus creation through the installed package. Not part of test-all.sh,
# which checks the sdist's listing only: this is the second full compile a release needs.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d -t chunkd-sdist.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/build"
"$work/build/bin/pip" install -q --disable-pip-version-check -r tests/e2e/python-build.txt
"$work/build/bin/maturin" sdist -o "$work/dist"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --disable-pip-version-check "$work"/dist/chunkd-*.tar.gz
"$work/venv/bin/python" - "$work/data" <<'PY'
import io, sys
import chunkd.wsgi
app = chunkd.wsgi.App({"data_dir": sys.argv[1]})
got = []
environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/files/", "SERVER_PROTOCOL": "HTTP/1.1",
           "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "HTTP_HOST": "sdist.test",
           "HTTP_TUS_RESUMABLE": "1.0.0", "HTTP_UPLOAD_LENGTH": "10"}
b"".join(app(environ, lambda status, headers: got.append((status, dict(headers)))))
status, headers = got[0]
assert status == "201 Created", got
print("the package built from the sdist answered:", status, headers["location"])
PY

"""chunkd's WSGI app as a host application would mount it, for the package's tests.

The host's own authentication is played by a header (``X-App-User``) the test sets;
each answer names the worker process that gave it, so tests see where chunks landed.
"""

import os

import chunkd.wsgi

uploads = chunkd.wsgi.App(
    {"data_dir": os.environ["APP_DATA_DIR"], "checkpoint_bytes": 256 * 1024},
    owner=lambda environ: environ.get("HTTP_X_APP_USER"),
)


def application(environ, start_response):
    def start(status, headers, exc_info=None):
        return start_response(status, [*headers, ("X-Worker", str(os.getpid()))], exc_info)

    return uploads(environ, start)

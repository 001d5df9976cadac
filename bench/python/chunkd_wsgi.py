"""chunkd's WSGI app as the Python benchmark serves it under gunicorn."""

import os

import chunkd.wsgi

application = chunkd.wsgi.App({"data_dir": os.environ["BENCH_DATA_DIR"]})

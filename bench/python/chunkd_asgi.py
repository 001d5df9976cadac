"""chunkd's ASGI app as the Python benchmark serves it under uvicorn."""

import os

import chunkd.asgi

app = chunkd.asgi.App({"data_dir": os.environ["BENCH_DATA_DIR"]})

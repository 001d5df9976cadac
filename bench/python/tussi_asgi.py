"""tussi, a pure-Python tus server (PyPI), wired as its own demo server wires it, for the
Python benchmark under uvicorn. It fsyncs each chunk too."""

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Route
from tussi import TUSApp
from tussi.storage import FilesystemStorage

base = Path(os.environ["BENCH_DATA_DIR"])
tus = TUSApp(FilesystemStorage(base / "uploads"), completed_dir=base / "done", max_chunk_size=16 << 20)


async def handler(request):
    return await tus.get_response(request.scope, request.receive)


app = Starlette(routes=[Route("/files/{path:path}", handler, methods=["HEAD", "PATCH", "POST", "OPTIONS"])])

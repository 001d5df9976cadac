"""A Starlette application mounting chunkd's ASGI app, for the package's tests; the user
is a header an authentication middleware would have checked."""

import os

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

import chunkd.asgi

uploads = chunkd.asgi.App(
    {"data_dir": os.environ["APP_DATA_DIR"], "ietf": {"path": "/ietf"}},
    mount="/uploads",
    owner=lambda scope: dict(scope["headers"]).get(b"x-app-user", b"").decode() or None,
)


async def home(request):
    return PlainTextResponse(f"worker {os.getpid()}")


app = Starlette(routes=[Route("/", home), Mount("/uploads", app=uploads)])

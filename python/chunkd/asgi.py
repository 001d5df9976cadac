"""chunkd's front ends as an ASGI application, answered by chunkd's engine in-process.

The request's task drives: each body message from ``receive()`` goes to the engine on a
thread of chunkd's own pool (the wait releases the GIL, the event loop goes on), and the
answer goes out through ``send()`` as the engine gives it; a client that goes away ends
the answer (an event stream, a download). Through ASGI chunkd sends no
104 interim responses (the IETF draft's clients resume from HEAD as over HTTP/2) and
reads no request trailers.

    app = Starlette(routes=[Mount("/uploads", app=chunkd.asgi.App(settings, mount="/uploads"))])
"""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from ._engine import Engine


class App:
    """An ASGI application serving chunkd's front ends; the arguments are
    ``chunkd.wsgi.App``'s, except that ``owner(scope)`` takes the ASGI scope (say
    ``scope["user"]`` from an authentication middleware). ``threads`` bounds the waits
    on the engine under way at once in this process: each body hand-over, and each
    piece of a streamed answer (an event stream waits there for its next event)."""

    def __init__(self, settings=None, *, mount="", owner=None, on_event=None, hooks=None, threads=32):
        self._engine = Engine(settings, mount=mount, identified=owner is not None, on_event=on_event, hooks=hooks)
        self._owner = owner
        self._threads = threads
        self._pool = None

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            raise ValueError(f"chunkd serves HTTP, not {scope['type']}")
        if self._pool is None:
            # Made on the first request, in the worker process that serves it.
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="chunkd")
        owner = self._owner(scope) if self._owner is not None else None
        try:
            call = self._engine.start(
                scope["method"],
                request_uri(scope),
                [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]],
                owner=None if owner is None else str(owner),
                peer=peer(scope),
                secure=scope.get("scheme") == "https",
            )
        except ValueError as e:
            body = f"{e}\n".encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
            await send({"type": "http.response.body", "body": body})
            return
        loop = asyncio.get_running_loop()

        def run(method, *args):
            return loop.run_in_executor(self._pool, method, *args)

        watcher = None
        try:
            await feed(call, receive, run)
            status, headers = await run(call.head)
            await send({
                "type": "http.response.start",
                "status": int(status.split(" ", 1)[0]),
                "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            })
            # A client gone while the answer streams (an event stream, a download) ends it.
            watcher = asyncio.ensure_future(until_disconnect(receive, call))
            while (chunk := await run(call.next_chunk)) is not None:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            if watcher is not None:
                watcher.cancel()
            # Also on cancellation: a body cut short is kept as far as it arrived. The
            # close waits for a hand-over under way, so it runs off the event loop.
            call.cancel()
            await asyncio.shield(run(call.close))

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self._engine.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


#: Body gathered from ``receive()`` messages (uvicorn's are 64 KiB at most) before one
#: hand-over to the engine: each costs a hop to a thread and back.
FEED_BLOCK = 1 << 20


async def feed(call, receive, run):
    """Hands the request body to the engine, stopping when it reads no more."""
    gathered = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if gathered:
                await run(call.feed, bytes(gathered))
            call.fail("the client went away")
            return
        gathered += message.get("body", b"")
        more = message.get("more_body", False)
        if len(gathered) >= FEED_BLOCK or (gathered and not more):
            if not await run(call.feed, bytes(gathered)):
                return
            gathered.clear()
        if not more:
            return


async def until_disconnect(receive, call):
    while (await receive())["type"] != "http.disconnect":
        pass
    call.cancel()


def request_uri(scope):
    """The path (with the mount: ASGI's ``path`` includes ``root_path``) and query."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def peer(scope):
    client = scope.get("client")
    if not client:
        return None
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

"""chunkd's front ends as a WSGI application, answered by chunkd's engine in-process.

The request's thread drives: it reads the body from ``wsgi.input`` a block at a time and
hands each to the engine, which writes it while the thread reads the next; every wait
releases the GIL. Several worker processes may serve one data directory.
"""

from urllib.parse import quote

from . import _engine
from ._engine import Engine

#: Body read per ``wsgi.input.read`` call. The engine takes four blocks ahead of the disk,
#: so a request holds about a MiB at most.
READ_BLOCK = 256 * 1024


class App:
    """A WSGI application serving chunkd's front ends.

    ``settings`` are chunkd's settings, the keys of its TOML file nested as there
    (``{"data_dir": "/srv/uploads", "tus": {"path": "/files"}}``); ``CHUNKD_*``
    variables still apply. ``mount`` is the prefix below which the application routes
    requests here (every path chunkd serves moves below it). ``owner(environ)`` names
    the application's user (``None``: anonymous); given, chunkd reads no identity of its
    own. ``on_event(event)`` hears of this process's uploads (``event["kind"]`` is
    created, progress, finished, refused, terminated or expired; ``event["upload"]`` the
    record), on a thread of its own. ``hooks`` is an object whose methods
    (``pre_create(event)``, ``post_finish(event)``, ...) take hook events as webhooks do
    (``[hooks]`` timeout and failure policy apply; post-events arrive at least once, from
    the outbox); see ``chunkd.Reject``.
    """

    def __init__(self, settings=None, *, mount="", owner=None, on_event=None, hooks=None, call_hook=None):
        self._engine = Engine(settings, mount=mount, identified=owner is not None, on_event=on_event,
                              hooks=hooks, call=call_hook or _engine.call_hook)
        self._owner = owner

    def __call__(self, environ, start_response):
        owner = self._owner(environ) if self._owner is not None else None
        status, headers, body = self.respond(environ, owner)
        start_response(status, headers)
        return body

    def respond(self, environ, owner=None):
        """Answers the request ``environ`` describes, for ``owner`` (the application's
        user, or ``None``): the status line, the headers and the body, an iterable to
        close once sent. For frameworks that make the response themselves."""
        if environ.get("HTTP_TRANSFER_ENCODING") and not environ.get("wsgi.input_terminated"):
            # A chunked body this server cannot delimit: read as empty, it would end uploads.
            return refusal("411 Length Required", "a chunked request body needs a server that ends wsgi.input")
        try:
            call = self._engine.start(
                environ["REQUEST_METHOD"],
                request_uri(environ),
                request_headers(environ),
                owner=None if owner is None else str(owner),
                peer=peer(environ),
                secure=environ.get("wsgi.url_scheme") == "https",
            )
        except ValueError as e:
            return refusal("400 Bad Request", str(e))
        try:
            feed(call, environ)
            status, headers = call.head()
        except BaseException:
            call.close()
            raise
        return status, headers, Answer(call)

    def close(self):
        """Stops this process's engine: uploads under way keep what they received."""
        self._engine.close()


def refusal(status, message):
    body = (message + "\n").encode()
    return status, [("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body)))], [body]


class Answer:
    """The response body, streamed from the engine; ``close()`` ends the call."""

    def __init__(self, call):
        self._call = call

    def __iter__(self):
        while (chunk := self._call.next_chunk()) is not None:
            yield chunk

    def close(self):
        self._call.close()


def feed(call, environ):
    """Hands the request body to the engine, stopping when it reads no more."""
    body = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    try:
        if length:
            # A malformed length is passed on for chunkd to refuse; no body is read.
            remaining = int(length) if length.isdigit() else 0
            while remaining > 0:
                # Never read() without a size: some servers then read everything.
                block = body.read(min(READ_BLOCK, remaining))
                if not block:
                    call.fail("the client sent less than its Content-Length")
                    return
                remaining -= len(block)
                if not call.feed(block):
                    return
        elif environ.get("wsgi.input_terminated"):
            while block := body.read(READ_BLOCK):
                if not call.feed(block):
                    return
    except OSError as e:
        # The client went away: the engine keeps what arrived, then answers.
        call.fail(f"reading the request failed: {e}")


def request_uri(environ):
    """The path and query the client sent."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return raw
    # PEP 3333: the path is bytes decoded as latin-1.
    path = (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1")
    uri = quote(path, safe="/;=,:@!$&'()*+~-._") or "/"
    query = environ.get("QUERY_STRING")
    return f"{uri}?{query}" if query else uri


def request_headers(environ):
    """The request's headers as (name, latin-1 text) pairs."""
    headers = [
        (key[5:].replace("_", "-").lower(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.append((name, environ[key]))
    return headers


def peer(environ):
    """The client's ``ip:port``, when the server says."""
    address = environ.get("REMOTE_ADDR")
    if not address:
        return None
    port = environ.get("REMOTE_PORT") or "0"
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"

"""What the WSGI and ASGI apps share: the engine's configuration, and the thread that
hands this process's upload events to the application."""

import json
import logging
import os
import threading

from ._chunkd import Core

log = logging.getLogger("chunkd")


#: Hook events by the name of the hooks object's method that takes them.
KINDS = ("pre-create", "post-create", "post-receive", "pre-access", "pre-finish", "post-finish",
         "pre-terminate", "post-terminate")


class Reject(Exception):
    """Raised (or returned) by a pre-hook: the request is refused with ``status`` and
    ``message``, in its protocol's terms."""

    def __init__(self, status=403, message="refused", headers=None):
        super().__init__(status, message)
        self.status, self.message, self.headers = status, message, dict(headers or {})

    def answer(self):
        response = {"StatusCode": self.status, "Body": self.message, "Header": self.headers}
        # Each pre-hook reads its own flag: creation and finishing, access, termination.
        return {"RejectUpload": True, "RejectAccess": True, "RejectTermination": True, "HTTPResponse": response}


def call_hook(method, event):
    """How a hook method runs: as it is (frameworks wrap it, Django in fresh database
    connections)."""
    return method(event)


class Hooks:
    """The application's hooks object as chunkd's receiver: each event (tusd's hook JSON,
    as webhooks get it) goes to the method named after it (``pre_create``,
    ``post_finish``, ...), whose answer is a webhook's (``None``: go ahead; a dict as
    tusd's hooks answer; ``Reject``)."""

    def __init__(self, hooks, call=call_hook):
        self._hooks = hooks
        self._call = call

    def kinds(self):
        return [kind for kind in KINDS if callable(getattr(self._hooks, kind.replace("-", "_"), None))]

    def __call__(self, kind, body, key):
        method = getattr(self._hooks, kind.replace("-", "_"), None)
        if method is None:
            return b""  # an event the object takes no note of goes ahead
        event = json.loads(body)
        event["IdempotencyKey"] = key
        try:
            answer = self._call(method, event)
        except Reject as refused:
            answer = refused
        except Exception:
            if not kind.startswith("pre-"):
                raise  # a post-event is tried again later
            # A pre-hook that fails refuses: nothing goes ahead unchecked.
            log.exception("%s hook failed; the request is refused", kind)
            answer = Reject(500, "the upload could not be checked")
        if isinstance(answer, Reject):
            answer = answer.answer()
        if answer is None or answer is True:
            return b""
        return json.dumps(answer).encode()


class Engine:
    def __init__(self, settings, *, mount, identified, on_event, hooks=None, call=call_hook):
        settings = dict(settings or {})
        if identified:
            # The application says who asks: chunkd reads no identity of its own.
            settings["auth"] = {**settings.get("auth", {}), "mode": "app"}
        receiver = Hooks(hooks, call) if hooks is not None else None
        if receiver is not None and not receiver.kinds():
            receiver = None  # an object with no hook methods is no hook at all
        if receiver is not None:
            settings["hooks"] = {"events": receiver.kinds(), **settings.get("hooks", {})}
        self.core = Core(json.dumps(settings, default=os.fspath), mount, receiver)
        self._on_event = on_event
        self._listening = None
        self._listen_lock = threading.Lock()

    def start(self, *args, **kwargs):
        """A call for one request (``Core.start``), events flowing from the first."""
        if self._on_event is not None and self._listening != os.getpid():
            self._listen()
        return self.core.start(*args, **kwargs)

    def close(self):
        self.core.close()

    def _listen(self):
        # Per process: a forked worker has no thread of its parent's.
        with self._listen_lock:
            if self._listening == os.getpid():
                return
            events = self.core.events()
            thread = threading.Thread(target=self._deliver, args=(events,), name="chunkd-events", daemon=True)
            thread.start()
            self._listening = os.getpid()

    def _deliver(self, events):
        while True:
            raw = events.next(1.0)
            if raw is None:
                continue
            try:
                self._on_event(json.loads(raw))
            except Exception:
                log.exception("on_event failed")

"""What the WSGI and ASGI apps share: the engine's configuration, and the thread that
hands this process's upload events to the application."""

import json
import logging
import os
import threading

from ._chunkd import Core

log = logging.getLogger("chunkd")


class Engine:
    def __init__(self, settings, *, mount, identified, on_event):
        settings = dict(settings or {})
        if identified:
            # The application says who asks: chunkd reads no identity of its own.
            settings["auth"] = {**settings.get("auth", {}), "mode": "app"}
        self.core = Core(json.dumps(settings, default=os.fspath), mount)
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

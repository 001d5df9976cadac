"""One view for every path below the mount: the request goes to chunkd's engine as it
came (its body unread by Django), the answer streams back."""

import threading

from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from ..wsgi import App
from . import conf, signals

_app = None
_app_lock = threading.Lock()


def uploads() -> App:
    global _app
    with _app_lock:
        if _app is None:
            mount, settings = conf.read()
            # The Django user is who asks: chunkd reads no identity of its own.
            settings["auth"] = {**settings.get("auth", {}), "mode": "app"}
            _app = App(settings, mount=mount, on_event=_signal, hooks=conf.hooks(), call_hook=_in_fresh_connections)
        return _app


def _in_fresh_connections(method, event):
    # Hooks run on chunkd's threads, where Django closes no stale connection itself.
    close_old_connections()
    try:
        return method(event)
    finally:
        close_old_connections()


def _signal(event):
    signal = signals.BY_KIND.get(event["kind"])
    # Pieces (a Resumable.js chunk, a tus partial) are not files of their own.
    if signal is None or event["upload"].get("concat") == "partial":
        return
    # Django closes stale connections only around requests; this thread has none.
    close_old_connections()
    try:
        signal.send(sender=App, upload=event["upload"], event=event)
    finally:
        close_old_connections()


# chunkd's protocols are not form posts, and reading the body for a CSRF token would
# consume the upload: identity comes from the session, uploads are the user's own.
@csrf_exempt
def serve(request):
    mount, _ = conf.read()
    if not request.path.startswith(mount + "/") and request.path != mount:
        raise ImproperlyConfigured(f"chunkd.django.urls is routed at {request.path!r}, outside CHUNKD['MOUNT'] {mount!r}")
    user = getattr(request, "user", None)
    owner = user.pk if user is not None and user.is_authenticated else None
    status, headers, body = uploads().respond(request.environ, owner)
    response = StreamingHttpResponse(body, status=int(status.split(" ", 1)[0]), reason=status.split(" ", 1)[1])
    # Django's default type would describe bodies chunkd did not type (a 204 has none).
    del response["Content-Type"]
    for name, value in headers:
        if name == "set-cookie":
            # Django keeps cookies apart from headers, one Set-Cookie each.
            response.cookies.load(value)
        elif name in response:
            response[name] = response[name] + ", " + value
        else:
            response[name] = value
    return response

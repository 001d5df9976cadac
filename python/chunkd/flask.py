"""chunkd in a Flask application: ``Chunkd(app, owner=lambda: current_user.get_id())``.

Reads ``CHUNKD_MOUNT`` (the prefix routed to chunkd, default ``/uploads``) and
``CHUNKD_SETTINGS`` (chunkd's own settings, the keys of its TOML file) from
``app.config``, and registers a blueprint answering every path below the mount. The
signals below carry each upload's record (never a piece of one: a Resumable.js chunk,
a tus partial upload), sent within the application's context from
chunkd's event thread of the worker that made the change.
"""

import blinker
from flask import Blueprint, Response, current_app, request

from .wsgi import App

_signals = blinker.Namespace()
upload_created = _signals.signal("chunkd.upload-created")
upload_finished = _signals.signal("chunkd.upload-finished")
upload_terminated = _signals.signal("chunkd.upload-terminated")
upload_expired = _signals.signal("chunkd.upload-expired")
_BY_KIND = {
    "created": upload_created,
    "finished": upload_finished,
    "terminated": upload_terminated,
    "expired": upload_expired,
}

METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]


class Chunkd:
    """The extension. ``owner()``, called in the request's context, names the
    application's user (``None``: anonymous); ``hooks`` are as for ``chunkd.wsgi.App``,
    run within the application's context."""

    def __init__(self, app=None, *, owner=None, hooks=None):
        self._owner = owner
        self._hooks = hooks
        if app is not None:
            self.init_app(app)

    def init_app(self, app):
        mount = "/" + app.config.get("CHUNKD_MOUNT", "/uploads").strip("/")
        settings = dict(app.config.get("CHUNKD_SETTINGS", {}))
        # The application says who asks: chunkd reads no identity of its own.
        settings["auth"] = {**settings.get("auth", {}), "mode": "app"}

        def signal(event):
            sent = _BY_KIND.get(event["kind"])
            # Pieces (a Resumable.js chunk, a tus partial) are not files of their own.
            if sent is not None and event["upload"].get("concat") != "partial":
                with app.app_context():
                    sent.send(app, upload=event["upload"], event=event)

        def in_context(method, event):
            with app.app_context():
                return method(event)

        uploads = App(settings, mount=mount, on_event=signal, hooks=self._hooks, call_hook=in_context)
        blueprint = Blueprint("chunkd", __name__, url_prefix=mount)
        owner = self._owner

        # Every method, OPTIONS too (tus discovery, CORS preflights): chunkd answers.
        @blueprint.route("/", defaults={"subpath": ""}, methods=METHODS, provide_automatic_options=False)
        @blueprint.route("/<path:subpath>", methods=METHODS, provide_automatic_options=False)
        def serve(subpath):
            who = owner() if owner is not None else None
            status, headers, body = uploads.respond(request.environ, who)
            response = Response(body, status=status, headers=headers, direct_passthrough=True)
            # Flask's default type would describe bodies chunkd did not type.
            if not any(name == "content-type" for name, _ in headers):
                del response.headers["Content-Type"]
            return response

        app.register_blueprint(blueprint)
        app.extensions["chunkd"] = uploads


def uploads() -> App:
    """The current application's chunkd ``App``."""
    return current_app.extensions["chunkd"]

"""chunkd in a Pyramid application: ``config.include("chunkd.pyramid")``.

Reads ``chunkd.mount`` (the prefix routed to chunkd, default ``/uploads``),
``chunkd.settings`` (chunkd's own settings as JSON, or a dict) and ``chunkd.hooks`` (the
dotted name of a hooks class or object) from the registry's settings, and adds a route
for every path below the mount. The request's ``authenticated_userid`` owns what it
uploads.
"""

import json

from pyramid.response import Response

from .wsgi import App

METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS")


def includeme(config):
    settings = config.get_settings()
    mount = "/" + settings.get("chunkd.mount", "/uploads").strip("/")
    chunkd_settings = settings.get("chunkd.settings", {})
    if isinstance(chunkd_settings, str):
        chunkd_settings = json.loads(chunkd_settings)
    chunkd_settings = dict(chunkd_settings)
    # The application says who asks: chunkd reads no identity of its own.
    chunkd_settings["auth"] = {**chunkd_settings.get("auth", {}), "mode": "app"}
    hooks = settings.get("chunkd.hooks")
    if isinstance(hooks, str):
        hooks = config.maybe_dotted(hooks)
        hooks = hooks() if isinstance(hooks, type) else hooks
    uploads = App(chunkd_settings, mount=mount, hooks=hooks)

    def serve(request):
        status, headers, body = uploads.respond(request.environ, request.authenticated_userid)
        response = Response(status=status, headerlist=headers, app_iter=body)
        return response

    config.add_route("chunkd", mount + "/*subpath")
    config.add_route("chunkd-root", mount)
    # chunkd's protocols are not form posts; a CSRF check would read the upload's body.
    for route in ("chunkd", "chunkd-root"):
        config.add_view(serve, route_name=route, request_method=METHODS, require_csrf=False)
    config.registry["chunkd"] = uploads

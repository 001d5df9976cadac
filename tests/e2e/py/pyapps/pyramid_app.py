"""A Pyramid application including chunkd, for the package's tests: an auth ticket cookie
says who the user is."""

import os

from pyramid.authentication import AuthTktCookieHelper
from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.security import remember


class TicketPolicy:
    def __init__(self):
        self.helper = AuthTktCookieHelper(secret="test-only-not-secret-test-only-not-secret", hashalg="sha512")

    def identity(self, request):
        return self.helper.identify(request)

    def authenticated_userid(self, request):
        identity = self.identity(request)
        return identity["userid"] if identity else None

    def permits(self, request, context, permission):
        return True

    def remember(self, request, userid, **kw):
        return self.helper.remember(request, userid, **kw)

    def forget(self, request, **kw):
        return self.helper.forget(request, **kw)


def login(request):
    name = request.matchdict["name"]
    return Response(f"signed in as {name}", headers=remember(request, name))


def make_app():
    settings = {"chunkd.mount": "/uploads", "chunkd.settings": {"data_dir": os.environ["APP_DATA_DIR"]}}
    with Configurator(settings=settings) as config:
        config.set_security_policy(TicketPolicy())
        config.include("chunkd.pyramid")
        config.add_route("login", "/login/{name}")
        config.add_view(login, route_name="login")
        return config.make_wsgi_app()


app = make_app()

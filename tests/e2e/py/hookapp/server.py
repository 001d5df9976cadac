"""Configures Django for the receiver (a SQLite database in `db_dir`) and serves it."""

import threading
from pathlib import Path

import django
from django.conf import settings
from werkzeug.serving import make_server


def start(secret: str, db_dir: Path):
    """The running receiver: its URL, its deliveries, its model and a stop function."""
    settings.configure(
        DEBUG=False,
        SECRET_KEY="test-only",
        ALLOWED_HOSTS=["127.0.0.1"],
        ROOT_URLCONF="hookapp.urls",
        INSTALLED_APPS=["hookapp.apps.HookAppConfig"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(db_dir / "app.sqlite3")}},
        MIDDLEWARE=[],
        USE_TZ=True,
    )
    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    from .models import FinishedUpload
    from .views import DELIVERIES

    call_command("migrate", run_syncdb=True, verbosity=0)
    DELIVERIES.secret = secret.encode()
    server = make_server("127.0.0.1", 0, get_wsgi_application(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hooks"
    return url, DELIVERIES, FinishedUpload, server.shutdown

"""The project's ``CHUNKD`` setting: ``MOUNT`` (the prefix routed to chunkd, default
``/uploads``) and ``SETTINGS`` (chunkd's own settings, the keys of its TOML file)."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def read():
    conf = getattr(settings, "CHUNKD", {})
    unknown = set(conf) - {"MOUNT", "SETTINGS"}
    if unknown:
        raise ImproperlyConfigured(f"CHUNKD has unknown keys: {sorted(unknown)}")
    mount = "/" + conf.get("MOUNT", "/uploads").strip("/")
    chunkd_settings = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in conf.get("SETTINGS", {}).items()}
    return mount, chunkd_settings

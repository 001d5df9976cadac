"""The project's ``CHUNKD`` setting: ``MOUNT`` (the prefix routed to chunkd, default
``/uploads``), ``SETTINGS`` (chunkd's own settings, the keys of its TOML file) and
``HOOKS`` (the dotted path of a hooks class or object: ``pre_create(event)``, ...)."""

import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def read():
    conf = getattr(settings, "CHUNKD", {})
    unknown = set(conf) - {"MOUNT", "SETTINGS", "HOOKS"}
    if unknown:
        raise ImproperlyConfigured(f"CHUNKD has unknown keys: {sorted(unknown)}")
    mount = "/" + conf.get("MOUNT", "/uploads").strip("/")
    chunkd_settings = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in conf.get("SETTINGS", {}).items()}
    return mount, chunkd_settings


def hooks():
    """The project's hooks object, or ``None``."""
    path = getattr(settings, "CHUNKD", {}).get("HOOKS")
    if not path:
        return None
    from django.utils.module_loading import import_string

    found = import_string(path)
    return found() if isinstance(found, type) else found

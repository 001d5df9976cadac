"""chunkd in a Django project: add ``"chunkd.django"`` to ``INSTALLED_APPS``, route a
prefix to it (``path("uploads/", include("chunkd.django.urls"))``) and set ``CHUNKD``:

    CHUNKD = {"MOUNT": "/uploads", "SETTINGS": {"data_dir": BASE_DIR / "uploads"}}

The logged-in user (its primary key) owns the uploads it makes; nobody else sees them.
``chunkd.django.signals`` tell the project of uploads, ``finished_file`` opens one.
"""

from .files import finished_file

__all__ = ["finished_file"]

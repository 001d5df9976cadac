import re
from pathlib import Path

from django.core.files import File

from . import conf


def finished_file(upload_id: str) -> File:
    """A finished upload's bytes as a Django ``File`` (uploads kept on disk, chunkd's
    default store, in ``SETTINGS["data_dir"]``), to copy into a ``FileField`` or read.
    For an upload ``upload_finished`` announced: others are not there to open."""
    _, settings = conf.read()
    data_dir = Path(settings.get("data_dir", "chunkd-data"))
    # chunkd's ids are letters, digits, - and _: never a path, never a .part file.
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", upload_id or ""):
        raise ValueError(f"not an upload id: {upload_id!r}")
    path = data_dir / "files" / upload_id
    return File(path.open("rb"), name=upload_id)

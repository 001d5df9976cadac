from pathlib import Path

from django.core.files import File

from . import conf


def finished_file(upload_id: str) -> File:
    """A finished upload's bytes as a Django ``File`` (uploads kept on disk, chunkd's
    default store), to copy into a ``FileField`` or read."""
    _, settings = conf.read()
    data_dir = Path(settings.get("data_dir", "chunkd-data"))
    if not upload_id or "/" in upload_id or upload_id.startswith("."):
        raise ValueError(f"not an upload id: {upload_id!r}")
    path = data_dir / "files" / upload_id
    return File(path.open("rb"), name=upload_id)

"""Sent in the worker process that made the change, from chunkd's event thread, with
``upload`` (the record: ``id``, ``length``, ``offset``, ``owner``, ``metadata``, ...) and
``event`` (the whole event). Pieces of an upload (a Resumable.js chunk, a tus partial
upload) are not signalled: only files of their own and concatenations."""

from django.dispatch import Signal

upload_created = Signal()
upload_finished = Signal()
upload_terminated = Signal()
upload_expired = Signal()

BY_KIND = {
    "created": upload_created,
    "finished": upload_finished,
    "terminated": upload_terminated,
    "expired": upload_expired,
}

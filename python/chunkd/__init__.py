"""chunkd: resumable, chunked HTTP uploads, served in-process by chunkd's Rust engine.

``chunkd.wsgi.App`` and ``chunkd.asgi.App`` serve its front ends; ``chunkd.django`` and
``chunkd.flask`` fit them into those frameworks; ``Reject`` refuses from a hook;
``python -m chunkd`` is the standalone server's command line.
"""

from ._engine import Reject

__all__ = ["Reject"]

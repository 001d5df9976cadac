"""chunkd: resumable, chunked HTTP uploads, served in-process by chunkd's Rust engine.

``chunkd.wsgi.App`` is a WSGI application; ``python -m chunkd`` is the standalone server's
command line.
"""

from ._chunkd import Core

__all__ = ["Core"]

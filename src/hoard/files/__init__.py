"""Files: hugo semantics (per-inode indexed blocks, CRC32 IEEE, history versions) on the content store."""

from hoard.files.model import BlockRef, CrcMismatchError, FileBlock, FileInfo, FileWrite
from hoard.files.store import FileStore

__all__ = ["BlockRef", "CrcMismatchError", "FileBlock", "FileInfo", "FileStore", "FileWrite"]

"""Writing a user's output file (`download -o FILE`, `download_stream(cid, path)`) safely.

The bytes go to a temporary file that this module *creates*: in FILE's directory (so the final
rename stays on one file system), under a random name, opened with `O_CREAT | O_EXCL |
O_NOFOLLOW` — an existing file or a symlink planted under that name is never opened, let alone
truncated. Only when everything was written is it renamed over FILE; on any failure the temporary
file (and only it) is removed. Nothing else in FILE's directory is touched: a `FILE.part` left by
someone else stays as it was.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from types import TracebackType
from typing import Self

from hoard.errors import InvalidArgumentError

__all__ = ["OutputFile"]

_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


class OutputFile:
    """`with OutputFile(path) as out: out.write(...)`: FILE appears, complete, only on success.

    Outside a `with`, call `open()`, then `commit()` or `discard()`. Errors are
    InvalidArgumentError naming FILE and what is wrong with it.
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "Failed to download stream") -> None:
        self.target = Path(os.fspath(path))
        self.what = what
        self.temp: Path | None = None
        self._fd: int | None = None

    def _error(self, problem: str) -> InvalidArgumentError:
        return InvalidArgumentError(f"{self.what}: cannot write {os.fsdecode(self.target)!r}: {problem}",
                                    path=os.fsdecode(self.target))

    def open(self) -> Self:
        """Create the temporary file beside FILE (refusing a FILE that is a directory)."""
        if self.target.is_dir() and not self.target.is_symlink():
            raise self._error("it is a directory")
        directory = self.target.parent
        for _ in range(8):  # a random name that exists already is simply another try
            temp = directory / f".{self.target.name}.{secrets.token_hex(8)}.part"
            try:
                self._fd = os.open(temp, _FLAGS, 0o666)
            except FileExistsError:
                continue
            except OSError as exc:
                raise self._error(exc.strerror or str(exc)) from exc
            self.temp = temp
            return self
        raise self._error("cannot create a temporary file beside it")

    def write(self, data: bytes | memoryview) -> None:
        if self._fd is None:
            raise self._error("it is not open")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise self._error(exc.strerror or str(exc)) from exc

    def commit(self) -> None:
        """Close the temporary file and rename it over FILE (like cp: no fsync; the store is the
        durable copy)."""
        if self._fd is None or self.temp is None:
            raise self._error("it is not open")
        fd, self._fd = self._fd, None
        try:
            os.close(fd)
            os.replace(self.temp, self.target)
        except OSError as exc:
            self.discard()
            raise self._error(exc.strerror or str(exc)) from exc
        self.temp = None

    def discard(self) -> None:
        """Close and remove the temporary file this object created (nothing else). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        temp, self.temp = self.temp, None
        if temp is not None:
            try:
                os.unlink(temp)
            except FileNotFoundError:
                pass

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self.commit()
        else:
            self.discard()

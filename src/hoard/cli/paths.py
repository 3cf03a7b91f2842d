"""The files the CLI is asked to read: checked before any work, with a message that says exactly
what is wrong, and file names shown as they are on disk (undecodable bytes as `\\xNN`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from hoard.content.manifest import escape_text
from hoard.errors import InvalidArgumentError, NotFoundError

_KINDS = {stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device", stat.S_IFIFO: "a named pipe (FIFO)",
          stat.S_IFSOCK: "a socket"}


def shown(path: str | os.PathLike[str]) -> str:
    """`path` for a message: bytes that are not UTF-8 (surrogate escapes) as \\xNN, control
    characters escaped."""
    return escape_text(os.fsencode(path).decode("utf-8", "backslashreplace"))


def input_file(path: str, command: str = "upload", *, utf8_name: bool = False) -> Path:
    """`path` if it is a regular file this process can read; else NotFoundError (it does not exist)
    or InvalidArgumentError (a directory, a device, a pipe, unreadable, or with `utf8_name` a name
    that is not UTF-8 — a dataset's filename must be), before anything is done."""
    file = Path(path)
    try:
        mode = file.stat().st_mode
    except FileNotFoundError:
        if file.is_symlink():
            raise NotFoundError(f"{shown(path)} is a symlink to a file that does not exist", path=shown(path)) from None
        raise NotFoundError(f"no such file: {shown(path)}", path=shown(path)) from None
    except OSError as exc:
        raise InvalidArgumentError(f"cannot read {shown(path)}: {exc.strerror}", path=shown(path)) from exc
    if stat.S_ISDIR(mode):
        raise InvalidArgumentError(f"{shown(path)} is a directory: {command} takes a file", path=shown(path))
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise InvalidArgumentError(f"{shown(path)} is {kind}, not a regular file: {command} takes a file "
                                   "(use - to read stdin)", path=shown(path))
    if not os.access(file, os.R_OK):
        raise InvalidArgumentError(f"cannot read {shown(path)}: permission denied", path=shown(path))
    if utf8_name:
        try:
            file.name.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgumentError(f"the file name {shown(file.name)} is not valid UTF-8, which a dataset's "
                                       f"filename must be: rename the file, or {command} it from stdin (-)",
                                       path=shown(path)) from None
    return file

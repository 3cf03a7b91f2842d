"""Log names: 256-bit opaque names with a 43-character printable form (GDP `gdp_name_t`).

The printable form is URL-safe base64 (`-` and `_` for `+` and `/`) without padding: 32 bytes
→ 43 characters. `parse_name` follows `gdp_parse_name`: a 43-character string that is the
printable form of some name is that name; any other string is hashed with SHA-256 (of its
UTF-8 bytes) to make one. A name is valid iff it is not all zeros; the zero name is refused
with status 400 (GDP's `GDP_STAT_NULL_GCL`, "GCL name required", a client error).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re

from hoard.errors import LogError

__all__ = ["LogName", "NAME_LEN", "PRINTABLE_LEN", "parse_name"]

NAME_LEN = 32
PRINTABLE_LEN = 43
_PRINTABLE_RE = re.compile(r"[A-Za-z0-9_-]{43}")


class LogName:
    """A 32-byte log name. `str()` is the printable form; `bytes()` the raw name."""

    __slots__ = ("raw",)

    raw: bytes

    def __init__(self, raw: bytes | bytearray | memoryview) -> None:
        raw = bytes(raw)
        if len(raw) != NAME_LEN:
            raise LogError(f"a log name is {NAME_LEN} bytes, got {len(raw)}", status=400,
                           gdp_stat="GCL_NAME_INVALID")
        object.__setattr__(self, "raw", raw)

    def __setattr__(self, key: str, value: object) -> None:
        raise AttributeError("LogName is immutable")

    @classmethod
    def from_printable(cls, text: str) -> LogName:
        """The name whose printable form is `text`; LogError 400 if `text` is not one."""
        raw = _decode_printable(text)
        if raw is None:
            raise LogError(f"not a printable log name: {text!r}", status=400, gdp_stat="GCL_NAME_INVALID")
        return cls(raw)

    @property
    def printable(self) -> str:
        return base64.urlsafe_b64encode(self.raw).rstrip(b"=").decode("ascii")

    def is_valid(self) -> bool:
        """GDP's `gdp_name_is_valid`: any name but all zeros."""
        return self.raw != bytes(NAME_LEN)

    def check_valid(self) -> LogName:
        """Return self, or raise LogError 400 (`NULL_GCL`) for the all-zero name."""
        if not self.is_valid():
            raise LogError("the all-zero log name is not a valid name", status=400, gdp_stat="NULL_GCL")
        return self

    def __bytes__(self) -> bytes:
        return self.raw

    def __str__(self) -> str:
        return self.printable

    def __repr__(self) -> str:
        return f"LogName({self.printable!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LogName) and other.raw == self.raw

    def __lt__(self, other: LogName) -> bool:
        return self.raw < other.raw

    def __hash__(self) -> int:
        return hash(self.raw)


def _decode_printable(text: str) -> bytes | None:
    """The 32 bytes `text` prints, or None. Only the canonical encoding is accepted, so that
    `str(parse_name(s)) == s` whenever `s` is taken as a printable name."""
    if not _PRINTABLE_RE.fullmatch(text):
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=")
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != text:
        return None  # non-zero trailing bits: not the printable form of any name
    return raw


def parse_name(value: str | LogName | bytes | bytearray) -> LogName:
    """`gdp_parse_name`: a printable name decodes to itself, any other string is SHA-256 hashed.

    A `LogName` is returned as is; `bytes` must be a raw 32-byte name. The result is always
    valid: the all-zero name raises LogError 400 (`NULL_GCL`).
    """
    if isinstance(value, LogName):
        name = value
    elif isinstance(value, (bytes, bytearray, memoryview)):
        name = LogName(value)
    elif isinstance(value, str):
        raw = _decode_printable(value)
        name = LogName(raw if raw is not None else hashlib.sha256(value.encode("utf-8")).digest())
    else:
        raise LogError(f"a log name is a str, bytes or LogName, not {type(value).__name__}", status=400,
                       gdp_stat="GCL_NAME_INVALID")
    return name.check_valid()

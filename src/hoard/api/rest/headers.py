"""HTTP header handling for uploads and downloads: Content-Type, Content-Disposition, Range."""

from __future__ import annotations

import mimetypes
import re
import urllib.parse
from dataclasses import dataclass

MAX_FILENAME = 255  # bytes, as Logos (MaxFilenameSize)
MAX_MIMETYPE = 255  # bytes, as Logos (MaxMimetypeSize)
# curl --data-binary sends this when no type is given; it never describes uploaded content.
FORM_DEFAULT = "application/x-www-form-urlencoded"

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MIME = re.compile(rf"^{_TOKEN}/{_TOKEN}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class HeaderError(ValueError):
    """A header that cannot be accepted (answered with 422, as Logos does)."""


def upload_mimetype(content_type: str | None) -> str | None:
    """The mimetype to store for an upload's Content-Type header, or None for none.

    The media type must be one the node's MIME table knows (Logos: "not valid" otherwise);
    parameters such as `; charset=utf-8` are allowed and kept.
    """
    if content_type is None or not content_type.strip():
        return None
    value = content_type.strip()
    base = value.split(";", 1)[0].strip().lower()
    if base == FORM_DEFAULT:
        return None
    if len(value.encode()) > MAX_MIMETYPE:
        raise HeaderError(f"Mimetype exceeds maximum size of {MAX_MIMETYPE} bytes")
    if not _MIME.match(base) or _CONTROL.search(value) or not mimetypes.guess_all_extensions(base, strict=False):
        raise HeaderError(f"The MIME type '{value}' is not valid.")
    return value


def upload_filename(content_disposition: str | None) -> str | None:
    """The filename given by a Content-Disposition header (`filename="x"`, `filename=x` or
    RFC 5987 `filename*=UTF-8''x`), or None. A name with a path separator, a control character,
    or more than 255 bytes is refused."""
    if not content_disposition or "filename" not in content_disposition:
        return None
    name: str | None = None
    star = re.search(r"filename\*\s*=\s*([^;]+)", content_disposition, re.IGNORECASE)
    if star:
        charset, _, rest = star.group(1).strip().partition("'")
        _lang, _, encoded = rest.partition("'")
        try:
            name = urllib.parse.unquote(encoded, encoding=charset or "utf-8", errors="strict")
        except (LookupError, UnicodeDecodeError) as exc:
            raise HeaderError("The filename is not valid.") from exc
    else:
        plain = re.search(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))', content_disposition, re.IGNORECASE)
        if plain:
            name = re.sub(r"\\(.)", r"\1", plain.group(1)) if plain.group(1) is not None else plain.group(2)
            try:  # HTTP header bytes arrive as latin-1; a UTF-8 client sent UTF-8 bytes
                name = name.encode("latin-1").decode("utf-8")
            except (UnicodeEncodeError, UnicodeDecodeError):
                pass
    if name is None:
        return None
    if not name or name in (".", "..") or "/" in name or "\\" in name or _CONTROL.search(name):
        raise HeaderError("The filename is not valid.")
    if len(name.encode()) > MAX_FILENAME:
        raise HeaderError(f"Filename exceeds maximum size of {MAX_FILENAME} bytes")
    return name


def content_disposition(filename: str | None) -> str:
    """`attachment; filename="..."` (with an RFC 6266 `filename*` when the name is not ASCII)."""
    if not filename:
        return "attachment"
    if filename.isascii() and filename.isprintable() and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


def content_type(mimetype: str | None) -> str:
    """The Content-Type for stored content: its mimetype, or application/octet-stream."""
    if not mimetype or _CONTROL.search(mimetype) or not mimetype.isascii():
        return "application/octet-stream"
    return mimetype


@dataclass(frozen=True)
class ByteRange:
    """Bytes [start, end) of a content of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start

    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end - 1}/{self.size}"


class RangeNotSatisfiable(Exception):
    """A Range that selects no byte of the content (answered with 416)."""


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d{0,19})\s*-\s*(\d{0,19})\s*$", re.IGNORECASE)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The single byte range a Range header asks for, or None to send the whole content.

    Multiple ranges, other units and malformed headers are ignored (RFC 9110 §14.2 lets a
    server ignore Range); a syntactically valid range that selects nothing raises
    RangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        if last and int(last) < start:
            return None  # invalid range-spec: ignore the header
        if start >= size:
            raise RangeNotSatisfiable()
        end = min(int(last) + 1, size) if last else size
        return ByteRange(start, end, size)
    suffix = int(last)
    if suffix == 0 or size == 0:
        raise RangeNotSatisfiable()
    return ByteRange(max(size - suffix, 0), size, size)

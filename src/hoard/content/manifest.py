"""Dataset manifests (dag-cbor); their block index is written and walked in `index.py`.

A manifest node:
    {"version": 1, "datasetSize": int, "blockSize": int, "blockCount": int,
     "chunker": "fixed" | "fastcdc-v2020(min,avg,max)", "filename": str|null,
     "mimetype": str|null, "digest": bytes (BLAKE3-256 of the whole content),
     "index": CID (root of the block index), "protected": false}

The block index (`index.py`) is a tree of dag-cbor nodes, FANOUT entries per node:
    leaf:     {"blocks": [[CID, size], ...]}
    interior: {"children": [[CID, bytes, count], ...]}
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from hoard.content import dag
from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.ids.cid import CID, DAG_CBOR
from hoard.limits import (
    MAX_BLOCK_BYTES,
    MAX_CHUNKER_TEXT,
    MAX_DATASET_BLOCKS,
    MAX_FILENAME_BYTES,
    MAX_MANIFEST_BYTES,
    MAX_MIMETYPE_BYTES,
)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """A dataset's manifest: what `upload_*` returns the CID of."""

    dataset_size: int
    block_size: int
    block_count: int
    chunker: str
    digest: bytes
    index: CID
    filename: str | None = None
    mimetype: str | None = None
    protected: bool = False

    def to_node(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION, "datasetSize": self.dataset_size, "blockSize": self.block_size,
            "blockCount": self.block_count, "chunker": self.chunker, "digest": self.digest,
            "index": self.index, "filename": self.filename, "mimetype": self.mimetype,
            "protected": self.protected,
        }

    def encode(self) -> tuple[CID, bytes]:
        return dag.encode_node(self.to_node())

    @classmethod
    def decode(cls, data: bytes, cid: CID | None = None) -> Manifest:
        """Decode and validate a manifest completely (types, sizes, safe names).

        Anything malformed is an IntegrityError, so a manifest that decodes can always be
        listed, shown and downloaded; the index is checked against it when it is loaded.
        """
        what = f"{cid or 'block'} is not a valid hoard manifest"
        if len(data) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"{what}: {len(data)} bytes (at most {MAX_MANIFEST_BYTES})", cid=str(cid))
        node = dag.decode(data, "manifest")
        problem = _manifest_problem(node)
        if problem is not None:
            raise IntegrityError(f"{what}: {problem}", cid=str(cid))
        return cls(
            dataset_size=node["datasetSize"], block_size=node["blockSize"], block_count=node["blockCount"],
            chunker=node["chunker"], digest=node["digest"], index=node["index"], filename=node.get("filename"),
            mimetype=node.get("mimetype"), protected=node.get("protected", False),
        )

    def to_json(self) -> dict[str, Any]:
        """The Logos/Codex JSON view (plus hoard's own `blockCount`, `chunker`, `digest`)."""
        return {
            "treeCid": str(self.index), "datasetSize": self.dataset_size, "blockSize": self.block_size,
            "filename": self.filename, "mimetype": self.mimetype, "protected": self.protected,
            "blockCount": self.block_count, "chunker": self.chunker, "digest": self.digest.hex(),
        }


_REQUIRED = {"version", "datasetSize", "blockSize", "blockCount", "chunker", "digest", "index"}
_OPTIONAL = {"filename", "mimetype", "protected"}
_CDC = re.compile(r"fastcdc-v2020\(([0-9]{1,8}),([0-9]{1,8}),([0-9]{1,8})\)")
# Bidirectional overrides and isolates reorder what a terminal shows: never part of a name.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _manifest_problem(node: Any) -> str | None:
    """What is wrong with a decoded manifest node, or None when it is valid."""
    if not isinstance(node, dict):
        return "not a map"
    keys = set(node)
    if not keys >= _REQUIRED:
        return f"missing {', '.join(sorted(_REQUIRED - keys))}"
    if not keys <= _REQUIRED | _OPTIONAL:
        return f"unknown fields {', '.join(sorted(map(str, keys - _REQUIRED - _OPTIONAL)))[:200]}"
    if node["version"] != FORMAT_VERSION or type(node["version"]) is not int:
        return f"unsupported version {node['version']!r:.40}"
    size, block_size, count = node["datasetSize"], node["blockSize"], node["blockCount"]
    if not _is_int(count, 0, MAX_DATASET_BLOCKS):
        return f"blockCount must be an integer in 0..{MAX_DATASET_BLOCKS}"
    if not _is_int(block_size, 1, MAX_BLOCK_BYTES):
        return f"blockSize must be an integer in 1..{MAX_BLOCK_BYTES}"
    if not _is_int(size, 0, count * MAX_BLOCK_BYTES):
        return f"datasetSize must be an integer in 0..blockCount x {MAX_BLOCK_BYTES}"
    chunker = node["chunker"]
    if not isinstance(chunker, str) or len(chunker) > MAX_CHUNKER_TEXT:
        return "chunker must be a short string"
    if chunker != "fixed":
        cdc = _CDC.fullmatch(chunker)
        if cdc is None:
            return f"unknown chunker {escape_text(chunker)}"
        low, avg, high = (int(g) for g in cdc.groups())
        if not 0 < low <= avg <= high <= MAX_BLOCK_BYTES or block_size != avg:
            return f"inconsistent chunker {chunker} for blockSize {block_size}"
    digest = node["digest"]
    if not isinstance(digest, bytes) or len(digest) != 32:
        return "digest must be 32 bytes"
    index = node["index"]
    if not isinstance(index, CID) or index.codec != DAG_CBOR:
        return "index must be a link to a dag-cbor node"
    filename = node.get("filename")
    if filename is not None and (reason := name_problem(filename)) is not None:
        return f"filename {reason}"
    mimetype = node.get("mimetype")
    if mimetype is not None and (reason := mimetype_problem(mimetype)) is not None:
        return f"mimetype {reason}"
    if type(node.get("protected", False)) is not bool:
        return "protected must be a boolean"
    return None


def name_problem(name: Any) -> str | None:
    """Why `name` is not a safe dataset filename, or None.

    A safe name is one path component of 1..MAX_FILENAME_BYTES UTF-8 bytes: no `/` or `\\`,
    not `.` or `..`, and no control, line-separator or bidirectional-override characters
    (which would let a peer write escape sequences to a terminal or disguise a name).
    """
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if not 0 < size <= MAX_FILENAME_BYTES:
        return f"must be 1..{MAX_FILENAME_BYTES} bytes"
    if name in (".", "..") or "/" in name or "\\" in name:
        return f"{escape_text(name)} is not a plain file name"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI for c in name):
        return f"{escape_text(name)} holds control characters"
    return None


def mimetype_problem(mimetype: Any) -> str | None:
    """Why `mimetype` is not a valid media type (`type/subtype[; params]`, printable ASCII), or None."""
    if not isinstance(mimetype, str):
        return f"must be a string, not {type(mimetype).__name__}"
    if not 0 < len(mimetype) <= MAX_MIMETYPE_BYTES or not all(" " <= c <= "~" for c in mimetype):
        return f"must be 1..{MAX_MIMETYPE_BYTES} printable ASCII characters"
    if "/" not in mimetype.split(";", 1)[0]:
        return f"{mimetype} is not a media type"
    return None


def check_name(name: str | None, mimetype: str | None = None) -> None:
    """Refuse (InvalidArgumentError) a filename or mimetype a manifest may not carry."""
    if name is not None and (reason := name_problem(name)) is not None:
        raise InvalidArgumentError(f"the filename {reason}", filename=escape_text(str(name)))
    if mimetype is not None and (reason := mimetype_problem(mimetype)) is not None:
        raise InvalidArgumentError(f"the mimetype {reason}", mimetype=escape_text(str(mimetype)))


def escape_text(text: str, limit: int = 300) -> str:
    """`text` safe to print to a terminal or a log: non-printable characters as escapes."""
    out = "".join(c if c.isprintable() and c not in _BIDI else
                  (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                   else f"\\U{ord(c):08x}") for c in text[:limit])
    return out + ("..." if len(text) > limit else "")


def guess_mimetype(filename: str | None) -> str | None:
    if not filename:
        return None
    return mimetypes.guess_type(filename, strict=False)[0]


def is_dag(cid: CID) -> bool:
    return cid.codec == DAG_CBOR

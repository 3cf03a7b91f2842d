"""The Logos manifest: the protobuf that names a dataset's tree, sizes, filename and mimetype.

Sources: the January 2026 coder (nim-codex / logos-storage-nim `codex/manifest/coders.nim`,
written with nim-libp2p's minprotobuf) and the later one (`storage/manifest/coders.nim`,
protobuf_serialization, with `manifestVersion`); `codex/manifest/manifest.nim` for blocksCount.

Encoded bytes: an outer message whose field 1 holds the encoded `Header`:

    January 2026 ("legacy")               later ("versioned", manifestVersion = 0)
    1 treeCid      bytes (binary CID)     1 manifestVersion  0
    2 blockSize    varint                 2 treeCid          bytes
    3 datasetSize  varint (unpadded)      3 blockSize        varint
    4 codec        0xCD02 codex-block     4 datasetSize      varint
    5 hcodec       0x12 sha2-256          5 codec            0xCD02
    6 version      2 (CIDv1 as nim-libp2p's CidVersion ordinal: CIDvIncorrect, CIDv0, CIDv1)
    7 erasure      (protected datasets)   6 hcodec           0x12
    8 filename     base name, optional    7 version          2
    9 mimetype     optional               8 filename, 9 mimetype: optional
    10 uploadedAt  (some nim-codex versions)

The two are told apart by the wire type of header field 1 (bytes in the first, a varint in the
second); the later format cannot read the first, hoard reads both and writes the first by
default (that is what gives `"Hello World!"` as hello.txt the CID Logos clients expect). The
manifest CID is CIDv1, codec codex-manifest (0xCD01), sha2-256 of the encoded bytes.

Decoding checks everything: the CID and hash of the bytes when the CID is given, every field's
presence and wire type, the codecs, the tree CID (codex-root sha2-256), the sizes (the block
count `ceil(datasetSize / blockSize)` within hoard's limit) and a safe filename. Malformed bytes
raise IntegrityError; a well-formed manifest hoard cannot use (erasure-coded, a later
manifestVersion) raises InvalidArgumentError. Unknown fields are skipped, as both Logos coders do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from hoard.content.formats import _logos_pb as pb
from hoard.content.manifest import escape_text
from hoard.content.manifest import name_problem as safe_name_problem
from hoard.errors import IntegrityError, InvalidArgumentError, InvalidCidError
from hoard.ids.cid import CID, CODEX_BLOCK, CODEX_MANIFEST, CODEX_ROOT, SHA2_256
from hoard.limits import MAX_DATASET_BLOCKS

#: Logos's DefaultBlockSize.
DEFAULT_BLOCK_SIZE: Final = 65536
#: Largest block size hoard accepts in a Logos manifest (a block is held whole, padded, in memory).
MAX_BLOCK_SIZE: Final = 64 << 20
#: Largest encoded manifest hoard reads (a real one is under 400 bytes).
MAX_MANIFEST_BYTES: Final = 64 << 10
#: Longest filename and mimetype, in UTF-8 bytes.
MAX_NAME_BYTES: Final = 255
#: nim-libp2p's `CidVersion` ordinal of CIDv1, as Logos writes it in field `version`.
CIDV1_ORDINAL: Final = 2
_MAX_U64: Final = (1 << 64) - 1


def name_problem(kind: str, value: object) -> str | None:
    """What is wrong with a filename or mimetype (`kind`) for a Logos manifest, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        return f"{kind} must be text, got {type(value).__name__}"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{kind} {value!r} is not valid Unicode text"
    if size > MAX_NAME_BYTES:
        return f"{kind} is longer than {MAX_NAME_BYTES} bytes"
    if kind == "mimetype":
        if any(not " " <= c <= "~" for c in value):
            return f"mimetype {value!r} is not printable ASCII"
        return None
    if value and safe_name_problem(value) is not None:  # the one check of dataset names (content.manifest)
        return (f"filename {escape_text(value)!r} is not a safe base name (no '/', '\\\\', '.' or '..', no control, "
                "line-separator or bidirectional-override characters)")
    return None


def _problem(m: LogosManifest) -> str | None:
    """What is wrong with a manifest's values, or None."""
    if not isinstance(m.tree_cid, CID) or (m.tree_cid.version, m.tree_cid.codec, m.tree_cid.hash_code) != (
            1, CODEX_ROOT, SHA2_256):
        return f"treeCid {m.tree_cid} is not a Logos tree CID (CIDv1 codex-root sha2-256)"
    for name, value, low, high in (("blockSize", m.block_size, 1, MAX_BLOCK_SIZE),
                                   ("datasetSize", m.dataset_size, 1, _MAX_U64)):
        if type(value) is not int or not low <= value <= high:
            return f"{name} {value!r} is outside {low}..{high}"
    blocks = -(-m.dataset_size // m.block_size)
    if blocks > MAX_DATASET_BLOCKS:
        return (f"datasetSize {m.dataset_size} in blocks of {m.block_size} is {blocks} blocks, "
                f"more than the limit of {MAX_DATASET_BLOCKS}")
    if m.manifest_version not in (None, 0):
        return f"manifestVersion {m.manifest_version!r} is not supported (only 0)"
    if m.uploaded_at is not None and (m.manifest_version is not None or type(m.uploaded_at) is not int
                                      or not 1 <= m.uploaded_at < 1 << 63):
        return f"uploadedAt {m.uploaded_at!r} is invalid (a positive time, January 2026 format only)"
    return name_problem("filename", m.filename) or name_problem("mimetype", m.mimetype)


@dataclass(frozen=True)
class LogosManifest:
    """A Logos dataset's manifest. The constructor validates (InvalidArgumentError).

    `filename` and `mimetype` are None when absent (an empty string is written as an empty
    field, as Logos does, and reads back as None). `manifest_version` None selects the January
    2026 encoding, 0 the later one; `uploaded_at` exists only in some nim-codex versions of the
    first.
    """

    tree_cid: CID
    dataset_size: int
    block_size: int = DEFAULT_BLOCK_SIZE
    filename: str | None = None
    mimetype: str | None = None
    manifest_version: int | None = None
    uploaded_at: int | None = None

    def __post_init__(self) -> None:
        problem = _problem(self)
        if problem:
            raise InvalidArgumentError(f"invalid Logos manifest: {problem}")

    @property
    def blocks_count(self) -> int:
        """ceil(datasetSize / blockSize): the number of blocks, the leaves of the tree."""
        return -(-self.dataset_size // self.block_size)

    def block_length(self, index: int) -> int:
        """How many of block `index`'s bytes are data (the rest of the last block is padding)."""
        if not 0 <= index < self.blocks_count:
            raise InvalidArgumentError(f"block index {index} is outside 0..{self.blocks_count - 1}")
        return min(self.block_size, self.dataset_size - index * self.block_size)

    # -- bytes -------------------------------------------------------------------------------
    def encode(self) -> tuple[CID, bytes]:
        """The manifest's CID and encoded bytes."""
        common: dict[str, Any] = {
            "tree_cid": self.tree_cid.binary, "block_size": self.block_size, "dataset_size": self.dataset_size,
            "codec": CODEX_BLOCK, "hcodec": SHA2_256, "version": CIDV1_ORDINAL,
            "filename": None if self.filename is None else self.filename.encode(),
            "mimetype": None if self.mimetype is None else self.mimetype.encode(),
        }
        if self.manifest_version is None:
            header = pb.encode("LegacyHeader", {**common, "uploaded_at": self.uploaded_at})
        else:
            header = pb.encode("VersionedHeader", {"manifest_version": self.manifest_version, **common})
        data = pb.encode("Envelope", {"header": header})
        return CID.sha256(data, CODEX_MANIFEST), data

    @classmethod
    def decode(cls, data: bytes | memoryview, cid: CID | None = None) -> LogosManifest:
        """Read and validate a manifest; with `cid`, also check that the bytes are that CID's."""
        data = bytes(data)
        if cid is not None:
            if (cid.version, cid.codec, cid.hash_code) != (1, CODEX_MANIFEST, SHA2_256):
                raise InvalidArgumentError(f"{cid} is not a Logos manifest CID (CIDv1 codex-manifest sha2-256)",
                                           cid=str(cid))
            cid.verify(data)
        what = "Logos manifest"
        if not data:
            raise IntegrityError(f"invalid {what}: empty")
        if len(data) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"invalid {what}: {len(data)} bytes is more than {MAX_MANIFEST_BYTES}")
        header = pb.fields("Envelope", pb.parse("Envelope", data, what), what).get(1)
        if header is None:
            raise IntegrityError(f"invalid {what}: no Header (field 1)")
        legacy = pb.parse("LegacyHeader", header, what)
        if pb.wire_types_of_unknown(legacy).get(1) == pb.VARINT:
            got = pb.fields("VersionedHeader", pb.parse("VersionedHeader", header, what), what)
            required = {1: "manifestVersion", 2: "treeCid", 3: "blockSize", 4: "datasetSize", 5: "codec",
                        6: "hcodec", 7: "version"}
            _require(got, required, what)
            if got[1] != 0:
                raise InvalidArgumentError(f"unsupported {what}: manifestVersion {got[1]} (hoard reads 0)")
            values = {"manifest_version": 0, "tree": got[2], "block_size": got[3], "dataset_size": got[4],
                      "codec": got[5], "hcodec": got[6], "version": got[7], "uploaded_at": None}
        else:
            got = pb.fields("LegacyHeader", legacy, what)
            _require(got, {1: "treeCid", 2: "blockSize", 3: "datasetSize", 4: "codec", 5: "hcodec",
                           6: "version"}, what)
            if got.get(7):
                raise InvalidArgumentError(f"unsupported {what}: a protected (erasure-coded) dataset")
            values = {"manifest_version": None, "tree": got[1], "block_size": got[2], "dataset_size": got[3],
                      "codec": got[4], "hcodec": got[5], "version": got[6], "uploaded_at": got.get(10) or None}
        for field, expected in (("codec", CODEX_BLOCK), ("hcodec", SHA2_256), ("version", CIDV1_ORDINAL)):
            if values[field] != expected:
                raise IntegrityError(f"invalid {what}: {field} is {values[field]:#x}, expected {expected:#x}")
        try:
            tree = CID(values["tree"])
        except InvalidCidError as exc:
            raise IntegrityError(f"invalid {what}: treeCid is not a CID ({exc.message})") from exc
        names = [_text(got.get(number), name, what) for number, name in ((8, "filename"), (9, "mimetype"))]
        manifest = cls.__new__(cls)
        fields = {"tree_cid": tree, "dataset_size": values["dataset_size"], "block_size": values["block_size"],
                  "filename": names[0], "mimetype": names[1], "manifest_version": values["manifest_version"],
                  "uploaded_at": values["uploaded_at"]}
        for name, value in fields.items():
            object.__setattr__(manifest, name, value)
        problem = _problem(manifest)
        if problem:
            raise IntegrityError(f"invalid {what}: {problem}")
        return manifest

    def to_json(self) -> dict[str, Any]:
        """The manifest as Logos's REST and C API print it."""
        return {"treeCid": str(self.tree_cid), "datasetSize": self.dataset_size, "blockSize": self.block_size,
                "filename": self.filename, "mimetype": self.mimetype, "protected": False}


def _require(got: dict[int, Any], names: dict[int, str], what: str) -> None:
    missing = [name for number, name in names.items() if number not in got]
    if missing:
        raise IntegrityError(f"invalid {what}: missing {', '.join(missing)}")


def _text(value: bytes | None, name: str, what: str) -> str | None:
    if not value:
        return None  # absent or empty: Logos reads both as none
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IntegrityError(f"invalid {what}: {name} is not UTF-8") from exc

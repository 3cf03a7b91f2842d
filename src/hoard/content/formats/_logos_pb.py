"""The protobuf messages of the Logos format, built at run time from a descriptor.

The messages are described here with `descriptor_pb2` and registered in a private pool, so no
generated code or build step is involved and nothing clashes with hoard's compiled protos.
protobuf's serializer writes set fields in field-number order, exactly as nim-libp2p's
minprotobuf writes them in the Logos coders (every field is `optional`, proto2, so a field that
is set is written even when it is zero, as minprotobuf does), so the bytes, and therefore the
CIDs, are Logos's. Integers are declared uint64 whatever Logos declares (uint32 or uint64: the
varint bytes are the same), so an oversized value is read whole and refused by the validation
instead of being silently truncated.

`fields()` reads a parsed message back as `{field number: value}` and refuses a known field that
arrived with another wire type (protobuf would file it among the unknown fields and carry on).
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    unknown_fields,
)
from google.protobuf.message import DecodeError, Message

from hoard.errors import IntegrityError

_F = descriptor_pb2.FieldDescriptorProto
_U64, _BYTES, _MSG = _F.TYPE_UINT64, _F.TYPE_BYTES, _F.TYPE_MESSAGE
_PACKAGE = "hoard.formats.logos"
#: protobuf wire types
VARINT: Final = 0
LENGTH: Final = 2

# message name -> [(field name, number, type, repeated message type or "")]
_MESSAGES: dict[str, list[tuple[str, int, int, str]]] = {
    # ManifestEnvelope / the outer dag-pb-like node: field 1 carries the encoded Header
    "Envelope": [("header", 1, _BYTES, "")],
    # Header of the January 2026 format (logos-storage-nim / nim-codex codex/manifest/coders.nim)
    "LegacyHeader": [
        ("tree_cid", 1, _BYTES, ""), ("block_size", 2, _U64, ""), ("dataset_size", 3, _U64, ""),
        ("codec", 4, _U64, ""), ("hcodec", 5, _U64, ""), ("version", 6, _U64, ""),
        ("erasure", 7, _BYTES, ""), ("filename", 8, _BYTES, ""), ("mimetype", 9, _BYTES, ""),
        ("uploaded_at", 10, _U64, ""),
    ],
    # the later format with manifestVersion (storage/manifest/coders.nim, protobuf_serialization)
    "VersionedHeader": [
        ("manifest_version", 1, _U64, ""), ("tree_cid", 2, _BYTES, ""), ("block_size", 3, _U64, ""),
        ("dataset_size", 4, _U64, ""), ("codec", 5, _U64, ""), ("hcodec", 6, _U64, ""),
        ("version", 7, _U64, ""), ("filename", 8, _BYTES, ""), ("mimetype", 9, _BYTES, ""),
    ],
    # CodexProof (codex/merkletree/codex/coders.nim): path nodes are wrapped one per message
    "ProofNode": [("hash", 1, _BYTES, "")],
    "Proof": [("mcodec", 1, _U64, ""), ("index", 2, _U64, ""), ("nleaves", 3, _U64, ""),
              ("path", 4, _MSG, "ProofNode")],
    # CodexTree: every node of every layer, bottom layer first
    "Tree": [("mcodec", 1, _U64, ""), ("leaves_count", 2, _U64, ""), ("nodes", 3, _MSG, "ProofNode")],
}


def _build() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(name="hoard/formats/logos.proto", package=_PACKAGE,
                                              syntax="proto2")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind,
                                      label=_F.LABEL_REPEATED if type_name else _F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in _MESSAGES}


_CLASSES: Final = _build()
_WIRE = {name: {number: LENGTH if kind in (_BYTES, _MSG) else VARINT for _, number, kind, _ in fields}
         for name, fields in _MESSAGES.items()}


def encode(name: str, values: dict[str, Any]) -> bytes:
    """Serialize message `name` with the given fields set (None values are left unset)."""
    message = _CLASSES[name]()
    for field, value in values.items():
        if value is None:
            continue
        if isinstance(value, list):  # repeated ProofNode
            repeated = getattr(message, field)
            for node in value:
                repeated.add(hash=node)
        else:
            setattr(message, field, value)
    return message.SerializeToString()


def parse(name: str, data: bytes, what: str) -> Message:
    """Parse message `name`; IntegrityError naming `what` if the bytes are not protobuf."""
    message = _CLASSES[name]()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise IntegrityError(f"invalid {what}: not a protobuf message ({exc})") from exc
    return message


def wire_types_of_unknown(message: Message) -> dict[int, int]:
    """Field number -> wire type of the fields protobuf did not match to the descriptor."""
    unknown = unknown_fields.UnknownFieldSet(message)
    return {unknown[i].field_number: unknown[i].wire_type for i in range(len(unknown))}


def fields(name: str, message: Message, what: str) -> dict[int, Any]:
    """The fields of a parsed `name` that are set, by number; IntegrityError on a wrong wire type."""
    expected = _WIRE[name]
    for number, wire in wire_types_of_unknown(message).items():
        if number in expected:
            raise IntegrityError(f"invalid {what}: field {number} has wire type {wire}, "
                                 f"expected {expected[number]}")
    return {descriptor.number: value for descriptor, value in message.ListFields()}

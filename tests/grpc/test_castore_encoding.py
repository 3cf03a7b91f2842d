"""castore's BlobChunk as the server encodes (Read) and decodes (Put) it: byte for byte protobuf's."""

import os

import pytest
from google.protobuf.message import DecodeError

from hoard.api.grpc.castore import decode_chunk, encode_chunk, messages


@pytest.mark.parametrize("size", [0, 1, 127, 128, 16383, 16384, 2097151, 2097152, 3_000_001])
def test_encoding_is_protobufs(size):
    data = os.urandom(size)
    wire = messages.BlobChunk(data=data).SerializeToString()
    assert encode_chunk(data) == wire
    assert encode_chunk(memoryview(data)) == wire
    assert bytes(decode_chunk(wire)) == data


@pytest.mark.parametrize("wire", [
    messages.BlobChunk(data=b"a").SerializeToString() + messages.BlobChunk(data=b"bc").SerializeToString(),
    b"\x10\x05" + messages.BlobChunk(data=b"bc").SerializeToString(),
    messages.BlobChunk(data=b"bc").SerializeToString() + b"\x10\x05",
    b"\x0a\x80\x00",  # a non-minimal length varint (0)
    b"",
])
def test_other_encodings_decode_as_protobuf_does(wire):
    assert bytes(decode_chunk(wire)) == messages.BlobChunk.FromString(wire).data


def test_a_truncated_message_is_refused():
    with pytest.raises(DecodeError):
        decode_chunk(b"\x0a\x05ab")

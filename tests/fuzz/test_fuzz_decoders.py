"""Property-based fuzzing of every decoder of outside input (hypothesis).

For each decoder: random bytes, and bytes mutated from a valid encoding, either decode or
raise the decoder's documented error, never anything else, in bounded time (pytest-timeout
bounds each test; every example is small). Manifests that decode can always be shown as
JSON, so listing a store can never break on one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoard.content import dag
from hoard.content.formats import dagpb, unixfs
from hoard.content.formats.logos_manifest import LogosManifest
from hoard.content.index import decode_index_node
from hoard.content.manifest import Manifest, name_problem
from hoard.errors import (
    IntegrityError,
    InvalidArgumentError,
    InvalidCidError,
    LogError,
    PeerError,
)
from hoard.framing import ProtocolError
from hoard.ids import CID, DAG_CBOR
from hoard.logs import wire as log_wire
from hoard.logs.metadata import Metadata
from hoard.net import wire as block_wire
from hoard.net.bitswap.message import ProtocolViolation
from hoard.net.bitswap.message import parse as parse_bitswap
from hoard.transfer import wire as transfer_wire
from hoard.transfer.messages import decode_message, encode_message, new_request
from hoard.transfer.vouchers import EncodedVoucher

pytestmark = pytest.mark.timeout(300)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INDEX_CID = CID.of(b"index", DAG_CBOR)


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """Bytes near a valid encoding: flipped, cut, extended, spliced."""
    n = len(valid)

    def flip(args: tuple[int, int]) -> bytes:
        pos, value = args
        return valid[:pos % n] + bytes([value]) + valid[pos % n + 1:]

    return st.one_of(
        st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, 255)).map(flip),
        st.integers(0, n).map(lambda cut: valid[:cut]),
        st.binary(max_size=64).map(lambda tail: valid + tail),
        st.tuples(st.integers(0, n), st.binary(max_size=64)).map(lambda a: valid[:a[0]] + a[1] + valid[a[0]:]),
    )


def _only(errors: tuple[type[BaseException], ...], fn: Callable[[], Any]) -> Any:
    """Run `fn`; the documented errors are fine, anything else fails the test."""
    try:
        return fn()
    except errors:
        return None


# -- identifiers --------------------------------------------------------------------------------
VALID_CID = str(CID.of(b"fuzz"))


@FUZZ
@given(st.one_of(st.text(max_size=1000), _mutations(VALID_CID.encode()).map(lambda b: b.decode("latin-1")),
                 st.from_regex(r"\A[zbfmuBFk]?[0-9A-Za-z+/=_-]{0,800}\Z")))
def test_cid_text(text: str) -> None:
    _only((InvalidCidError, InvalidArgumentError), lambda: CID.parse(text))


def test_cid_text_of_any_length_is_refused_in_bounded_time() -> None:
    for prefix in ("z", "f", "b", "m", "k", "B"):
        with pytest.raises(InvalidArgumentError):
            CID.parse(prefix + "1" * 200_000)


@FUZZ
@given(st.binary(max_size=200))
def test_cid_bytes(data: bytes) -> None:
    _only((InvalidCidError, InvalidArgumentError), lambda: CID(data))


# -- dag-cbor, hoard manifests and block-index nodes ---------------------------------------------
_cbor_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**64), 2**64 - 1), st.text(max_size=40),  # dag-cbor's
                       st.binary(max_size=40), st.floats(allow_nan=False, allow_infinity=False),  # values
                       st.just(INDEX_CID))
_cbor = st.recursive(_cbor_leaf, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                         st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                     max_leaves=20)
_VALID_MANIFEST = Manifest(100, 64, 2, "fixed", b"\1" * 32, INDEX_CID, "a.txt", "text/plain")
_FIELDS = list(_VALID_MANIFEST.to_node())


@FUZZ
@given(st.one_of(st.binary(max_size=2000), _mutations(dag.encode(_VALID_MANIFEST.to_node()))))
def test_dag_cbor_and_manifest_bytes(data: bytes) -> None:
    _only((IntegrityError,), lambda: dag.decode(data))
    manifest = _only((IntegrityError,), lambda: Manifest.decode(data))
    if manifest is not None:
        json.dumps(manifest.to_json())


@FUZZ
@given(st.dictionaries(st.sampled_from(_FIELDS), _cbor, max_size=4))
def test_manifest_fields_of_any_type(changes: dict[str, Any]) -> None:
    node = {**_VALID_MANIFEST.to_node(), **changes}
    manifest = _only((IntegrityError,), lambda: Manifest.decode(dag.encode(node)))
    if manifest is not None:  # whatever decodes can be listed and shown, and names are safe
        json.dumps(manifest.to_json())
        assert manifest.filename is None or name_problem(manifest.filename) is None
        assert isinstance(manifest.dataset_size, int) and isinstance(manifest.block_count, int)


@FUZZ
@given(st.one_of(
    st.binary(max_size=2000),
    st.lists(st.lists(st.one_of(st.just(INDEX_CID), _cbor_leaf), max_size=4), max_size=20)
      .map(lambda entries: dag.encode({"blocks": entries})),
    st.lists(st.lists(st.one_of(st.just(INDEX_CID), _cbor_leaf), max_size=4), max_size=20)
      .map(lambda entries: dag.encode({"children": entries})),
    _cbor.map(dag.encode),
))
def test_index_nodes(data: bytes) -> None:
    node = _only((IntegrityError,), lambda: decode_index_node(data, INDEX_CID))
    if node is not None:
        assert len(node.entries) <= 1024 and all(n >= 1 for _, _, n in node.entries)


# -- other dataset formats -----------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=3000))
def test_logos_manifests(data: bytes) -> None:
    _only((IntegrityError, InvalidArgumentError), lambda: LogosManifest.decode(data))


@FUZZ
@given(st.binary(max_size=3000))
def test_dag_pb_nodes_and_unixfs_data(data: bytes) -> None:
    _only((InvalidArgumentError, IntegrityError), lambda: dagpb.decode_node(data))
    _only((InvalidArgumentError, IntegrityError), lambda: unixfs.decode_data(data))


# -- /hoard/blocks/1 and bitswap -------------------------------------------------------------------
_VALID_WANT = block_wire.encode_want(7, [CID.of(b"a"), CID.of(b"b")])[4:]


@FUZZ
@given(st.one_of(st.binary(max_size=1000), _mutations(_VALID_WANT)))
def test_block_want_frames(body: bytes) -> None:
    _only((ProtocolError,), lambda: block_wire.decode_want(body))


class _Bytes:
    """A stream that returns `data` in pieces of `step` bytes, then EOF."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step = data, step

    async def read(self, n: int | None = None) -> bytes:
        piece, self.data = self.data[:self.step], self.data[self.step:]
        return piece


@FUZZ
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_frame_readers(data: bytes, step: int) -> None:
    async def read_all() -> None:
        replies = block_wire.FrameReader(_Bytes(data, step))
        while await replies.next_reply() is not None:
            pass

    async def read_bodies() -> None:
        frames = log_wire.FrameReader(_Bytes(data, step))
        while await frames.next_body() is not None:
            pass

    for run in (read_all, read_bodies):
        _only((ProtocolError, PeerError), lambda run=run: trio.run(run))


@FUZZ
@given(st.binary(max_size=2000))
def test_bitswap_messages(body: bytes) -> None:
    _only((ProtocolViolation,), lambda: parse_bitswap(body))


# -- /hoard/logs/1 ---------------------------------------------------------------------------------
_LOG_DECODERS = [log_wire.decode_call_name, log_wire.decode_append, log_wire.decode_read, log_wire.decode_subscribe,
                 log_wire.decode_sid, log_wire.decode_call, log_wire.decode_info, log_wire.decode_count,
                 log_wire.decode_record, log_wire.decode_error, log_wire.decode_failure, log_wire.decode_end]


@FUZZ
@given(st.binary(min_size=1, max_size=1500))
def test_log_frames(body: bytes) -> None:
    for decode in _LOG_DECODERS:
        _only((ProtocolError,), lambda decode=decode: decode(body))
    _only((LogError,), lambda: Metadata.parse(body))


@FUZZ
@given(st.integers(0, 2**32 - 1), st.binary(max_size=40), st.one_of(st.binary(max_size=300),
                                                                    _cbor.map(lambda v: json.dumps(v, default=str).encode())))
def test_log_error_details(call: int, tail: bytes, detail: bytes) -> None:
    for flag in (b"\x00", b"\x01"):
        body = bytes([log_wire.ERROR]) + call.to_bytes(4, "big") + flag + tail + detail
        _only((ProtocolError,), lambda body=body: log_wire.decode_error(body))


# -- /hoard/transfer/1 -----------------------------------------------------------------------------
_VALID_MESSAGE = encode_message(new_request(3, EncodedVoucher("hoard/transfer/voucher/1", b"note"), CID.of(b"x")))


@FUZZ
@given(st.one_of(st.binary(max_size=2000), _mutations(_VALID_MESSAGE), _cbor.map(dag.encode)))
def test_transfer_messages(data: bytes) -> None:
    _only((InvalidArgumentError,), lambda: decode_message(data))


@FUZZ
@given(st.integers(1, 6), st.binary(max_size=1500))
def test_transfer_frames(kind: int, rest: bytes) -> None:
    body = bytes([kind]) + rest
    for decode in (transfer_wire.decode_block, transfer_wire.decode_have, transfer_wire.decode_total,
                   transfer_wire.decode_error):
        _only((ProtocolError,), lambda decode=decode: decode(body))


def test_large_inputs_are_refused_or_decoded_in_bounded_time() -> None:
    big = os.urandom(4 << 20)
    for fn in (lambda: dag.decode(big), lambda: Manifest.decode(big), lambda: decode_index_node(big, INDEX_CID)):
        _only((IntegrityError,), fn)
    _only((InvalidArgumentError,), lambda: decode_message(big))
    _only((ProtocolError,), lambda: block_wire.decode_want(b"\x01" + big))
    deep = b"\x81" * 100_000 + b"\x00"  # a list nested 100,000 deep
    _only((IntegrityError,), lambda: dag.decode(deep))
    _only((InvalidArgumentError,), lambda: decode_message(deep))

"""`/hoard/logs/1` on the wire: the messages between a log's client and its host.

Every message is a frame: a 4-byte big-endian body length, then the body, whose first byte is
the message type. One stream carries one client's whole conversation with one host: calls
(numbered by the client, answered in any order by call number), appends, and the records of
any number of subscriptions (numbered by the client: `sid`). Integers are big-endian; `name`
is the 32-byte log name; `record` is a record's stored encoding (`Datum.encode()`: recno, ts,
prevhash, signature, data), so what crosses the wire is exactly what is signed and hashed.

```
client → host
OPEN         0x01  call:u32 name                      → INFO | ERROR
NRECS        0x02  call:u32 name                      → COUNT | ERROR
APPEND       0x03  call:u32 name record               → OK (durable) | ERROR (with the chain head)
READ         0x04  call:u32 name recno:i64            → RECORD | ERROR
READ_TS      0x05  call:u32 name ts:i64               → RECORD | ERROR
SUBSCRIBE    0x06  call:u32 name sid:u32 kind:u8 by_ts:u8 start:i64 numrecs:i64
                                                      → OK, then DATA/FAILURE… END | ERROR
UNSUBSCRIBE  0x07  sid:u32                            (no answer; nothing more for sid)
CREDIT       0x08  bytes:u32                          (flow control, below)

host → client
INFO         0x81  call:u32 nrecs:u64 last_hash:32 last_ts:i64 metadata (GDP serialization)
COUNT        0x82  call:u32 nrecs:u64
OK           0x83  call:u32
RECORD       0x84  call:u32 record
ERROR        0x85  call:u32 has_tail:u8 [nrecs:u64 last_hash:32 last_ts:i64] detail (JSON)
DATA         0x86  sid:u32 record
FAILURE      0x87  sid:u32 detail (JSON)
END          0x88  sid:u32 event:u8 stat:u16         (EVENT_EOS 202 | EVENT_SHUTDOWN 515)
```

`detail` is a small JSON object `{"status", "message", "gdp_stat"?, "recno"?}` (a LogError).
`kind` is 1 for subscribe, 2 for multiread.

Flow control. The host may send DATA and FAILURE frames while its credit for the stream is
positive; it starts with `INITIAL_CREDIT` bytes and subtracts each such frame's length. The
client gives credit back (`CREDIT`) as it consumes those frames, so neither end holds more than
about one window of records, and the client always reads the stream (a client resets a stream
whose host sends well past its credit). A client keeps at most
`MAX_INFLIGHT_APPENDS` appends (`MAX_INFLIGHT_BYTES`) unanswered; a host ends a stream that
exceeds twice that. A client keeps at most `LOG_MAX_OUTSTANDING_CALLS` calls unanswered (it
waits for room); a host resets a stream that exceeds it, holds further replies while
`LOG_MAX_UNSENT_REPLY_BYTES` of earlier ones are unread, and resets a stream whose peer reads
none of them for `LOG_REPLY_STALL_SECONDS` (bounds in hoard.limits).

Limits: a frame body is at most `MAX_FRAME` bytes, so a record's data is at most
`MAX_RECORD_DATA` (4 MiB) over the network; a larger one is refused (413) at the client, and
served as a FAILURE (413) by the host. A frame that breaks these rules ends the stream.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from hoard.errors import LogError
from hoard.framing import FrameReader as _FrameReader
from hoard.framing import ProtocolError, Readable
from hoard.logs.names import LogName
from hoard.logs.records import Datum
from hoard.logs.store import Tail

__all__ = [
    "APPEND", "COUNT", "CREDIT", "DATA", "END", "ERROR", "FAILURE", "INFO", "INITIAL_CREDIT", "LOGS_PROTOCOL",
    "MAX_FRAME", "MAX_INFLIGHT_APPENDS", "MAX_INFLIGHT_BYTES", "MAX_RECORD_DATA", "NRECS", "OK", "OPEN", "READ",
    "READ_TS", "RECORD", "SUBSCRIBE", "UNSUBSCRIBE", "FrameReader", "ProtocolError", "Subscribe",
]

LOGS_PROTOCOL = "/hoard/logs/1"

OPEN = 0x01
NRECS = 0x02
APPEND = 0x03
READ = 0x04
READ_TS = 0x05
SUBSCRIBE = 0x06
UNSUBSCRIBE = 0x07
CREDIT = 0x08
INFO = 0x81
COUNT = 0x82
OK = 0x83
RECORD = 0x84
ERROR = 0x85
DATA = 0x86
FAILURE = 0x87
END = 0x88

MAX_RECORD_DATA = 4 << 20
MAX_FRAME = MAX_RECORD_DATA + (64 << 10)  # a record plus its header, or metadata up to 4 MiB
INITIAL_CREDIT = 4 << 20
CREDIT_BATCH = 1 << 20  # the client returns credit in steps of at least this (≤ INITIAL_CREDIT)
MAX_INFLIGHT_APPENDS = 8192
MAX_INFLIGHT_BYTES = 16 << 20
MAX_MESSAGE = 1000  # characters of an error message sent

KIND_CODES = {"subscribe": 1, "multiread": 2}
KIND_NAMES = {code: kind for kind, code in KIND_CODES.items()}

_LEN = struct.Struct(">I")
_CALL = struct.Struct(">BI")  # type, call
_CALL_NAME = struct.Struct(">BI32s")
_READ = struct.Struct(">BI32sq")
_SUBSCRIBE = struct.Struct(">BI32sIBBqq")
_SID = struct.Struct(">BI")
_CREDIT = struct.Struct(">BI")
_INFO = struct.Struct(">BIQ32sq")
_COUNT = struct.Struct(">BIQ")
_TAIL = struct.Struct(">Q32sq")
_END = struct.Struct(">BIBH")


def frame(body: bytes) -> bytes:
    if len(body) > MAX_FRAME:
        raise LogError(f"message of {len(body)} bytes is over the {MAX_FRAME}-byte limit", status=413)
    return _LEN.pack(len(body)) + body


# -- client → host ------------------------------------------------------------------------

def open_msg(kind: int, call: int, name: LogName) -> bytes:
    """OPEN or NRECS."""
    return frame(_CALL_NAME.pack(kind, call, name.raw))


def _check_size(datum: Datum) -> None:
    if len(datum.data) > MAX_RECORD_DATA:
        raise LogError(f"record {datum.recno} of {len(datum.data)} bytes is over the {MAX_RECORD_DATA}-byte limit "
                       "of /hoard/logs/1", status=413, recno=datum.recno)


def append_msg(call: int, name: LogName, datum: Datum) -> bytes:
    _check_size(datum)
    return frame(_CALL_NAME.pack(APPEND, call, name.raw) + datum.encode())


def read_msg(kind: int, call: int, name: LogName, value: int) -> bytes:
    """READ (value = recno) or READ_TS (value = ts in ns)."""
    try:
        return frame(_READ.pack(kind, call, name.raw, value))
    except struct.error as exc:
        raise LogError(f"record number or timestamp {value} out of range", status=400) from exc


@dataclass(frozen=True, slots=True)
class Subscribe:
    call: int
    name: LogName
    sid: int
    kind: str
    by_ts: bool
    start: int
    numrecs: int


def subscribe_msg(sub: Subscribe) -> bytes:
    try:
        return frame(_SUBSCRIBE.pack(SUBSCRIBE, sub.call, sub.name.raw, sub.sid, KIND_CODES[sub.kind],
                                     int(sub.by_ts), sub.start, sub.numrecs))
    except struct.error as exc:
        raise LogError(f"start {sub.start} or numrecs {sub.numrecs} out of range", status=400) from exc


def unsubscribe_msg(sid: int) -> bytes:
    return frame(_SID.pack(UNSUBSCRIBE, sid))


def credit_msg(nbytes: int) -> bytes:
    return frame(_CREDIT.pack(CREDIT, nbytes))


# -- host → client ------------------------------------------------------------------------

def info_msg(call: int, tail: Tail, metadata: bytes) -> bytes:
    return frame(_INFO.pack(INFO, call, tail.nrecs, tail.last_hash, tail.last_ts) + metadata)


def count_msg(call: int, nrecs: int) -> bytes:
    return frame(_COUNT.pack(COUNT, call, nrecs))


def ok_msg(call: int) -> bytes:
    return frame(_CALL.pack(OK, call))


def record_msg(call: int, datum: Datum) -> bytes:
    _check_size(datum)
    return frame(_CALL.pack(RECORD, call) + datum.encode())


def _detail(error: LogError) -> bytes:
    out: dict[str, Any] = {"status": error.code, "message": error.message[:MAX_MESSAGE]}
    for key in ("gdp_stat", "recno"):
        value = error.fields.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            out[key] = value
    return json.dumps(out, separators=(",", ":")).encode()


def error_msg(call: int, error: LogError, tail: Tail | None = None) -> bytes:
    head = _CALL.pack(ERROR, call)
    if tail is None:
        return frame(head + b"\x00" + _detail(error))
    return frame(head + b"\x01" + _TAIL.pack(tail.nrecs, tail.last_hash, tail.last_ts) + _detail(error))


def data_msg(sid: int, datum: Datum) -> bytes:
    _check_size(datum)
    return frame(_SID.pack(DATA, sid) + datum.encode())


def failure_msg(sid: int, error: LogError) -> bytes:
    return frame(_SID.pack(FAILURE, sid) + _detail(error))


def end_msg(sid: int, event_type: int, stat: int) -> bytes:
    return frame(_END.pack(END, sid, event_type, stat))


# -- decoding -----------------------------------------------------------------------------

def _name(raw: bytes) -> LogName:
    try:
        return LogName(raw)
    except LogError as exc:  # cannot happen for a 32-byte slice; kept for safety
        raise ProtocolError(f"bad log name: {exc.message}") from exc


def _unpack(st: struct.Struct, body: bytes, exact: bool = False) -> tuple[Any, ...]:
    if len(body) < st.size or (exact and len(body) != st.size):
        raise ProtocolError(f"bad message of type 0x{body[:1].hex() or 'none'} ({len(body)} bytes)")
    return st.unpack_from(body)


def _record(raw: bytes) -> Datum:
    try:
        datum = Datum.decode(raw)
    except LogError as exc:
        raise ProtocolError(f"undecodable record: {exc.message}") from exc
    if len(datum.data) > MAX_RECORD_DATA:
        raise ProtocolError("record over the size limit")
    return datum


def decode_call_name(body: bytes) -> tuple[int, LogName]:
    """(call, name) of OPEN or NRECS."""
    _, call, raw = _unpack(_CALL_NAME, body, exact=True)
    return call, _name(raw)


def decode_append(body: bytes) -> tuple[int, LogName, Datum]:
    _, call, raw = _unpack(_CALL_NAME, body)
    return call, _name(raw), _record(body[_CALL_NAME.size:])


def decode_read(body: bytes) -> tuple[int, LogName, int]:
    _, call, raw, value = _unpack(_READ, body, exact=True)
    return call, _name(raw), value


def decode_subscribe(body: bytes) -> Subscribe:
    _, call, raw, sid, kind, by_ts, start, numrecs = _unpack(_SUBSCRIBE, body, exact=True)
    if kind not in KIND_NAMES or by_ts > 1:
        raise ProtocolError(f"bad subscribe request (kind {kind}, by_ts {by_ts})")
    return Subscribe(call, _name(raw), sid, KIND_NAMES[kind], bool(by_ts), start, numrecs)


def decode_sid(body: bytes) -> int:
    """The sid of UNSUBSCRIBE; the byte count of CREDIT."""
    return int(_unpack(_SID, body, exact=True)[1])


def decode_call(body: bytes) -> int:
    return int(_unpack(_CALL, body)[1])


def decode_info(body: bytes) -> tuple[int, Tail, bytes]:
    _, call, nrecs, last_hash, last_ts = _unpack(_INFO, body)
    return call, Tail(nrecs, last_hash, last_ts), body[_INFO.size:]


def decode_count(body: bytes) -> tuple[int, int]:
    _, call, nrecs = _unpack(_COUNT, body, exact=True)
    return call, nrecs


def decode_record(body: bytes) -> tuple[int, Datum]:
    """(call, record) of RECORD, (sid, record) of DATA."""
    _, number = _unpack(_CALL, body)
    return number, _record(body[_CALL.size:])


def _error_from(detail: bytes) -> LogError:
    try:
        fields = json.loads(detail)
        status = int(fields.pop("status"))
        message = str(fields.pop("message"))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise ProtocolError("undecodable error detail") from exc
    extra = {k: v for k, v in fields.items() if k in ("gdp_stat", "recno") and isinstance(v, (str, int))}
    return LogError(message, status=status, **extra)


def decode_error(body: bytes) -> tuple[int, LogError, Tail | None]:
    _, call = _unpack(_CALL, body)
    if len(body) < _CALL.size + 1:
        raise ProtocolError("short ERROR")
    pos = _CALL.size + 1
    tail = None
    if body[_CALL.size]:
        if len(body) < pos + _TAIL.size:
            raise ProtocolError("short ERROR")
        tail = Tail(*_TAIL.unpack_from(body, pos))
        pos += _TAIL.size
    return call, _error_from(body[pos:]), tail


def decode_failure(body: bytes) -> tuple[int, LogError]:
    _, sid = _unpack(_SID, body)
    return sid, _error_from(body[_SID.size:])


def decode_end(body: bytes) -> tuple[int, int, int]:
    _, sid, event_type, stat = _unpack(_END, body, exact=True)
    return sid, event_type, stat


class FrameReader(_FrameReader):
    """Frames of `/hoard/logs/1` (bodies up to MAX_FRAME)."""

    def __init__(self, stream: Readable, max_frame: int = MAX_FRAME) -> None:
        super().__init__(stream, max_frame)

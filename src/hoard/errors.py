"""hoard's one error tree. Every error a user sees is one of these.

```
HoardError                      code           gRPC               HTTP  exit
├── InvalidArgumentError        invalid        INVALID_ARGUMENT    400   2
│   └── InvalidCidError         invalid-cid    INVALID_ARGUMENT    400   2
├── NotFoundError               not-found      NOT_FOUND           404   3
├── AlreadyExistsError          exists         ALREADY_EXISTS      409   4
├── IntegrityError              integrity      DATA_LOSS           502   5
├── QuotaExceededError          quota          RESOURCE_EXHAUSTED  507   6
├── PeerError                   peer           UNAVAILABLE         502   7
├── TransferError               transfer       ABORTED             409   8
├── LogError                    log            (by GDP status)     (by status) 9
├── StateError                  state          FAILED_PRECONDITION 409   10
├── CancelledError              cancelled      CANCELLED           499   11
├── RepoLockedError             locked         UNAVAILABLE         423   12
└── RepoDamagedError            damaged        DATA_LOSS           500   13
```

Foreign exceptions are translated at each boundary with `map_exceptions` and raised `from`
their cause, so callers only ever catch `HoardError`. Each class carries a stable `code`
string, plus the gRPC status name, HTTP status and CLI exit code it maps to; the API layers
read those attributes instead of keeping their own tables. The way back, from what a remote
node answered to the error it raised, is `error_for` (the REST and gRPC clients use it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

__all__ = [
    "AlreadyExistsError",
    "CancelledError",
    "HoardError",
    "IntegrityError",
    "InvalidArgumentError",
    "InvalidCidError",
    "LogError",
    "NotFoundError",
    "PeerError",
    "QuotaExceededError",
    "RepoDamagedError",
    "RepoLockedError",
    "StateError",
    "TransferError",
    "error_for",
    "map_exceptions",
]


class HoardError(Exception):
    """Base of every hoard error. `code` is stable; `fields` holds structured context."""

    code: str | int = "error"  # a LogError's is its GDP status (an int)
    grpc_status = "INTERNAL"
    http_status = 500
    exit_code = 1

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields
        for key, value in fields.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view: `{"code", "message", **fields}` (fields stringified)."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        for key, value in self.fields.items():
            out[key] = value if isinstance(value, (int, float, bool, type(None))) else str(value)
        return out


class InvalidArgumentError(HoardError):
    """Bad input: a malformed name, a bad config value, an unknown session."""

    code = "invalid"
    grpc_status = "INVALID_ARGUMENT"
    http_status = 400
    exit_code = 2


class InvalidCidError(InvalidArgumentError):
    """A CID that does not parse, or is not one hoard can address."""

    code = "invalid-cid"


class NotFoundError(HoardError):
    """The thing named does not exist (locally, or on the network when asked)."""

    code = "not-found"
    grpc_status = "NOT_FOUND"
    http_status = 404
    exit_code = 3


class AlreadyExistsError(HoardError):
    """Creating something that already exists (a duplicate registration, a log name)."""

    code = "exists"
    grpc_status = "ALREADY_EXISTS"
    http_status = 409
    exit_code = 4


class IntegrityError(HoardError):
    """Content that does not match its address: hash, CRC or signature mismatch."""

    code = "integrity"
    grpc_status = "DATA_LOSS"
    http_status = 502
    exit_code = 5


class QuotaExceededError(HoardError):
    """Accepting the data would exceed `storage-quota`. Nothing was stored."""

    code = "quota"
    grpc_status = "RESOURCE_EXHAUSTED"
    http_status = 507
    exit_code = 6


class PeerError(HoardError):
    """A peer could not be reached, dialled, or found; or it misbehaved."""

    code = "peer"
    grpc_status = "UNAVAILABLE"
    http_status = 502
    exit_code = 7


class TransferError(HoardError):
    """A data-transfer channel operation failed (rejected voucher, bad state, ...)."""

    code = "transfer"
    grpc_status = "ABORTED"
    http_status = 409
    exit_code = 8


class LogError(HoardError):
    """A GDP log operation failed; `status` is the GDP status code (402, 404, 409, ...)."""

    code: str | int = "log"  # an instance's is its GDP status
    grpc_status = "FAILED_PRECONDITION"
    http_status = 400
    exit_code = 9

    _GRPC_BY_STATUS: ClassVar[dict[int, str]] = {
        400: "INVALID_ARGUMENT", 402: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
        409: "ALREADY_EXISTS", 503: "UNAVAILABLE", 507: "RESOURCE_EXHAUSTED"}

    def __init__(self, message: str, status: int = 500, **fields: Any) -> None:
        super().__init__(message, status=status, **fields)
        self.status: int = status
        self.code = status  # GDP status code, as the GDP API reports it
        self.grpc_status = self._GRPC_BY_STATUS.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        self.http_status = status if 400 <= status < 600 else 500


class StateError(HoardError):
    """The operation is not allowed in the current state (node not started, closed, ...)."""

    code = "state"
    grpc_status = "FAILED_PRECONDITION"
    http_status = 409
    exit_code = 10


class CancelledError(HoardError):
    """The operation was cancelled before it finished."""

    code = "cancelled"
    grpc_status = "CANCELLED"
    http_status = 499
    exit_code = 11


class RepoLockedError(HoardError):
    """Another process holds the data dir (a running node)."""

    code = "locked"
    grpc_status = "UNAVAILABLE"
    http_status = 423
    exit_code = 12


class RepoDamagedError(HoardError):
    """The repo's files are damaged (truncated, not what they claim): the node will not start on them."""

    code = "damaged"
    grpc_status = "DATA_LOSS"
    http_status = 500
    exit_code = 13


@contextlib.contextmanager
def map_exceptions(mapping: dict[type[BaseException], type[HoardError]], message: str = "") -> Iterator[None]:
    """Translate foreign exceptions into hoard errors, raised `from` the original."""
    try:
        yield
    except HoardError:
        raise
    except tuple(mapping) as exc:
        for foreign, ours in mapping.items():
            if isinstance(exc, foreign):
                text = f"{message}: {exc}" if message else str(exc)
                raise ours(text) from exc
        raise


# What a remote answer without a hoard error code stands for (another server, or a proxy).
_BY_HTTP: dict[int, type[HoardError]] = {400: InvalidArgumentError, 404: NotFoundError, 409: StateError,
                                         422: InvalidArgumentError, 503: StateError, 507: QuotaExceededError}
_BY_GRPC: dict[str, type[HoardError]] = {"INVALID_ARGUMENT": InvalidArgumentError, "NOT_FOUND": NotFoundError,
                                         "FAILED_PRECONDITION": StateError, "DATA_LOSS": IntegrityError,
                                         "RESOURCE_EXHAUSTED": QuotaExceededError}


def _by_code() -> dict[str, type[HoardError]]:
    out: dict[str, type[HoardError]] = {}
    pending: list[type[HoardError]] = [HoardError]
    while pending:  # the tree breadth-first: a base class wins over subclasses sharing its code
        cls = pending.pop(0)
        out.setdefault(str(cls.code), cls)
        pending.extend(sub for sub in cls.__subclasses__() if sub.__module__ == __name__)
    return out


def error_for(message: str, *, code: str | None = None, http_status: int | None = None,
              grpc_status: str | None = None, **fields: Any) -> HoardError:
    """The hoard error a remote node reported: by its stable `code` when the answer carries one
    (a digit string is a `LogError`'s GDP status), else by the HTTP status or gRPC status name
    (`HoardError` when none says more). The reverse of the class attributes above."""
    if code is not None and code.isdigit():
        return LogError(message, status=int(code), **fields)
    cls = _by_code().get(code or "") if code else None
    if cls is None and http_status is not None:
        cls = _BY_HTTP.get(http_status)
    if cls is None and grpc_status is not None:
        cls = _BY_GRPC.get(grpc_status)
    return (cls or HoardError)(message, **fields)

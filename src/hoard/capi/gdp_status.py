"""EP_STAT codes for libgdp (gdp.h), and the one place hoard errors become them.

An EP_STAT is 32 bits: severity (3) | registry (11) | module (8) | detail (10). GDP's statuses
are registry UCB (0x103), module GDP (1); an ack or nak carries its HTTP/CoAP-like code as the
detail (severity OK for 2xx, ERROR for 4xx and 6xx, WARN for 430/431/515, SEVERE for 5xx),
a local status its own detail (1..35).
"""

from __future__ import annotations

import sys
import traceback

from hoard.errors import (
    HoardError,
    InvalidArgumentError,
    LogError,
    NotFoundError,
    PeerError,
    RepoLockedError,
    StateError,
)

SEV_OK, SEV_WARN, SEV_ERROR, SEV_SEVERE, SEV_ABORT = 0, 4, 5, 6, 7
REGISTRY_UCB = 0x103
MODULE_GDP = 1

OK = 0


def ep_stat(severity: int, registry: int, module: int, detail: int) -> int:
    return ((severity & 0x7) << 29) | ((registry & 0x7FF) << 18) | ((module & 0xFF) << 10) | (detail & 0x3FF)


def gdp_stat(severity: int, detail: int) -> int:
    return ep_stat(severity, REGISTRY_UCB, MODULE_GDP, detail)


def is_ok(code: int) -> bool:
    return (code >> 29) & 0x7 < SEV_WARN


# local statuses (gdp.h)
INTERNAL_ERROR = gdp_stat(SEV_ABORT, 12)
BAD_IOMODE = gdp_stat(SEV_ERROR, 13)
GCL_NAME_INVALID = gdp_stat(SEV_ERROR, 14)
BUFFER_FAILURE = gdp_stat(SEV_ABORT, 15)
NULL_GCL = gdp_stat(SEV_ERROR, 16)
DEAD_DAEMON = gdp_stat(SEV_ABORT, 20)
READONLY = gdp_stat(SEV_ERROR, 22)
NOT_OPEN = gdp_stat(SEV_ERROR, 10)
SKEY_REQUIRED = gdp_stat(SEV_ERROR, 25)
CRYPTO_SIGFAIL = gdp_stat(SEV_ERROR, 28)

# the local statuses hoard's LogError names (its `gdp_stat`) and GDP reports as such; every
# other LogError is the ack/nak of its code
_LOCAL = {"BAD_IOMODE": BAD_IOMODE, "NULL_GCL": NULL_GCL, "READONLY": READONLY, "SKEY_REQUIRED": SKEY_REQUIRED,
          "GCL_NAME_INVALID": GCL_NAME_INVALID, "CRYPTO_SIGFAIL": CRYPTO_SIGFAIL}


def acknak(code: int) -> int:
    """The EP_STAT of an ack/nak code (200 success ... 600 no route)."""
    if 200 <= code < 300:
        severity = SEV_OK
    elif code in (430, 431, 515):
        severity = SEV_WARN
    elif 500 <= code < 600:
        severity = SEV_SEVERE
    else:
        severity = SEV_ERROR
    return gdp_stat(severity, code)


ACK_SUCCESS = acknak(200)
ACK_CREATED = acknak(201)
ACK_DELETED = acknak(202)
ACK_CONTENT = acknak(205)
NAK_BADREQ = acknak(400)
NAK_BADOPT = acknak(402)
NAK_NOTFOUND = acknak(404)
NAK_CONFLICT = acknak(409)
NAK_REC_MISSING = acknak(430)
NAK_INTERNAL = acknak(500)
NAK_LOST_SUBSCR = acknak(515)


class GdpError(Exception):
    """A failure with its EP_STAT code (raised by the libgdp layer itself)."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message or f"EP_STAT 0x{code:08x}")
        self.code = code


def status_of(exc: BaseException) -> int:
    """The EP_STAT an exception stands for. Unexpected ones are printed on stderr (the C caller
    sees only the status)."""
    if isinstance(exc, GdpError):
        return exc.code
    if isinstance(exc, LogError):
        local = _LOCAL.get(str(exc.fields.get("gdp_stat", "")))
        if local is not None:
            return local
        return acknak(exc.status if isinstance(exc.status, int) else 500)
    if isinstance(exc, RepoLockedError):
        return NAK_CONFLICT  # the data dir is in use (a running node: attach to it instead)
    if isinstance(exc, (StateError, PeerError)):
        return DEAD_DAEMON  # the node is closed, or the attached node (a peer) cannot be reached
    if isinstance(exc, NotFoundError):
        return NAK_NOTFOUND
    if isinstance(exc, InvalidArgumentError):
        return NAK_BADREQ
    if isinstance(exc, HoardError):
        http = getattr(exc, "http_status", 500)
        return acknak(http if isinstance(http, int) and 400 <= http < 600 else 500)
    traceback.print_exception(exc, file=sys.stderr)
    return INTERNAL_ERROR

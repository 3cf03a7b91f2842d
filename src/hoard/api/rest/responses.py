"""OpenAPI descriptions of responses shared by the routes (error answers, text, bytes)."""

from __future__ import annotations

from typing import Any

from hoard.api.rest.bridge import ERROR_HEADER

TEXT: dict[str, Any] = {"content": {"text/plain": {"schema": {"type": "string"}}}}
OCTETS: dict[str, Any] = {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}

_ERROR_HEADERS = {ERROR_HEADER: {"schema": {"type": "string"},
                                 "description": "The hoard error code (invalid-cid, not-found, quota, ...)"}}
_MEANING = {
    400: "Invalid input: a CID, peer id or parameter that does not parse",
    404: "Not found (locally, or on the network where the endpoint looks there)",
    409: "Not possible in the node's current state",
    422: "The Content-Type or the filename of an upload is not valid",
    502: "Stored data or a peer failed verification",
    503: "The node's network is not available",
    507: "The storage quota would be exceeded; nothing was stored",
}


def error(status: int) -> dict[str, Any]:
    return {"description": _MEANING[status], **TEXT, "headers": _ERROR_HEADERS}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The listed error responses, plus `default` for any other error (e.g. 500)."""
    out: dict[int | str, dict[str, Any]] = {status: error(status) for status in statuses}
    out["default"] = {"description": "Another error; the body says what happened", **TEXT, "headers": _ERROR_HEADERS}
    return out

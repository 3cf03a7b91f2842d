"""Argument checks shared by the node's operations, with the Logos error wording."""

from __future__ import annotations

from hoard.errors import InvalidCidError
from hoard.ids.cid import CID


def parse_cid(value: str | CID, op: str) -> CID:
    """A CID argument (a `CID`, or its text form); InvalidCidError "Failed to <op>: ..." if bad."""
    if isinstance(value, CID):
        return value
    try:
        return CID.parse(value)
    except InvalidCidError as exc:
        text = str(value)
        shown = text if len(text) <= 100 else f"{text[:64]}... ({len(text)} characters)"
        raise InvalidCidError(f"Failed to {op}: cannot parse cid: {shown}", cid=shown) from exc


def is_int(value: object) -> bool:
    """Whether `value` is an int (and not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)

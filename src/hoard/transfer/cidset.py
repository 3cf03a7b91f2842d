"""`CidSet`: an insertion-ordered set of CIDs with value semantics and O(1) amortised adds.

A channel records every block it queues, sends and receives, and the FSM returns a new
`ChannelState` per event. Copying a set of 100 000 CIDs per block would make a transfer
quadratic, so successive versions share one append-only store: a `CidSet` is a view of the
store's first `n` entries. Adding to the newest view appends in place (older views do not
see it, their `n` is smaller); adding to an older view copies its prefix first. Each view
therefore behaves as an immutable value. Views are not safe for concurrent adds from
several threads; a channel's states belong to one driver.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from hoard.ids.cid import CID

__all__ = ["CidSet"]


class _Store:
    __slots__ = ("index", "order")

    def __init__(self, order: list[CID]) -> None:
        self.order = order
        self.index = {cid: i for i, cid in enumerate(order)}


class CidSet:
    """An immutable, insertion-ordered set of CIDs; `with_cid` returns the set plus one CID."""

    __slots__ = ("_len", "_store")

    def __init__(self, cids: Iterable[CID] = ()) -> None:
        self._store = _Store(list(dict.fromkeys(cids)))
        self._len = len(self._store.order)

    @classmethod
    def _view(cls, store: _Store, length: int) -> CidSet:
        obj = cls.__new__(cls)
        obj._store = store
        obj._len = length
        return obj

    def __contains__(self, cid: object) -> bool:
        i = self._store.index.get(cid) if isinstance(cid, CID) else None
        return i is not None and i < self._len

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[CID]:
        return islice(self._store.order, self._len)

    def with_cid(self, cid: CID) -> CidSet:
        """This set plus `cid` (the same object if `cid` is already in it)."""
        if cid in self:
            return self
        store = self._store
        if self._len != len(store.order):  # a newer version exists: fork from our prefix
            store = _Store(store.order[: self._len])
        store.index[cid] = len(store.order)
        store.order.append(cid)
        return CidSet._view(store, self._len + 1)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CidSet):
            return NotImplemented
        return self._len == other._len and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CidSet({list(self)!r})"

"""Which blocks of a dataset a transfer moves: all of them, or a half-open range of block indices.

go-data-transfer carries an IPLD selector in the request's `Stor` field. hoard's datasets are
flat lists of blocks (the block index of the manifest), so its selector is simpler:

* `None` (CBOR null) — every block of the dataset;
* `BlockRange(start, end)`, on the wire the map `{"range": [start, end]}` — the blocks whose
  index `i` (0-based, in block-index order) satisfies `start <= i < end`.

`end` may run past the last block (the range is clipped by whoever serves it); an empty range
(`start >= end`) is rejected, since it would describe a transfer of nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hoard.errors import InvalidArgumentError

__all__ = ["BlockRange", "Selector", "parse_selector", "selector_to_node"]

_MAX_INDEX = 2**63 - 1


@dataclass(frozen=True, order=True)
class BlockRange:
    """The blocks with index in `[start, end)` of a dataset's block index."""

    start: int
    end: int

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INDEX:
                raise InvalidArgumentError(f"block range {name} must be an integer in [0, 2^63): {value!r}",
                                           **{name: value})
        if self.start >= self.end:
            raise InvalidArgumentError(f"empty block range [{self.start}, {self.end})", start=self.start, end=self.end)

    def __contains__(self, index: object) -> bool:
        return isinstance(index, int) and self.start <= index < self.end

    def __len__(self) -> int:
        return self.end - self.start

    def to_node(self) -> dict[str, list[int]]:
        """The wire (and JSON) form: `{"range": [start, end]}`."""
        return {"range": [self.start, self.end]}


Selector = BlockRange | None
"""A transfer selector: `None` for the whole dataset, or a `BlockRange`."""


def parse_selector(value: Any) -> Selector:
    """Read a selector from its wire/JSON form (`None` or `{"range": [start, end]}`) or a `BlockRange`.

    Anything else raises InvalidArgumentError.
    """
    if value is None or isinstance(value, BlockRange):
        return value
    if not isinstance(value, dict) or set(value) != {"range"}:
        raise InvalidArgumentError(f'selector must be null or {{"range": [start, end]}}: {value!r}')
    bounds = value["range"]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
        raise InvalidArgumentError(f"selector range must be a pair [start, end]: {bounds!r}")
    return BlockRange(bounds[0], bounds[1])


def selector_to_node(selector: Selector) -> dict[str, list[int]] | None:
    """The wire/JSON form of a selector (`None` stays `None`)."""
    parsed = parse_selector(selector)
    return None if parsed is None else parsed.to_node()

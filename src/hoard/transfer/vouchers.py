"""Vouchers, voucher results, the validator interfaces, and the type registries.

A voucher is what justifies a transfer (a deal, a payment channel voucher, a token); a voucher
result is what the validating side answers with. Both are classes with a `type_id` (Go's
`Type()`) and a byte encoding of their own choosing:

    class DealVoucher(Voucher):
        type_id = "hoard/deal-voucher/1"
        def __init__(self, deal: int): self.deal = deal
        def to_bytes(self) -> bytes: return self.deal.to_bytes(8, "big")
        @classmethod
        def from_bytes(cls, data: bytes) -> "DealVoucher": return cls(int.from_bytes(data, "big"))

Channel state and messages keep them encoded (`EncodedVoucher`: type id + bytes), as Go's
channel state does; a `TypeRegistry` turns them back into objects. Validators follow Go's
`RequestValidator`/`Revalidator` in snake_case; where Go returns `(result, err)` a validator
returns the result or raises, and `ErrPause`/`ErrResume` carry a result in `.result`.

An encoded voucher (result) is at most `TRANSFER_MAX_VOUCHER_BYTES` and its type identifier
at most `TRANSFER_MAX_TYPE_ID` characters (hoard.limits): larger ones are refused, from peers
and locally alike.
"""

from __future__ import annotations

from abc import ABC, ABCMeta, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Protocol,
    TypeVar,
    runtime_checkable,
)

from hoard.errors import AlreadyExistsError, HoardError, InvalidArgumentError
from hoard.limits import TRANSFER_MAX_TYPE_ID, TRANSFER_MAX_VOUCHER_BYTES

if TYPE_CHECKING:
    from typing import Self

    from hoard.ids.cid import CID
    from hoard.transfer.selector import Selector
    from hoard.transfer.types import ChannelID

__all__ = [
    "EncodedVoucher",
    "EncodedVoucherResult",
    "Registerable",
    "RequestValidator",
    "Revalidator",
    "TransportConfigurer",
    "TypeRegistry",
    "Voucher",
    "VoucherResult",
]


class Registerable(ABC):
    """Something with a type identifier and a byte encoding (Go's `Registerable`)."""

    type_id: ClassVar[str] = ""

    @abstractmethod
    def to_bytes(self) -> bytes:
        """The encoding carried on the wire and kept in the channel state."""

    @classmethod
    @abstractmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Rebuild the object from `to_bytes()` output; raise on malformed input."""


class Voucher(Registerable):
    """Base class of vouchers. Subclasses set `type_id` and implement the two encoders."""


class VoucherResult(Registerable):
    """Base class of voucher results (what a validator answers a voucher with)."""


@dataclass(frozen=True)
class _Encoded:
    type_id: str
    data: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.type_id, str):
            raise InvalidArgumentError(f"type identifier must be a string: {self.type_id!r}")
        if len(self.type_id) > TRANSFER_MAX_TYPE_ID:
            raise InvalidArgumentError(f"type identifier of {len(self.type_id)} characters "
                                       f"(at most {TRANSFER_MAX_TYPE_ID})")
        if not isinstance(self.data, (bytes, bytearray, memoryview)):
            raise InvalidArgumentError(f"encoded {self.type_id!r} must be bytes, got {type(self.data).__name__}")
        if len(self.data) > TRANSFER_MAX_VOUCHER_BYTES:
            raise InvalidArgumentError(f"encoded {self.type_id!r} is {len(self.data)} bytes "
                                       f"(at most {TRANSFER_MAX_VOUCHER_BYTES})", type_id=self.type_id)
        object.__setattr__(self, "data", bytes(self.data))

    @classmethod
    def of(cls, value: Registerable | _Encoded) -> Self:
        """Encode `value` (an already encoded value of this kind is returned as is)."""
        if isinstance(value, cls):
            return value
        if isinstance(value, _Encoded):
            return cls(value.type_id, value.data)
        if not isinstance(value, Registerable):
            raise InvalidArgumentError(f"not a voucher or voucher result: {value!r}")
        try:
            data = value.to_bytes()
        except HoardError:
            raise
        except Exception as exc:
            raise InvalidArgumentError(f"cannot encode {value.type_id!r}: {exc}", type_id=value.type_id) from exc
        return cls(value.type_id, data)


class EncodedVoucher(_Encoded):
    """A voucher as stored and sent: its type identifier and `to_bytes()` output."""


class EncodedVoucherResult(_Encoded):
    """A voucher result as stored and sent: its type identifier and `to_bytes()` output."""


@runtime_checkable
class RequestValidator(Protocol):
    """Validates new (and restarted) requests for one voucher type, on the responder.

    Return a voucher result (or None) to accept; raise `ErrPause` (optionally with
    `result=`) to accept paused; raise anything else to reject. Peers are base58 text.
    """

    def validate_push(self, is_restart: bool, chid: ChannelID, sender: str, voucher: Voucher,
                      base_cid: CID, selector: Selector) -> VoucherResult | None:
        """A push request from `sender`, who will send us the data."""

    def validate_pull(self, is_restart: bool, chid: ChannelID, receiver: str, voucher: Voucher,
                      base_cid: CID, selector: Selector) -> VoucherResult | None:
        """A pull request from `receiver`, to whom we will send the data."""


@runtime_checkable
class Revalidator(Protocol):
    """Revalidates running requests with further vouchers, on the responder.

    The `on_*` hooks return `(handled, result)`: `(False, None)` passes to the next
    revalidator; a handled call returns its result, or raises `ErrPause` (ask for a new
    voucher, optionally with `result=`) or any other error (end the transfer).
    """

    def revalidate(self, chid: ChannelID, voucher: Voucher) -> VoucherResult | None:
        """A new voucher arrived: return a result (or raise ErrResume/ErrPause/an error)."""

    def on_pull_data_sent(self, chid: ChannelID, additional_bytes_sent: int) -> tuple[bool, VoucherResult | None]:
        """More bytes were queued for a pull request we serve."""

    def on_push_data_received(self, chid: ChannelID,
                              additional_bytes_received: int) -> tuple[bool, VoucherResult | None]:
        """More bytes arrived for a push request we accepted."""

    def on_complete(self, chid: ChannelID) -> tuple[bool, VoucherResult | None]:
        """The transport finished; a result (with ErrPause) asks for a final voucher."""


TransportConfigurer = Callable[["ChannelID", Voucher, Any], None]
"""`fn(chid, voucher, transport)`: transport-specific setup for channels with a voucher type."""

T = TypeVar("T")


class TypeRegistry(Generic[T]):
    """Classes by type identifier, each with an attached value (a validator, a configurer, ...).

    Registering a second class with the same `type_id` raises AlreadyExistsError
    ("identifier already registered: X"), as Go's registry does.
    """

    def __init__(self, base: ABCMeta = Registerable, what: str = "type") -> None:  # an abstract class
        self._base = base
        self._what = what
        self._entries: dict[str, tuple[type[Registerable], T | None]] = {}

    def register(self, cls: type[Registerable] | Registerable, value: T | None = None) -> None:
        """Register `cls` (a class, or an instance standing for its class) with `value`."""
        if isinstance(cls, Registerable):
            cls = type(cls)
        if not isinstance(cls, type) or not issubclass(cls, self._base):
            raise InvalidArgumentError(f"{cls!r} is not a {self._base.__name__} class")
        type_id = cls.type_id
        if not isinstance(type_id, str) or not type_id:
            raise InvalidArgumentError(f"{cls.__name__} has no type_id")
        if type_id in self._entries:
            raise AlreadyExistsError(f"identifier already registered: {type_id}", type_id=type_id)
        self._entries[type_id] = (cls, value)

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, type_id: str) -> tuple[type[Registerable], T | None] | None:
        """`(cls, value)` registered for `type_id`, or None."""
        return self._entries.get(type_id)

    def decode(self, encoded: _Encoded) -> Registerable:
        """Rebuild the object from its encoding; unknown types and bad bytes raise InvalidArgumentError."""
        entry = self._entries.get(encoded.type_id)
        if entry is None:
            raise InvalidArgumentError(f"unknown {self._what}: {encoded.type_id!r}", type_id=encoded.type_id)
        cls = entry[0]
        try:
            obj = cls.from_bytes(encoded.data)
        except HoardError:
            raise
        except Exception as exc:
            raise InvalidArgumentError(f"cannot decode {self._what} {encoded.type_id!r}: {exc}",
                                       type_id=encoded.type_id) from exc
        if not isinstance(obj, cls):
            raise InvalidArgumentError(f"{cls.__name__}.from_bytes returned {type(obj).__name__}",
                                       type_id=encoded.type_id)
        return obj

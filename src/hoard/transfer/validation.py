"""Validators and revalidators in either of go-data-transfer's shapes, called one way.

A `RequestValidator` may be written to the seed's (v1.7 README and types.go) signatures,

    validate_push(sender, voucher, base_cid, selector)
    validate_pull(receiver, voucher, base_cid, selector)

or to the later six-argument form, `validate_push(is_restart, chid, sender, voucher,
base_cid, selector)` (likewise `validate_pull`). Go's method names (`ValidatePush`,
`ValidatePull`) are accepted too. The form of each method is detected **once**, when the
validator is registered, from its signature (`inspect.signature`): four positional
parameters is the seed's form, six (or `*args`) the later one; anything else is refused at
registration (InvalidArgumentError).

Both forms may answer the Go way or the Python way; either is read the same:

* return `(result, error)` — Go's `(VoucherResult, error)`: `error` None accepts, `ErrPause()`
  accepts paused, anything else rejects;
* return an exception (the README's `return errors.New("invalid")`) — rejects, or pauses for
  `ErrPause`;
* return a result or None — accepts;
* raise — as returning the exception (`raise ErrPause(result=r)` carries a result).

A `Revalidator` has the same methods in both releases; only what they return differs. The
seed's `revalidate` returns `(result, error)` and its `on_pull_data_sent`,
`on_push_data_received` and `on_complete` return `(handled, result, error)`; hoard's earlier
shape returned `result` and `(handled, result)` and raised. Both are accepted, on every call.
The method names may be Go's (`Revalidate`, `OnPullDataSent`, `OnPushDataReceived`,
`OnComplete`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from hoard.errors import InvalidArgumentError

__all__ = ["Outcome", "RevalidatorAdapter", "ValidatorAdapter", "outcome", "progress_outcome"]

Outcome = tuple[BaseException | None, Any]
"""(error or None, voucher result or None), as the flows use them."""

SEED = "seed"
LATER = "later"


def outcome(ret: Any) -> Outcome:
    """A validator's (or `revalidate`'s) return value as (error, result)."""
    if isinstance(ret, BaseException):
        return ret, getattr(ret, "result", None)
    if isinstance(ret, tuple) and len(ret) == 2 and (ret[1] is None or isinstance(ret[1], BaseException)):
        result, err = ret
        if result is None and err is not None:
            result = getattr(err, "result", None)
        return err, result
    return None, ret


def progress_outcome(ret: Any) -> tuple[bool, BaseException | None, Any]:
    """An `on_*` revalidator hook's return value as (handled, error, result)."""
    if isinstance(ret, tuple) and len(ret) == 3 and (ret[2] is None or isinstance(ret[2], BaseException)):
        handled, result, err = ret
        if result is None and err is not None:
            result = getattr(err, "result", None)
        return bool(handled), err, result
    if isinstance(ret, tuple) and len(ret) == 2:
        handled, result = ret
        return bool(handled), None, result
    raise InvalidArgumentError(f"a revalidator hook returns (handled, result, error), not {ret!r:.80}")


def _method(obj: Any, *names: str) -> Callable[..., Any] | None:
    for name in names:
        fn = getattr(obj, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def _form(fn: Callable[..., Any], what: str) -> str:
    """SEED (4 positional parameters) or LATER (6, or *args), read from `fn`'s signature."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"cannot read the signature of {what}: {exc}") from exc
    positional = [p for p in sig.parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(1 for p in positional if p.default is p.empty)
    if any(p.kind is p.VAR_POSITIONAL for p in sig.parameters.values()) or required <= 6 <= len(positional):
        return LATER
    if required <= 4 <= len(positional):
        return SEED
    raise InvalidArgumentError(
        f"{what} takes {len(positional)} positional arguments: a validator takes the seed's four "
        "(peer, voucher, base_cid, selector) or six (is_restart, chid, peer, voucher, base_cid, selector)")


class ValidatorAdapter:
    """A registered RequestValidator, its forms detected once; `validate` calls it either way."""

    __slots__ = ("_pull", "_pull_form", "_push", "_push_form", "validator")

    def __init__(self, validator: Any) -> None:
        push = _method(validator, "validate_push", "ValidatePush")
        pull = _method(validator, "validate_pull", "ValidatePull")
        if push is None or pull is None:
            raise InvalidArgumentError(f"{validator!r:.80} is not a RequestValidator (validate_push, validate_pull)")
        self.validator = validator
        self._push, self._push_form = push, _form(push, f"{type(validator).__name__}.validate_push")
        self._pull, self._pull_form = pull, _form(pull, f"{type(validator).__name__}.validate_pull")

    @property
    def forms(self) -> tuple[str, str]:
        """("seed" | "later") for validate_push and validate_pull."""
        return self._push_form, self._pull_form

    def validate(self, is_pull: bool, is_restart: bool, chid: Any, peer: str, voucher: Any, base_cid: Any,
                 selector: Any) -> Outcome:
        """(error, result) for a request: `peer` is the sender (push) or the receiver (pull)."""
        fn, form = (self._pull, self._pull_form) if is_pull else (self._push, self._push_form)
        try:
            if form == SEED:
                ret = fn(peer, voucher, base_cid, selector)
            else:
                ret = fn(is_restart, chid, peer, voucher, base_cid, selector)
        except Exception as exc:  # noqa: BLE001 - any error rejects; ErrPause/ErrResume accept
            return exc, getattr(exc, "result", None)
        return outcome(ret)


class RevalidatorAdapter:
    """A registered Revalidator; its answers read in either release's shape."""

    __slots__ = ("_hooks", "revalidator")

    _NAMES: ClassVar[dict[str, str]] = {"revalidate": "Revalidate", "on_pull_data_sent": "OnPullDataSent",
              "on_push_data_received": "OnPushDataReceived", "on_complete": "OnComplete"}

    def __init__(self, revalidator: Any) -> None:
        self.revalidator = revalidator
        self._hooks: dict[str, Callable[..., Any]] = {}
        for name, go_name in self._NAMES.items():
            fn = _method(revalidator, name, go_name)
            if fn is None:
                raise InvalidArgumentError(f"{revalidator!r:.80} is not a Revalidator (it lacks {name})")
            self._hooks[name] = fn

    def revalidate(self, chid: Any, voucher: Any) -> Outcome:
        try:
            return outcome(self._hooks["revalidate"](chid, voucher))
        except Exception as exc:  # noqa: BLE001 - ErrPause/ErrResume signal, others reject
            return exc, getattr(exc, "result", None)

    def hook(self, name: str, *args: Any) -> tuple[bool, BaseException | None, Any]:
        """(handled, error, result) of `on_pull_data_sent`, `on_push_data_received` or `on_complete`.
        A raised error counts as handled."""
        try:
            return progress_outcome(self._hooks[name](*args))
        except Exception as exc:  # noqa: BLE001 - ErrPause asks for a voucher, others fail the channel
            return True, exc, getattr(exc, "result", None)

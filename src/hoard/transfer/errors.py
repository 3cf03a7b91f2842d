"""The data-transfer errors, named and worded as go-data-transfer's (DIGEST §3.1).

```
TransferError (hoard.errors)
├── ErrPause              "pause channel"      raised by a validator: accept, but paused
├── ErrResume             "resume channel"     raised by a revalidator: accept and resume
├── ErrRejected           "response rejected"  the other side did not accept our request
├── ErrUnsupported        "unsupported"        the transport cannot do this (pause/resume)
├── ErrIncomplete         "incomplete response"  a channel did not finish transferring its data
├── ErrRemoved            "channel removed due to inactivity"  inactive long enough to be failed
├── ErrDisconnected       "other peer appears to have hung up. restart Channel"
├── ErrHandlerAlreadySet  "already set event handler"  a transport's event handler is set twice
├── ErrHandlerNotSet      "event handler has not been set"  a transport used before it has one
└── ErrInvalidTransition  "Invalid transition"  the FSM has no rule for this event here
NotFoundError, TransferError
└── ErrChannelNotFound    "channel not found"
```

`ErrPause` and `ErrResume` are signals rather than failures: a validator raises them to say
how a request is accepted. Both can carry the voucher result to send back
(`raise ErrPause(result=my_result)`), which is how Go's `(result, ErrPause)` is spelled here.
"""

from __future__ import annotations

from typing import Any

from hoard.errors import NotFoundError, TransferError

__all__ = [
    "ErrChannelNotFound",
    "ErrDisconnected",
    "ErrHandlerAlreadySet",
    "ErrHandlerNotSet",
    "ErrIncomplete",
    "ErrInvalidTransition",
    "ErrPause",
    "ErrRejected",
    "ErrRemoved",
    "ErrResume",
    "ErrUnsupported",
]


class _WithResult(TransferError):
    """A transfer error that may carry the voucher result to send with the response."""

    default_message = ""

    def __init__(self, message: str | None = None, *, result: Any = None, **fields: Any) -> None:
        super().__init__(self.default_message if message is None else message, **fields)
        self.result = result


class ErrPause(_WithResult):
    """Raised by a validator or revalidator: the request is accepted, but the channel pauses."""

    default_message = "pause channel"


class ErrResume(_WithResult):
    """Raised by a revalidator: the new voucher is accepted and the channel resumes."""

    default_message = "resume channel"


class ErrRejected(_WithResult):
    """The other side did not accept the request (a response with `accepted` false)."""

    default_message = "response rejected"


class ErrUnsupported(_WithResult):
    """The operation is not supported by the transport (pause/resume without a pausable one)."""

    default_message = "unsupported"


class ErrIncomplete(_WithResult):
    """A channel did not finish transferring its data successfully."""

    default_message = "incomplete response"


class ErrRemoved(_WithResult):
    """The channel was inactive long enough to be put in a permanent error state."""

    default_message = "channel removed due to inactivity"


class ErrDisconnected(_WithResult):
    """The other peer may have hung up: try restarting the channel."""

    default_message = "other peer appears to have hung up. restart Channel"


class ErrHandlerAlreadySet(_WithResult):
    """An event handler was already set for this instance of the transport hooks."""

    default_message = "already set event handler"


class ErrHandlerNotSet(_WithResult):
    """A command was issued to a transport before its event handler was set."""

    default_message = "event handler has not been set"


class ErrChannelNotFound(NotFoundError, TransferError):
    """No channel with this id is known. Both a NotFoundError (404) and a TransferError."""

    def __init__(self, message: str = "channel not found", **fields: Any) -> None:
        super().__init__(message, **fields)


class ErrInvalidTransition(TransferError):
    """The channel FSM has no rule for `event` in `status`; the channel state is unchanged.

    The message is go-statemachine's, "Invalid transition", and nothing more; the event and
    the state are the fields `event` and `status` (also in `to_dict()`, by name)."""

    def __init__(self, status: Any, event: Any) -> None:
        super().__init__("Invalid transition", status=getattr(status, "name", status),
                         event=getattr(event, "name", event))
        self.status, self.event = status, event

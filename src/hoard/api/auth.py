"""The optional API bearer token, shared by the REST and gRPC servers and their clients.

A node requires a token when its config sets `api-token` (the token itself) or
`api-token-file` (a file holding it; relative paths are under the data dir). Every REST
request must then carry `Authorization: Bearer <token>`, and every gRPC call the metadata
`authorization: Bearer <token>`. Clients (the CLI) find the token the same way, from the
same config. See docs/security.md.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from hoard.errors import InvalidArgumentError

__all__ = ["HEADER", "bearer", "load_token", "token_matches"]

HEADER = "authorization"
_MAX_TOKEN = 4096


def load_token(config: Any) -> str | None:
    """The token a node with `config` requires (or a client should send), or None for none.

    A token file that cannot be read, or holds an empty token, is an InvalidArgumentError:
    a node must not start without the protection its operator asked for.
    """
    token: str | None = getattr(config, "api_token", None)
    path: str | None = getattr(config, "api_token_file", None)
    if token is None and path:
        file = Path(path).expanduser()
        data_dir = getattr(config, "data_dir", None)
        if not file.is_absolute() and data_dir is not None:
            file = Path(data_dir) / file
        try:
            token = file.read_bytes()[:_MAX_TOKEN + 1].decode("utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgumentError(f"cannot read api-token-file {file}: {exc}", path=str(file)) from exc
    if token is None:
        return None
    token = token.strip()
    if not token or len(token) > _MAX_TOKEN or not token.isascii() or not token.isprintable():
        raise InvalidArgumentError("api-token must be 1..4096 printable ASCII characters")
    return token


def bearer(token: str) -> str:
    """The Authorization header (or gRPC metadata) value for `token`."""
    return f"Bearer {token}"


def token_matches(expected: str | None, presented: str | bytes | None) -> bool:
    """Whether an Authorization value carries `expected` (always True when no token is required)."""
    if expected is None:
        return True
    if presented is None:
        return False
    if isinstance(presented, bytes):
        presented = presented.decode("latin-1")
    scheme, _, value = presented.strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode("latin-1", "replace"),
                                                              expected.encode())

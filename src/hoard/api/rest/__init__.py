"""hoard's REST API: the Logos Storage / Codex paths over a node, with OpenAPI (FastAPI).

`create_app(node)` builds the ASGI app; `RestServer(node, host, port)` serves it on a thread
beside a running node (what `hoard node start` does). See docs/rest.md.
"""

from hoard.api.rest.app import ALIASES, BASE, create_app
from hoard.api.rest.server import RestServer

__all__ = ["ALIASES", "BASE", "RestServer", "create_app"]

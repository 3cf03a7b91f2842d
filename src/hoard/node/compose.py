"""NodeCore: CoreBase plus every subsystem's API mixin.

Each subsystem owns one `node/api_<name>.py` module with a mixin class of `@api` coroutines.
Add a subsystem by importing its mixin here and listing it in NodeCore's bases.
"""

from __future__ import annotations

from hoard.node.api_blobs import BlobsApi
from hoard.node.api_fetches import FetchesMixin
from hoard.node.api_files import FilesApi
from hoard.node.api_logs import LogsApi
from hoard.node.api_net import NetApi
from hoard.node.api_transfer import TransferApi
from hoard.node.core import CoreBase


class NodeCore(TransferApi, LogsApi, NetApi, BlobsApi, FilesApi, FetchesMixin, CoreBase):
    """The full node: core operations and all subsystems."""

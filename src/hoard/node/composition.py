"""The node's components, in order, with their dependencies written as constructor arguments.

Start order is list order (the network first: the others use it while they run); close order
is the reverse. Adding a subsystem is one component (node/components/) and one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hoard.node.component import Component
from hoard.node.components.blobs import BlobsComponent
from hoard.node.components.data import DataComponent
from hoard.node.components.fetch import FetchComponent
from hoard.node.components.files import FilesComponent
from hoard.node.components.ipfs import IpfsComponent
from hoard.node.components.logs import LogsComponent
from hoard.node.components.net import NetComponent
from hoard.node.components.transfer import TransferComponent
from hoard.node.context import NodeContext
from hoard.node.streams import LongCalls


@dataclass(frozen=True)
class Components:
    """A node's components, by name (typed) and in start order (`ordered`)."""

    context: NodeContext
    net: NetComponent
    fetch: FetchComponent
    data: DataComponent
    blobs: BlobsComponent
    files: FilesComponent
    logs: LogsComponent
    transfer: TransferComponent
    ipfs: IpfsComponent

    @property
    def ordered(self) -> list[Component]:
        """Every component, in start order."""
        return [self.net, self.fetch, self.data, self.blobs, self.files, self.logs, self.transfer, self.ipfs]


def compose(context: NodeContext) -> Components:
    """Build a node's components on `context` and install their protocols on the network."""
    long_calls = LongCalls()  # shared: one bound on node threads held by slow client streams
    net = NetComponent(context)
    fetch = FetchComponent(context, net)
    components = Components(
        context=context,
        net=net,
        fetch=fetch,
        data=DataComponent(context, fetch),
        blobs=BlobsComponent(context, long_calls),
        files=FilesComponent(context, long_calls),
        logs=LogsComponent(context, net),
        transfer=TransferComponent(context, net),
        ipfs=IpfsComponent(context, net, fetch),
    )
    for component in components.ordered:
        net.serve(component.protocols)
    return components

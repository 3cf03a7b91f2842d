"""`NodeClient.ipfs`: `node.ipfs` of a running node, over its REST API.

The same methods, arguments and results as the node's `ipfs` namespace (node/node.py
`IpfsApi`), over the `/ipfs/...` routes of routes_ipfs.py and the trustless gateway (blocks,
`HEAD` for presence). Everything read is verified here too: a block against its CID, a UnixFS
download block by block (`unixfs.export`). A CAR comes from the REST API as CARv1.
"""

from __future__ import annotations

import builtins
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

from hoard.api import shapes
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID
from hoard.node.results import CarImport, IpfsRoot

if TYPE_CHECKING:
    from hoard.api.client import NodeClient

__all__ = ["ClientIpfs"]

PIECE = 1 << 20


def _pieces(f: IO[bytes]) -> Iterator[bytes]:
    while piece := f.read(PIECE):
        yield piece


class ClientIpfs:
    """`node.ipfs` over REST (see the module docstring)."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client

    def _gateway(self, cid: str | CID) -> str:
        return f"{self._client.url.rsplit('/api/', 1)[0]}/ipfs/{cid}"

    def add(self, path: str | os.PathLike[str], cid_version: int = 0, raw_leaves: bool = False,
            filename: str | None = None, pin: bool = True) -> IpfsRoot:
        """Import a file or directory (sent as a tar of its entries) as UnixFS."""
        source = Path(path)
        params = {"cid-version": str(cid_version), "raw-leaves": "true" if raw_leaves else "false",
                  "filename": filename if filename is not None else source.name, "pin": "true" if pin else "false"}
        if source.is_dir() and not source.is_symlink():
            with tempfile.TemporaryFile() as spool:  # the directory's entries, relative paths
                with tarfile.open(fileobj=spool, mode="w") as tar:
                    for entry in sorted(os.listdir(source)):
                        tar.add(source / entry, arcname=entry)
                spool.seek(0)
                response = self._client._request("POST", "/ipfs/add", params=params, content=_pieces(spool),
                                                 headers={"content-type": "application/x-tar"})
        elif source.is_file():
            with open(source, "rb") as f:
                response = self._client._request("POST", "/ipfs/add", params=params, content=_pieces(f),
                                                 headers={"content-type": "application/octet-stream"})
        else:
            raise NotFoundError(f"no such file or directory: {path}", path=str(path))
        return shapes.ipfs_root_from_json(response.json())

    def download(self, cid: str | CID, path: str | os.PathLike[str], network: bool = False) -> int:
        """Write the UnixFS file or directory under `cid` to `path` (must not exist), every block
        verified here; with `network`, the node fetches it by bitswap first."""
        from hoard.content.formats import unixfs

        parsed = CID.parse(str(cid))
        if network:
            try:
                self.stat(parsed)
            except NotFoundError:
                self.fetch(parsed)
        return unixfs.export(parsed, self.block, str(path))

    def fetch(self, cid: str | CID, pin: bool = False) -> IpfsRoot:
        response = self._client._request("POST", f"/ipfs/fetch/{cid}", params={"pin": "true" if pin else "false"})
        return shapes.ipfs_root_from_json(response.json())

    def block(self, cid: str | CID) -> bytes:
        """A block through the node's trustless gateway (`format=raw`), verified here."""
        parsed = CID.parse(str(cid))
        data: bytes = self._client._request("GET", self._gateway(cid), params={"format": "raw"}).content
        parsed.verify(data)
        return data

    def has(self, cid: str | CID) -> bool:
        """Whether the node stores the block (a `HEAD` of the gateway)."""
        CID.parse(str(cid))
        try:
            self._client._request("HEAD", self._gateway(cid), params={"format": "raw"})
        except NotFoundError:
            return False
        return True

    def stat(self, cid: str | CID) -> IpfsRoot:
        return shapes.ipfs_root_from_json(self._client._request("GET", f"/ipfs/roots/{cid}").json())

    def list(self) -> builtins.list[IpfsRoot]:
        return [shapes.ipfs_root_from_json(e) for e in self._client._request("GET", "/ipfs/roots").json()]

    def remove(self, cid: str | CID) -> None:
        self._client._request("DELETE", f"/ipfs/roots/{cid}")

    def car_export(self, cid: str | CID, path: str | os.PathLike[str], version: int = 1) -> int:
        """Write the stored DAG under `cid` as a CARv1 file at `path` (must not exist; written
        to a temporary name and renamed when whole). The REST API serves CARv1 only."""
        if version != 1:
            raise InvalidArgumentError("a running node's REST API serves CARv1 only (CARv2: an embedded node)")
        target = Path(path)
        if target.exists():
            raise InvalidArgumentError(f"{path} already exists", path=str(path))
        tmp = target.with_name(f".{target.name}.part")
        total = 0
        try:
            response = self._client._send_stream("GET", f"/ipfs/car/{cid}")
            try:
                with open(tmp, "xb") as out, self._client._reaching():
                    for piece in response.iter_bytes(PIECE):
                        out.write(piece)
                        total += len(piece)
            finally:
                response.close()
            tmp.rename(target)
        finally:
            tmp.unlink(missing_ok=True)
        return total

    def car_import(self, path: str | os.PathLike[str], pin: bool = True) -> CarImport:
        with open(path, "rb") as f:
            response = self._client._request("POST", "/ipfs/car", params={"pin": "true" if pin else "false"},
                                             content=_pieces(f), headers={"content-type": "application/vnd.ipld.car"})
        return shapes.car_import_from_json(response.json())

"""IPFS commands: `hoard car export|import`, `hoard ipfs ls|stat|rm`, and the UnixFS halves of
`hoard upload --unixfs` and `hoard download <unixfs-cid>` (cli/data.py calls them).

Against an embedded node these call `node.ipfs`; against a running node (its REST API) the same
operations go through `RestIpfs` (the `/ipfs/...` paths of routes_ipfs.py, and the trustless
gateway for blocks). A download always verifies every block on this side too
(`unixfs.read_file` / `unixfs.export` check each block against its CID).
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import click

from hoard.api import shapes
from hoard.cli.output import Ctx
from hoard.cli.session import open_node
from hoard.content.formats import unixfs
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID, DAG_PB, RAW, SHA2_256
from hoard.node.results import CarImport, IpfsRoot

pass_ctx = click.make_pass_decorator(Ctx)

PIECE = 1 << 20


def is_unixfs_cid(text: str) -> bool:
    """Whether `text` names a UnixFS node (dag-pb, or a raw sha2-256 block) rather than a hoard dataset."""
    try:
        cid = CID.parse(text)
    except InvalidArgumentError:
        return False
    return cid.codec == DAG_PB or (cid.codec == RAW and cid.hash_code == SHA2_256)


def display(cid: CID) -> str:
    return str(cid) if cid.version == 0 else cid.to_base32()


class IpfsOps(Protocol):
    """What the commands use of `node.ipfs` (an embedded node's, or `RestIpfs`)."""

    def add(self, path: str, cid_version: int = 0, raw_leaves: bool = False, filename: str | None = None,
            pin: bool = True) -> IpfsRoot: ...

    def fetch(self, cid: str | CID, pin: bool = False) -> IpfsRoot: ...

    def block(self, cid: str | CID) -> bytes: ...

    def stat(self, cid: str | CID) -> IpfsRoot: ...

    def list(self) -> list[IpfsRoot]: ...

    def remove(self, cid: str | CID) -> None: ...

    def car_import(self, path: str, pin: bool = True) -> CarImport: ...


class RestIpfs:
    """`node.ipfs` of a running node, over its REST API (a `hoard.api.client.NodeClient`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._client._request(method, path, **kwargs).json()

    def add(self, path: str, cid_version: int = 0, raw_leaves: bool = False, filename: str | None = None,
            pin: bool = True) -> IpfsRoot:
        source = Path(path)
        params = {"cid-version": str(cid_version), "raw-leaves": "true" if raw_leaves else "false",
                  "filename": filename if filename is not None else source.name}
        if source.is_dir() and not source.is_symlink():
            with tempfile.TemporaryFile() as spool:  # the directory's entries, relative paths
                with tarfile.open(fileobj=spool, mode="w") as tar:
                    for entry in sorted(os.listdir(source)):
                        tar.add(source / entry, arcname=entry)
                spool.seek(0)
                data = self._json("POST", "/ipfs/add", params=params, content=_pieces(spool),
                                  headers={"content-type": "application/x-tar"})
        elif source.is_file():
            with open(source, "rb") as f:
                data = self._json("POST", "/ipfs/add", params=params, content=_pieces(f),
                                  headers={"content-type": "application/octet-stream"})
        else:
            raise NotFoundError(f"no such file or directory: {path}", path=str(path))
        return shapes.ipfs_root_from_json(data)

    def fetch(self, cid: str | CID, pin: bool = False) -> IpfsRoot:
        return shapes.ipfs_root_from_json(self._json("POST", f"/ipfs/fetch/{cid}",
                                                     params={"pin": "true" if pin else "false"}))

    def block(self, cid: str | CID) -> bytes:
        """A block through the node's trustless gateway (`/ipfs/{cid}?format=raw`), verified here."""
        parsed = CID.parse(str(cid))
        gateway = self._client.url.rsplit("/api/", 1)[0]
        data: bytes = self._client._request("GET", f"{gateway}/ipfs/{cid}", params={"format": "raw"}).content
        parsed.verify(data)
        return data

    def stat(self, cid: str | CID) -> IpfsRoot:
        return shapes.ipfs_root_from_json(self._json("GET", f"/ipfs/roots/{cid}"))

    def list(self) -> list[IpfsRoot]:
        return [shapes.ipfs_root_from_json(e) for e in self._json("GET", "/ipfs/roots")]

    def remove(self, cid: str | CID) -> None:
        self._client._request("DELETE", f"/ipfs/roots/{cid}")

    def car_import(self, path: str, pin: bool = True) -> CarImport:
        with open(path, "rb") as f:
            return shapes.car_import_from_json(self._json("POST", "/ipfs/car", content=_pieces(f),
                                                          headers={"content-type": "application/vnd.ipld.car"}))

    def car_export_to(self, cid: str, out: Any) -> int:
        total = 0
        with self._client._reaching(), self._client._client.stream("GET", f"/ipfs/car/{cid}") as response:
            if response.status_code >= 400:
                response.read()
                from hoard.api.client import error_from_response
                raise error_from_response(response)
            for piece in response.iter_bytes(PIECE):
                out.write(piece)
                total += len(piece)
        return total


def _pieces(f: io.BufferedIOBase | Any) -> Iterator[bytes]:
    while piece := f.read(PIECE):
        yield piece


def ipfs_of(node: Any) -> IpfsOps:
    """The `ipfs` operations of what `open_node` gave: an embedded node's, or over REST."""
    ops = getattr(node, "ipfs", None)
    return ops if ops is not None else RestIpfs(node)


# -- used by `hoard upload --unixfs` and `hoard download` (cli/data.py) ------------------------
def upload_unixfs(ctx: Ctx, node: Any, path: str, cid_version: int, raw_leaves: bool) -> None:
    """Import PATH as UnixFS; prints the root CID (as kubo prints it) as the last line."""
    if raw_leaves and cid_version == 0:
        raise InvalidArgumentError("--raw-leaves needs --cid-version 1 (as in kubo)")
    if not Path(path).exists():
        raise NotFoundError(f"no such file or directory: {path}", path=path)
    entry = ipfs_of(node).add(str(Path(path).resolve()), cid_version, raw_leaves, Path(path).name, True)
    ctx.emit(shapes.ipfs_root_json(entry), display(entry.cid))


def download_unixfs(ctx: Ctx, node: Any, cid_text: str, output: str | None, network: bool) -> None:
    """Write a UnixFS file or tree to OUTPUT (a file to stdout without -o), verifying every block."""
    ops = ipfs_of(node)
    cid = CID.parse(cid_text)
    if network:
        try:
            ops.stat(cid)
        except NotFoundError:
            ops.fetch(cid)
    if output is None:
        out = sys.stdout.buffer
        written = 0
        for piece in unixfs.read_file(cid, ops.block):
            out.write(piece)
            written += len(piece)
        out.flush()
        return
    written = unixfs.export(cid, ops.block, output)
    ctx.emit({"cid": cid_text, "path": output, "bytes": written}, f"{written} bytes written to {output}")


# -- hoard car ----------------------------------------------------------------------------------
@click.group()
def car() -> None:
    """CAR files (content-addressed archives): export a DAG, import blocks."""


@car.command(name="export")
@click.argument("cid")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="Write the CAR to FILE.")
@click.option("--v2", "v2", is_flag=True, help="Write a CARv2 (embedded node only; default CARv1).")
@pass_ctx
def car_export(ctx: Ctx, cid: str, output: str, v2: bool) -> None:
    """Write the stored DAG under CID as a CARv1 file (every block verified)."""
    CID.parse(cid)
    target = Path(output)
    if target.exists():
        raise InvalidArgumentError(f"{output} already exists")
    with open_node(ctx) as node:
        ops = getattr(node, "ipfs", None)
        if ops is not None:
            written = ops.car_export(cid, str(target.resolve()), 2 if v2 else 1)
        else:
            if v2:
                raise InvalidArgumentError("--v2 needs an embedded node; a running node's REST API serves CARv1")
            tmp = target.with_name(f".{target.name}.part")
            try:
                with open(tmp, "xb") as out:
                    written = RestIpfs(node).car_export_to(cid, out)
                tmp.rename(target)
            finally:
                tmp.unlink(missing_ok=True)
    ctx.emit({"cid": cid, "path": output, "bytes": written}, f"{written} bytes written to {output}")


@car.command(name="import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@pass_ctx
def car_import(ctx: Ctx, file: str) -> None:
    """Store the blocks of a CARv1/CARv2 FILE (each verified) and record its roots; all or nothing."""
    with open_node(ctx) as node:
        result = ipfs_of(node).car_import(str(Path(file).resolve()), True)
    roots = "\n".join(display(r) for r in result.roots)
    ctx.emit(shapes.car_import_json(result), f"imported {result.blocks} blocks ({result.bytes} bytes), roots:\n{roots}")


# -- hoard ipfs -----------------------------------------------------------------------------------
@click.group()
def ipfs() -> None:
    """The stored IPFS roots (UnixFS files and directories, CAR roots)."""


@ipfs.command(name="ls")
@pass_ctx
def ipfs_ls(ctx: Ctx) -> None:
    """List the stored IPFS roots."""
    with open_node(ctx) as node:
        entries = ipfs_of(node).list()
    lines = [f"{display(e.cid)}  {e.size:>12}  {e.format}  {e.filename or ''}" for e in entries]
    ctx.emit([shapes.ipfs_root_json(e) for e in entries], "\n".join(lines) if lines else "(no IPFS roots)")


@ipfs.command(name="stat")
@click.argument("cid")
@pass_ctx
def ipfs_stat(ctx: Ctx, cid: str) -> None:
    """Show a stored root's catalog entry (JSON)."""
    with open_node(ctx) as node:
        ctx.emit(shapes.ipfs_root_json(ipfs_of(node).stat(cid)))


@ipfs.command(name="rm")
@click.argument("cid")
@pass_ctx
def ipfs_rm(ctx: Ctx, cid: str) -> None:
    """Remove a stored root; its blocks nobody else holds are deleted."""
    with open_node(ctx) as node:
        ipfs_of(node).remove(cid)
    ctx.emit({"removed": cid}, f"removed {cid}")


def register(cli: click.Group) -> None:
    cli.add_command(car)
    cli.add_command(ipfs)

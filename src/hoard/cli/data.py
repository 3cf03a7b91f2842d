"""Data commands: upload, download, fetch, manifest, list, space, exists, delete, verify, info, connect.

Each command runs against a running node's REST API when one runs on the data dir (or
`--api` names one), else against an embedded node; see session.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.session import open_node
from hoard.errors import HoardError, InvalidArgumentError, NotFoundError, StateError

pass_ctx = click.make_pass_decorator(Ctx)

FETCH_POLL = 0.25  # seconds between progress polls of a background fetch


@click.command()
@click.argument("path")
@click.option("--chunk-size", type=int, default=0, show_default=True, help="Block size in bytes (0 = 65536).")
@click.option("--unixfs", "as_unixfs", is_flag=True,
              help="Import a file or directory as UnixFS (IPFS); prints its root CID, the one kubo's `ipfs add` prints.")
@click.option("--cid-version", type=click.IntRange(0, 1), default=0, show_default=True,
              help="With --unixfs: 0 = kubo's default (dag-pb leaves), 1 = CIDv1.")
@click.option("--raw-leaves", is_flag=True, help="With --unixfs --cid-version 1: raw leaves (kubo's --raw-leaves).")
@pass_ctx
def upload(ctx: Ctx, path: str, chunk_size: int, as_unixfs: bool, cid_version: int, raw_leaves: bool) -> None:
    """Upload a file (or - for stdin); prints the manifest CID as the last line.

    With --unixfs, PATH (a file or a directory) becomes a UnixFS DAG for IPFS peers."""
    from hoard.api import shapes

    if as_unixfs or cid_version or raw_leaves:
        from hoard.cli.ipfs import upload_unixfs

        if not as_unixfs:
            raise InvalidArgumentError("--cid-version and --raw-leaves go with --unixfs")
        with open_node(ctx) as node:
            upload_unixfs(ctx, node, path, cid_version, raw_leaves)
        return
    with open_node(ctx) as node:
        if path == "-":
            session = node.upload_init("stdin", chunk_size)
            with ctx.progress("uploading", None) as advance:
                try:
                    while piece := sys.stdin.buffer.read(1 << 20):
                        node.upload_chunk(session, piece)
                        advance(len(piece))
                except BaseException:
                    node.upload_cancel(session)
                    raise
            cid = node.upload_finalize(session)
        else:
            from hoard.cli.paths import input_file

            file = input_file(path, "upload", utf8_name=True)
            session = node.upload_init(str(file.resolve()), chunk_size)
            with ctx.progress(f"uploading {file.name}", file.stat().st_size) as advance:
                cid = node.upload_file(session, on_progress=advance)
        ctx.emit({"cid": str(cid), "manifest": shapes.manifest_json(node.download_manifest(cid))}, str(cid))


@click.command()
@click.argument("cid")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE (default: stdout).")
@click.option("--network", is_flag=True, help="Fetch from the network if not stored locally.")
@pass_ctx
def download(ctx: Ctx, cid: str, output: str | None, network: bool) -> None:
    """Download a dataset (or block) by CID to FILE or stdout.

    A UnixFS CID (`Qm...`, `bafy...`) writes the file, or with -o the directory tree, back."""
    from hoard.cli.ipfs import download_unixfs, is_unixfs_cid

    if is_unixfs_cid(cid):
        with open_node(ctx, start=network) as node:
            download_unixfs(ctx, node, cid, output, network)
        return
    with open_node(ctx, start=network) as node:
        try:
            node.download_init(cid, 0, not network)
        except NotFoundError as exc:
            if network:
                raise
            raise NotFoundError(f"{exc.message} (hint: add --network to get it from peers)", cid=cid) from exc
        total = _dataset_size(node, cid, network)
        with ctx.progress("downloading", total) as advance:
            if output:
                written = node.download_stream(cid, str(Path(output).resolve()), 1 << 20, not network,
                                               on_progress=lambda chunk: advance(len(chunk)))
            else:
                out = sys.stdout.buffer

                def sink(chunk: bytes) -> None:
                    out.write(chunk)
                    advance(len(chunk))

                written = node.download_stream(cid, None, 1 << 20, not network, on_progress=sink)
                out.flush()
        if output:
            ctx.emit({"cid": cid, "path": output, "bytes": written}, f"{written} bytes written to {output}")


def _dataset_size(node: Any, cid: str, network: bool) -> int | None:
    """The size of the dataset `cid` names, for the progress bar; None for a block, or when
    it is not at hand (a local download does not ask the network for the manifest)."""
    try:
        if not network and not node.exists(cid):
            return None
        return int(node.download_manifest(cid).dataset_size)
    except HoardError:
        return None


@click.command()
@click.argument("cid")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Wait until the dataset is stored (with a progress bar), or return once the fetch started.")
@pass_ctx
def fetch(ctx: Ctx, cid: str, wait: bool) -> None:
    """Fetch a dataset into the local store (from the network when it is not stored)."""
    from hoard.api import shapes

    if not wait:  # an embedded node would stop the fetch as the command exits
        from hoard.cli.peers import require_running

        require_running(ctx, "fetch --no-wait")
    with open_node(ctx, start=True) as node:
        started = node.fetch_start(cid)
        download_id = started.download_id
        progress = node.fetch_progress(download_id, cid)
        if wait:
            with ctx.progress("fetching", started.manifest.dataset_size) as advance:
                done = 0
                try:
                    while True:
                        got = progress.bytes if progress.bytes is not None else done
                        advance(got - done)
                        done = got
                        if not progress.active:
                            break
                        time.sleep(FETCH_POLL)
                        progress = node.fetch_progress(download_id, cid)
                except KeyboardInterrupt:
                    _cancel_quietly(node, download_id, cid)
                    raise
            if progress.error:
                raise StateError(f"fetch of {cid} failed: {progress.error}", cid=cid)
        result = {**shapes.fetch_started_json(started), "progress": shapes.progress_json(progress)}
        text = (f"fetching {started.cid} (download id {download_id})" if progress.active
                else f"fetched {started.cid}: {progress.bytes or 0} bytes")
        ctx.emit(result, text)


def _cancel_quietly(node: Any, download_id: int, cid: str) -> None:
    try:
        node.fetch_cancel(download_id, cid)
    except HoardError:
        pass


@click.command()
@click.argument("cid")
@pass_ctx
def manifest(ctx: Ctx, cid: str) -> None:
    """Show a dataset's manifest (JSON)."""
    from hoard.api import shapes

    with open_node(ctx) as node:
        ctx.emit(shapes.manifest_json(node.download_manifest(cid)))


@click.command(name="list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """List stored datasets."""
    with open_node(ctx) as node:
        entries = node.list()
    if ctx.json or not entries:
        from hoard.api import shapes

        ctx.emit(shapes.datasets_json(entries), "(no datasets)")
        return
    from hoard.cli.output import human_size, print_table
    from hoard.content.manifest import escape_text

    print_table(["cid", "size", "kept", "filename"],
                [[str(e.cid), human_size(e.manifest.dataset_size), _kept(e), escape_text(e.manifest.filename or "")]
                 if e.manifest is not None else [str(e.cid), "?", _kept(e), escape_text(e.error or "damaged manifest")]
                 for e in entries],
                right=("size",))


def _kept(entry: Any) -> str:
    """"stored", or "cached until <UTC date>" for fetched data that expires (`hoard keep` stores it)."""
    if not entry.cached:
        return "stored"
    if entry.expires is None:
        return "cached"
    return "cached until " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(entry.expires))


@click.command()
@pass_ctx
def space(ctx: Ctx) -> None:
    """Show storage space: blocks, quota, used and reserved bytes."""
    from hoard.api import shapes
    from hoard.cli.output import human_size

    with open_node(ctx) as node:
        figures = node.space()
    used, quota = figures.quota_used_bytes, max(figures.quota_max_bytes, 1)
    ctx.emit(shapes.space_json(figures), "\n".join([
        f"used:     {human_size(used)} of {human_size(figures.quota_max_bytes)} ({100 * used / quota:.1f}%)",
        f"reserved: {human_size(figures.quota_reserved_bytes)}",
        f"free:     {human_size(max(figures.quota_max_bytes - used - figures.quota_reserved_bytes, 0))}",
        f"blocks:   {figures.total_blocks:,}"]))


@click.command()
@click.argument("cid")
@pass_ctx
def exists(ctx: Ctx, cid: str) -> None:
    """Say whether a CID is stored locally (exit 0 if so, 1 if not)."""
    with open_node(ctx) as node:
        found = node.exists(cid)
    ctx.emit({cid: found}, "true" if found else "false")
    if not found:
        sys.exit(1)


@click.command()
@click.argument("cid")
@pass_ctx
def delete(ctx: Ctx, cid: str) -> None:
    """Delete a dataset (manifest CID) or a single unreferenced block."""
    with open_node(ctx) as node:
        node.delete(cid)
    ctx.emit({"deleted": cid}, f"deleted {cid}")


@click.command()
@click.argument("cid", required=False)
@click.option("--all", "every", is_flag=True, help="Verify every stored dataset; exit 5 if any fails.")
@pass_ctx
def verify(ctx: Ctx, cid: str | None, every: bool) -> None:
    """Re-read a dataset (or, with --all, every dataset) from disk and check every block against its CID."""
    from hoard.api import shapes

    if every == (cid is not None):
        raise InvalidArgumentError("give either a CID or --all")
    if cid is not None:
        with open_node(ctx) as node:
            result = node.verify(cid)
        ctx.emit(shapes.verify_json(result), f"ok: {result.blocks} blocks, {result.bytes} bytes verified")
        return
    reports: list[dict[str, Any]] = []
    with open_node(ctx) as node:
        for dataset in node.list():
            if dataset.error is not None:
                reports.append({"cid": str(dataset.cid), "ok": False, "error": dataset.error})
                continue
            try:
                result = node.verify(dataset.cid)
            except HoardError as exc:
                reports.append({"cid": str(dataset.cid), "ok": False, "error": exc.message})
            else:
                reports.append({"ok": True, **shapes.verify_json(result)})
    failed = [r for r in reports if not r["ok"]]
    lines = [f"{'ok' if r['ok'] else 'FAILED'}: {r['cid']}" + ("" if r["ok"] else f": {r['error']}") for r in reports]
    lines.append(f"{len(reports) - len(failed)} of {len(reports)} datasets verified")
    ctx.emit({"datasets": reports, "failed": len(failed)}, "\n".join(lines))
    if failed:
        sys.exit(5)  # the exit code of an integrity error


@click.command()
@pass_ctx
def info(ctx: Ctx) -> None:
    """Show version, revision, peer id, SPR and repo."""
    with open_node(ctx) as node:
        data = {"version": node.version(), "revision": node.revision(), "peerId": str(node.peer_id()),
                "spr": node.spr(), "repo": node.repo()}
    ctx.emit(data, "\n".join(f"{k}: {v}" for k, v in data.items()))


@click.command()
@click.argument("peer_id")
@click.argument("addrs", nargs=-1)
@pass_ctx
def connect(ctx: Ctx, peer_id: str, addrs: tuple[str, ...]) -> None:
    """Connect to a peer, at ADDRS (multiaddresses) or found through the DHT."""
    with open_node(ctx, start=True) as node:
        node.connect(peer_id, list(addrs))
    ctx.emit({"connected": peer_id}, f"connected to {peer_id}")


def register(cli: click.Group) -> None:
    for command in (upload, download, fetch, manifest, list_, space, exists, delete, verify, info):  # connect: peers.py
        cli.add_command(command)

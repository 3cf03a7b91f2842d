"""Logos datasets over the network: their manifests, verified block lists, reads and fetches.

The fetch component hands a Logos manifest CID (codex-manifest) to these functions; hoard's own
format stays in `components/fetch.py`. A Logos dataset from another hoard node is verified
block by block, as a hoard dataset is:

1. the manifest block is fetched by its CID and checked against it (sha2-256);
2. the ordered block list is asked of a provider over `/hoard/logos-tree/1` (its leaf list,
   `content/formats/logos_dataset.py`) and accepted only if its Merkle root is the manifest's
   treeCid (`verified_block_cids`), trying the next provider otherwise;
3. the blocks are fetched by their codex-block CIDs, each checked against its CID on arrival;
   a download returns the first datasetSize bytes (the last block's padding is dropped).

`serve_tree` answers `/hoard/logos-tree/1` from the local store (the data component serves it).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from hoard.content.formats.logos_dataset import (
    REPLY_HEADER_SIZE,
    TREE_PROTOCOL,
    is_logos_manifest,
    leaf_parts,
    tree_reply,
    tree_reply_header,
    verified_block_cids,
)
from hoard.content.formats.logos_manifest import LogosManifest
from hoard.content.repo import ContentStore
from hoard.errors import HoardError, IntegrityError, NotFoundError
from hoard.ids.cid import CID, DIGEST_LEN
from hoard.ids.peer import PeerId
from hoard.limits import MAX_DATASET_BLOCKS

if TYPE_CHECKING:
    from hoard.node.components.fetch import Fetch, FetchComponent

log = logging.getLogger("hoard.node.fetch")

TREE_TIMEOUT = 30.0  # seconds for one provider's leaf list
_MAX_REQUEST = 128


async def _read_exactly(stream: Any, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = await stream.read(min(n - got, 1 << 20))
        if not data:
            raise IntegrityError(f"the leaf-list stream ended after {got} of {n} bytes")
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def serve_tree(content: ContentStore, stream: Any) -> None:
    """Answer one `/hoard/logos-tree/1` request: a manifest CID in, its leaf list out."""
    try:
        with trio.move_on_after(TREE_TIMEOUT):
            length = (await _read_exactly(stream, 1))[0]
            try:
                cid = CID(await _read_exactly(stream, length)) if 0 < length <= _MAX_REQUEST else None
            except HoardError:
                cid = None
            leaves = None
            if cid is not None and is_logos_manifest(cid):
                leaves = await trio.to_thread.run_sync(content.logos_leaves, cid)
            if leaves is None:
                await stream.write(tree_reply_header(False))
            else:
                await stream.write(tree_reply_header(True, len(leaves)) + leaves)
    except Exception as exc:  # noqa: BLE001 - a broken peer stream ends this answer only
        log.debug("logos tree request failed: %r", exc)
    finally:
        with trio.move_on_after(2):
            try:
                await stream.close()
            except Exception:  # noqa: BLE001, S110 - the stream is gone already
                pass


async def _ask_tree(fetch: FetchComponent, peer: PeerId, cid: CID, manifest: LogosManifest) -> list[CID]:
    network = fetch._net.require("fetch")
    stream = await network.host.open_stream(peer, TREE_PROTOCOL)
    try:
        with trio.fail_after(TREE_TIMEOUT):
            await stream.write(bytes((len(cid.binary),)) + cid.binary)
            found, length = tree_reply(await _read_exactly(stream, REPLY_HEADER_SIZE))
            if not found:
                raise NotFoundError(f"{peer} does not have the block list of {cid}", cid=str(cid))
            if length != manifest.blocks_count * DIGEST_LEN or manifest.blocks_count > MAX_DATASET_BLOCKS:
                raise IntegrityError(f"{peer} announced a leaf list of {length} bytes for {manifest.blocks_count} "
                                     f"blocks", cid=str(cid))
            leaves = await _read_exactly(stream, length)
        return await trio.to_thread.run_sync(verified_block_cids, manifest, leaves)
    finally:
        with trio.move_on_after(2):
            try:
                await stream.close()
            except Exception:  # noqa: BLE001, S110 - the stream is gone already
                pass


async def manifest(fetch: FetchComponent, cid: CID) -> LogosManifest:
    """A Logos dataset's manifest: local if stored (or the node is stopped), else from providers."""
    content = fetch._context.content
    if fetch._context.content.ingest.present(cid) or fetch._net.network is None:
        return await trio.to_thread.run_sync(content.logos_manifest, cid)
    providers = await fetch._providers(cid)
    return LogosManifest.decode(await fetch._fetch_one(cid, providers), cid)


async def block_cids(fetch: FetchComponent, cid: CID, known: LogosManifest, providers: list[PeerId]) -> list[CID]:
    """The ordered, verified block CIDs of a Logos dataset: from the local store, else from the
    first provider whose leaf list matches the treeCid."""
    content = fetch._context.content
    local = await trio.to_thread.run_sync(content.logos_leaves, cid)
    if local is not None:
        return await trio.to_thread.run_sync(verified_block_cids, known, local)
    problems: list[str] = []
    for peer in providers:
        try:
            return await _ask_tree(fetch, peer, cid, known)
        except (HoardError, trio.TooSlowError) as exc:
            text = exc.message if isinstance(exc, HoardError) else "timed out"
            problems.append(f"{peer}: {text}")
            log.debug("block list of %s from %s: %s", cid, peer, text)
    raise NotFoundError(f"no peer gave a valid block list of {cid}" + (f" ({'; '.join(problems[:3])})"
                                                                           if problems else ""), cid=str(cid))


class CappedReader:
    """A network reader of a Logos dataset: the padded blocks, cut at datasetSize."""

    def __init__(self, reader: Any, size: int) -> None:
        self._reader = reader
        self.size = size
        self._left = size

    async def read(self, n: int) -> bytes:
        if self._left <= 0:
            await self._reader.aclose()
            return b""
        data: bytes = await self._reader.read(min(n, self._left))
        self._left -= len(data)
        return data

    async def aclose(self) -> None:
        await self._reader.aclose()


async def open_reader(fetch: FetchComponent, cid: CID, reader_type: Any) -> CappedReader:
    """A reader of a Logos dataset from the network (`reader_type`: the fetch's NetworkReader)."""
    known = await manifest(fetch, cid)
    providers = await fetch._providers(cid)
    blocks = await block_cids(fetch, cid, known, providers)
    return CappedReader(reader_type(known.dataset_size, fetch.fetch_blocks(blocks, providers)), known.dataset_size)


async def fetch_dataset(fetch: FetchComponent, cid: CID, record: Fetch, batch_bytes: int) -> None:
    """Pull a whole Logos dataset into the local store (cached) through one ingest session."""
    context = fetch._context
    content = context.content
    store = content.blobs
    providers = await fetch._providers(cid)
    manifest_bytes = store.get(cid) or await fetch._fetch_one(cid, providers)
    known = LogosManifest.decode(manifest_bytes, cid)
    blocks = await block_cids(fetch, cid, known, providers)
    distinct = list(dict.fromkeys(blocks))
    present = await trio.to_thread.run_sync(store.get_many, distinct)
    wanted = [c for c, d in zip(distinct, present, strict=True) if d is None]
    record.advance(len(distinct) - len(wanted), (len(distinct) - len(wanted)) * known.block_size)
    parts = await trio.to_thread.run_sync(_parts_of, blocks)
    reserve = len(manifest_bytes) + sum(len(d) for _, d in parts) + len(wanted) * known.block_size
    session = await trio.to_thread.run_sync(lambda: content.ingest.session(reserve=reserve))
    try:
        batch: list[tuple[CID, bytes]] = []
        size = 0
        if wanted:
            async with fetch.fetch_blocks(wanted, providers) as stream:
                async for block, data in stream:
                    batch.append((block, data))
                    size += len(data)
                    if size >= batch_bytes:
                        await trio.to_thread.run_sync(session.write, batch)
                        record.advance(len(batch), size)
                        batch, size = [], 0
        if batch:
            await trio.to_thread.run_sync(session.write, batch)
            record.advance(len(batch), size)
        await trio.to_thread.run_sync(lambda: content.commit_logos(session, cid, manifest_bytes, known, parts,
                                                                   pinned=False))
    finally:
        if not session.closed:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(session.abandon)
    await context.events.dataset_stored(cid)


def _parts_of(blocks: list[CID]) -> list[tuple[CID, bytes]]:
    return leaf_parts([b.digest for b in blocks])

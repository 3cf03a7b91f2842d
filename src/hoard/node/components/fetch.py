"""The fetch component: reading what the node does not store, and background fetches.

Reading data the node does not have (`download_*(..., local=False)`, streams, `fetch`):
1. providers: the DHT providers of the manifest CID, plus connected peers as a fallback;
2. the manifest block, then the block-index nodes level by level, each verified;
3. the data blocks through a `BlockStream` (several peers, verified, bounded window, in order).
A download streams them without storing; a fetch stores them through the one ingest path (a
session reserving the missing bytes, pending batches, a verified commit) as a cached dataset
(unpinned, expires after `block-ttl`) when complete.

Every fetch goes through a `hoard.net.exchange.BlockExchange`, chosen by CID
(`NetComponent.exchange_for`): bitswap for IPFS CIDs (dag-pb, raw sha2-256), `/hoard/blocks/1`
for the rest. Other components use `fetch_blocks`, `fetch_dag`, `providers` and `exchange_for`.

**Background fetches.** `fetch_start(cid)` gets the dataset's manifest (locally, or from the
network) and fetches the dataset into the local store in the background; it returns the
manifest and a download id at once (the Logos `POST /data/{cid}/network`). Each fetch is a
`Fetch` record with blocks/bytes progress that `fetch_progress` reports
and `fetch_cancel` stops. A dataset already stored completes at once with full progress.
The fetch itself is `runner(cid, manifest, fetch)` (by default `fetch_dataset`); a node
without a runner cannot fetch what it does not store (StateError).
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import trio

from hoard.content.formats import unixfs
from hoard.content.formats.dagpb import decode_node
from hoard.content.formats.logos_dataset import is_logos_manifest
from hoard.content.formats.logos_manifest import LogosManifest
from hoard.content.index import IndexTree
from hoard.content.ingest import IngestSession
from hoard.content.manifest import Manifest, is_dag
from hoard.errors import CancelledError, HoardError, IntegrityError, InvalidArgumentError, NotFoundError, StateError
from hoard.ids.cid import CID, DAG_PB
from hoard.ids.peer import PeerId
from hoard.node import logos_fetch
from hoard.node.component import StreamHandler
from hoard.node.components.net import NetComponent
from hoard.node.context import NodeContext
from hoard.node.params import is_int, parse_cid
from hoard.node.results import FetchInfo, FetchProgress, FetchStarted

if TYPE_CHECKING:
    from hoard.net.exchange import BlockExchange
    from hoard.net.exchange import BlockStream as ExchangeStream

log = logging.getLogger("hoard.node.fetch")

FETCH_BATCH_BYTES = 8 << 20  # fetched blocks are written in batches of about this size
HAVE_TIMEOUT = 3.0  # seconds connected peers have to answer a bitswap want-have
KEEP_FINISHED = 64  # finished fetches kept for progress queries


@dataclass
class Fetch:
    """One background fetch. `advance()` is how a fetcher reports verified blocks stored."""

    id: int
    cid: CID
    manifest: Manifest | LogosManifest
    total: int
    total_bytes: int
    received: int = 0
    bytes: int = 0
    active: bool = True
    error: str | None = None
    started: float = field(default_factory=time.time)
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)

    def advance(self, blocks: int = 1, nbytes: int = 0) -> None:
        """Count `blocks` more blocks (`nbytes` bytes) received and stored."""
        self.received = min(self.received + blocks, self.total)
        self.bytes = min(self.bytes + nbytes, self.total_bytes)

    def complete(self) -> None:
        self.received, self.bytes = self.total, self.total_bytes

    def progress(self) -> FetchProgress:
        """Blocks and bytes so far (and the error, when it failed or was cancelled)."""
        return FetchProgress(self.active, self.received, self.total, self.bytes, self.error)

    def info(self) -> FetchInfo:
        return FetchInfo(self.id, self.cid, self.manifest.filename, self.total_bytes, self.started, self.progress())


FetchRunner = Callable[[CID, Manifest | LogosManifest, Fetch], Awaitable[None]]


class NetworkReader:
    """A download's reader over a BlockStream: bytes in order as blocks arrive."""

    def __init__(self, size: int, stream: Any, single: bytes | None = None) -> None:
        self.size = size
        self._stream = stream
        self._buf = memoryview(single if single is not None else b"")
        self._entered = False

    async def read(self, n: int) -> bytes:
        parts: list[memoryview] = []
        got = 0
        while got < n:
            if not self._buf:
                if self._stream is None:
                    break
                if not self._entered:
                    await self._stream.__aenter__()
                    self._entered = True
                try:
                    _cid, data = await self._stream.__anext__()
                except StopAsyncIteration:
                    await self.aclose()
                    break
                self._buf = memoryview(data)
            take = self._buf[: n - got]
            parts.append(take)
            got += len(take)
            self._buf = self._buf[len(take):]
        return b"".join(parts)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()


class UnixfsNetworkReader:
    """A UnixFS file from the network, in order. The DAG arrives level by level (`fetch_dag`);
    `unixfs.read_file` runs in a worker thread, its `get` taking blocks from a buffer the walk
    fills. A block leaves the buffer once every link to it has been read, so the buffer holds the
    file's internal nodes and any leaves that came ahead of their turn (none in kubo's balanced
    layout, whose leaf level arrives in file order). Every block is verified (by the exchange,
    and again by the exporter, which also checks the sizes the nodes declare)."""

    def __init__(self, root: CID, size: int, first: bytes, walk: AsyncGenerator[tuple[CID, bytes], None]) -> None:
        self.size = size
        self._root = root
        self._walk: AsyncGenerator[tuple[CID, bytes], None] | None = walk
        self._blocks: dict[CID, bytes] = {root: first}
        self._refs: dict[CID, int] = {root: 1}
        self._pieces: Iterator[bytes] | None = None
        self._buf = memoryview(b"")
        self._token = trio.lowlevel.current_trio_token()

    @classmethod
    async def open(cls, root: CID, walk: AsyncGenerator[tuple[CID, bytes], None]) -> UnixfsNetworkReader:
        """Take the root from the walk and read the file's size from it."""
        try:
            got, data = await anext(walk)
        except BaseException:
            await walk.aclose()
            raise
        node = unixfs.load(got, lambda _cid: data)
        if node.raw is not None:
            size = len(node.raw)
        elif node.unixfs is not None and node.unixfs.type in (unixfs.FILE, unixfs.RAW_T):
            size = len(node.unixfs.data or b"") + sum(node.unixfs.blocksizes)
        else:
            await walk.aclose()
            kind = node.unixfs.type_name if node.unixfs is not None else "node"
            raise InvalidArgumentError(f"{root} is a UnixFS {kind}, not a file: download it with ipfs download",
                                       cid=str(root))
        return cls(root, size, data, walk)

    async def _take(self, cid: CID) -> bytes:
        while cid not in self._blocks:
            if self._walk is None:
                raise CancelledError("the download was closed")
            try:
                got, data = await anext(self._walk)
            except StopAsyncIteration:
                raise NotFoundError(f"block {cid} is not in the DAG of {self._root}", cid=str(cid)) from None
            self._blocks[got] = data
        data = self._blocks[cid]
        self._refs[cid] = self._refs.get(cid, 0) - 1
        if self._refs[cid] <= 0:
            del self._blocks[cid], self._refs[cid]
        if cid.codec == DAG_PB:
            for link in decode_node(data).links:
                self._refs[link.cid] = self._refs.get(link.cid, 0) + 1
        return data

    def _get(self, cid: CID) -> bytes:  # in the worker thread
        return trio.from_thread.run(self._take, cid, trio_token=self._token)

    def _next_piece(self) -> bytes | None:  # in the worker thread
        if self._pieces is None:
            self._pieces = unixfs.read_file(self._root, self._get)
        return next(self._pieces, None)

    async def read(self, n: int) -> bytes:
        parts: list[memoryview] = []
        got = 0
        while got < n:
            if not self._buf:
                if self._walk is None:
                    break
                piece = await trio.to_thread.run_sync(self._next_piece)
                if piece is None:
                    await self.aclose()
                    break
                self._buf = memoryview(piece)
            take = self._buf[: n - got]
            parts.append(take)
            got += len(take)
            self._buf = self._buf[len(take):]
        return b"".join(parts)

    async def aclose(self) -> None:
        walk, self._walk = self._walk, None
        self._blocks.clear()
        if walk is not None:
            await walk.aclose()


class FetchComponent:
    """Network reads, manifests from the network, and background fetches (module docstring)."""

    name = "fetch"
    protocols: Mapping[str, StreamHandler] = {}

    def __init__(self, context: NodeContext, net: NetComponent) -> None:
        self._context = context
        self._net = net
        self.runner: FetchRunner | None = self.fetch_dataset  # None: cannot fetch (tests)
        self._fetches: dict[int, Fetch] = {}
        self._ids = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the nursery network fetches run in while the node is started."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            self._nursery = None

    async def aclose(self) -> None:
        for record in list(self._fetches.values()):
            record.scope.cancel()

    # -- manifests ---------------------------------------------------------------------
    async def download_manifest(self, cid: str | CID) -> Manifest | LogosManifest:
        """The manifest of a dataset: from the local store, else from the network."""
        return await self.any_manifest(parse_cid(cid, "download manifest"))

    async def any_manifest(self, cid: CID) -> Manifest | LogosManifest:
        """A dataset's manifest in either format (a Logos manifest CID: node/logos_fetch.py)."""
        return await (logos_fetch.manifest(self, cid) if is_logos_manifest(cid) else self.manifest(cid))

    async def manifest(self, cid: CID) -> Manifest:
        """A dataset's manifest: local if stored (or the node is stopped), else from providers."""
        content = self._context.content
        if not is_dag(cid) or self._context.content.ingest.present(cid) or self._net.network is None:
            return await trio.to_thread.run_sync(content.manifest, cid)
        providers = await self._providers(cid)
        return Manifest.decode(await self._fetch_one(cid, providers), cid)

    async def _providers(self, cid: CID) -> list[PeerId]:
        return await self.providers(cid)

    async def providers(self, cid: CID) -> list[PeerId]:
        """Peers to fetch `cid` from: its DHT providers; for an IPFS CID also the connected peers
        that answer a bitswap want-have; then the other connected peers (none of them banned)."""
        network = self._net.require("find providers")
        try:
            found = await network.find_providers(cid)
        except Exception as exc:  # noqa: BLE001 - fall back to connected peers
            log.debug("provider lookup for %s failed: %r", cid, exc)
            found = []
        exchange = self._net.exchange_for(cid)
        if exchange is not self._net.blocks:
            found += [p for p in await exchange.find_providers(cid, timeout=HAVE_TIMEOUT) if p not in set(found)]
        seen = set(found)
        return found + [p for p in network.connected_peers() if p not in seen and not network.penalties.is_banned(p)]

    def exchange_for(self, cid: CID) -> BlockExchange:
        """The exchange `cid` is fetched by: bitswap for IPFS CIDs (dag-pb, raw sha2-256), else
        `/hoard/blocks/1` (see `NetComponent.exchange_for`)."""
        return self._net.exchange_for(cid)

    def fetch_blocks(self, cids: Sequence[CID], providers: Sequence[PeerId]) -> ExchangeStream:
        """Fetch `cids` from `providers` through the exchange for their kind (`exchange_for(cids[0])`):
        verified blocks in order, `async with fetch.fetch_blocks(...) as stream: async for cid, data in
        stream`. The fetch runs in this component's nursery (StateError while the node is stopped)."""
        if self._nursery is None:
            raise StateError("Failed to fetch: the node is not started (no network)")
        exchange = self._net.exchange_for(cids[0]) if cids else self._net.exchange_for(CID.of(b""))
        me = self._context.identity.peer_id
        return exchange.fetch(list(cids), [p for p in providers if p != me], self._nursery)

    async def fetch_dag(self, root: CID, providers: Sequence[PeerId] | None = None,
                        ) -> AsyncGenerator[tuple[CID, bytes], None]:
        """Every block of the DAG under `root` (dag-pb, dag-cbor, raw), each verified and yielded
        once, level by level, through the exchange for `root`; blocks the store has are read
        from it, not fetched. Providers: `providers(root)` unless given."""
        if self._nursery is None:
            raise StateError("Failed to fetch: the node is not started (no network)")
        peers = list(providers) if providers is not None else await self.providers(root)
        if not peers:
            raise NotFoundError(f"no peer provides {root}", cid=str(root))
        from hoard.net.exchange import fetch_dag  # the network stack loads with the network

        async for item in fetch_dag(self._net.exchange_for(root), root, peers, self._nursery,
                                    have=self._context.content.blobs.get):
            yield item

    async def _fetch_one(self, cid: CID, providers: list[PeerId]) -> bytes:
        return (await self._fetch_many([cid], providers))[0]

    async def _fetch_many(self, cids: list[CID], providers: list[PeerId]) -> list[bytes]:
        if not providers:
            raise NotFoundError(f"no peer provides {cids[0]}", cid=str(cids[0]))
        out: list[bytes] = []
        async with self.fetch_blocks(cids, providers) as stream:
            async for _cid, data in stream:
                out.append(data)
        return out

    async def _index(self, manifest: Manifest, providers: list[PeerId]) -> tuple[IndexTree, list[tuple[CID, bytes]]]:
        """The dataset's block index (each distinct node read once, from the store or from peers,
        checked against its parent) and its node blocks. Bounded by the distinct nodes."""
        tree = IndexTree(manifest.index, manifest.block_count, manifest.dataset_size)
        nodes: list[tuple[CID, bytes]] = []
        while level := tree.frontier():
            local = await trio.to_thread.run_sync(self._context.content.blobs.get_many, level)
            missing = [c for c, d in zip(level, local, strict=True) if d is None]
            fetched = dict(zip(missing, await self._fetch_many(missing, providers), strict=True)) if missing else {}
            for cid, data in zip(level, local, strict=True):
                got = data if data is not None else fetched[cid]
                nodes.append((cid, got))
                tree.add(cid, got)
        return tree, nodes

    # -- network reads -----------------------------------------------------------------
    async def open_network_reader(self, cid: CID) -> NetworkReader | UnixfsNetworkReader | logos_fetch.CappedReader:
        """A reader of `cid` (dataset or block) from the network, verified block by block."""
        if is_logos_manifest(cid):
            return await logos_fetch.open_reader(self, cid, NetworkReader)
        self._net.require("download from the network")
        providers = await self._providers(cid)
        if cid.codec == DAG_PB:
            return await UnixfsNetworkReader.open(cid, self.fetch_dag(cid, providers))
        if not is_dag(cid):
            data = await self._fetch_one(cid, providers)
            return NetworkReader(len(data), None, data)
        manifest = await self.manifest(cid)
        tree, _ = await self._index(manifest, providers)
        return NetworkReader(manifest.dataset_size, self.fetch_blocks(tree.blocks_view(), providers))

    async def fetch_dataset(self, cid: CID, known: Manifest | LogosManifest, record: Fetch) -> None:
        """Pull a whole dataset into the local store (cached), reporting progress to `record`.

        Through the one ingest path: a session reserving the bytes still missing (a dataset
        that cannot fit fails before a single block is fetched), each batch written pending,
        then verified and committed; anything else (an error, a cancel) abandons the session."""
        if is_logos_manifest(cid):
            return await logos_fetch.fetch_dataset(self, cid, record, FETCH_BATCH_BYTES)
        content = self._context.content
        store = content.blobs
        providers = await self._providers(cid)
        manifest_bytes = store.get(cid) or await self._fetch_one(cid, providers)
        manifest = Manifest.decode(manifest_bytes, cid)
        if manifest.encode()[0] != cid:
            raise IntegrityError(f"manifest {cid} is not in hoard's canonical form", cid=str(cid))
        tree, nodes = await self._index(manifest, providers)
        entries = list(tree.unique_blocks().items())  # each distinct block is fetched once
        present = store.get_many([c for c, _ in entries]) if len(entries) <= 4096 else None
        wanted: list[CID] = []
        missing_bytes = len(manifest_bytes) + sum(len(d) for _, d in nodes)
        for i, (block, size) in enumerate(entries):
            have = present[i] is not None if present is not None else content.ingest.present(block)
            if have:
                record.advance(1, size)
            else:
                wanted.append(block)
                missing_bytes += size
        session = await trio.to_thread.run_sync(
            functools.partial(content.ingest.session, reserve=missing_bytes))  # QuotaExceededError: nothing fetched
        try:
            if wanted:
                batch: list[tuple[CID, bytes]] = []
                batch_bytes = 0
                async with self.fetch_blocks(wanted, providers) as stream:
                    async for block, data in stream:
                        batch.append((block, data))
                        batch_bytes += len(data)
                        if batch_bytes >= FETCH_BATCH_BYTES:
                            await self._store_batch(session, batch, record)
                            batch, batch_bytes = [], 0
                if batch:
                    await self._store_batch(session, batch, record)
            await trio.to_thread.run_sync(functools.partial(
                session.commit_dataset, manifest, nodes, pinned=False, cid=cid))  # verifies, then commits
        finally:
            if not session.closed:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(session.abandon)
        await self._context.events.dataset_stored(cid)

    @staticmethod
    async def _store_batch(session: IngestSession, batch: list[tuple[CID, bytes]], record: Fetch) -> None:
        await trio.to_thread.run_sync(session.write, batch)
        record.advance(len(batch), sum(len(d) for _, d in batch))

    # -- background fetches ------------------------------------------------------------
    async def fetch(self, cid: str | CID) -> Manifest | LogosManifest:
        """Fetch a dataset into the local store in the background; returns its manifest at once.

        Progress: `fetches()` / `fetch_progress(id)`; cancel: `fetch_cancel(id)`.
        """
        return (await self.fetch_start(cid)).manifest

    async def fetch_start(self, cid: str | CID) -> FetchStarted:
        """Start fetching a dataset into the local store in the background.

        Returns once the manifest is known (locally or from the network), with the
        `download_id` to follow the fetch by (`fetch_progress`) and stop it by (`fetch_cancel`).
        A dataset already stored completes at once.
        """
        parsed = parse_cid(cid, "fetch")
        content = self._context.content
        if content.blobs.shared and await trio.to_thread.run_sync(content.dataset_info, parsed) is None \
                and await trio.to_thread.run_sync(content.adopt, parsed):  # in the bucket: another node's
            await self._context.events.dataset_stored(parsed)
        manifest = await self.any_manifest(parsed)
        # stored whole; a dataset missing a block (a single block deleted) is fetched to fill it
        stored = await trio.to_thread.run_sync(self._context.content.is_complete, parsed)
        runner = self.runner
        if not stored and runner is None:
            raise StateError(f"Failed to fetch: {parsed} is not stored and this node has no network to fetch it from",
                             cid=str(parsed))
        blocks = manifest.blocks_count if isinstance(manifest, LogosManifest) else manifest.block_count
        record = Fetch(next(self._ids), parsed, manifest, blocks, manifest.dataset_size)
        self._fetches[record.id] = record
        self._forget_finished()
        if stored:
            record.complete()
            record.active = False
        else:
            assert runner is not None
            self._context.worker.spawn(functools.partial(self._run_fetch, record, runner))
        return FetchStarted(parsed, manifest, record.id)

    async def _run_fetch(self, record: Fetch, runner: FetchRunner) -> None:
        log.info("fetching %s: %d bytes (download id %d)", record.cid, record.total_bytes, record.id)
        try:
            with record.scope:
                await runner(record.cid, record.manifest, record)
                record.complete()
        except HoardError as exc:
            record.error = exc.message
        except Exception as exc:  # noqa: BLE001 - a fetch failure is reported, not raised
            record.error = f"fetch failed: {exc}"
        finally:
            if record.scope.cancelled_caught and record.error is None:
                record.error = "cancelled"
            record.active = False
            if record.error is None:  # metrics and the INFO line with the rate (node/metrics.py)
                self._context.counters.fetch(record.cid, record.total_bytes, time.time() - record.started)
            else:
                self._context.counters.fetch_failed(record.cid, record.error)

    def _forget_finished(self) -> None:
        finished = [f for f in self._fetches.values() if not f.active]
        for record in finished[: max(len(finished) - KEEP_FINISHED, 0)]:
            del self._fetches[record.id]

    def _record(self, download_id: int, cid: str | CID | None, op: str) -> Fetch | None:
        wanted = parse_cid(cid, op) if cid is not None else None
        record = self._fetches.get(int(download_id)) if is_int(download_id) else None
        if record is not None and wanted is not None and wanted != record.cid:
            return None
        return record

    async def fetch_progress(self, download_id: int, cid: str | CID | None = None) -> FetchProgress:
        """Progress of a fetch; `active=False` and nothing else for an unknown id.

        With `cid`, the fetch must be of that CID (as the Logos REST path names both).
        """
        record = self._record(download_id, cid, "get download progress")
        return record.progress() if record is not None else FetchProgress(active=False)

    async def fetch_cancel(self, download_id: int, cid: str | CID | None = None) -> None:
        """Cancel an active fetch (NotFoundError if there is no active fetch with that id)."""
        record = self._record(download_id, cid, "cancel download")
        if record is None or not record.active:
            raise NotFoundError(f"Background download not found: {download_id}", download_id=str(download_id))
        record.error = "cancelled"
        record.scope.cancel()

    async def fetches(self) -> list[FetchInfo]:
        """Every fetch still remembered (active ones, then recent finished ones), newest first."""
        return [f.info() for f in sorted(self._fetches.values(), key=lambda f: (not f.active, -f.id))]

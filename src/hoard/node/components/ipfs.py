"""The ipfs component: UnixFS files and directories, CAR files and IPFS blocks on the node.

* `add(path, cid_version, raw_leaves)` imports a file or directory tree as a UnixFS DAG with
  kubo's layout (CIDv0 with dag-pb leaves, or CIDv1 with raw leaves; 256 KiB chunks, balanced,
  174 links per node), so its root CID equals kubo's and Helia's for the same options.
* `download(cid, dest, network)` writes a UnixFS file or directory tree back, every block
  verified (`fetch(cid)` first when `network`: the DAG by bitswap into the store).
* `car_import(path)` stores the blocks of a CARv1/CARv2, every block verified; `car_export`
  writes the DAG under a CID as a CARv1 (or CARv2).
* `block(cid)` is one stored block, verified (the trustless gateway's `format=raw`).

**One ingest path.** Every block enters through `content.ingest.session()`: written pending
in batches (quota checked there), then one durable commit records the root and one reference
to each distinct block of its DAG (`IngestSession.commit_refs`); on any failure the session is
abandoned and nothing changes.

**The catalog.** A root is recorded in the catalog table `ipfs_roots` (root CID ->
CBOR `{"format": "unixfs"|"ipld", "size", "dagSize", "blocks", "filename", "pinned",
"added"}`), beside hoard's own datasets (`datasets`, whose entries are manifests and which
the Logos `list` reports). A root's blocks hold one reference per root, like a dataset's, so
a block shared with a dataset or another root stays until the last holder is removed
(`remove`). A root stored again is not counted twice.
"""

from __future__ import annotations

import builtins
import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import cbor2
import trio

from hoard.content import car, ingest
from hoard.content.car import links_of
from hoard.content.formats import unixfs
from hoard.errors import InvalidArgumentError, NotFoundError
from hoard.ids.cid import CID, DAG_PB, RAW
from hoard.node.component import StreamHandler
from hoard.node.components.fetch import FetchComponent
from hoard.node.components.net import NetComponent
from hoard.node.context import NodeContext
from hoard.node.params import is_int, parse_cid
from hoard.node.results import CarImport, IpfsRoot
from hoard.store.base import Batch

log = logging.getLogger("hoard.node.ipfs")

#: The catalog table of IPFS roots (see the module docstring).
ROOTS = "ipfs_roots"
#: Blocks are written to the store in batches of about this many bytes.
WRITE_BATCH = 8 << 20
_U32_REFS = 4


def is_unixfs(cid: CID) -> bool:
    """Whether `cid` can be a UnixFS node (dag-pb or raw), rather than a hoard manifest."""
    return cid.codec in (DAG_PB, RAW)


def display(cid: CID) -> str:
    """A root as kubo and Helia print it: `Qm...` for CIDv0, base32 (`bafy...`) for CIDv1."""
    return str(cid) if cid.version == 0 else cid.to_base32()


class _Writer:
    """Blocks into an ingest session in batches; remembers every distinct CID written."""

    def __init__(self, session: ingest.IngestSession, auto_flush: bool = True) -> None:
        self.session = session
        self.auto_flush = auto_flush
        self.cids: set[CID] = set()
        self.bytes = 0
        self._batch: list[tuple[CID, bytes]] = []
        self.pending = 0  # bytes not written yet

    def put(self, cid: CID, data: bytes) -> None:
        if cid in self.cids:
            return
        self.cids.add(cid)
        self.bytes += len(data)
        self._batch.append((cid, data))
        self.pending += len(data)
        if self.auto_flush and self.pending >= WRITE_BATCH:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            self.session.write(self._batch)
            self._batch, self.pending = [], 0


class IpfsComponent:
    """UnixFS, CAR and IPFS blocks on the node (see the module docstring)."""

    name = "ipfs"
    protocols: Mapping[str, StreamHandler] = {}

    def __init__(self, context: NodeContext, net: NetComponent, fetch: FetchComponent) -> None:
        self._context = context
        self._net = net
        self._fetch = fetch

    async def run(self, context: NodeContext, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Maintenance: every `block-mi`, remove the unpinned roots (fetched from the network)
        stored longer than `block-ttl`, as cached datasets expire."""
        task_status.started()
        while True:
            await trio.sleep(context.config.block_mi)
            expired = await trio.to_thread.run_sync(self.expire)
            if expired:
                log.info("expired %d cached IPFS root(s)", len(expired))

    def expire(self, now: float | None = None) -> builtins.list[CID]:
        """Remove the unpinned roots older than `block-ttl`; returns their CIDs."""
        now = time.time() if now is None else now
        ttl = self._context.config.block_ttl
        gone: builtins.list[CID] = []
        for key, raw in builtins.list(self._context.content.catalog.scan(ROOTS)):
            entry = _decode_entry(CID(key), raw)
            if not entry.pinned and entry.added + ttl <= now:
                try:
                    self._remove(entry.cid)
                except NotFoundError:
                    continue  # removed meanwhile
                gone.append(entry.cid)
        return gone

    async def aclose(self) -> None:
        pass

    # -- the catalog -------------------------------------------------------------------
    def _entry(self, cid: CID) -> IpfsRoot | None:
        raw = self._context.content.catalog.get(ROOTS, cid.binary)
        return None if raw is None else _decode_entry(cid, raw)

    def _get(self, cid: CID) -> bytes:
        """A stored block (NotFoundError if absent); callers verify it."""
        data = self._context.content.blobs.get(cid)
        if data is None:
            raise NotFoundError(f"block {cid} is not in the local store", cid=str(cid))
        return bytes(data)

    def _commit(self, writer: _Writer, root: CID, fmt: str, size: int, dag_size: int,
                filename: str | None, pinned: bool, blocks: set[CID]) -> IpfsRoot:
        """Record `root` holding `blocks` and end the session (durable). A root stored already
        gains no references (it is only pinned, if asked)."""
        content = self._context.content
        session = writer.session
        with content._lock:  # the check and the commit together (the ingest lock is reentrant)
            existing = self._entry(root)
            batch = Batch()
            if existing is None:
                entry = IpfsRoot(root, fmt, size, dag_size, len(blocks), filename, pinned, time.time())
                batch.meta_put(ROOTS, root.binary, _encode_entry(entry))
                session.commit_refs(batch, blocks)
                return entry
            if pinned and not existing.pinned:
                existing = IpfsRoot(existing.cid, existing.format, existing.size, existing.dag_size,
                                    existing.blocks, existing.filename, True, existing.added)
                batch.meta_put(ROOTS, root.binary, _encode_entry(existing))
            session.commit_refs(batch, ())
            return existing

    def _dag_blocks(self, root: CID) -> tuple[set[CID], int]:
        """The distinct blocks of the stored DAG under `root` (each verified) and their bytes;
        NotFoundError naming the first block missing."""
        seen: set[CID] = set()
        nbytes = 0
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid in seen:
                continue
            data = self._get(cid)
            cid.verify(data)
            seen.add(cid)
            nbytes += len(data)
            stack.extend(links_of(cid, data))
        return seen, nbytes

    # -- add -----------------------------------------------------------------------------
    async def add(self, path: str | os.PathLike[str], cid_version: int = 0, raw_leaves: bool = False,
                  filename: str | None = None, pin: bool = True) -> IpfsRoot:
        """Import a file or directory tree as UnixFS (kubo's `ipfs add [-r]`; `cid_version=1,
        raw_leaves=True` is `ipfs add --cid-version=1 --raw-leaves`). Durable when it returns.
        `filename` is recorded in the catalog (default: the path's name)."""
        if not is_int(cid_version) or not isinstance(raw_leaves, bool):
            raise InvalidArgumentError(f"Failed to add: bad options cid_version={cid_version!r} "
                                       f"raw_leaves={raw_leaves!r}")
        options = unixfs.ImportOptions(cid_version=cid_version, raw_leaves=raw_leaves)
        source = Path(os.fsdecode(path))
        name = (source.name if filename is None else filename) or None  # "": no name
        content = self._context.content

        def run() -> IpfsRoot:
            with content.ingest.session() as session:  # abandoned on any exception
                writer = _Writer(session)
                imported = unixfs.import_path(source, writer.put, options)
                writer.flush()
                return self._commit(writer, imported.cid, "unixfs", imported.size, imported.dag_size, name,
                                    pin, writer.cids)

        entry = await trio.to_thread.run_sync(run)
        await self._context.events.dataset_stored(entry.cid)
        return entry

    # -- reading -------------------------------------------------------------------------
    async def block(self, cid: str | CID) -> bytes:
        """One stored block, verified against its CID (NotFoundError if absent)."""
        parsed = parse_cid(cid, "get block")
        data = self._get(parsed)
        if len(data) > 256 << 10:
            await trio.to_thread.run_sync(parsed.verify, data)
        else:
            parsed.verify(data)
        return data

    async def has(self, cid: str | CID) -> bool:
        """Whether the block is stored locally."""
        return self._context.content.ingest.present(parse_cid(cid, "check existence"))

    async def stat(self, cid: str | CID) -> IpfsRoot:
        """The catalog entry of a stored root (NotFoundError if it is not one)."""
        parsed = parse_cid(cid, "stat")
        entry = self._entry(parsed)
        if entry is None:
            raise NotFoundError(f"{display(parsed)} is not a stored IPFS root", cid=str(parsed))
        return entry

    async def list(self) -> builtins.list[IpfsRoot]:
        """Every stored IPFS root (UnixFS files and directories, CAR roots)."""
        return [_decode_entry(CID(key), raw) for key, raw in self._context.content.catalog.scan(ROOTS)]

    async def download(self, cid: str | CID, path: str | os.PathLike[str], network: bool = False) -> int:
        """Write the UnixFS file or directory tree under `cid` to `path` (which must not exist);
        returns the content bytes written. Every block is verified. With `network`, a DAG not
        stored whole is first fetched by bitswap (`fetch`)."""
        parsed = parse_cid(cid, "download")
        if not is_unixfs(parsed):
            raise InvalidArgumentError(f"Failed to download: {parsed} is {parsed.codec_name}, not UnixFS "
                                       "(dag-pb or raw); a hoard dataset downloads with `download_stream`",
                                       cid=str(parsed))
        if network and self._entry(parsed) is None:
            await self.fetch(parsed)
        dest = Path(os.fsdecode(path))
        return await trio.to_thread.run_sync(unixfs.export, parsed, self._get, dest)

    # -- the network -----------------------------------------------------------------------
    async def fetch(self, cid: str | CID, pin: bool = False) -> IpfsRoot:
        """Fetch the whole DAG under `cid` into the local store (by bitswap for IPFS CIDs: the
        fetch component's `fetch_dag`, providers from the DHT and the connected peers that answer
        HAVE); each block verified. Recorded unpinned unless `pin`. A stored root returns at once."""
        parsed = parse_cid(cid, "fetch")
        entry = self._entry(parsed)
        if entry is not None:
            return entry
        self._net.require("fetch from the network")
        session = await trio.to_thread.run_sync(self._context.content.ingest.session)
        writer = _Writer(session, auto_flush=False)
        try:
            blocks = self._fetch.fetch_dag(parsed)
            try:
                async for block_cid, data in blocks:
                    writer.put(block_cid, data)
                    if writer.pending >= WRITE_BATCH:
                        await trio.to_thread.run_sync(writer.flush)
            finally:
                aclose = getattr(blocks, "aclose", None)  # an async generator: end its fetches now
                if aclose is not None:
                    await aclose()
            await trio.to_thread.run_sync(writer.flush)
            fmt = "unixfs" if is_unixfs(parsed) else "ipld"
            size, dag_size = await trio.to_thread.run_sync(self._sizes, parsed)
            entry = await trio.to_thread.run_sync(self._commit, writer, parsed, fmt, size, dag_size, None, pin,
                                                  writer.cids)
        except BaseException:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(session.abandon)
            raise
        await self._context.events.dataset_stored(parsed)
        return entry

    def _sizes(self, root: CID) -> tuple[int, int]:
        """(content size, DAG size) of a stored root: UnixFS sizes for a UnixFS root."""
        _, nbytes = self._dag_blocks(root)
        if not is_unixfs(root):
            return nbytes, nbytes
        return _unixfs_size(root, self._get, nbytes), nbytes

    # -- CAR ---------------------------------------------------------------------------------
    async def car_export(self, cid: str | CID, path: str | os.PathLike[str], version: int = 1) -> int:
        """Write the stored DAG under `cid` as a CAR file (CARv1, or CARv2) at `path` (which must
        not exist); each block verified. Returns the bytes written."""
        parsed = parse_cid(cid, "export CAR")
        if version not in (1, 2):
            raise InvalidArgumentError(f"Failed to export CAR: version must be 1 or 2, got {version!r}")
        dest = Path(os.fsdecode(path))

        def run() -> int:
            self._dag_blocks(parsed)  # NotFoundError before anything is written
            tmp = dest.with_name(f".{dest.name}.part")
            try:
                with open(tmp, "xb") as out:
                    written = car.export_car(out, parsed, self._get, version)
                if dest.exists():
                    raise InvalidArgumentError(f"{dest} already exists")
                tmp.rename(dest)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            return written

        if dest.exists() or dest.is_symlink():
            raise InvalidArgumentError(f"Failed to export CAR: {dest} already exists")
        return await trio.to_thread.run_sync(run)

    async def car_import(self, path: str | os.PathLike[str], pin: bool = True) -> CarImport:
        """Store the blocks of a CAR file (CARv1 or CARv2), each verified, and record each root
        whose DAG is then whole. All or nothing: a malformed file, a bad block, or a root whose
        DAG lacks a block stores nothing."""
        source = Path(os.fsdecode(path))
        content = self._context.content
        if not source.is_file():
            raise NotFoundError(f"Failed to import CAR: no such file: {source}", path=str(source))

        def run() -> CarImport:
            with open(source, "rb") as f, content.ingest.session() as session:
                header, blocks = car.read_car(f)
                writer = _Writer(session)
                count = 0
                for block_cid, data in blocks:
                    writer.put(block_cid, data)
                    count += 1
                writer.flush()
                if not header.roots:
                    raise InvalidArgumentError("Failed to import CAR: it names no root")
                dags = []
                for root in dict.fromkeys(header.roots):
                    try:
                        dag, nbytes = self._dag_blocks(root)
                    except NotFoundError as exc:
                        raise NotFoundError(f"Failed to import CAR: the DAG of root {display(root)} is not whole: "
                                            f"{exc.message}", cid=str(root)) from exc
                    size = _unixfs_size(root, self._get, nbytes) if is_unixfs(root) else nbytes
                    dags.append((root, dag, size, nbytes))
                entries = self._commit_many(writer, dags, pin)
                return CarImport(header.version, tuple(header.roots), count, writer.bytes, tuple(entries))

        result = await trio.to_thread.run_sync(run)
        for entry in result.entries:
            await self._context.events.dataset_stored(entry.cid)
        return result

    def _commit_many(self, writer: _Writer, dags: builtins.list[tuple[CID, set[CID], int, int]],
                     pin: bool) -> builtins.list[IpfsRoot]:
        """Record every root of a CAR in one commit (each new root holds its DAG's blocks)."""
        content = self._context.content
        with content._lock:
            batch = Batch()
            refs: list[CID] = []
            entries: builtins.list[IpfsRoot] = []
            for root, dag, size, nbytes in dags:
                existing = self._entry(root)
                if existing is None:
                    fmt = "unixfs" if is_unixfs(root) else "ipld"
                    entry = IpfsRoot(root, fmt, size, nbytes, len(dag), None, pin, time.time())
                    batch.meta_put(ROOTS, root.binary, _encode_entry(entry))
                    refs.extend(dag)
                elif pin and not existing.pinned:
                    entry = IpfsRoot(existing.cid, existing.format, existing.size, existing.dag_size,
                                     existing.blocks, existing.filename, True, existing.added)
                    batch.meta_put(ROOTS, root.binary, _encode_entry(entry))
                else:
                    entry = existing
                entries.append(entry)
            writer.session.commit_refs(batch, refs)
            return entries

    # -- removal -------------------------------------------------------------------------------
    async def remove(self, cid: str | CID) -> None:
        """Remove a stored root: its blocks lose this root's reference, and those nobody else
        holds are deleted. NotFoundError if it is not a stored root."""
        parsed = parse_cid(cid, "remove")
        await trio.to_thread.run_sync(self._remove, parsed)

    def _remove(self, root: CID) -> None:
        content = self._context.content
        ing = content.ingest
        with content._lock:
            if self._entry(root) is None:
                raise NotFoundError(f"{display(root)} is not a stored IPFS root", cid=str(root))
            blocks, _ = self._dag_blocks(root)
            batch = Batch()
            gone: list[CID] = []
            held: list[CID] = []
            for block in blocks:
                left = content._refs(block) - 1
                if left > 0:
                    batch.meta_put("refs", block.binary, left.to_bytes(_U32_REFS, "big"))
                else:
                    batch.meta_delete("refs", block.binary)
                    if block in ing._live:
                        held.append(block)  # an upload in progress holds it: pending again
                    else:
                        batch.delete(block)
                        gone.append(block)
            ing._settle(batch, gone)
            ing._unreferenced(batch, held)
            batch.meta_delete(ROOTS, root.binary)
            ing._commit(batch, durable=True)


def _unixfs_size(root: CID, get: Callable[[CID], bytes], dag_bytes: int) -> int:
    """The content size of a UnixFS root: a file's `filesize`, a directory's entries' sizes."""
    try:
        node = unixfs.load(root, get)
    except InvalidArgumentError:
        return dag_bytes
    if node.raw is not None:
        return len(node.raw)
    fs = node.unixfs
    if fs is None:
        return dag_bytes
    if fs.type in (unixfs.FILE, unixfs.RAW_T):
        return fs.filesize if fs.filesize is not None else len(fs.data or b"") + sum(fs.blocksizes)
    if node.is_directory:
        try:
            return sum(_unixfs_size(e.cid, get, 0) for e in unixfs.list_directory(root, get))
        except (InvalidArgumentError, NotFoundError):
            return dag_bytes
    return 0


def _encode_entry(entry: IpfsRoot) -> bytes:
    return cbor2.dumps({"format": entry.format, "size": entry.size, "dagSize": entry.dag_size,
                        "blocks": entry.blocks, "filename": entry.filename, "pinned": entry.pinned,
                        "added": entry.added})


def _decode_entry(cid: CID, raw: bytes) -> IpfsRoot:
    info = cbor2.loads(raw)
    return IpfsRoot(cid, str(info["format"]), int(info["size"]), int(info["dagSize"]), int(info["blocks"]),
                    info.get("filename"), bool(info["pinned"]), float(info["added"]))

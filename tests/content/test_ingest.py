"""The one ingest path: quota checked before anything is stored, pending blocks reclaimed on every
way out (cancel, failure, crash, abandonment), durable holds that survive a restart, and log
records counted against the same quota."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import blake3
import nacl.signing
import pytest
from harness.stores import make_content, reopen
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hoard.content import ContentStore, FixedChunker, Space, Upload
from hoard.content.index import build_index
from hoard.content.manifest import Manifest
from hoard.errors import (
    InvalidArgumentError,
    LogError,
    NotFoundError,
    QuotaExceededError,
    StateError,
)
from hoard.files.store import FileStore
from hoard.ids.cid import CID
from hoard.logs import LogService, LogStore, Metadata, parse_name
from hoard.logs.metadata import CID as CREATOR
from hoard.logs.metadata import PUB, encode_pub
from hoard.logs.records import ZERO_HASH, Signer
from hoard.store import MemoryBlockStore, open_blockstore

pytestmark = pytest.mark.timeout(60)

MB = 1 << 20


def blocks(n: int, size: int = 65536) -> list[tuple[CID, bytes]]:
    out = []
    for _ in range(n):
        data = os.urandom(size)
        out.append((CID.of(data), data))
    return out


def snapshot(content: ContentStore) -> tuple[object, object]:
    """What a test compares before and after: the space figures and the raw store totals."""
    return content.space(), content.ingest.stored()


@pytest.fixture
def content(store_kind: str) -> ContentStore:
    return make_content(store_kind, quota=4 * MB, block_ttl=60)


# -- the quota, checked before anything is stored, on every entry path -----------------------

def test_an_upload_whose_reservation_does_not_fit_is_refused_before_any_data(content):
    before = snapshot(content)
    with pytest.raises(QuotaExceededError):
        Upload(content, reserve=5 * MB)
    assert snapshot(content) == before


def test_a_reservation_is_held_until_written_or_released(content):
    up = Upload(content, FixedChunker(65536), reserve=3 * MB)
    assert content.space().quota_reserved_bytes == 3 * MB
    with pytest.raises(QuotaExceededError):  # only 1 MB is left for anyone else
        Upload(content, reserve=2 * MB)
    up.write(os.urandom(2 * MB))
    up.flush()
    space = content.space()
    assert space.quota_reserved_bytes == 3 * MB  # 2 MB pending plus 1 MB still promised
    up.finish()
    space = content.space()
    assert space.quota_reserved_bytes == 0 and 2 * MB < space.quota_used_bytes < 2 * MB + 4096


def test_a_size_learnt_later_is_reserved_on_the_open_upload(content):
    up = Upload(content, FixedChunker(65536))
    with pytest.raises(QuotaExceededError):
        up.reserve(5 * MB)
    assert content.space().quota_reserved_bytes == 0
    up.reserve(1 * MB)
    assert content.space().quota_reserved_bytes == 1 * MB
    up.cancel()
    assert content.space().quota_reserved_bytes == 0 and content.ingest.stored().blocks == 0


def test_an_upload_over_the_quota_stores_nothing_of_the_refused_batch(content):
    before = snapshot(content)
    up = Upload(content)
    with pytest.raises(QuotaExceededError):
        up.write(os.urandom(9 * MB))  # one batch over the quota
        up.finish()
    up.cancel()
    assert snapshot(content) == before


def test_file_writes_over_the_quota_are_refused_and_change_nothing(content):
    files = FileStore(content)
    files.write(1, os.urandom(1 * MB))
    before = snapshot(content)
    with pytest.raises(QuotaExceededError):
        files.write(1, os.urandom(4 * MB), index=1)
    with pytest.raises(QuotaExceededError):
        files.stream_write(1, (os.urandom(1 * MB) for _ in range(4)))
    assert snapshot(content) == before
    assert files.stat(1).version == 1


def test_a_session_write_over_the_quota_stores_nothing_not_even_its_extra_rows(content):
    from hoard.store.base import Batch

    session = content.ingest.session(owner="test/a")
    before = snapshot(content)
    extra = Batch().meta_put("test-table", b"k", b"v")
    with pytest.raises(QuotaExceededError):
        session.write(blocks(80), extra=extra)
    assert snapshot(content) == before
    assert content.catalog.get("test-table", b"k") is None
    assert not content.ingest.has_owner("test/a")


# -- verify, then commit --------------------------------------------------------------------

def test_a_dataset_lacking_a_block_is_not_committed(content):
    have, lack = blocks(2)
    root, nodes = build_index([(have[0], len(have[1])), (lack[0], len(lack[1]))])
    manifest = Manifest(dataset_size=2 * 65536, block_size=65536, block_count=2, chunker="fixed",
                        digest=blake3.blake3(have[1] + lack[1]).digest(), index=root)
    session = content.ingest.session()
    session.write([have])
    with pytest.raises(NotFoundError, match="lacks 1 block"):
        session.commit_dataset(manifest, nodes)
    assert list(content.datasets()) == []
    session.abandon()
    assert content.space().quota_reserved_bytes == 0 and content.ingest.stored().blocks == 0


def test_a_dataset_whose_blocks_another_dataset_held_and_lost_is_not_committed(content):
    data = os.urandom(200_000)
    first = Upload(content, FixedChunker(65536))
    first.write(data)
    cid = first.finish()
    manifest = content.manifest(cid)
    nodes = [(manifest.index, content.blobs.get(manifest.index))]
    session = content.ingest.session(owner="transfer/late")  # finds the blocks stored: holds none
    session.write([(c, content.blobs.get(c)) for c, _ in content.iter_blocks(manifest)])
    content.delete(cid)
    with pytest.raises(NotFoundError, match="lacks"):
        session.commit_dataset(manifest, nodes, cid=cid)
    session.abandon()
    assert list(content.datasets()) == [] and content.ingest.stored().blocks == 0


def test_an_ended_session_refuses_writes(content):
    session = content.ingest.session()
    session.abandon()
    with pytest.raises(StateError):
        session.write(blocks(1))


# -- every way out leaves no orphan ---------------------------------------------------------

def test_a_cancelled_upload_leaves_no_block_and_the_figures_as_before(content):
    keep = Upload(content)
    keep.write(os.urandom(300_000))
    keep.finish()
    before = snapshot(content)
    up = Upload(content, FixedChunker(65536))
    up.write(os.urandom(1 * MB))
    up.flush()
    assert content.space().quota_reserved_bytes == 1 * MB
    up.cancel()
    assert snapshot(content) == before


def test_abandoning_keeps_blocks_another_session_still_holds(content):
    shared = blocks(3)
    a, b = content.ingest.session(), content.ingest.session(owner="test/b")
    a.write(shared)
    b.write(shared[:1])
    a.abandon()
    assert content.blobs.has(shared[0][0]) and not content.blobs.has(shared[1][0])
    b.abandon()
    assert content.ingest.stored().blocks == 0 and content.space().quota_reserved_bytes == 0


def test_a_durable_owner_keeps_its_blocks_across_a_reopen_and_loses_them_when_released():
    store = MemoryBlockStore()
    content = ContentStore(store, quota=16 * MB, block_ttl=60)
    loose, held = blocks(4), blocks(5)
    content.ingest.session().write(loose)  # an upload's blocks, never committed
    content.ingest.session(owner="transfer/x").write(held)  # a channel's blocks
    reopened = ContentStore(store, quota=16 * MB, block_ttl=60)  # as after a crash
    assert not any(store.has(c) for c, _ in loose)
    assert all(store.has(c) for c, _ in held)
    space = reopened.space()
    assert space.quota_reserved_bytes == 5 * 65536 and space.quota_used_bytes == 0
    assert space.total_blocks == 0
    # the owner resumes: its session takes the holds over, and a keep settles them
    session = reopened.ingest.session(owner="transfer/x")
    session.write(blocks(1))
    assert reopened.ingest.release_owner("transfer/x", keep=False) == 6
    assert store.stats().blocks == 0 and reopened.space().quota_reserved_bytes == 0
    assert reopened.ingest.owners() == {}


def test_a_block_a_durable_owner_holds_cannot_be_deleted_alone(content):
    (cid, data), = blocks(1)
    content.ingest.session(owner="transfer/d").write([(cid, data)])
    with pytest.raises(InvalidArgumentError, match="in use"):
        content.delete(cid)
    assert content.blobs.has(cid)


def test_keeping_makes_plain_blocks_and_clears_the_pending_figures(content):
    kept = blocks(3)
    session = content.ingest.session(owner="transfer/y")
    session.write(kept)
    session.keep()
    space = content.space()
    assert space.quota_reserved_bytes == 0 and space.total_blocks == 3 and space.quota_used_bytes == 3 * 65536
    assert content.ingest.owners() == {}
    reopen(content, quota=4 * MB, block_ttl=60)  # a kept block is no pending one: it survives
    assert all(content.blobs.has(c) for c, _ in kept)
    assert content.delete(kept[0][0]) == "block"  # and is deleted alone, on request
    assert not content.blobs.has(kept[0][0]) and content.space().total_blocks == 2


def test_a_kept_block_outlives_a_dataset_that_also_uses_it(content):
    up = Upload(content, FixedChunker(65536))
    up.write(os.urandom(200_000))
    cid = up.finish()
    block, _size = next(content.iter_blocks(content.manifest(cid)))
    data = content.blobs.get(block)
    content.delete(cid)
    session = content.ingest.session()
    session.write([(block, data)])
    session.keep()
    up = Upload(content, FixedChunker(65536))
    up.write(data)
    again = up.finish()
    content.delete(again)
    assert content.blobs.get(block) == data  # kept: outlives the dataset
    assert content.delete(block) == "block" and content.ingest.stored().blocks == 0


def test_deleting_a_kept_block_a_dataset_uses_drops_both_holds_in_turn(content):
    data = os.urandom(65536)
    session = content.ingest.session()
    session.write([(CID.of(data), data)])
    session.keep()
    up = Upload(content, FixedChunker(65536))
    up.write(data)
    again = up.finish()
    block, _size = next(content.iter_blocks(content.manifest(again)))
    assert content.delete(block) == "block"  # deleted although a dataset uses it (as Logos deletes a block)
    assert not content.blobs.has(block)
    content.delete(again)
    assert content.ingest.stored().blocks == 0 and content.space().quota_used_bytes == 0


def test_an_owner_idle_past_abandon_after_is_reclaimed_by_expiry():
    content = ContentStore(MemoryBlockStore(), quota=16 * MB, block_ttl=3600, abandon_after=100)
    session = content.ingest.session(owner="transfer/z")
    session.write(blocks(2))
    touched = content.ingest.owners()["transfer/z"]
    content.expire(now=touched + 99)
    assert content.ingest.stored().blocks == 2
    content.expire(now=touched + 101)
    assert content.ingest.stored().blocks == 0 and content.space().quota_reserved_bytes == 0
    with pytest.raises(StateError):
        session.write(blocks(1))  # abandoned: the owner starts again with a new session
    content.ingest.session(owner="transfer/z").write(blocks(1))
    assert content.ingest.stored().blocks == 1


def test_a_dataset_commit_settles_a_durable_owner():
    store = MemoryBlockStore()
    content = ContentStore(store, quota=16 * MB, block_ttl=60)
    up = Upload(content, FixedChunker(65536))
    up.write(os.urandom(300_000))
    source = up.finish()
    manifest = content.manifest(source)
    # another store receives the manifest, index and blocks as a transfer would, then commits
    other = ContentStore(MemoryBlockStore(), quota=16 * MB, block_ttl=60)
    received = [(c, store.get(c)) for c in store.iter_cids()]
    session = other.ingest.session(owner="transfer/q")
    session.write(received)
    ContentStore(other.single, quota=16 * MB, block_ttl=60)  # a restart in between keeps them
    other = ContentStore(other.single, quota=16 * MB, block_ttl=60)
    assert other.ingest.session(owner="transfer/q").commit_dataset(manifest, cid=source) == source
    space = other.space()
    assert space.quota_reserved_bytes == 0 and space.total_blocks == len(received)
    assert other.ingest.owners() == {} and [d.cid for d in other.datasets()] == [source]


CRASH_CHILD = textwrap.dedent("""
    import os, sys
    from hoard.content import ContentStore, FixedChunker, Space, Upload
    from hoard.ids.cid import CID
    from hoard.store import open_blockstore
    content = ContentStore(open_blockstore(sys.argv[1]), quota=1 << 30, block_ttl=60)
    up = Upload(content, FixedChunker(65536))
    up.write(os.urandom(12 << 20))
    up.flush()
    channel = content.ingest.session(owner="transfer/resumable")
    data = [os.urandom(65536) for _ in range(8)]
    channel.write([(CID.of(d), d) for d in data])
    content.sync()
    print("written", flush=True)
    sys.stdin.read()
""")


def test_a_killed_process_leaves_only_what_a_resumable_owner_holds(tmp_path: Path):
    path = str(tmp_path / "store")
    content = ContentStore(open_blockstore(path), quota=1 << 30, block_ttl=60)
    up = Upload(content)
    up.write(os.urandom(200_000))
    keep = up.finish()
    before = content.space()
    content.single.close()
    child = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, path], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "written"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    store = open_blockstore(path)
    try:
        content = ContentStore(store, quota=1 << 30, block_ttl=60)
        space = content.space()
        assert [d.cid for d in content.datasets()] == [keep]
        assert space.quota_used_bytes == before.quota_used_bytes and space.total_blocks == before.total_blocks
        assert space.quota_reserved_bytes == 8 * 65536  # the channel's blocks, kept for its resume
        assert store.stats().blocks == before.total_blocks + 8
        content.ingest.release_owner("transfer/resumable", keep=False)
        assert content.space() == before and store.stats().blocks == before.total_blocks
    finally:
        store.close()


# -- log records count against the same quota ------------------------------------------------

NAME = parse_name("ingest-quota-log")


def _log_store(content: ContentStore, key: nacl.signing.SigningKey) -> LogStore:
    logs = LogStore(content.catalog, quota=content.ingest)
    logs.create(NAME, Metadata({CREATOR: "t@h", PUB: encode_pub(bytes(key.verify_key))}))
    return logs


def test_log_records_count_against_the_storage_quota(content):
    key = nacl.signing.SigningKey.generate()
    logs = _log_store(content, key)
    signer, prev = Signer(key), ZERO_HASH
    before = content.space().quota_used_bytes
    datum = signer.sign(NAME, 1, 1_000, os.urandom(100_000), prev)
    logs.append(NAME, datum)
    assert content.space().quota_used_bytes - before > 100_000
    # a reopened store counts what is there
    reopened = reopen(content, quota=4 * MB, block_ttl=60)
    LogStore(reopened.catalog, quota=reopened.ingest)
    assert reopened.space() == content.space()


def test_log_appends_on_a_full_quota_are_refused_and_write_nothing(content):
    key = nacl.signing.SigningKey.generate()
    logs = _log_store(content, key)
    up = Upload(content, reserve=0)
    up.write(os.urandom(4 * MB - 150_000))
    up.finish()
    signer, prev = Signer(key), ZERO_HASH
    first = signer.sign(NAME, 1, 1_000, os.urandom(100_000), prev)
    second = signer.sign(NAME, 2, 2_000, os.urandom(100_000), first.hash)
    third = signer.sign(NAME, 3, 3_000, b"small", second.hash)
    before = content.space()
    results = logs.append_many([(NAME, first), (NAME, second), (NAME, third)])
    assert results[0] == first
    assert all(isinstance(r, LogError) and r.code == 507 for r in results[1:])
    assert logs.nrecs(NAME) == 1 and logs.get(NAME, 2) is None
    assert content.space().quota_used_bytes - before.quota_used_bytes < 100_300
    with pytest.raises(LogError) as refused:
        logs.append(NAME, second)
    assert refused.value.code == 507 and refused.value.grpc_status == "RESOURCE_EXHAUSTED"
    assert logs.nrecs(NAME) == 1


def test_a_log_service_with_the_quota_refuses_appends_once_full(tmp_path: Path):
    content = ContentStore(MemoryBlockStore(), quota=1 * MB, block_ttl=60)
    with LogService(content.single, tmp_path / "keys", quota=content.ingest) as service:
        log = service.log_create(name="full")
        refused = None
        for _ in range(20):
            try:
                log.append(os.urandom(100_000))
            except LogError as exc:
                refused = exc
                break
        assert refused is not None and refused.code == 507
        assert log.nrecs == 10  # ten records of 100 kB fit in 1 MiB, the eleventh does not
        assert 1_000_000 < content.space().quota_used_bytes <= 1 * MB
        with pytest.raises(QuotaExceededError):
            Upload(content, reserve=100_000)


# -- the figures stay exact whatever the sequence -----------------------------------------------

def _check_invariants(content: ContentStore) -> None:
    """The pending counters match the markers, every marker's block is there, and `space()`
    adds up to what the store holds."""
    store = content.single
    marks = [(CID(key), value) for key, value in store.meta_iter("pending")]
    assert all(store.has(cid) for cid, _ in marks)
    sizes = [store.size_of(cid) for cid, _ in marks]
    space = content.space()
    stats = store.stats()
    assert space.total_blocks == stats.blocks - len(marks)
    assert space.quota_used_bytes + space.quota_reserved_bytes == stats.bytes + content.ingest.reserved
    assert space.quota_reserved_bytes - content.ingest.reserved == sum(s or 0 for s in sizes)
    for key, _ in store.meta_iter("refs"):
        assert store.has(CID(key))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["upload", "cancel", "own", "keep", "abandon", "release", "delete",
                                           "reopen", "commit", "expire"]),
                          st.integers(0, 5)), max_size=25))
def test_any_sequence_of_ingest_operations_keeps_the_figures_exact(ops):
    pool = [os.urandom(4096) for _ in range(6)]  # few distinct blocks: sessions share them
    store = MemoryBlockStore()
    content = ContentStore(store, quota=1 << 30, block_ttl=60)
    sessions: list = []
    datasets: list[CID] = []
    for op, n in ops:
        chosen = [(CID.of(pool[i]), pool[i]) for i in range(n % len(pool) + 1)]
        if op == "upload":
            up = Upload(content, FixedChunker(4096))
            up.write(b"".join(d for _, d in chosen))
            datasets.append(up.finish())
        elif op in ("cancel", "own"):
            session = content.ingest.session(owner=f"o/{n}" if op == "own" else None)
            session.write(chosen)
            sessions.append(session)
        elif op in ("keep", "abandon") and sessions:
            session = sessions.pop(n % len(sessions))
            session.keep() if op == "keep" else session.abandon()
        elif op == "release":
            content.ingest.release_owner(f"o/{n}", keep=n % 2 == 0)
        elif op == "delete" and datasets:
            cid = datasets.pop(n % len(datasets))
            if content.dataset_info(cid) is not None:
                content.delete(cid)
        elif op == "expire":  # every owner is abandoned
            content.expire(now=time.time() + content.ingest.abandon_after + 1)
        elif op == "reopen":
            content = ContentStore(store, quota=1 << 30, block_ttl=60)
            sessions = []
        elif op == "commit" and sessions:
            session = sessions.pop(n % len(sessions))
            if not session.closed:
                root, nodes = build_index([(c, len(d)) for c, d in chosen])
                manifest = Manifest(dataset_size=sum(len(d) for _, d in chosen), block_size=4096,
                                    block_count=len(chosen), chunker="fixed",
                                    digest=blake3.blake3(b"".join(d for _, d in chosen)).digest(), index=root)
                try:
                    datasets.append(session.commit_dataset(manifest, nodes))
                except NotFoundError:
                    session.abandon()
        _check_invariants(content)
    for session in sessions:
        session.abandon()
    for owner_name in list(content.ingest.owners()):
        content.ingest.release_owner(owner_name, keep=False)
    for cid in [d.cid for d in content.datasets()]:
        content.delete(cid)
    _check_invariants(content)
    kept = [CID(key) for key, _ in store.meta_iter("kept")]
    for cid in kept:
        content.delete(cid)
    assert store.stats().blocks == 0 and content.space() == Space(0, 1 << 30, 0, 0)


def test_concurrent_writers_under_quota_pressure_keep_the_figures_exact(tmp_path: Path):
    import random
    import threading

    pool = [os.urandom(4096) for _ in range(12)]
    store = open_blockstore(str(tmp_path / "store"))
    content = ContentStore(store, quota=200_000, block_ttl=60)
    failures: list[BaseException] = []

    def worker(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            for _ in range(100):
                chosen = [pool[i] for i in rnd.sample(range(12), rnd.randint(1, 12))]
                op = rnd.choice(["upload", "cancel", "own", "delete"])
                try:
                    if op == "upload":
                        up = Upload(content, FixedChunker(4096), reserve=rnd.choice([0, len(chosen) * 4096]))
                        up.write(b"".join(chosen))
                        up.finish()
                    elif op == "cancel":
                        up = Upload(content, FixedChunker(4096))
                        up.write(b"".join(chosen))
                        up.flush()
                        up.cancel()
                    elif op == "own":
                        session = content.ingest.session(owner=f"o/{seed}/{rnd.randint(0, 2)}")
                        session.write([(CID.of(d), d) for d in chosen])
                        session.keep() if rnd.random() < 0.5 else session.abandon()
                    elif datasets := [d.cid for d in content.datasets()]:
                        content.delete(rnd.choice(datasets))
                except (QuotaExceededError, NotFoundError, StateError):
                    pass  # refused or raced: changes nothing
                except InvalidArgumentError as exc:
                    if "in use" not in exc.message and "belongs" not in exc.message:
                        raise
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    try:
        assert not failures and not any(t.is_alive() for t in threads)
        _check_invariants(content)
        assert content.space().quota_used_bytes + content.space().quota_reserved_bytes <= 200_000
        for owner_name in list(content.ingest.owners()):
            content.ingest.release_owner(owner_name, keep=False)
        for cid in [d.cid for d in content.datasets()]:
            content.delete(cid)
        for key, _ in list(store.meta_iter("kept")):
            content.delete(CID(key))
        assert store.stats().blocks == 0 and content.space() == Space(0, 200_000, 0, 0)
    finally:
        store.close()

"""The Logos Storage operations on an embedded node (DIGEST §1.3–1.5)."""

import asyncio
import os
import threading

import pytest

import hoard
from hoard.errors import InvalidArgumentError, InvalidCidError, NotFoundError, QuotaExceededError, RepoLockedError


def upload_file(node, path, chunk_size=0):
    return node.upload_file(node.upload_init(str(path), chunk_size))


def test_upload_session_ids_count_from_zero(node):
    assert node.upload_init("a.bin") == "0"
    assert node.upload_init("b.bin") == "1"


def test_upload_by_chunks_and_download_by_chunks(node):
    data = os.urandom(300_000)
    session = node.upload_init("data.bin", 4096)
    for i in range(0, len(data), 10_000):
        node.upload_chunk(session, data[i:i + 10_000])
    cid = node.upload_finalize(session)
    manifest = node.download_manifest(cid)
    assert manifest.block_size == 4096 and manifest.dataset_size == len(data)
    assert manifest.filename == "data.bin"
    assert node.download_init(cid, 50_000) == ""
    assert node.download_init(cid, 50_000) == "Download session already exists."
    got = b""
    while chunk := node.download_chunk(cid):
        assert len(chunk) <= 50_000
        got += chunk
    assert got == data


def test_upload_file_reports_progress_in_bytes(node, sample):
    progress = []
    session = node.upload_init(str(sample))
    cid = node.upload_file(session, on_progress=progress.append)
    assert sum(progress) == sample.stat().st_size
    assert all(n <= 65536 for n in progress)
    manifest = node.download_manifest(cid)
    assert manifest.filename == "sample.txt" and manifest.mimetype == "text/plain"


def test_download_stream_writes_file_and_reports_chunks(node, sample, tmp_path):
    cid = upload_file(node, sample)
    chunks = []
    out = tmp_path / "out.txt"
    assert node.download_stream(cid, str(out), on_progress=chunks.append) == sample.stat().st_size
    assert out.read_bytes() == sample.read_bytes() == b"".join(chunks)
    assert not (tmp_path / "out.txt.part").exists()


def test_download_of_a_single_block(node):
    session = node.upload_init("x")
    node.upload_chunk(session, b"z" * 10)
    cid = node.upload_finalize(session)
    manifest_cids = {entry.cid for entry in node.list()}
    assert cid in manifest_cids
    block_cid = next(c for c in _block_cids(node, cid))
    node.download_init(block_cid)
    padded = b"z" * 10 + bytes(65536 - 10) if _logos(node) else b"z" * 10  # a Logos block is padded
    got = b""
    while chunk := node.download_chunk(block_cid):
        got += chunk
    assert got == padded


def _logos(node):
    return node.components.context.config.dataset_format == "logos"


def _block_cids(node, cid):
    content = node.components.context.content
    if _logos(node):
        return [str(c) for c in content.logos_blocks(hoard.CID.parse(str(cid)))]
    return [str(c) for c, _ in content.iter_blocks(content.manifest(cid))]


def test_list_space_exists_delete(node, sample):
    empty = node.space()
    assert empty.total_blocks == 0 and empty.quota_used_bytes == 0 and empty.quota_max_bytes > 0
    cid = upload_file(node, sample)
    listed = node.list()
    assert [e.cid for e in listed] == [cid] and listed[0].manifest.dataset_size == sample.stat().st_size
    assert node.exists(cid) is True
    assert node.space().quota_used_bytes > sample.stat().st_size
    node.delete(cid)
    assert node.exists(cid) is False
    assert node.list() == [] and node.space() == empty


def test_info_operations(node, tmp_path):
    assert node.version().startswith("v") or node.version() == "untagged build"
    assert node.revision()
    assert node.repo() == str((tmp_path / "data").resolve())
    assert str(node.peer_id()).startswith("12D3KooW")
    assert node.spr().startswith("spr:")
    debug = node.debug()
    assert debug.peer_id == node.peer_id() and debug.spr.startswith("spr:") and debug.addrs == ()
    assert debug.table.local_node.peer_id == str(node.peer_id()) and debug.table.nodes == ()
    node.log_level("TRACE")
    with pytest.raises(InvalidArgumentError):
        node.log_level("LOUD")


def test_peer_id_and_data_survive_restart(tmp_path, sample):
    config = {"data-dir": str(tmp_path / "d")}
    with hoard.Node(config) as node:
        peer, cid = node.peer_id(), upload_file(node, sample)
    with hoard.Node(config) as node:
        assert node.peer_id() == peer
        assert node.download_stream(cid, str(tmp_path / "o")) == sample.stat().st_size


def test_start_stop_start(node):
    node.start()
    node.stop()
    node.start()
    node.stop()
    node.stop()


@pytest.mark.parametrize("op", ["download_init", "download_manifest", "exists", "delete", "fetch"])
def test_unparsable_cid_is_invalid_and_names_it(node, op):
    with pytest.raises(InvalidCidError, match="cannot parse cid: nonsense"):
        getattr(node, op)("nonsense")


def test_unknown_cid_is_not_found(node):
    unknown = str(hoard.CID.of(b"never stored", 0x71))
    for op in (node.download_init, node.download_manifest, node.delete):
        with pytest.raises(NotFoundError):
            op(unknown)
    assert node.exists(unknown) is False


def test_unknown_sessions(node):
    with pytest.raises(NotFoundError):
        node.upload_chunk("99", b"x")
    with pytest.raises(NotFoundError):
        node.upload_finalize("99")
    node.upload_cancel("99")  # no error, as in Logos
    with pytest.raises(NotFoundError):
        node.download_chunk(str(hoard.CID.of(b"x")))
    node.download_cancel(str(hoard.CID.of(b"x")))


def test_missing_absolute_file_is_an_error(node, tmp_path):
    with pytest.raises(NotFoundError, match="does not exist"):
        node.upload_init(str(tmp_path / "nope.bin"))


def test_upload_cancel_leaves_nothing(node):
    before = node.space()
    session = node.upload_init("big.bin")
    node.upload_chunk(session, os.urandom(20 << 20))
    node.upload_cancel(session)
    assert node.space() == before


def test_quota_exceeded_changes_nothing(tmp_path, sample):
    with hoard.Node({"data-dir": str(tmp_path / "q"), "storage-quota": 2_000_000}) as node:
        upload_file(node, sample)
        before, listed = node.space(), node.list()
        big = tmp_path / "big.bin"
        big.write_bytes(os.urandom(1_500_000))
        with pytest.raises(QuotaExceededError):
            upload_file(node, big)
        session = node.upload_init("chunks.bin")
        with pytest.raises(QuotaExceededError):
            for _ in range(30):
                node.upload_chunk(session, os.urandom(100_000))
            node.upload_finalize(session)
        assert node.space() == before and node.list() == listed


def test_second_node_on_same_data_dir_is_refused(node, tmp_path):
    with pytest.raises(RepoLockedError):
        hoard.Node({"data-dir": str(tmp_path / "data")})


def test_calls_from_many_threads(node):
    errors = []

    def work(i):
        try:
            data = os.urandom(50_000) + bytes([i])
            s = node.upload_init(f"t{i}")
            node.upload_chunk(s, data)
            cid = node.upload_finalize(s)
            node.download_init(cid, 1 << 20)
            assert node.download_chunk(cid) == data
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(node.list()) == 8


def test_async_node_offers_the_same_operations(tmp_path, sample):
    async def main():
        async with hoard.AsyncNode({"data-dir": str(tmp_path / "a")}) as node:
            session = await node.upload_init(str(sample))
            cid = await node.upload_file(session)
            assert (await node.download_manifest(cid)).dataset_size == sample.stat().st_size
            assert [e.cid for e in await node.list()] == [cid]

    asyncio.run(asyncio.wait_for(main(), 60))


def test_closed_node_refuses_calls(tmp_path):
    node = hoard.Node({"data-dir": str(tmp_path / "c")})
    node.close()
    node.close()
    with pytest.raises(hoard.errors.StateError):
        node.space()


def test_cached_data_expires_via_maintenance(tmp_path):
    from hoard.content import Upload

    with hoard.Node({"data-dir": str(tmp_path / "e"), "block-ttl": 0.2, "block-mi": 0.05}) as node:
        up = Upload(node.components.context.content, pinned=False)
        up.write(os.urandom(100_000))
        cid = up.finish()
        assert [e.cid for e in node.list()] == [cid]
        node.start()
        deadline = __import__("time").monotonic() + 20
        while node.list() and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)  # polling the observable outcome, bounded
        assert node.list() == [] and node.space().total_blocks == 0

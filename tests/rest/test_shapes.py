"""`hoard.api.shapes`: the one place the Logos camelCase JSON of the node's results is written
(REST, the C ABI, `--json`) and read back (the REST client). Field names and order are the wire
contract; reading the JSON back gives the very values the node returned."""

import json

import pytest

import hoard
from hoard.api import shapes


@pytest.fixture(params=["logos", "hoard"])
def node(tmp_path, request):
    with hoard.Node({"data-dir": str(tmp_path / "d"), "dataset-format": request.param}) as n:
        yield n


def _store(node, data=b"shape" * 1000):
    session = node.upload_open("s.txt", "text/plain")
    node.upload_chunk(session, data)
    return node.upload_finalize(session)


def test_manifest_and_dataset_json_keep_the_logos_fields_in_order(node):
    cid = _store(node)
    manifest = node.download_manifest(cid)
    data = shapes.manifest_json(manifest)
    logos = ["treeCid", "datasetSize", "blockSize", "filename", "mimetype", "protected"]
    hoard_own = ["blockCount", "chunker", "digest"]
    assert list(data) == (logos if node.components.context.config.dataset_format == "logos" else logos + hoard_own)
    assert data["datasetSize"] == 5000 and data["filename"] == "s.txt" and data["protected"] is False
    assert shapes.manifest_from_json(json.loads(json.dumps(data))) == manifest
    [dataset] = node.list()
    assert shapes.dataset_json(dataset) == {"cid": str(cid), "manifest": data}
    assert shapes.dataset_from_json(shapes.dataset_json(dataset)) == dataset


def test_space_debug_verify_round_trip(node):
    cid = _store(node)
    space, debug, report = node.space(), node.debug(), node.verify(cid)
    assert list(shapes.space_json(space)) == ["totalBlocks", "quotaMaxBytes", "quotaUsedBytes", "quotaReservedBytes"]
    assert list(shapes.debug_json(debug)) == ["id", "addrs", "spr", "announceAddresses", "table"]
    assert list(shapes.debug_json(debug)["table"]) == ["localNode", "nodes"]
    assert shapes.space_from_json(shapes.space_json(space)) == space
    assert shapes.debug_from_json(shapes.debug_json(debug)) == debug
    assert shapes.verify_json(report) == {"cid": str(cid), "blocks": 1, "bytes": 5000}
    assert shapes.verify_from_json(shapes.verify_json(report)) == report


def test_fetch_shapes_leave_out_what_is_unknown(node):
    cid = _store(node)
    started = node.fetch_start(cid)
    assert shapes.fetch_started_json(started)["downloadId"] == started.download_id
    assert shapes.fetch_started_from_json(shapes.fetch_started_json(started)) == started
    assert shapes.progress_json(node.fetch_progress(started.download_id)) == {
        "active": False, "received": 1, "total": 1, "bytes": 5000}
    assert shapes.progress_json(node.fetch_progress(999)) == {"active": False}
    [fetch] = node.fetches()
    assert shapes.fetch_json(fetch)["cid"] == str(cid) and shapes.fetch_json(fetch)["filename"] == "s.txt"


def test_to_json_covers_every_result_and_text_forms(node):
    cid = _store(node)
    log = node.logs.create(name="shapes")
    assert shapes.to_json(cid) == str(cid)
    assert shapes.to_json(node.peer_id()) == str(node.peer_id())
    assert shapes.to_json(node.logs.list()) == [{"name": str(log.name), "nrecs": 0}]
    assert shapes.to_json(node.list()) == shapes.datasets_json(node.list())
    assert shapes.to_json(node.transfer.policy()) == {"push": False, "pull": True, "peers": None}
    assert shapes.to_json(True) is True and shapes.to_json(None) is None


def test_bad_json_from_a_node_is_a_clear_error():
    from hoard.errors import InvalidArgumentError

    with pytest.raises(InvalidArgumentError):
        shapes.space_from_json({"totalBlocks": "many"})
    with pytest.raises(InvalidArgumentError):
        shapes.manifest_from_json({"datasetSize": 1, "blockSize": 1})

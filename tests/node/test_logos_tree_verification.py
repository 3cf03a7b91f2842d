"""A Logos dataset's block list from a peer is checked against the treeCid: a peer answering a
wrong leaf list is not believed, another provider's right one is (embedded nodes on 127.0.0.1)."""

import os

import pytest

import hoard
from hoard.errors import NotFoundError

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def nodes(tmp_path):
    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}
    with hoard.Node({**config, "data-dir": str(tmp_path / "bad")}) as bad, \
            hoard.Node({**config, "data-dir": str(tmp_path / "good")}) as good, \
            hoard.Node({**config, "data-dir": str(tmp_path / "reader")}) as reader:
        for node in (bad, good, reader):
            node.start()
        yield bad, good, reader


def upload(node, data):
    session = node.upload_open("d.bin")
    node.upload_chunk(session, data)
    return node.upload_finalize(session)


def test_a_wrong_leaf_list_is_refused_and_a_right_one_from_another_provider_used(nodes, tmp_path):
    bad, good, reader = nodes
    data = os.urandom(5 * 65536 + 7)
    cid = upload(bad, data)
    content = bad.components.context.content
    store = content.single
    [part] = content.dataset_info(cid).parts
    leaves = bytearray(store.get(part))
    leaves[40] ^= 1  # the second block's leaf: the list no longer gives the treeCid
    store.delete(part)
    store.put(part, bytes(leaves))  # (the store checks nothing: a damaged disk)
    reader.connect(str(bad.peer_id()), list(bad.debug().addrs))
    with pytest.raises(NotFoundError, match="no peer gave a valid block list"):
        reader.download_stream(cid, str(tmp_path / "x.bin"), 0, False)
    assert upload(good, data) == cid
    reader.connect(str(good.peer_id()), list(good.debug().addrs))
    out = tmp_path / "out.bin"
    assert reader.download_stream(cid, str(out), 0, False) == len(data)
    assert out.read_bytes() == data

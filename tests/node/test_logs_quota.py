"""Log records count against the node's storage quota (one quota, checked by the ingest)."""

from __future__ import annotations

import pytest

import hoard
from hoard.errors import LogError

pytestmark = pytest.mark.timeout(60)


def test_log_appends_on_a_full_quota_are_refused_and_write_nothing(tmp_path):
    config = {"data-dir": str(tmp_path / "data"), "listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "storage-quota": 200_000}
    with hoard.Node(config) as node:
        log = node.logs.create({"SYN": "text/plain"})
        log.append(b"fits")
        used = node.space().quota_used_bytes
        assert used > 0  # the record is counted
        with pytest.raises(LogError) as err:
            log.append(b"x" * (200_000 - used + 1))
        assert err.value.code == 507
        assert log.nrecs == 1 and node.space().quota_used_bytes == used
        path = tmp_path / "fill.bin"
        path.write_bytes(b"y" * 8 + bytes(range(256)) * 100)  # fills most of what is left
        node.upload_file(node.upload_init(str(path)))
        left = 200_000 - node.space().quota_used_bytes
        with pytest.raises(LogError) as err:
            log.append(b"z" * (left + 1))
        assert err.value.code == 507 and log.nrecs == 1
        assert log.read_by_recno(-1).data == b"fits"

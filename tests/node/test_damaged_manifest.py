"""A dataset whose stored manifest no longer decodes (written before manifests were validated)
does not break listing: it is listed with an error (Python, REST, the status page, the CLI) and
can be deleted."""

from __future__ import annotations

import json

import cbor2
import httpx
import pytest
from harness import Daemon

import hoard
from hoard.api.client import NodeClient
from hoard.ids.cid import CID, DAG_CBOR
from hoard.node.config import Config
from hoard.node.repo import Repo
from hoard.store.base import Batch

pytestmark = pytest.mark.timeout(180)


def plant_bad_manifest(data_dir: str, tmp_path) -> tuple[str, str]:
    """Upload a good dataset (hoard format), then store a copy of its manifest whose filename is
    an integer, listed as a dataset, straight into the store. Returns (good cid, bad cid)."""
    (tmp_path / "good.txt").write_bytes(b"good data " * 1000)
    with hoard.Node({"data-dir": data_dir, "dataset-format": "hoard"}) as node:
        good = node.upload_file(node.upload_init(str(tmp_path / "good.txt")))
    repo = Repo(Config.from_dict({"data-dir": data_dir}))
    try:
        store = repo.store
        fields = cbor2.loads(store.get(good))
        key = next(k for k, v in fields.items() if v == "good.txt") if isinstance(fields, dict) else None
        assert key is not None, fields
        fields[key] = 12345  # a filename that is an integer: refused by today's decoder
        data = cbor2.dumps(fields)
        bad = CID.of(data, DAG_CBOR, good.hash_code)
        info = store.meta_get("datasets", good.binary)
        store.commit(Batch().put(bad, data).meta_put("datasets", bad.binary, info))
    finally:
        repo.close()
    return str(good), str(bad)


def test_listing_and_deleting_a_damaged_manifest_in_process(tmp_path):
    data_dir = str(tmp_path / "data")
    good, bad = plant_bad_manifest(data_dir, tmp_path)
    with hoard.Node({"data-dir": data_dir}) as node:
        listed = {str(d.cid): d for d in node.list()}
        assert listed[good].manifest is not None and listed[good].error is None
        assert listed[bad].manifest is None and "damaged manifest" in (listed[bad].error or "")
        node.delete(bad)
        assert [str(d.cid) for d in node.list()] == [good]
        assert node.verify(good).blocks > 0


def test_rest_page_and_cli_list_it(tmp_path):
    good, bad = plant_bad_manifest(str(tmp_path / "node" / "data"), tmp_path)
    with Daemon(tmp_path / "node") as node:
        with httpx.Client(base_url=node.url, timeout=30) as http:
            listed = http.get("/api/storage/v1/data")
            assert listed.status_code == 200, listed.text
            entries = {d["cid"]: d for d in listed.json()["content"]}
            assert entries[bad]["manifest"] is None and "damaged manifest" in entries[bad]["error"]
            assert entries[good]["manifest"]["filename"] == "good.txt" and entries[good].get("error") is None
            page = http.get("/")
            assert page.status_code == 200 and bad in page.text
        with NodeClient(node.url) as client:
            assert {str(d.cid): d.error is not None for d in client.list()} == {good: False, bad: True}
        shown = node.cli("list")
        assert shown.returncode == 0 and bad in shown.stdout.decode() and "damaged manifest" in shown.stdout.decode()
        assert json.loads(node.cli("--json", "list").stdout)  # JSON too
        deleted = node.cli("delete", bad)
        assert deleted.returncode == 0, deleted.stderr
        assert [d["cid"] for d in json.loads(node.cli("--json", "list").stdout)] == [good]

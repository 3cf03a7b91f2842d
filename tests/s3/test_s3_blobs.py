"""The S3 blob store against a real SeaweedFS: the conformance suite (bare and behind the read
cache), the bucket layout, strict URLs and clear errors for a bad bucket or bad credentials."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import obstore
import pytest

from hoard.errors import IntegrityError, InvalidArgumentError
from hoard.store import CachedBlobStore, LmdbBlobStore, S3BlobStore, open_blobstore
from hoard.store._s3 import block_key, parse_s3_url
from hoard.store.blob_testing import (
    BlobStoreConformance,
    block,
    make_blob_state_machine,
)
from hoard.store.blobs import BlobStore

if TYPE_CHECKING:
    from hoard.store.s3_testing import SeaweedServer as SeaweedS3


class _OnSeaweed:
    server: SeaweedS3

    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _server(cls, s3: SeaweedS3, s3_credentials: None) -> None:
        cls.server = s3


class TestS3Blobs(_OnSeaweed, BlobStoreConformance):
    def make_store(self, path: Path) -> BlobStore:
        return open_blobstore(self.server.url(), holder="node-a")


class TestS3BlobsCachedOnDisk(_OnSeaweed, BlobStoreConformance):
    def make_store(self, path: Path) -> BlobStore:
        return open_blobstore(self.server.url(), holder="node-a", cache_bytes=64 << 10, cache_dir=path / "cache")


def test_s3_state_machine(s3: SeaweedS3) -> None:
    from hypothesis import HealthCheck, settings

    machine = make_blob_state_machine(lambda: open_blobstore(s3.url(), holder="node-a"))
    machine.TestCase.settings = settings(max_examples=8, stateful_step_count=10, deadline=None,
                                         suppress_health_check=list(HealthCheck))
    machine.TestCase().runTest()


def test_blocks_live_under_the_prefix_by_base32_cid(s3: SeaweedS3) -> None:
    prefix = "layout/check"
    store = open_blobstore(s3.url(prefix), holder="node-a")
    cid, data = block(b"where am I")
    store.hold([cid])
    store.put(cid, data)
    keys = sorted(meta["path"] for page in obstore.list(s3.client(), prefix) for meta in page)
    assert keys == [f"{prefix}/blocks/{block_key(cid)}", f"{prefix}/refs/{block_key(cid)}/node-a"]
    assert block_key(cid) == cid.to_base32()
    store.close()


def test_a_large_block_goes_up_in_parts_and_comes_back_whole(s3: SeaweedS3) -> None:
    """Objects over MULTIPART_BYTES (hugo's blocks reach 32 MiB) are multipart uploads."""
    from hoard.store._s3 import MULTIPART_BYTES

    store = open_blobstore(s3.url(), holder="node-a")
    cid, data = block(os.urandom(MULTIPART_BYTES + (3 << 20)))
    store.hold([cid])
    store.put(cid, data)
    assert store.size_of(cid) == len(data) and store.get(cid) == data
    store.close()


def test_a_corrupt_object_is_an_integrity_error(s3: SeaweedS3) -> None:
    url = s3.url()
    store = open_blobstore(url)
    cid, _ = block(b"the real bytes")
    obstore.put(s3.client(parse_s3_url(url).prefix), f"blocks/{block_key(cid)}", b"other bytes")
    with pytest.raises(IntegrityError):
        store.get(cid)
    store.close()


def test_the_cache_answers_repeated_reads_without_the_bucket(s3: SeaweedS3, tmp_path: Path) -> None:
    url = s3.url()
    store = open_blobstore(url, cache_bytes=1 << 20, cache_dir=tmp_path / "cache")
    assert isinstance(store, CachedBlobStore)
    items = [block(b"hot %d" % i * 100) for i in range(10)]
    store.put_many(items)
    cids = [c for c, _ in items]
    assert store.get_many(cids) == [d for _, d in items]
    obstore.delete(s3.client(parse_s3_url(url).prefix), [f"blocks/{block_key(c)}" for c in cids])
    assert store.get_many(cids) == [d for _, d in items]  # served from the disk tier
    assert store.counters.hits == 10 and store.counters.misses == 10
    assert store.has_many(cids) == [False] * 10  # presence still asks the bucket
    store.close()
    assert isinstance(LmdbBlobStore(tmp_path / "cache").get(cids[0]), bytes)


def test_a_missing_bucket_is_a_clear_error(s3: SeaweedS3) -> None:
    with pytest.raises(InvalidArgumentError, match="cannot use bucket"):
        open_blobstore(f"s3://no-such-bucket-here/x?endpoint={s3.endpoint}")


def test_wrong_credentials_are_a_clear_error(s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(InvalidArgumentError, match="cannot use bucket"):
        open_blobstore(s3.url())


def test_credentials_come_from_the_environment(s3: SeaweedS3) -> None:
    store = open_blobstore(s3.url())
    assert isinstance(store, S3BlobStore)
    cid, data = block(b"env creds")
    store.put(cid, data)
    assert store.get(cid) == data
    store.close()


def test_endpoint_from_aws_endpoint_url(s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint)
    assert parse_s3_url(f"s3://{s3.bucket}/p").endpoint == s3.endpoint
    open_blobstore(f"s3://{s3.bucket}/p").close()


@pytest.mark.parametrize("url", [
    "s3://bucket/p?endpoint=http://h:1&colour=blue",   # unknown option
    "s3://bucket/p?region=a&region=b",                 # repeated option
    "s3://bucket/p?concurrency=0",
    "s3://bucket/p?concurrency=many",
    "s3://bucket/p?addressing=sideways",
    "s3://bucket/p?endpoint=ftp://h",
    "s3://bucket/p?endpoint=http://h/path",
    "s3://key:secret@bucket/p",                        # credentials never in the URL
    "s3://Bucket/p", "s3://b/p", "s3://bucket/../p", "s3://bucket/a//b", "s3://bucket/p#frag",
    "s3://bucket/p?region=Bad_Region",
])
def test_bad_s3_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_s3_url(url, env={})


def test_s3_url_defaults_and_environment() -> None:
    got = parse_s3_url("s3://bucket/a/b/", env={"AWS_DEFAULT_REGION": "eu-west-1"})
    assert (got.bucket, got.prefix, got.endpoint, got.region, got.addressing, got.concurrency) == \
        ("bucket", "a/b", None, "eu-west-1", "path", 16)
    got = parse_s3_url("s3://bucket?region=us-west-2&addressing=virtual&concurrency=4",
                       env={"AWS_REGION": "eu-west-1"})
    assert (got.prefix, got.region, got.addressing, got.concurrency) == ("", "us-west-2", "virtual", 4)


def test_bad_holder_id_is_refused(s3: SeaweedS3) -> None:
    with pytest.raises(InvalidArgumentError):
        open_blobstore(s3.url(), holder="a/b")

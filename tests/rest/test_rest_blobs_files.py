"""hoard's REST routes for blobs (`/blobs...`) and files (`/files...`) against a real node process:
what each answers, their streamed bodies both ways (frames for files), their errors, and the
token check every route has."""

from __future__ import annotations

import json
import os
import struct
import zlib

import blake3
import httpx
import pytest
from harness import Daemon

from hoard.api.client_files import BLOCK_FRAME, FrameParser
from hoard.limits import MAX_FILE_BLOCK_BYTES

pytestmark = pytest.mark.timeout(300)


def hexdigest(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def framed(*blocks: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(b)) + b for b in blocks)


def frames(body: bytes) -> list[tuple[bytes, int, int, bytes]]:
    parser = FrameParser(BLOCK_FRAME, MAX_FILE_BLOCK_BYTES)
    out = [(kind, index, crc, payload) for (kind, index, crc, _n), payload in parser.feed(body)]
    parser.end()
    return out


def test_put_stat_and_read_a_blob(http):
    data = os.urandom(1_300_000)  # several FastCDC chunks
    put = http.post("/blobs", content=data)
    assert put.status_code == 200, put.text
    stat = put.json()
    assert stat["hex"] == hexdigest(data) and stat["size"] == len(data) and stat["manifest"]
    assert stat["digest"].startswith("b3:") and stat["chunks"] is None
    full = http.get(f"/blobs/{stat['hex']}/stat").json()
    assert sum(c["size"] for c in full["chunks"]) == len(data) and full["manifest"] == stat["manifest"]
    assert http.get(f"/blobs/{stat['digest']}/stat", params={"chunks": "false"}).json()["chunks"] is None
    read = http.get(f"/blobs/{stat['digest']}")  # b3:<base64>, its "/" as it is
    assert read.status_code == 200 and read.content == data
    assert read.headers["content-length"] == str(len(data))
    assert read.headers["content-type"] == "application/octet-stream"
    chunk = full["chunks"][1]
    assert http.get(f"/blobs/{chunk['hex']}").content == data[full["chunks"][0]["size"]:][:chunk["size"]]
    assert stat["manifest"] in {d["cid"] for d in http.get("/data").json()["content"]}  # a blob is a dataset


def test_a_put_streams_a_body_larger_than_what_the_server_holds(http):
    piece = os.urandom(1 << 20)
    hasher = blake3.blake3()

    def body():
        for _ in range(24):  # 24 MiB, sent while the node stores it
            hasher.update(piece)
            yield piece

    put = http.post("/blobs", content=body())
    assert put.status_code == 200, put.text
    assert put.json()["hex"] == hasher.hexdigest() and put.json()["size"] == 24 << 20
    with http.stream("GET", f"/blobs/{put.json()['hex']}") as read:
        got = blake3.blake3()
        for part in read.iter_bytes():
            got.update(part)
    assert got.hexdigest() == hasher.hexdigest()


def test_the_empty_blob_and_blob_errors(http):
    empty = http.post("/blobs", content=b"").json()
    assert empty["hex"] == hexdigest(b"") and empty["size"] == 0
    missing = http.get(f"/blobs/{'00' * 32}/stat")
    assert missing.status_code == 404 and missing.headers["x-hoard-error"] == "not-found"
    assert http.get(f"/blobs/{'00' * 32}").status_code == 404
    bad = http.get("/blobs/not-a-digest/stat")
    assert bad.status_code == 400 and bad.headers["x-hoard-error"] == "invalid"
    assert "cannot parse blob digest" in bad.text


def test_a_put_the_client_abandons_keeps_nothing(node, http):
    before = http.get("/data").json()["content"]
    piece = os.urandom(1 << 20)

    def body():
        for _ in range(3):
            yield piece
        raise RuntimeError("the client gives up")

    with pytest.raises(RuntimeError, match="gives up"):
        http.post("/blobs", content=body())
    hexes = {hexdigest(piece * n) for n in (1, 2, 3)}
    for value in hexes:
        assert http.get(f"/blobs/{value}/stat").status_code == 404
    assert http.get("/data").json()["content"] == before


def test_write_a_block_append_and_read_versions(http):
    ino = 5001
    first = http.post(f"/files/{ino}/blocks", content=b"alpha")
    assert first.status_code == 200, first.text
    assert first.json() == {"ino": ino, "indices": [0], "version": 1}
    assert http.post(f"/files/{ino}/blocks", content=b"beta", params={"crc32": zlib.crc32(b"beta")}).json() == \
        {"ino": ino, "indices": [1], "version": 2}
    at = http.post(f"/files/{ino}/blocks", content=b"ALPHA", params={"index": 0}).json()
    assert at == {"ino": ino, "indices": [0], "version": 3}
    latest = frames(http.get(f"/files/{ino}/blocks").content)
    assert [(k, i, c, d) for k, i, c, d in latest] == [(b"B", 0, zlib.crc32(b"ALPHA"), b"ALPHA"),
                                                       (b"B", 1, zlib.crc32(b"beta"), b"beta")]
    v1 = frames(http.get(f"/files/{ino}/blocks", params={"version": 1}).content)
    assert [(i, d) for _, i, _, d in v1] == [(0, b"alpha")]
    tail = frames(http.get(f"/files/{ino}/blocks", params={"start": 1, "end": 1}).content)
    assert [(i, d) for _, i, _, d in tail] == [(1, b"beta")]
    stat = http.get(f"/files/{ino}/stat").json()
    assert (stat["ino"], stat["version"], stat["latest"], stat["blocks"], stat["size"], stat["nextIndex"]) == \
        (ino, 3, 3, 2, 9, 2)
    assert http.get(f"/files/{ino}/stat", params={"version": 1}).json()["size"] == 5


def test_a_stream_write_is_one_version_and_is_read_back_streamed(http):
    ino = 5002
    blocks = [os.urandom(512 << 10) for _ in range(12)] + [b"end"]

    def body():  # sent in uneven pieces: frames cross piece boundaries
        raw = framed(*blocks)
        for start in range(0, len(raw), 300_001):
            yield raw[start:start + 300_001]

    written = http.post(f"/files/{ino}/stream", content=body())
    assert written.status_code == 200, written.text
    assert written.json() == {"ino": ino, "indices": list(range(13)), "version": 1}
    with http.stream("GET", f"/files/{ino}/blocks") as read:
        assert read.headers["content-type"].startswith("application/vnd.hoard.file-blocks")
        parser = FrameParser(BLOCK_FRAME, MAX_FILE_BLOCK_BYTES)
        got = [(fields[1], payload) for piece in read.iter_raw() for fields, payload in parser.feed(piece)]
    assert got == list(enumerate(blocks))


def test_file_errors_change_nothing(http):
    ino = 5003
    assert http.post(f"/files/{ino}/blocks", content=b"kept").status_code == 200
    crc = http.post(f"/files/{ino}/blocks", content=b"data", params={"crc32": 1})
    assert crc.status_code == 412 and crc.headers["x-hoard-error"] == "crc-mismatch" and "crc32 mismatch" in crc.text
    truncated = http.post(f"/files/{ino}/stream", content=framed(b"one") + struct.pack(">I", 10) + b"abc")
    assert truncated.status_code == 400 and "inside a frame" in truncated.text
    too_big = http.post(f"/files/{ino}/stream", content=struct.pack(">I", MAX_FILE_BLOCK_BYTES + 1))
    assert too_big.status_code == 400 and "exceeds the maximum file block size" in too_big.text
    one_too_big = http.post(f"/files/{ino}/blocks", content=b"x" * (MAX_FILE_BLOCK_BYTES + 1))
    assert one_too_big.status_code == 400 and "exceeds the maximum file block size" in one_too_big.text
    stat = http.get(f"/files/{ino}/stat").json()
    assert (stat["version"], stat["blocks"], stat["size"]) == (1, 1, 4)
    missing = http.get("/files/999999/blocks")
    assert missing.status_code == 404 and missing.headers["x-hoard-error"] == "not-found"
    no_version = http.get(f"/files/{ino}/stat", params={"version": 7})
    assert no_version.status_code == 404 and "no version 7" in no_version.text
    assert http.get("/files/-1/stat").status_code == 400
    assert http.get(f"/files/{1 << 64}/stat").status_code == 400


def test_blob_and_file_routes_require_the_token(tmp_path):
    with Daemon(tmp_path / "n", config={"api-token": "blob-token"}) as node:
        with httpx.Client(base_url=node.api, timeout=60) as anonymous:
            assert anonymous.post("/blobs", content=b"x").status_code == 401
            assert anonymous.get("/files/1/stat").status_code == 401
        with httpx.Client(base_url=node.api, timeout=60, headers={"authorization": "Bearer blob-token"}) as http:
            put = http.post("/blobs", content=b"with the token")
            assert put.status_code == 200, put.text
            assert json.loads(put.text)["size"] == len(b"with the token")


def test_an_error_met_after_a_read_began_is_its_last_frame(http):
    from hoard.ids.cid import CID

    ino = 5004
    blocks = [b"first block", b"second block"]
    assert http.post(f"/files/{ino}/stream", content=framed(*blocks)).status_code == 200
    assert http.delete(f"/data/{CID.of(blocks[1])}").status_code == 204  # the second block's bytes are gone
    read = http.get(f"/files/{ino}/blocks")
    assert read.status_code == 200  # the answer had begun
    got = frames(read.content)
    assert [kind for kind, *_ in got][-1:] == [b"E"] and all(kind == b"B" for kind, *_ in got[:-1]), got
    error = json.loads(got[-1][3])
    assert (error["code"], error["httpStatus"]) == ("integrity", 502), error  # a block of the file is missing

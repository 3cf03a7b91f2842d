"""The /data endpoints of a real node process: good input, bad input, status codes, headers."""

import os

import httpx
import pytest

from hoard.content.formats.logos import block_cid

pytestmark = pytest.mark.timeout(180)

UNKNOWN = "zdqAuPSaNbU6GzVdi2k6NyZifuoA44h1x4crFgnnSjh59yPzF"  # a valid CID stored nowhere
BAD = "not-a-cid"


def test_upload_returns_the_cid_as_text_and_the_dataset_is_listed(http, upload):
    data = os.urandom(300_000)
    cid = upload(data, filename="photo.png", mimetype="image/png")
    assert cid.startswith("z")
    entries = {e["cid"]: e["manifest"] for e in http.get("/data").json()["content"]}
    manifest = entries[cid]
    assert manifest["datasetSize"] == 300_000
    assert manifest["filename"] == "photo.png" and manifest["mimetype"] == "image/png"
    assert manifest["blockSize"] == 65536 and manifest["protected"] is False and manifest["treeCid"].startswith("z")


def test_upload_response_is_plain_text(http):
    response = http.post("/data", content=b"x")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")


def test_download_has_content_headers_and_the_bytes(http, upload):
    data = os.urandom(200_001)
    cid = upload(data, filename="report.pdf", mimetype="application/pdf")
    response = http.get(f"/data/{cid}")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    assert response.headers["content-length"] == "200001"
    assert response.headers["accept-ranges"] == "bytes"


def test_download_without_metadata_is_an_octet_stream_attachment(http, upload):
    cid = upload(b"anonymous bytes")
    response = http.get(f"/data/{cid}")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"] == "attachment"


def test_non_ascii_filename_round_trips_through_rfc5987(http):
    response = http.post("/data", content=b"data", headers={
        "content-disposition": "attachment; filename*=UTF-8''%C3%BCber%20caf%C3%A9.txt"})
    cid = response.text
    disposition = http.get(f"/data/{cid}").headers["content-disposition"]
    assert "filename*=UTF-8''%C3%BCber%20caf%C3%A9.txt" in disposition
    manifest = http.get(f"/data/{cid}/network/manifest").json()["manifest"]
    assert manifest["filename"] == "über café.txt"


def test_upload_with_block_size_uses_it(http):
    cid = http.post("/data", params={"blockSize": 4096}, content=os.urandom(10_000)).text
    manifest = http.get(f"/data/{cid}/network/manifest").json()["manifest"]
    assert manifest["blockSize"] == 4096 and manifest["datasetSize"] == 10_000  # 3 padded Logos blocks


@pytest.mark.parametrize("range_header, status, expected, content_range", [
    ("bytes=0-9", 206, slice(0, 10), "bytes 0-9/100000"),
    ("bytes=65530-65545", 206, slice(65530, 65546), "bytes 65530-65545/100000"),  # crosses a block boundary
    ("bytes=99990-", 206, slice(99990, 100000), "bytes 99990-99999/100000"),
    ("bytes=-5", 206, slice(99995, 100000), "bytes 99995-99999/100000"),
    ("bytes=99999-200000", 206, slice(99999, 100000), "bytes 99999-99999/100000"),
    ("bytes=0-", 200, slice(0, 100000), None),  # the whole content
    ("bytes=5-1", 200, slice(0, 100000), None),  # invalid: ignored
    ("bytes=0-1,5-6", 200, slice(0, 100000), None),  # several ranges: ignored
    ("items=0-1", 200, slice(0, 100000), None),  # other unit: ignored
])
def test_range_requests(http, upload, range_header, status, expected, content_range):
    data = os.urandom(100_000)
    cid = upload(data)
    response = http.get(f"/data/{cid}", headers={"range": range_header})
    assert response.status_code == status
    assert response.content == data[expected]
    assert response.headers["content-length"] == str(len(data[expected]))
    assert response.headers.get("content-range") == content_range


@pytest.mark.parametrize("range_header", ["bytes=100000-", "bytes=200000-300000", "bytes=-0"])
def test_unsatisfiable_range_is_416(http, upload, range_header):
    cid = upload(os.urandom(100_000))
    response = http.get(f"/data/{cid}", headers={"range": range_header})
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */100000"


def test_a_block_cid_downloads_that_block(http, upload):
    data = os.urandom(70_000)
    upload(data)
    first = block_cid(data[:65536])  # the dataset's first Logos block (codex-block, sha2-256)
    # a block downloads as its bytes, without dataset headers
    response = http.get(f"/data/{first}")
    assert response.status_code == 200 and response.headers["content-disposition"] == "attachment"
    assert response.content == data[:65536]


@pytest.mark.parametrize("method, path", [
    ("GET", "/data/{cid}"), ("DELETE", "/data/{cid}"), ("POST", "/data/{cid}/network"),
    ("GET", "/data/{cid}/network/stream"), ("GET", "/data/{cid}/network/manifest"),
    ("GET", "/data/{cid}/network/progress/1"), ("DELETE", "/data/{cid}/network/1"),
    ("GET", "/data/{cid}/exists"), ("POST", "/data/{cid}/verify"),
])
def test_invalid_cid_is_400_with_a_clear_body(http, method, path):
    response = http.request(method, path.format(cid=BAD))
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "cannot parse cid" in response.text and BAD in response.text
    assert response.headers["x-hoard-error"] == "invalid-cid"


@pytest.mark.parametrize("method, path", [
    ("GET", "/data/{cid}"), ("DELETE", "/data/{cid}"), ("POST", "/data/{cid}/network"),
    ("GET", "/data/{cid}/network/stream"), ("GET", "/data/{cid}/network/manifest"),
    ("POST", "/data/{cid}/verify"), ("DELETE", "/data/{cid}/network/1"),
])
def test_unknown_cid_is_404(http, method, path):
    response = http.request(method, path.format(cid=UNKNOWN))
    assert response.status_code == 404, response.text
    assert response.text
    assert response.headers["x-hoard-error"] == "not-found"


def test_delete_is_204_and_the_data_is_gone(http, upload):
    cid = upload(os.urandom(1000))
    response = http.delete(f"/data/{cid}")
    assert response.status_code == 204 and response.content == b""
    assert http.get(f"/data/{cid}").status_code == 404
    assert http.get(f"/data/{cid}/exists").json() == {cid: False}


def test_exists_answers_cid_to_bool(http, upload):
    cid = upload(b"exists?")
    assert http.get(f"/data/{cid}/exists").json() == {cid: True}
    assert http.get(f"/data/{UNKNOWN}/exists").json() == {UNKNOWN: False}


def test_network_manifest_is_cid_and_manifest(http, upload):
    cid = upload(b"m" * 1000, filename="m.txt")
    body = http.get(f"/data/{cid}/network/manifest").json()
    assert body["cid"] == cid and body["manifest"]["datasetSize"] == 1000 and body["manifest"]["filename"] == "m.txt"


def test_network_stream_serves_the_content(http, upload):
    data = os.urandom(150_000)
    cid = upload(data, filename="s.bin")
    response = http.get(f"/data/{cid}/network/stream")
    assert response.status_code == 200 and response.content == data
    assert response.headers["content-disposition"] == 'attachment; filename="s.bin"'
    assert response.headers["content-length"] == "150000"


def test_background_fetch_of_local_data_completes_with_full_progress(http, upload):
    data = os.urandom(200_000)
    cid = upload(data)
    started = http.post(f"/data/{cid}/network").json()
    assert started["cid"] == cid and started["manifest"]["datasetSize"] == 200_000
    download_id = started["downloadId"]
    progress = http.get(f"/data/{cid}/network/progress/{download_id}").json()
    assert progress == {"active": False, "received": 4, "total": 4, "bytes": 200_000}
    # a finished fetch cannot be cancelled (Logos: 404 "Background download not found")
    assert http.delete(f"/data/{cid}/network/{download_id}").status_code == 404


def test_progress_of_an_unknown_download_is_inactive(http, upload):
    cid = upload(b"p")
    assert http.get(f"/data/{cid}/network/progress/987654").json() == {"active": False}
    started = http.post(f"/data/{cid}/network").json()
    other = upload(b"other")  # the id belongs to another CID
    assert http.get(f"/data/{other}/network/progress/{started['downloadId']}").json() == {"active": False}


@pytest.mark.parametrize("download_id", ["abc", "-1", "1.5", str(2**64)])
def test_invalid_download_id_is_400(http, upload, download_id):
    cid = upload(b"q")
    assert http.get(f"/data/{cid}/network/progress/{download_id}").status_code == 400
    assert http.delete(f"/data/{cid}/network/{download_id}").status_code == 400


def test_verify_checks_every_block(http, upload):
    cid = upload(os.urandom(140_000))
    assert http.post(f"/data/{cid}/verify").json() == {"cid": cid, "blocks": 3, "bytes": 140_000}


@pytest.mark.parametrize("content_type", ["not a type", "application/x-hoard-nonsense", "text/pla\tin"])
def test_unknown_mimetype_is_422_and_nothing_is_stored(http, content_type):
    before = http.get("/space").json()["totalBlocks"]
    response = http.post("/data", content=os.urandom(5000), headers={"content-type": content_type})
    assert response.status_code == 422
    assert "MIME type" in response.text
    assert http.get("/space").json()["totalBlocks"] == before


@pytest.mark.parametrize("disposition", ['attachment; filename="../etc/passwd"', 'attachment; filename="a/b"',
                                         'attachment; filename=""', 'attachment; filename="' + "x" * 300 + '"'])
def test_invalid_filename_is_422(http, disposition):
    response = http.post("/data", content=b"data", headers={"content-disposition": disposition})
    assert response.status_code == 422
    assert "ilename" in response.text


def test_content_type_parameters_are_kept(http):
    cid = http.post("/data", content=b"hi", headers={"content-type": "text/plain; charset=utf-8"}).text
    assert http.get(f"/data/{cid}").headers["content-type"] == "text/plain; charset=utf-8"


def test_curl_default_form_type_means_no_mimetype(http):
    cid = http.post("/data", content=b"hi", headers={"content-type": "application/x-www-form-urlencoded"}).text
    assert http.get(f"/data/{cid}/network/manifest").json()["manifest"]["mimetype"] is None


def test_bad_block_size_is_400(http):
    response = http.post("/data", params={"blockSize": "big"}, content=b"x")
    assert response.status_code == 400 and "blockSize" in response.text
    assert http.post("/data", params={"blockSize": 64 << 20}, content=b"x").status_code == 400


def test_codex_alias_serves_the_same_api(node, upload):
    cid = upload(b"alias")
    with httpx.Client(base_url=node.url + "/api/codex/v1", timeout=30) as codex:
        assert codex.get(f"/data/{cid}").content == b"alias"
        assert cid in [e["cid"] for e in codex.get("/data").json()["content"]]
        assert codex.post("/data", content=b"via codex").status_code == 200


def test_unknown_path_is_404(node):
    assert httpx.get(node.api + "/nope", timeout=30).status_code == 404


def test_head_gives_the_download_headers_without_the_content(http, upload):
    cid = upload(os.urandom(12_345), filename="h.bin", mimetype="application/octet-stream")
    response = http.head(f"/data/{cid}")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "12345"
    assert response.headers["content-disposition"] == 'attachment; filename="h.bin"'
    partial = http.head(f"/data/{cid}", headers={"range": "bytes=10-19"})
    assert partial.status_code == 206 and partial.headers["content-range"] == "bytes 10-19/12345"
    assert http.head(f"/data/{UNKNOWN}").status_code == 404

"""Node and debug endpoints, the OpenAPI document, the status page (HTML) and the node's startup report."""

import json

import httpx
import pytest

pytestmark = pytest.mark.timeout(180)

PEER = "12D3KooWLGBfWYyTD9ykkWQF1qbYpTcGLYvbnrTQ5W4vcXr9qDdH"


def test_node_reports_its_api_address_on_stdout_and_in_node_json(node):
    assert node.url.startswith("http://127.0.0.1:") and not node.url.endswith(":0")
    recorded = json.loads((node.data_dir / "node.json").read_text())
    assert recorded["api"] == node.url and recorded["pid"] == node.pid


def test_space(http):
    space = http.get("/space").json()
    assert set(space) == {"totalBlocks", "quotaMaxBytes", "quotaUsedBytes", "quotaReservedBytes"}
    assert space["quotaMaxBytes"] == 20 * 1024**3


def test_peerid_as_json_or_text(http):
    peer = http.get("/peerid").json()["id"]
    assert peer.startswith("12D3KooW")
    text = http.get("/peerid", headers={"accept": "text/plain"})
    assert text.headers["content-type"].startswith("text/plain") and text.text == peer


def test_spr_as_json_or_text(http):
    spr = http.get("/spr").json()["spr"]
    assert spr.startswith("spr:")
    assert http.get("/spr", headers={"accept": "text/plain, application/json;q=0.5"}).text.startswith("spr:")


def test_debug_info(http, node):
    info = http.get("/debug/info").json()
    assert info["id"] == http.get("/peerid").json()["id"]
    assert info["spr"].startswith("spr:") and isinstance(info["addrs"], list)
    assert info["repo"] == str(node.data_dir.resolve())
    assert info["storage"]["version"].startswith("v") and info["storage"]["revision"]
    assert len(info["libp2pPubKey"]) == 64
    assert set(info["table"]) == {"localNode", "nodes"}


def test_log_level(http):
    assert http.post("/debug/chronicles/loglevel", params={"level": "DEBUG"}).status_code == 200
    assert http.post("/debug/chronicles/loglevel", params={"level": "info"}).status_code == 200
    missing = http.post("/debug/chronicles/loglevel")
    assert missing.status_code == 400 and missing.text == "Missing log level"
    bad = http.post("/debug/chronicles/loglevel", params={"level": "LOUD"})
    assert bad.status_code == 400 and "LOUD" in bad.text


@pytest.mark.parametrize("path", ["/connect/{peer}", "/debug/peer/{peer}"])
def test_invalid_peer_id_is_400(http, path):
    for bad in ("nope", "0OIl", "zzzz"):
        response = http.get(path.format(peer=bad))
        assert response.status_code == 400, (bad, response.text)
        assert "peer id" in response.text


def test_connect_to_an_unknown_peer_is_400_unable_to_dial(http):
    response = http.get(f"/connect/{PEER}")
    assert response.status_code == 400 and response.text.startswith("Unable to dial peer")
    assert response.headers["x-hoard-error"] == "peer"


def test_connect_with_an_invalid_address_is_400(http):
    response = http.get(f"/connect/{PEER}", params={"addrs": ["garbage"]})
    assert response.status_code == 400 and "invalid address" in response.text


def test_debug_peer_of_an_unknown_peer_is_404(http):
    response = http.get(f"/debug/peer/{PEER}")
    assert response.status_code == 404 and "peer not found" in response.text


def test_openapi_document_describes_every_endpoint(node):
    schema = httpx.get(node.url + "/openapi.json", timeout=30).json()
    assert schema["openapi"].startswith("3.")
    base = "/api/storage/v1"
    expected = {
        ("post", "/data"), ("get", "/data"), ("get", "/data/{cid}"), ("delete", "/data/{cid}"),
        ("post", "/data/{cid}/network"), ("get", "/data/{cid}/network/stream"),
        ("get", "/data/{cid}/network/manifest"), ("get", "/data/{cid}/network/progress/{downloadId}"),
        ("delete", "/data/{cid}/network/{downloadId}"), ("get", "/data/{cid}/exists"), ("get", "/space"),
        ("get", "/spr"), ("get", "/peerid"), ("get", "/connect/{peerId}"), ("get", "/debug/info"),
        ("post", "/debug/chronicles/loglevel"), ("get", "/debug/peer/{peerId}"), ("post", "/data/{cid}/verify"),
    }
    described = {(method, path[len(base):]) for path, item in schema["paths"].items() for method in item}
    assert expected <= described
    assert all(path.startswith(base) for path in schema["paths"])  # the alias is not described twice
    ids = [op["operationId"] for item in schema["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    assert {"upload", "listData", "downloadLocal", "deleteLocal", "downloadNetwork", "space"} <= set(ids)


def test_interactive_docs_are_served(node):
    response = httpx.get(node.url + "/docs", timeout=30)
    assert response.status_code == 200 and "swagger" in response.text.lower()


def test_status_page_shows_identity_space_and_datasets(http, node, upload):
    cid = upload(b"<script>alert(1)</script>", filename="<img src=x onerror=alert(1)>.html", mimetype="text/html")
    page = httpx.get(node.url + "/", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert http.get("/peerid").json()["id"] in html
    assert f'href="/api/storage/v1/data/{cid}"' in html
    assert "&lt;img src=x onerror=alert(1)&gt;.html" in html and "<img src=x" not in html  # user input is escaped
    assert "quota" in html and "Datasets" in html and "Fetches" in html and "Peers" in html

"""Operating a node (issue 15): /health, /ready, /metrics, gRPC health, /docs offline, logs."""

import json
import os
import re
import subprocess
import sys

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from harness import Daemon
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with Daemon(tmp_path_factory.mktemp("ops"), {"log-format": "json", "log-level": "DEBUG"}) as proc:
        yield proc


def _metrics(node):
    response = httpx.get(node.url + "/metrics", timeout=60)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {s.name + (json.dumps(s.labels, sort_keys=True) if s.labels else ""): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def test_health_and_ready(daemon):
    health = httpx.get(daemon.url + "/health", timeout=30)
    assert health.status_code == 200 and health.text == "ok"
    ready = httpx.get(daemon.url + "/ready", timeout=30)
    assert ready.status_code == 200 and ready.text == "ready"


def test_metrics_parse_and_count_an_upload(daemon):
    before = _metrics(daemon)
    for name in ("hoard_repo_blocks", "hoard_peers_connected", "hoard_uploads_total", "hoard_upload_bytes_total",
                 "hoard_downloads_total", "hoard_fetches_total", "hoard_fetches_failed_total", "hoard_datasets",
                 "hoard_log_records", "hoard_repo_quota_used_bytes"):
        assert name in before, name
    data = os.urandom(200_000)
    response = httpx.post(daemon.api + "/data", content=data, timeout=60)
    assert response.status_code == 200, response.text
    cid = response.text.strip()
    assert httpx.get(f"{daemon.api}/data/{cid}", timeout=60).content == data
    after = _metrics(daemon)
    assert after["hoard_uploads_total"] == before["hoard_uploads_total"] + 1
    assert after["hoard_upload_bytes_total"] == before["hoard_upload_bytes_total"] + 200_000
    assert after["hoard_datasets"] == before["hoard_datasets"] + 1
    assert after["hoard_repo_blocks"] > before["hoard_repo_blocks"]


def test_grpc_health_is_serving(daemon):
    with grpc.insecure_channel(daemon.grpc_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "hoard.v1.LogService"):
            answer = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=30)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as unknown:
            stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=30)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_docs_load_nothing_from_elsewhere(daemon):
    page = httpx.get(daemon.url + "/docs", timeout=30)
    assert page.status_code == 200 and "swagger" in page.text.lower()
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
    assert urls, page.text
    for url in urls:
        assert url.startswith("/"), f"/docs refers to {url}"
        assert httpx.get(daemon.url + url, timeout=30).status_code == 200, url


def test_the_daemon_logs_json_lines(daemon):
    httpx.post(daemon.api + "/data", content=b"logged upload", timeout=60)
    lines = [line for line in daemon.stderr_path.read_text().splitlines() if line.strip()]
    parsed = [json.loads(line) for line in lines]
    assert all({"lvl", "ts", "msg", "topics"} <= set(p) for p in parsed)
    assert any(p["msg"].startswith("stored upload ") and p["lvl"] == "INF" for p in parsed)


EMBEDDED = """
import os, sys, tempfile
from hoard import Node
with tempfile.TemporaryDirectory() as d:
    with Node({"data-dir": d, "log-level": "INFO", "listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}) as node:
        node.start()
        path = os.path.join(d, "f.bin")
        open(path, "wb").write(os.urandom(1000))
        node.upload_file(node.upload_init(path))
        node.stop()
print("done")
"""


def test_an_embedded_node_prints_nothing_at_info():
    result = subprocess.run([sys.executable, "-c", EMBEDDED], capture_output=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"done\n"
    assert result.stderr == b""


def test_health_checks_need_no_token_but_metrics_do(tmp_path):
    with Daemon(tmp_path, {"api-token": "s3cret-token-for-tests"}) as node:
        assert httpx.get(node.url + "/health", timeout=30).status_code == 200
        assert httpx.get(node.url + "/ready", timeout=30).status_code == 200
        assert httpx.get(node.url + "/metrics", timeout=30).status_code == 401
        authorized = httpx.get(node.url + "/metrics", headers={"authorization": "Bearer s3cret-token-for-tests"},
                               timeout=30)
        assert authorized.status_code == 200
        with grpc.insecure_channel(node.grpc_address) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_the_rest_client_adds_and_cats_as_the_node_does(daemon, tmp_path):
    from hoard.api.client import NodeClient

    data = os.urandom(150_000)
    path = tmp_path / "c.txt"
    path.write_bytes(b"from a file\n")
    with NodeClient(daemon.url) as client:
        cid = client.add(data, filename="d.bin")
        assert client.cat(cid) == data
        assert client.download_manifest(cid).filename == "d.bin"
        file_cid = client.add(path)
        assert client.cat(file_cid) == b"from a file\n"
        assert client.download_manifest(file_cid).filename == "c.txt"

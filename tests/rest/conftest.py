import httpx
import pytest
from harness import Daemon


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    """One real node process per test module."""
    with Daemon(tmp_path_factory.mktemp("rest-node")) as proc:
        yield proc


@pytest.fixture(scope="module")
def http(node):
    """An HTTP client for the node's REST API (paths relative to /api/storage/v1)."""
    with httpx.Client(base_url=node.api, timeout=60) as client:
        yield client


@pytest.fixture
def upload(http):
    """Upload bytes through POST /data; returns the manifest CID."""

    def run(data: bytes, filename: str | None = None, mimetype: str | None = None) -> str:
        headers = {}
        if filename is not None:
            headers["content-disposition"] = f'attachment; filename="{filename}"'
        if mimetype is not None:
            headers["content-type"] = mimetype
        response = http.post("/data", content=data, headers=headers)
        assert response.status_code == 200, response.text
        return response.text

    return run

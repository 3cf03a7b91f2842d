"""Uploads past the storage quota: 507 with a clear body, and nothing is stored."""

import os

import pytest
from harness import Daemon

pytestmark = pytest.mark.timeout(180)

QUOTA = 1_000_000


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with Daemon(tmp_path_factory.mktemp("quota-node"), {"storage-quota": QUOTA}) as proc:
        yield proc


def test_a_declared_length_over_the_quota_is_refused_at_once(http):
    before = http.get("/space").json()
    response = http.post("/data", content=os.urandom(1_500_000))
    assert response.status_code == 507
    assert "quota" in response.text and "1500000" in response.text
    assert response.headers["x-hoard-error"] == "quota"
    assert http.get("/space").json() == before


def test_a_chunked_body_running_past_the_quota_stores_nothing(http):
    before = http.get("/space").json()

    def body():
        for _ in range(40):
            yield os.urandom(100_000)

    response = http.post("/data", content=body())  # no Content-Length: the quota is hit while storing
    assert response.status_code == 507 and "quota" in response.text
    assert http.get("/space").json() == before


def test_uploads_within_the_quota_still_work(http):
    assert http.post("/data", content=os.urandom(200_000)).status_code == 200

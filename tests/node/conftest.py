import pytest

import hoard


@pytest.fixture(params=["logos", "hoard"])
def node(tmp_path, request):
    """An embedded node, once with each dataset format of the Logos operations."""
    with hoard.Node({"data-dir": str(tmp_path / "data"), "listen-addrs": ["/ip4/127.0.0.1/tcp/0"],
                     "dataset-format": request.param}) as n:
        yield n


@pytest.fixture
def sample(tmp_path):
    import os

    path = tmp_path / "sample.txt"
    path.write_bytes(os.urandom(1_234_567))
    return path

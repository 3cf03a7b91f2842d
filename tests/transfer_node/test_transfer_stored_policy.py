"""A stored transfer policy with garbage in it (written before policies were validated) does not
stop the node from starting: invalid peers are dropped with a warning; pushes stay refused."""

from __future__ import annotations

import logging

import pytest

import hoard
from hoard.node.config import Config
from hoard.node.repo import Repo
from hoard.transfer.storage import ContentStorage

pytestmark = pytest.mark.timeout(120)

GOOD = "12D3KooWP4sCxaA8KFEzQCkUREtHgTAs6KbWEFmL5eMNFY3RjF55"


def store_policy(data_dir: str, value: object) -> None:
    repo = Repo(Config.from_dict({"data-dir": data_dir}))
    try:
        ContentStorage(repo.content).put_config("policy", value)
    finally:
        repo.close()


@pytest.mark.parametrize(("stored", "peers", "push"), [
    ({"push": False, "pull": True, "peers": ["garbage", GOOD, 7]}, [GOOD], False),
    ({"push": False, "pull": True, "peers": ["garbage"]}, [], False),
    ({"push": "yes", "peers": "everyone"}, None, False),
    ("not a policy", None, False),
], ids=["some-bad-peers", "only-bad-peers", "bad-fields", "not-an-object"])
def test_a_garbage_policy_does_not_stop_the_node(tmp_path, caplog, stored, peers, push):
    data_dir = str(tmp_path / "data")
    store_policy(data_dir, stored)
    with caplog.at_level(logging.WARNING, logger="hoard.transfer"), hoard.Node({"data-dir": data_dir}) as node:
        policy = node.transfer.policy()
    assert policy.push is push
    assert (None if policy.peers is None else sorted(policy.peers)) == peers
    assert any("stored transfer policy" in r.getMessage() for r in caplog.records)

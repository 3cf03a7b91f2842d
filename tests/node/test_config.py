"""Config keys are the Logos option names; bad keys and values are clear errors."""

import json

import pytest

from hoard.errors import InvalidArgumentError
from hoard.node.config import Config, parse_duration, parse_size


def test_defaults_match_logos():
    config = Config()
    assert config.storage_quota == 20 * 1024**3
    assert config.block_ttl == 30 * 86400
    assert config.api_bindaddr == "127.0.0.1" and config.api_port == 8080
    assert config.max_peers == 160 and config.log_level == "INFO"


def test_values_override_defaults():
    config = Config.from_dict({"data-dir": "/tmp/x", "storage-quota": "1GiB", "block-ttl": "1h30m",
                               "listen-addrs": ["/ip4/127.0.0.1/tcp/0"], "log-level": "debug", "grpc-port": 0})
    assert str(config.data_dir) == "/tmp/x" and config.storage_quota == 1 << 30
    assert config.block_ttl == 5400 and config.log_level == "DEBUG" and config.grpc_port == 0


@pytest.mark.parametrize("values, key", [
    ({"no-such-key": 1}, "no-such-key"),
    ({"storage-quota": "lots"}, "storage-quota"),
    ({"storage-quota": -1}, "storage-quota"),
    ({"block-ttl": "soon"}, "block-ttl"),
    ({"api-port": 70000}, "api-port"),
    ({"max-peers": 0}, "max-peers"),
    ({"log-level": "LOUD"}, "log-level"),
    ({"listen-addrs": 5}, "listen-addrs"),
])
def test_bad_keys_and_values_name_the_key(values, key):
    with pytest.raises(InvalidArgumentError) as info:
        Config.from_dict(values)
    assert key in str(info.value)


def test_json_text_and_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"max-peers": 7}))
    assert Config.coerce(str(path)).max_peers == 7
    assert Config.coerce('{"max-peers": 8}').max_peers == 8
    with pytest.raises(InvalidArgumentError):
        Config.from_json("{not json")
    with pytest.raises(InvalidArgumentError):
        Config.from_file(tmp_path / "missing.json")


def test_duration_and_size_parsers():
    assert parse_duration("k", "30d") == 30 * 86400
    assert parse_duration("k", 5) == 5.0
    assert parse_size("k", "500MB") == 500_000_000
    assert parse_size("k", 1024) == 1024

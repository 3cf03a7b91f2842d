"""Node configuration: a JSON object whose keys are the Logos/Codex option names.

Values override the defaults. An unknown key or a bad value raises InvalidArgumentError
naming the key. `storage-quota` takes bytes (an int, or a string like "20GiB");
`block-ttl` and `block-mi` take a duration (seconds as a number, or a chronos-style string
like "30d", "1h30m", "45s").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from hoard.errors import InvalidArgumentError

LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "NOTICE", "WARN", "ERROR", "FATAL")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s|ms|us|ns)", re.IGNORECASE)
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "ki": 1024, "kib": 1024, "m": 1000**2, "mb": 1000**2,
               "mi": 1024**2, "mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gi": 1024**3, "gib": 1024**3,
               "t": 1000**4, "tb": 1000**4, "ti": 1024**4, "tib": 1024**4}


def parse_duration(key: str, value: Any) -> float:
    """Seconds from a number or a string of `<n><unit>` parts (w d h m s ms us ns)."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"config key {key!r}: expected a duration, got {value!r}", key=key)
    if isinstance(value, (int, float)):
        if value < 0:
            raise InvalidArgumentError(f"config key {key!r}: duration must not be negative", key=key)
        return float(value)
    if isinstance(value, str):
        text = value.strip().replace(" ", "")
        parts = _DURATION.findall(text)
        if parts and "".join(n + u for n, u in parts).lower() == text.lower():
            return sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in parts)
    raise InvalidArgumentError(f"config key {key!r}: cannot parse duration {value!r} (e.g. \"30d\", \"1h30m\")", key=key)


def parse_size(key: str, value: Any) -> int:
    """Bytes from an int or a string like "20GiB", "500MB", "1048576"."""
    if isinstance(value, bool):
        raise InvalidArgumentError(f"config key {key!r}: expected a size in bytes, got {value!r}", key=key)
    if isinstance(value, int):
        if value < 0:
            raise InvalidArgumentError(f"config key {key!r}: size must not be negative", key=key)
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(float(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()])
    raise InvalidArgumentError(f"config key {key!r}: cannot parse size {value!r} (bytes, or e.g. \"20GiB\")", key=key)


def _str_list(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgumentError(f"config key {key!r}: expected a list of strings, got {value!r}", key=key)
    return list(value)


def _port(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise InvalidArgumentError(f"config key {key!r}: expected a port number 0-65535, got {value!r}", key=key)
    return value


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"config key {key!r}: expected a positive integer, got {value!r}", key=key)
    return value


def _text(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"config key {key!r}: expected a non-empty string, got {value!r}", key=key)
    return value


def _log_level(key: str, value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in LOG_LEVELS:
        raise InvalidArgumentError(f"config key {key!r}: log level must be one of {', '.join(LOG_LEVELS)}, got {value!r}", key=key)
    return value.upper()


# Logos's repo backends, all served by hoard's LMDB store ("memory" is hoard's own).
REPO_KINDS = {"lmdb": "lmdb", "memory": "memory", "s3": "s3", "fs": "lmdb", "sqlite": "lmdb", "leveldb": "lmdb"}
LOG_FORMATS = ("auto", "colors", "nocolors", "json", "none", "text")
# How the Logos operations (upload_*, POST /data, the C ABI) address new datasets (docs/storage.md).
DATASET_FORMATS = ("logos", "hoard")


def _repo_kind(key: str, value: Any) -> str:
    return REPO_KINDS[_choice(key, value, tuple(REPO_KINDS))]


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"config key {key!r}: expected true or false, got {value!r}", key=key)
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"config key {key!r}: expected a non-negative integer, got {value!r}", key=key)
    return value


def _nat(key: str, value: Any) -> str:
    """`any`, `none`, `upnp`, `pmp` or `extip:<IPv4 or IPv6 address>` (Logos's --nat)."""
    import ipaddress

    if isinstance(value, str):
        if value.lower() in ("any", "none", "upnp", "pmp"):
            return value.lower()
        if value.lower().startswith("extip:"):
            try:
                return "extip:" + str(ipaddress.ip_address(value[6:].strip()))
            except ValueError:
                pass
    raise InvalidArgumentError(f"config key {key!r}: expected any, none, upnp, pmp or extip:<IP>, got {value!r}",
                               key=key)


@dataclass(frozen=True)
class Config:
    """A node's settings. Build with `Config.from_json(...)`/`from_dict(...)`; attribute names are snake_case."""

    data_dir: Path = Path("hoard-data")
    listen_addrs: list[str] = field(default_factory=lambda: ["/ip4/0.0.0.0/tcp/0"])
    announce_addrs: list[str] = field(default_factory=list)  # empty: the bound ones, wildcards expanded
    bootstrap_node: list[str] = field(default_factory=list)
    storage_quota: int = 20 * 1024**3
    block_ttl: float = 30 * 86400.0
    block_mi: float = 600.0
    log_level: str = "INFO"
    net_privkey: str = "key"
    max_peers: int = 160
    api_bindaddr: str = "127.0.0.1"
    api_port: int = 8080
    grpc_port: int = 8090
    repo_kind: str = "lmdb"  # "s3": blocks in the bucket of `storage_url`, the catalog in data-dir (docs/storage.md)
    storage_url: str | None = None  # s3://bucket/prefix?endpoint=...&region=... (repo-kind s3)
    storage_cache: int = 256 * 1024**2  # bytes of the on-disk read cache in front of the bucket (0: none)
    agent_string: str = "hoard"
    # Logos options (docs/capi.md, "Configuration", says which have full and which reduced effect)
    log_format: str | None = None  # None: hoard's default logging (no handler of its own)
    log_file: str | None = None
    metrics: bool = False
    metrics_address: str = "127.0.0.1"
    metrics_port: int = 8008
    nat: str = "any"  # "any", "none", "upnp", "pmp" or "extip:<IP>"
    bulk: bool = True  # offer and use the bulk data path (/hoard/bulk/1, TLS 1.3; docs/network.md)
    bulk_port: int = 0  # the bulk path's TCP port on the listen IPs (0: a free one)
    disc_port: int = 8090
    num_threads: int = 0
    block_retries: int = 3000
    block_mn: int = 1000
    cache_size: int = 0
    # hoard's own: "logos" (Logos CIDs: sha2-256 codex blocks, Merkle tree, protobuf manifest) or "hoard"
    dataset_format: str = "logos"
    # REST/gRPC safety (hoard.api.rest.security, docs/security.md)
    api_cors_origin: list[str] = field(default_factory=list)
    api_allowed_hosts: list[str] = field(default_factory=list)
    api_token: str | None = None
    api_token_file: str | None = None

    _KEYS: ClassVar[dict[str, tuple[str, Callable[[str, Any], Any]]]] = {
        "data-dir": ("data_dir", lambda k, v: Path(_text(k, v)).expanduser()),
        "listen-addrs": ("listen_addrs", _str_list),
        "announce-addrs": ("announce_addrs", _str_list),
        "bootstrap-node": ("bootstrap_node", _str_list),
        "storage-quota": ("storage_quota", parse_size),
        "block-ttl": ("block_ttl", parse_duration),
        "block-mi": ("block_mi", parse_duration),
        "log-level": ("log_level", _log_level),
        "net-privkey": ("net_privkey", _text),
        "max-peers": ("max_peers", _positive_int),
        "api-bindaddr": ("api_bindaddr", _text),
        "api-port": ("api_port", _port),
        "grpc-port": ("grpc_port", _port),
        "repo-kind": ("repo_kind", _repo_kind),
        "storage-url": ("storage_url", _text),
        "storage-cache": ("storage_cache", parse_size),
        "agent-string": ("agent_string", _text),
        "log-format": ("log_format", lambda k, v: _choice(k, v, LOG_FORMATS)),
        "log-file": ("log_file", _text),
        "metrics": ("metrics", _bool),
        "metrics-address": ("metrics_address", _text),
        "metrics-port": ("metrics_port", _port),
        "nat": ("nat", _nat),
        "disc-port": ("disc_port", _port),
        "bulk": ("bulk", _bool),
        "bulk-port": ("bulk_port", _port),
        "num-threads": ("num_threads", _count),
        "block-retries": ("block_retries", _count),
        "block-mn": ("block_mn", _positive_int),
        "cache-size": ("cache_size", parse_size),
        "dataset-format": ("dataset_format", lambda k, v: _choice(k, v, DATASET_FORMATS)),
        "api-cors-origin": ("api_cors_origin", _str_list),
        "api-allowed-hosts": ("api_allowed_hosts", _str_list),
        "api-token": ("api_token", _text),
        "api-token-file": ("api_token_file", _text),
    }

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None = None, base: Config | None = None) -> Config:
        """Apply `values` (Logos key names) over `base` (or the defaults)."""
        if values is None:
            return base or cls()
        if not isinstance(values, dict):
            raise InvalidArgumentError(f"config must be a JSON object, got {type(values).__name__}")
        changes: dict[str, Any] = {}
        for key, value in values.items():
            spec = cls._KEYS.get(key)
            if spec is None:
                known = ", ".join(sorted(cls._KEYS))
                raise InvalidArgumentError(f"unknown config key {key!r} (known keys: {known})", key=key)
            attr, parse = spec
            changes[attr] = parse(key, value)
        return replace(base or cls(), **changes)

    @classmethod
    def from_json(cls, text: str, base: Config | None = None) -> Config:
        try:
            values = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(f"config is not valid JSON: {exc}") from exc
        return cls.from_dict(values, base)

    @classmethod
    def from_file(cls, path: str | Path, base: Config | None = None) -> Config:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise InvalidArgumentError(f"cannot read config file {path}: {exc.strerror}", path=str(path)) from exc
        except UnicodeDecodeError as exc:
            raise InvalidArgumentError(f"config file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
                                       f"at offset {exc.start})", path=str(path)) from exc
        return cls.from_json(text, base)

    @classmethod
    def coerce(cls, config: Config | dict[str, Any] | str | Path | None) -> Config:
        """A Config from a Config, a dict, a JSON string, a path to a JSON file, or None."""
        if config is None or isinstance(config, Config):
            return config or cls()
        if isinstance(config, dict):
            return cls.from_dict(config)
        if isinstance(config, Path) or (isinstance(config, str) and not config.lstrip().startswith("{") and config.strip()):
            return cls.from_file(config)
        return cls.from_json(str(config))

    def to_dict(self) -> dict[str, Any]:
        """The Logos-keyed JSON view."""
        out = {}
        for key, (attr, _) in self._KEYS.items():
            value = getattr(self, attr)
            out[key] = str(value) if isinstance(value, Path) else value
        return out

    @property
    def key_path(self) -> Path:
        path = Path(self.net_privkey)
        return path if path.is_absolute() else self.data_dir / path


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidArgumentError(f"config key {key!r}: expected one of {', '.join(choices)}, got {value!r}", key=key)
    return str(value)


__all__ = ["LOG_LEVELS", "Config", "parse_duration", "parse_size"]

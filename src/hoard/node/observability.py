"""Logs and metrics as the Logos options ask: `log-format`, `log-file`, `metrics`,
`metrics-address`, `metrics-port`.

* `log-format` puts a handler on the `hoard` logger that writes to stdout, as Logos's
  chronicles does: `nocolors`/`text` (one `LVL timestamp message topics="logger"` line per
  record), `colors` (the same with a coloured level), `auto` (colors on a terminal, else
  nocolors), `json` (one JSON object per line: `lvl`, `ts`, `msg`, `topics`) or `none` (nothing
  on stdout). Without the key hoard's logging is left as it is.
* `log-file` appends the same lines (JSON for `json`, else without colours) to a file.
  Logging is per process: the handlers of the node created last replace earlier ones.
* `metrics` serves Prometheus's text format on `http://<metrics-address>:<metrics-port>/metrics`
  (prometheus-client's server, its own registry per node) while the node is open. The
  collector reads the node's counters at each scrape: stored blocks and quota, connected
  peers, and the block server's counters while started. `metrics_json` gives the same
  samples as JSON (the current ABI's `storage_get_metrics`).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from hoard.errors import InvalidArgumentError

if TYPE_CHECKING:
    from hoard.node.config import Config
    from hoard.node.node import NodeBase

_LEVEL_NAMES = {5: "TRC", logging.DEBUG: "DBG", logging.INFO: "INF", 25: "NTC", logging.WARNING: "WRN",
                logging.ERROR: "ERR", logging.CRITICAL: "FAT"}
_COLOURS = {"TRC": "\x1b[36m", "DBG": "\x1b[36m", "INF": "\x1b[32m", "NTC": "\x1b[33m", "WRN": "\x1b[33m",
            "ERR": "\x1b[31m", "FAT": "\x1b[1;31m"}
_MARK = "_hoard_logos_handler"  # set on the handlers installed here, so a new node replaces them


def _level(record: logging.LogRecord) -> str:
    return _LEVEL_NAMES.get(record.levelno, record.levelname[:3].upper())


def _timestamp(record: logging.LogRecord) -> str:
    ms = int(record.msecs)
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created)) + f".{ms:03d}+00:00"


class TextFormatter(logging.Formatter):
    """`INF 2026-01-01 12:00:00.000+00:00 message  topics="hoard.x"`, like chronicles' textlines."""

    def __init__(self, colours: bool = False) -> None:
        super().__init__()
        self.colours = colours

    def format(self, record: logging.LogRecord) -> str:
        level = _level(record)
        if self.colours:
            level = f"{_COLOURS.get(level, '')}{level}\x1b[0m"
        line = f"{level} {_timestamp(record)} {record.getMessage():<42} topics=\"{record.name}\""
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: `{"lvl", "ts", "msg", "topics"[, "error"]}`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"lvl": _level(record), "ts": _timestamp(record), "msg": record.getMessage(),
                               "topics": record.name}
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def _formatter(kind: str, stream: TextIO | None) -> logging.Formatter:
    if kind == "json":
        return JsonFormatter()
    colours = kind == "colors" or (kind == "auto" and stream is not None and stream.isatty())
    return TextFormatter(colours)


def configure_logging(config: Config) -> None:
    """Install the handlers `log-format` and `log-file` ask for (none when neither is set)."""
    if config.log_format is None and config.log_file is None:
        return
    logger = logging.getLogger("hoard")
    handlers: list[logging.Handler] = []
    kind = config.log_format or "auto"
    if kind != "none" and config.log_format is not None:
        stream = logging.StreamHandler(sys.stdout)
        stream.setFormatter(_formatter(kind, sys.stdout))
        handlers.append(stream)
    if config.log_file is not None:
        try:
            file = logging.FileHandler(config.log_file, encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot open log-file {config.log_file}: {exc.strerror}",
                                       path=config.log_file) from exc
        file.setFormatter(JsonFormatter() if kind == "json" else TextFormatter(colours=False))
        handlers.append(file)
    for old in [h for h in logger.handlers if getattr(h, _MARK, False)]:
        logger.removeHandler(old)
        old.close()
    for handler in handlers:
        setattr(handler, _MARK, True)
        logger.addHandler(handler)


_PROCESS_MARK = "_hoard_process_handler"
ACCESS_LOGGER = "uvicorn.access"


def configure_process_logging(kind: str, log_file: str | None, level: str, access_log: bool = False,
                              stream: TextIO | None = None) -> logging.Handler | None:
    """Logging for a whole hoard process (`hoard node start`; the library never calls this): one
    handler on the root logger, so hoard's, uvicorn's and py-libp2p's lines share one format —
    `kind` text/nocolors/colors/auto or json on `stream` (default stderr; `none`: no stream) and,
    with `log_file`, the same lines (without colours) appended to that file. hoard's loggers get
    `level`; other libraries' WARNING and above pass; `access_log` adds uvicorn's per-request
    lines (INFO). Returns the stream handler (None with `none`), e.g. to quieten it while starting."""
    from hoard.node.node import set_log_level

    out = sys.stderr if stream is None else stream
    handlers: list[logging.Handler] = []
    handler: logging.Handler | None = None
    if kind != "none":
        handler = logging.StreamHandler(out)
        handler.setFormatter(_formatter("nocolors" if kind == "text" else kind, out))
        handlers.append(handler)
    if log_file is not None:
        try:
            file = logging.FileHandler(log_file, encoding="utf-8")
        except OSError as exc:
            raise InvalidArgumentError(f"cannot open log-file {log_file}: {exc.strerror}", path=log_file) from exc
        file.setFormatter(JsonFormatter() if kind == "json" else TextFormatter(colours=False))
        handlers.append(file)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _PROCESS_MARK, False)]:
        root.removeHandler(old)
        old.close()
    for new in handlers:
        setattr(new, _PROCESS_MARK, True)
        root.addHandler(new)
    root.setLevel(logging.WARNING)
    set_log_level(level)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.WARNING)
    logging.captureWarnings(True)
    return handler


# -- metrics ---------------------------------------------------------------------------
def samples(node: NodeBase) -> Iterator[tuple[str, str, float]]:
    """(name, help, value) of each metric of `node`, read now."""
    if node.closed:
        return
    space = node.dispatch.space().result(timeout=30)
    yield "hoard_repo_blocks", "Blocks in the local store", space.total_blocks
    yield "hoard_repo_quota_max_bytes", "The storage quota in bytes", space.quota_max_bytes
    yield "hoard_repo_quota_used_bytes", "Bytes of the quota in use", space.quota_used_bytes
    yield "hoard_repo_quota_reserved_bytes", "Bytes of the quota reserved", space.quota_reserved_bytes
    sync = node.as_sync()
    yield "hoard_peers_connected", "Connected peers", len(sync.net.peers())
    counters = node.components.context.counters
    for kind, kinds, totals in (("upload", "uploads", counters.uploads), ("download", "downloads", counters.downloads),
                                ("fetch", "fetches", counters.fetches)):
        yield f"hoard_{kinds}_total", f"Completed {kinds}", totals.count
        yield f"hoard_{kind}_bytes_total", f"Bytes of completed {kinds}", totals.bytes
        yield f"hoard_{kind}_seconds_total", f"Seconds spent in completed {kinds}", totals.seconds
    yield "hoard_fetches_failed_total", "Fetches that failed or were cancelled", counters.fetches_failed
    yield "hoard_fetches_active", "Fetches running now", sum(1 for f in sync.fetches() if f.progress.active)
    content = node.components.context.content  # a count of catalog rows: no manifest is read per scrape
    yield "hoard_datasets", "Datasets stored", sum(1 for _ in content.catalog.scan("datasets"))
    logs = sync.logs.list()
    yield "hoard_logs", "Logs hosted", len(logs)
    yield "hoard_log_records", "Records appended to the hosted logs", sum(log.nrecs for log in logs)
    network = node.components.net.network
    stats = network.server_stats() if network is not None else None
    if stats is not None:
        yield "hoard_block_server_streams_total", "Block streams served", stats.streams
        yield "hoard_block_server_blocks_sent_total", "Blocks sent to peers", stats.blocks_sent
        yield "hoard_block_server_bytes_sent_total", "Block bytes sent to peers", stats.bytes_sent
        yield "hoard_block_server_dont_have_total", "Blocks asked for that this node does not have", stats.dont_have


def labelled_samples(node: NodeBase) -> Iterator[tuple[str, str, str, dict[str, float]]]:
    """(name, help, label name, {label value: value}) of each labelled metric of `node`."""
    if node.closed:
        return
    states: dict[str, float] = {}
    for channel in node.as_sync().transfer.channels():
        name = channel.status.name if hasattr(channel.status, "name") else str(channel.status)
        states[name] = states.get(name, 0) + 1
    yield "hoard_transfer_channels", "Data-transfer channels this node knows, by state", "state", states


def metrics_json(node: NodeBase) -> dict[str, float]:
    """The node's metrics as `{name: value}`."""
    return {name: value for name, _help, value in samples(node)}


class NodeCollector:
    """A prometheus-client collector reading `samples(node)` at each scrape."""

    def __init__(self, node: NodeBase) -> None:
        self._node = node

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        for name, text, value in samples(self._node):
            if name.endswith("_total"):
                yield CounterMetricFamily(name.removesuffix("_total"), text, value=value)
            else:
                yield GaugeMetricFamily(name, text, value=value)
        for name, text, label, values in labelled_samples(self._node):
            family = GaugeMetricFamily(name, text, labels=[label])
            for key, value in sorted(values.items()):
                family.add_metric([key], value)
            yield family


class MetricsServer:
    """Prometheus's `/metrics` for one node on `metrics-address:metrics-port` (`metrics: true`)."""

    def __init__(self, node: NodeBase, address: str, port: int) -> None:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(NodeCollector(node))
        try:
            self._server, self._thread = start_http_server(port, address, registry=registry)
        except OSError as exc:
            raise InvalidArgumentError(f"cannot serve metrics on {address}:{port}: {exc.strerror or exc}",
                                       address=address, port=port) from exc

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start(node: NodeBase) -> MetricsServer | None:
    """Apply the node's logging options and start its metrics server if asked for."""
    config = node.config
    configure_logging(config)
    if not config.metrics:
        return None
    return MetricsServer(node, config.metrics_address, config.metrics_port)


__all__ = ["JsonFormatter", "MetricsServer", "NodeCollector", "TextFormatter", "configure_logging", "configure_process_logging",
           "metrics_json", "samples", "start"]

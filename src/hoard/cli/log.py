"""Log commands, like GDP's apps (gcl-create, writer, reader):

    hoard log create [--meta ID=VALUE]... [--name NAME]    print the new log's name
    hoard log append NAME [--data TEXT]...                   one record per stdin line (or --data)
    hoard log read NAME [--start N] [--count M]              records that exist (GDP multiread)
    hoard log subscribe NAME [--start N] [--count M]         records as they arrive (GDP subscribe)
    hoard log list | hoard log info NAME

They call `node.logs` on the node `open_node` picks (cli/session.py): a running node through
its REST API (`--api URL`, or the node running on the data dir), else an embedded node on the
data dir (not started: the logs it hosts). Records print as their data, one per line; with
--json, one JSON object per record (`recno`, `ts` in ns, `data` as text, or `dataBase64` when
it is not UTF-8).
"""

from __future__ import annotations

import base64
import io
import json
import os
import queue
import sys
from collections.abc import Iterator
from typing import Any

import click

from hoard.cli.output import Ctx
from hoard.cli.session import open_node
from hoard.errors import InvalidArgumentError, LogError
from hoard.logs import EVENT_CREATED, EVENT_DATA, EVENT_EOS, EVENT_SHUTDOWN
from hoard.logs.metadata import mdid

pass_ctx = click.make_pass_decorator(Ctx)
READ_BYTES = 256 << 10


def _record(recno: int, ts: int, data: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {"recno": recno, "ts": ts}
    try:
        out["data"] = data.decode("utf-8")
    except UnicodeDecodeError:
        out["dataBase64"] = base64.b64encode(data).decode("ascii")
    return out


def _info(log: Any, writable: bool) -> dict[str, Any]:
    """An open log (a `Log`, or a running node's `RemoteLog`) as `log info` prints it."""
    def value(v: bytes) -> str:
        try:
            text = v.decode("utf-8")
            return text if text.isprintable() else v.hex()
        except UnicodeDecodeError:
            return v.hex()

    return {"name": str(log.name), "nrecs": log.nrecs, "writable": writable,
            "metadata": [{"id": _fourcc(i), "value": value(v)} for i, v in log.metadata]}


def _fourcc(value: int) -> str:
    raw = value.to_bytes(4, "big").lstrip(b"\x00")
    return raw.decode("ascii") if raw and raw.isascii() and raw.decode("ascii").isalnum() else f"0x{value:08x}"


def _append(node: Any, name: str, batches: Iterator[list[bytes]]) -> list[tuple[int, int]]:
    """Append every record (pipelined); the committed (recno, ts) in order, or the first failure."""
    log = node.logs.open(name, "ao")
    try:
        results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        sent = 0
        for batch in batches:
            for data in batch:
                log.append_async(data, results.put)
                sent += 1
        committed = []
        failure = None
        for _ in range(sent):
            event = results.get()
            if event.type == EVENT_CREATED:
                committed.append((event.datum.recno, event.datum.ts))
            elif failure is None:
                failure = event.error
        if failure is not None:
            raise failure
        return sorted(committed)
    finally:
        log.close(timeout=0)


def _events(node: Any, name: str, start: int, count: int, multiread: bool) -> Iterator[tuple[str, Any]]:
    """("data", record dict), ("failure", message) ..., then ("end", EVENT_EOS or EVENT_SHUTDOWN)."""
    log = node.logs.open(name, "ro")
    events: queue.SimpleQueue[Any] = queue.SimpleQueue()
    try:
        (log.multiread if multiread else log.subscribe_by_recno)(start, count, events.put)
        while True:
            try:
                event = events.get(timeout=0.5)  # a timeout, so Ctrl-C is seen promptly
            except queue.Empty:
                continue
            if event.type == EVENT_DATA:
                yield "data", _record(event.datum.recno, event.datum.ts, event.datum.data)
            elif event.type in (EVENT_EOS, EVENT_SHUTDOWN):
                yield "end", event.type
                return
            else:
                yield "failure", f"{event.error.message if event.error else 'failed'} (status {event.stat})"
    finally:
        log.close(timeout=0)


# -- input ------------------------------------------------------------------------------

def stdin_lines() -> Iterator[list[bytes]]:
    """Lines of stdin (without their line ending), in batches of what was available at once,
    so a fast producer's lines go in large batches and a slow one's each as it comes."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):  # not a real file (e.g. a test runner's)
        lines = sys.stdin.buffer.read().split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        yield [line[:-1] if line.endswith(b"\r") else line for line in lines]
        return
    rest = b""
    while True:
        chunk = os.read(fd, READ_BYTES)
        if not chunk:
            break
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if lines:
            yield [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if rest:
        yield [rest[:-1] if rest.endswith(b"\r") else rest]


def _metadata(entries: tuple[str, ...]) -> list[tuple[int, bytes]]:
    out = []
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not sep:
            raise InvalidArgumentError(f"--meta takes ID=VALUE (ID a FourCC like SYN or a number), not {entry!r}")
        try:
            ident = mdid(int(key, 0)) if key[:1].isdigit() else mdid(key)
        except (ValueError, LogError) as exc:
            raise InvalidArgumentError(f"bad metadata id {key!r}: {exc}") from exc
        out.append((ident, value.encode("utf-8")))
    return out


# -- commands ---------------------------------------------------------------------------

@click.group(name="log")
@click.option("--grpc", "grpc_addr", metavar="HOST:PORT", hidden=True)
def log_(grpc_addr: str | None) -> None:
    """Signed append-only logs (GDP): create, append, read, subscribe."""
    if grpc_addr is not None:
        raise InvalidArgumentError("hoard log reaches a running node through its REST API: use --api URL "
                                   "(or nothing, for the node running on the data dir)")


@log_.command()
@click.option("--meta", "meta", multiple=True, metavar="ID=VALUE",
              help="A metadata entry (ID: a FourCC such as SYN or LOC, or a number). Repeatable.")
@click.option("--name", default=None, help="Create the log under this name (else it is named by its metadata).")
@pass_ctx
def create(ctx: Ctx, meta: tuple[str, ...], name: str | None) -> None:
    """Create a log hosted by the node; prints its name. The node keeps its writer key."""
    metadata = _metadata(meta)
    with open_node(ctx) as node:
        info = _info(node.logs.create(metadata, name), True)
    ctx.emit(info, info["name"])


@log_.command()
@click.argument("name")
@click.option("--data", "data", multiple=True, help="Append this text as a record (repeatable) instead of stdin.")
@pass_ctx
def append(ctx: Ctx, name: str, data: tuple[str, ...]) -> None:
    """Append records to log NAME: one per line of stdin (or per --data), durable when done."""
    batches: Iterator[list[bytes]] = iter([[d.encode("utf-8") for d in data]]) if data else stdin_lines()
    with open_node(ctx) as node:
        committed = _append(node, name, batches)
    summary: dict[str, Any] = {"appended": len(committed)}
    if committed:
        summary.update(first=committed[0][0], last=committed[-1][0])
    text = (f"appended {len(committed)} record(s), {committed[0][0]}..{committed[-1][0]}" if committed
            else "appended 0 records")
    ctx.emit(summary, text)


def _print_events(ctx: Ctx, events: Iterator[tuple[str, Any]]) -> None:
    out = sys.stdout.buffer
    shutdown = False
    for kind, value in events:
        if kind == "data":
            if ctx.json:
                out.write(json.dumps(value, sort_keys=True).encode() + b"\n")
            elif "data" in value:
                out.write(value["data"].encode("utf-8") + b"\n")
            else:
                out.write(base64.b64decode(value["dataBase64"]) + b"\n")
            out.flush()
        elif kind == "failure":
            click.echo(f"warning: {value}", err=True)
        elif kind == "end":
            shutdown = value == EVENT_SHUTDOWN
    if shutdown:
        raise LogError("the subscription ended: the log's host shut down", status=515)


@log_.command()
@click.argument("name")
@click.option("--start", type=int, default=1, show_default=True, help="First record (<= 0 counts back from the end).")
@click.option("--count", type=click.IntRange(0), default=0, show_default=True, help="How many (0: all there are).")
@pass_ctx
def read(ctx: Ctx, name: str, start: int, count: int) -> None:
    """Print the records of log NAME that exist now (GDP multiread)."""
    with open_node(ctx) as node:
        _print_events(ctx, _events(node, name, start, count, True))


@log_.command()
@click.argument("name")
@click.option("--start", type=int, default=1, show_default=True,
              help="First record (<= 0 counts back from the end; 0: only new ones).")
@click.option("--count", type=click.IntRange(0), default=0, show_default=True,
              help="Stop after this many (0: run until interrupted).")
@pass_ctx
def subscribe(ctx: Ctx, name: str, start: int, count: int) -> None:
    """Print the records of log NAME from --start on, then new ones as they are appended."""
    with open_node(ctx) as node:
        _print_events(ctx, _events(node, name, start, count, False))


@log_.command(name="list")
@pass_ctx
def list_(ctx: Ctx) -> None:
    """The logs the node hosts, with their record counts."""
    with open_node(ctx) as node:
        from hoard.api import shapes

        found = [shapes.log_json(summary) for summary in node.logs.list()]
    ctx.emit(found, "\n".join(f"{i['name']}  {i['nrecs']}" for i in found) if found else "no logs")


@log_.command()
@click.argument("name")
@pass_ctx
def info(ctx: Ctx, name: str) -> None:
    """A log's name, record count, metadata and whether the node holds its writer key."""
    with open_node(ctx) as node:
        log = node.logs.open(name, "ro")
        try:
            found = _info(log, node.logs.writable(log.name))
        finally:
            log.close(timeout=0)
    lines = [f"name: {found['name']}", f"records: {found['nrecs']}", f"writable: {found['writable']}"]
    lines += [f"  {m['id']}: {m['value']}" for m in found["metadata"]]
    ctx.emit(found, "\n".join(lines))


def register(cli: click.Group) -> None:
    cli.add_command(log_)

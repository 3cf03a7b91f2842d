"""A hostile peer against a real node process: index bombs, a call-reply flood, a bad manifest,
channel and voucher floods. In each, a REST and a gRPC call answer within 2 s while the attack
runs, the node's memory stays bounded, and the node is still up and consistent afterwards."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest
import trio
from _hostile import Attacker, assert_healthy, read_frames, warnings_about, watch
from harness import Daemon

from hoard.content import dag
from hoard.content.manifest import Manifest
from hoard.ids.cid import CID, DAG_CBOR
from hoard.ids.peer import PeerId
from hoard.limits import (
    LOG_MAX_OUTSTANDING_CALLS,
    LOG_MAX_STREAMS_PER_PEER,
    MAX_INDEX_FANOUT,
    TRANSFER_MAX_CHANNELS_PER_PEER,
    VIOLATION_LOG_BURST,
)
from hoard.logs import wire as log_wire
from hoard.logs.names import parse_name
from hoard.net import Network
from hoard.transfer import wire as transfer_wire
from hoard.transfer.builtin import DefaultVoucher
from hoard.transfer.messages import (
    Response,
    decode_message,
    encode_message,
    new_request,
)
from hoard.transfer.vouchers import EncodedVoucher

pytestmark = pytest.mark.timeout(300)

VOUCHER = EncodedVoucher(DefaultVoucher.type_id, b"")


@pytest.fixture
def node(tmp_path):
    # hoard's dataset format: the transfer attacks pull uploaded datasets, and a transfer moves a DAG
    with Daemon(tmp_path / "node", {"dataset-format": "hoard"}) as proc:
        yield proc
        assert proc.proc is not None and proc.proc.poll() is None, "the node died during the attack"


def accept_pushes(node: Daemon) -> None:
    done = node.cli("--json", "transfer", "policy", "--push", "accept")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["push"] is True


def index_bomb(levels: int = 3, leaf_width: int = 64) -> tuple[CID, dict[CID, bytes]]:
    """A well-formed manifest whose index repeats one 10-byte block leaf_width x 1024**(levels-1)
    times (64 Mi positions, the most a dataset may have), in a few KB of distinct nodes."""
    block = b"0123456789"
    blocks = {CID.of(block): block}
    cid, data = dag.encode_node({"blocks": [[CID.of(block), 10]] * leaf_width})
    blocks[cid] = data
    count, nbytes = leaf_width, 10 * leaf_width
    for _ in range(levels - 1):
        cid, data = dag.encode_node({"children": [[cid, nbytes, count]] * MAX_INDEX_FANOUT})
        blocks[cid] = data
        count, nbytes = count * MAX_INDEX_FANOUT, nbytes * MAX_INDEX_FANOUT
    manifest_cid, manifest = Manifest(nbytes, 10, count, "fixed", b"\0" * 32, cid, "zeros").encode()
    blocks[manifest_cid] = manifest
    return manifest_cid, dict(reversed(list(blocks.items())))  # manifest, index top-down, data


def bad_manifest() -> tuple[CID, dict[CID, bytes]]:
    """A dataset whose manifest `filename` is an integer (it used to break listing for good)."""
    block = b"bad manifest data"
    leaf_cid, leaf = dag.encode_node({"blocks": [[CID.of(block), len(block)]]})
    node = Manifest(len(block), 64, 1, "fixed", b"\0" * 32, leaf_cid).to_node()
    node["filename"] = 12345
    manifest = dag.encode(node)
    manifest_cid = CID.of(manifest, DAG_CBOR)
    return manifest_cid, {manifest_cid: manifest, leaf_cid: leaf, CID.of(block): block}


async def push(network: Network, node_peer: PeerId, base: CID, blocks: dict[CID, bytes]) -> dict[str, Any]:
    """Push `blocks` (manifest first) to the node over raw /hoard/transfer/1 frames."""
    stream = await network.host.open_stream(node_peer, transfer_wire.PROTOCOL)
    await stream.write(transfer_wire.encode_message_frame(encode_message(new_request(1, VOUCHER, base))))
    reader = transfer_wire_reader(stream)
    response: Response | None = None
    with trio.move_on_after(30):
        while (body := await reader.next_body()) is not None:
            if body[0] == transfer_wire.MSG:
                message = decode_message(body[1:])
                if isinstance(message, Response):
                    response = message
                    break
    if response is None or not response.accepted:
        return {"accepted": False, "response": response}
    for cid, data in blocks.items():  # in order: manifest, index nodes top-down, data
        head, body = transfer_wire.encode_block(cid, data)
        await stream.write(head + body)
    await stream.write(transfer_wire.encode_done())
    rest = await read_frames(stream, transfer_wire.MAX_FRAME, 60)
    return {"accepted": True, "frames": rest}


def transfer_wire_reader(stream: Any) -> Any:
    from hoard.framing import FrameReader

    return FrameReader(stream, transfer_wire.MAX_FRAME)


def listed(node: Daemon) -> list[dict[str, Any]]:
    response = httpx.get(node.api + "/data", timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["content"]


def test_push_is_refused_by_default_with_a_clear_reason(node):
    cid, blocks = index_bomb()
    with Attacker(node) as attacker:
        attacker.start(lambda net, peer: push(net, peer, cid, blocks))
        health = watch(node, attacker.finished.is_set)
    assert_healthy(health)
    assert attacker.error is None, attacker.error
    response = attacker.result["response"]
    assert attacker.result["accepted"] is False and response is not None
    assert b"does not accept push transfers" in response.voucher_result.data
    assert listed(node) == []


def test_index_bomb_pushed_over_transfer(node):
    accept_pushes(node)
    cid, blocks = index_bomb()
    with Attacker(node) as attacker:
        attacker.start(lambda net, peer: push(net, peer, cid, blocks))
        health = watch(node, attacker.finished.is_set)
    assert_healthy(health)
    assert attacker.error is None, attacker.error
    assert attacker.result["accepted"] is True
    listed(node)  # listing still answers, whatever was kept


def test_index_bomb_through_a_network_fetch(node):
    cid, blocks = index_bomb()
    with Attacker(node, blocks) as attacker:
        attacker.start(_idle)
        with httpx.Client(base_url=node.api, timeout=60) as http:
            started = http.post(f"/data/{cid}/network")
            assert started.status_code < 500 or started.status_code in (502, 507), started.text
            progress = f"/data/{cid}/network/progress/{started.json().get('downloadId', 0)}"
            health = watch(node, lambda: not http.get(progress).json().get("active"), min_rounds=10,
                           max_seconds=120)
    assert_healthy(health)
    listed(node)


async def _idle(_network: Network, _peer: PeerId) -> None:
    return None


def test_log_call_replies_are_bounded_when_the_peer_never_reads(node):
    created = node.cli("--json", "log", "create")
    assert created.returncode == 0, created.stderr
    name = json.loads(created.stdout)["name"]
    appended = node.cli("log", "append", name, input=os.urandom(1_500_000).hex().encode()[:4_000_000] + b"\n")
    assert appended.returncode == 0, appended.stderr
    log_name = parse_name(name)

    async def flood(network: Network, node_peer: PeerId) -> dict[str, Any]:
        stream = await network.host.open_stream(node_peer, log_wire.LOGS_PROTOCOL)
        sent = 0
        with trio.move_on_after(60):
            try:
                while True:  # READs of a 4 MB record, never reading a reply
                    await stream.write(log_wire.read_msg(log_wire.READ, sent + 1, log_name, 1))
                    sent += 1
                    if sent % 50 == 0:
                        await trio.sleep(0.01)
            except Exception as exc:  # noqa: BLE001 - the node reset the stream
                return {"sent": sent, "reset": repr(exc)}
        return {"sent": sent, "reset": None}

    with Attacker(node) as attacker:
        attacker.start(flood)
        health = watch(node, attacker.finished.is_set, min_rounds=10, max_seconds=90)
    assert_healthy(health)
    assert attacker.error is None, attacker.error
    assert attacker.result["reset"] is not None, attacker.result
    assert attacker.result["sent"] <= LOG_MAX_OUTSTANDING_CALLS + 2000  # reset soon after the bound
    assert 1 <= warnings_about(node, attacker.peer_id[-8:]) <= VIOLATION_LOG_BURST


def test_a_pushed_manifest_with_a_bad_filename_never_breaks_listing(node):
    accept_pushes(node)
    cid, blocks = bad_manifest()
    with Attacker(node, blocks) as attacker:
        attacker.start(lambda net, peer: push(net, peer, cid, blocks))
        health = watch(node, attacker.finished.is_set)
        with httpx.Client(base_url=node.api, timeout=60) as http:
            fetched = http.post(f"/data/{cid}/network")
    assert_healthy(health)
    assert fetched.status_code < 500 or fetched.status_code == 502, fetched.text
    assert all(entry["cid"] != str(cid) for entry in listed(node))
    page = httpx.get(node.url + "/", timeout=30)
    assert page.status_code == 200


def test_channel_flood_is_bounded_per_peer(node):
    data = os.urandom(30_000_000)  # large enough that a channel stays open while its peer does not read
    cid = CID.parse(httpx.post(node.api + "/data", content=data, timeout=60).text.strip())

    async def flood(network: Network, node_peer: PeerId) -> dict[str, int]:
        counts = {"accepted": 0, "rejected": 0, "reset": 0}
        streams = []
        reasons: set[str] = set()
        for transfer_id in range(1, 201):
            try:
                stream = await network.host.open_stream(node_peer, transfer_wire.PROTOCOL)
                streams.append(stream)
                request = new_request(transfer_id, VOUCHER, cid, pull=True)
                await stream.write(transfer_wire.encode_message_frame(encode_message(request)))
                reader = transfer_wire_reader(stream)
                with trio.fail_after(10):
                    while (body := await reader.next_body()) is not None:
                        if body[0] == transfer_wire.MSG:
                            message = decode_message(body[1:])
                            counts["accepted" if message.accepted else "rejected"] += 1  # type: ignore[union-attr]
                            if not message.accepted and message.voucher_result is not None:  # type: ignore[union-attr]
                                reasons.add(message.voucher_result.data.decode())  # type: ignore[union-attr]
                            break
                    else:
                        counts["reset"] += 1
            except Exception:  # noqa: BLE001 - a refused stream
                counts["reset"] += 1
        return {**counts, "reasons": reasons}  # the accepted channels' streams stay open and unread

    with Attacker(node) as attacker:
        attacker.start(flood)
        health = watch(node, attacker.finished.is_set, max_seconds=240)
        result = attacker.result
    assert_healthy(health)
    assert attacker.error is None, attacker.error
    assert result is not None
    assert result["accepted"] == TRANSFER_MAX_CHANNELS_PER_PEER, result
    assert result["rejected"] > 0 and result["accepted"] + result["rejected"] + result["reset"] == 200, result
    assert result["reasons"] == {(f"too many open channels from {attacker.peer_id} "
                                 f"(at most {TRANSFER_MAX_CHANNELS_PER_PEER})")}
    channels = node.cli("--json", "transfer", "list")
    assert channels.returncode == 0, channels.stderr
    assert len(json.loads(channels.stdout)) <= TRANSFER_MAX_CHANNELS_PER_PEER
    assert warnings_about(node, attacker.peer_id) <= VIOLATION_LOG_BURST  # refused streams: rate-limited


def test_voucher_flood_is_refused_and_nothing_persists(node):
    base = CID.of(b"anything")
    big = os.urandom(900_000)  # a voucher as a hostile peer would encode it

    async def flood(network: Network, node_peer: PeerId) -> dict[str, int]:
        refused = 0
        for transfer_id in range(1, 151):
            try:
                stream = await network.host.open_stream(node_peer, transfer_wire.PROTOCOL)
                body = encode_message(new_request(transfer_id, VOUCHER, base)).replace(
                    b"Vouch@", b"VouchZ" + len(big).to_bytes(4, "big") + big, 1)
                await stream.write(transfer_wire.encode_message_frame(body))
                frames = await read_frames(stream, transfer_wire.MAX_FRAME, 10)
                refused += not any(f[0] == transfer_wire.MSG and decode_message(f[1:]).accepted for f in frames)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - reset: refused
                refused += 1
        return {"refused": refused}

    with Attacker(node) as attacker:
        attacker.start(flood)
        health = watch(node, attacker.finished.is_set, max_seconds=240)
        result = attacker.result
    assert_healthy(health)
    assert attacker.error is None, attacker.error
    assert result == {"refused": 150}
    channels = node.cli("--json", "transfer", "list")
    assert channels.returncode == 0, channels.stderr
    assert json.loads(channels.stdout) == []


def test_log_streams_per_peer_are_bounded(node):
    created = node.cli("--json", "log", "create")
    assert created.returncode == 0, created.stderr
    log_name = parse_name(json.loads(created.stdout)["name"])

    async def flood(network: Network, node_peer: PeerId) -> dict[str, int]:
        answered = refused = 0
        streams = []
        for call in range(1, 41):  # every stream stays open
            try:
                stream = await network.host.open_stream(node_peer, log_wire.LOGS_PROTOCOL)
                streams.append(stream)
                await stream.write(log_wire.open_msg(log_wire.NRECS, call, log_name))
                reader = log_wire.FrameReader(stream)
                with trio.fail_after(10):
                    body = await reader.next_body()
                if body is not None and body[0] == log_wire.COUNT:
                    answered += 1
                else:
                    refused += 1
            except Exception:  # noqa: BLE001 - reset: refused
                refused += 1
        return {"answered": answered, "refused": refused}

    with Attacker(node) as attacker:
        attacker.start(flood)
        health = watch(node, attacker.finished.is_set, max_seconds=240)
    assert_healthy(health)
    assert attacker.error is None, attacker.error
    assert attacker.result == {"answered": LOG_MAX_STREAMS_PER_PEER, "refused": 40 - LOG_MAX_STREAMS_PER_PEER}

"""Data transfer between real node processes on 127.0.0.1 (issue 6).

Each node is a `hoard.Node` in its own process (the p2p harness); the test voucher type, its
validator, revalidator and rate limit, and an event recorder live in the node
(`_dt_ops.py`, reached through the harness's `dt` op).
"""

import base64
import hashlib

import pytest

pytestmark = pytest.mark.timeout(180)

MB = 1_000_000
BLOCK_EVENTS = {"DataQueued", "DataSent", "DataReceived", "DataQueuedProgress", "DataSentProgress",
                "DataReceivedProgress"}


def pair(spawn, *, provider_setup=None, client_setup=None):
    """Two connected nodes with the test voucher registered: (client a, provider b)."""
    a, b = spawn("a"), spawn("b")
    a.call("dt", "setup", **(client_setup or {}))
    b.call("dt", "setup", **(provider_setup or {}))
    a.call("connect", b.peer_id, b.addrs)
    return a, b


def codes(node, chid):
    return [code for code, _status, _message in node.call("dt", "events", chid)]


def local_digest(node, cid, tmp_path, name="out.bin"):
    out = tmp_path / name
    node.call("download_stream", cid, str(out))
    return hashlib.sha256(out.read_bytes()).hexdigest()


def block_codes(node, chid):
    return [code for code, _s, _m in node.call("dt", "events", chid, progress=True)]


# -- moving data ---------------------------------------------------------------------------------

def test_pull_of_a_30_mb_dataset_follows_the_go_flow_on_both_sides(spawn, random_bytes, tmp_path):
    a, b = pair(spawn)
    data = random_bytes(30 * MB)
    cid = b.upload_bytes(data)
    chid = a.call("dt", "open", "pull", b.peer_id, cid)
    done = a.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    served = b.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    assert (done["status"], served["status"]) == ("Completed", "Completed"), done["message"]
    assert codes(a, chid) == ["Open", "NewVoucherResult", "Accept", "ResumeResponder", "FinishTransfer",
                              "ResponderCompletes", "CleanupComplete"]
    assert codes(b, chid) == ["Open", "NewVoucherResult", "Accept", "Complete", "CleanupComplete"]
    assert done["received"] == done["totalSize"] == served["sent"] == served["queued"] > len(data)
    assert done["receivedBlocks"] == served["sentBlocks"] == 458 + 2  # 30 MB in 64 KiB blocks, manifest, index
    assert done["voucherResults"] == served["voucherResults"] != []
    assert local_digest(a, cid, tmp_path) == hashlib.sha256(data).hexdigest()
    assert [d["cid"] for d in a.call("list")] == [cid]  # committed as a dataset


def test_push_of_a_30_mb_dataset_follows_the_go_flow_on_both_sides(spawn, random_bytes, tmp_path):
    a, b = pair(spawn)
    data = random_bytes(30 * MB)
    cid = a.upload_bytes(data)
    chid = a.call("dt", "open", "push", b.peer_id, cid)
    done = a.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    taken = b.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    assert (done["status"], taken["status"]) == ("Completed", "Completed"), taken["message"]
    assert codes(a, chid) == ["Open", "NewVoucherResult", "Accept", "ResumeResponder", "FinishTransfer",
                              "ResponderCompletes", "CleanupComplete"]
    assert codes(b, chid) == ["Open", "NewVoucherResult", "Accept", "Complete", "CleanupComplete"]
    assert taken["received"] == done["sent"] == taken["totalSize"]
    sent = block_codes(a, chid)
    assert sent.count("DataQueuedProgress") == sent.count("DataSentProgress") == done["sentBlocks"] == 460
    assert local_digest(b, cid, tmp_path) == hashlib.sha256(data).hexdigest()


def test_a_rejected_voucher_ends_failed_on_the_initiator_with_the_reason(spawn, random_bytes):
    a, b = pair(spawn)
    cid = b.upload_bytes(random_bytes(1 * MB))
    chid = a.call("dt", "open", "pull", b.peer_id, cid, "deal-99")
    done = a.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    assert done["status"] == "Failed"
    assert done["message"] == "response rejected"  # Go's ErrRejected text
    assert base64.b64decode(done["voucherResults"][-1]["data"]) == b"no such deal: deal-99"
    assert codes(a, chid) == ["Open", "NewVoucherResult", "Error", "CleanupComplete"]
    assert b.call("dt", "events", chid) == []  # the responder made no channel
    assert a.call("exists", cid) is False


def test_a_range_selector_moves_exactly_the_chosen_blocks(spawn, random_bytes):
    a, b = pair(spawn)
    cid = b.upload_bytes(random_bytes(5 * MB))
    blocks = b.call("dt", "blocks", cid)
    chid = a.call("dt", "open", "pull", b.peer_id, cid, "deal-1", {"range": [20, 45]})
    done = a.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    assert done["status"] == "Completed", done["message"]
    manifest = a.call("download_manifest", cid)
    assert set(done["receivedCids"]) == {cid, manifest["treeCid"], *blocks[20:45]}
    assert a.call("dt", "has", blocks[20:45]) == [True] * 25
    assert a.call("dt", "has", blocks[:20] + blocks[45:]) == [False] * (len(blocks) - 25)
    assert a.call("list") == []  # the chosen blocks are kept as blocks, not as a dataset


# -- pause, resume, cancel ---------------------------------------------------------------------

@pytest.mark.parametrize("who", ["initiator", "responder"])
def test_pause_and_resume_from_each_side(spawn, random_bytes, who):
    a, b = pair(spawn, provider_setup={"rate": 10 * MB})  # the provider sends at 10 MB/s
    cid = b.upload_bytes(random_bytes(8 * MB))
    chid = a.call("dt", "open", "pull", b.peer_id, cid)
    a.call("dt", "wait_received", chid, 1 * MB)
    pauser, other = (a, b) if who == "initiator" else (b, a)
    paused = pauser.call("dt", "call", "pause_data_transfer_channel", chid)
    expected = "InitiatorPaused" if who == "initiator" else "ResponderPaused"
    assert paused["status"] == expected
    assert other.call("dt", "wait", chid, [expected])["status"] == expected
    pauser.call("dt", "call", "resume_data_transfer_channel", chid)
    assert a.call("dt", "wait", chid, ["Completed", "Failed"])["status"] == "Completed"
    assert b.call("dt", "wait", chid, ["Completed", "Failed"])["status"] == "Completed"
    pause, resume = ("PauseInitiator", "ResumeInitiator") if who == "initiator" else ("PauseResponder",
                                                                                      "ResumeResponder")
    sent = block_codes(b, chid)  # the provider sends: nothing queued while it knew of the pause
    paused_at = sent.index(pause)
    resumed_at = sent.index(resume, paused_at)
    assert "DataQueued" in sent[:paused_at] and "DataQueued" in sent[resumed_at:]
    assert "DataQueued" not in sent[paused_at:resumed_at]
    assert pause in codes(a, chid) and resume in codes(a, chid)


def test_cancel_mid_transfer_ends_both_sides_cancelled(spawn, random_bytes):
    a, b = pair(spawn, provider_setup={"rate": 10 * MB})
    cid = b.upload_bytes(random_bytes(8 * MB))
    chid = a.call("dt", "open", "pull", b.peer_id, cid)
    a.call("dt", "wait_received", chid, 1 * MB)
    a.call("dt", "call", "close_data_transfer_channel", chid)
    for node in (a, b):
        done = node.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
        assert done["status"] == "Cancelled"
        assert codes(node, chid)[-2:] == ["Cancel", "CleanupComplete"]
    assert a.call("list") == []


# -- revalidation -----------------------------------------------------------------------------

def test_a_revalidator_pauses_after_n_bytes_until_a_new_voucher_arrives(spawn, random_bytes, tmp_path):
    a, b = pair(spawn, provider_setup={"interval": 3 * MB})
    a.call("dt", "pay_when_asked")
    data = random_bytes(10 * MB)
    cid = b.upload_bytes(data)
    chid = a.call("dt", "open", "pull", b.peer_id, cid)
    done = a.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    assert done["status"] == "Completed", done["message"]
    served = b.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    responder = codes(b, chid)
    assert responder.count("PauseResponder") == responder.count("ResumeResponder") == 3  # at 3, 6 and 9 MB
    assert responder.count("NewVoucher") == 3
    assert [v["type"] for v in served["vouchers"]] == ["test/deal"] * 4
    initiator = codes(a, chid)
    assert initiator.count("PauseResponder") == 3 and initiator.count("NewVoucher") == 3
    sent = block_codes(b, chid)
    for _ in range(3):  # nothing queued between asking for a payment and getting it
        paused_at = sent.index("PauseResponder")
        resumed_at = sent.index("ResumeResponder", paused_at)
        assert "DataQueued" not in sent[paused_at:resumed_at]
        sent = sent[resumed_at + 1:]
    assert local_digest(a, cid, tmp_path) == hashlib.sha256(data).hexdigest()


# -- restart ----------------------------------------------------------------------------------

@pytest.mark.parametrize("restarter", ["initiator", "responder"])
def test_killed_responder_restarts_and_the_channel_completes_without_resending(spawn, random_bytes, tmp_path,
                                                                             restarter):
    a, b = pair(spawn, provider_setup={"rate": 8 * MB})
    data = random_bytes(12 * MB)
    cid = b.upload_bytes(data)
    chid = a.call("dt", "open", "pull", b.peer_id, cid)
    a.call("dt", "wait_received", chid, 2 * MB)
    b.kill()
    lost = a.call("dt", "wait_event", chid, "Disconnected")
    assert 0 < lost < len(data)
    before = a.call("dt", "state", chid)
    assert before["status"] == "Ongoing" and before["message"].startswith("other peer appears to have hung up")
    # The same data dir: the same peer, its channel state persisted. The same port too: after
    # a peer comes back on another port, py-libp2p keeps dialling the address it knew.
    b = spawn("b", **{"listen-addrs": b.addrs})
    b.call("dt", "setup", rate=8 * MB)
    assert b.call("dt", "state", chid)["status"] == "Ongoing"
    a.call("connect", b.peer_id, b.addrs)
    b.call("connect", a.peer_id, a.addrs)
    (a if restarter == "initiator" else b).call("dt", "call", "restart_data_transfer_channel", chid)
    done = a.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])
    assert done["status"] == "Completed", done["message"]
    assert b.call("dt", "wait", chid, ["Completed", "Failed", "Cancelled"])["status"] == "Completed"
    received = block_codes(a, chid)
    # every block arrived once: a block received twice fires DataReceived without DataReceivedProgress
    assert received.count("DataReceived") == received.count("DataReceivedProgress") == done["receivedBlocks"]
    assert len(set(done["receivedCids"])) == len(done["receivedCids"]) == 184 + 2
    assert done["received"] == done["totalSize"]
    assert "Restart" in codes(a, chid)
    resent = block_codes(b, chid).count("DataQueued")  # the restarted responder sent only what was missing
    assert resent == done["receivedBlocks"] - before["receivedBlocks"]
    assert local_digest(a, cid, tmp_path) == hashlib.sha256(data).hexdigest()

"""Remote logs between real node processes on 127.0.0.1 (issue 5)."""

from __future__ import annotations

import pytest

from hoard import EVENT_DATA, EVENT_EOS, EVENT_SHUTDOWN
from hoard.errors import LogError

pytestmark = pytest.mark.timeout(240)
WAIT = 60  # seconds a child waits for events


def test_remote_append_and_subscribe_then_the_host_goes_away(spawn):
    a, b = spawn("a"), spawn("b")
    name = a.call("log_create")
    assert a.call("append", name, "ra", ["a1", "a2"]) == [1, 2]
    b.call("connect", a.peer_id, a.addrs)
    # B writes with the writer key (A's key file: same machine), signing each record itself
    assert b.call("log_open", name, "ra", a.call("key_path", name)) == name
    live = b.call("subscribe", name, "ra", 1, 0)  # 1, 2 now, then every new record
    assert [e["data"] for e in b.call("events", live, 2, WAIT)] == ["a1", "a2"]
    assert b.call("append", name, "ra", ["b3", "b4", "b5"]) == [3, 4, 5]  # verified and committed at A
    events = b.call("events", live, 5, WAIT)
    assert [(e["type"], e["recno"], e["data"]) for e in events[2:]] == [
        (EVENT_DATA, 3, "b3"), (EVENT_DATA, 4, "b4"), (EVENT_DATA, 5, "b5")]
    assert a.call("read", name, "ra", 5) == {"recno": 5, "data": "b5"}
    # A's own reader sees B's records, B reads back through A
    a.call("log_open", name, "ro")
    snapshot = a.call("subscribe", name, "ro", 1, 5, multiread=True)
    assert [e["data"] for e in a.call("events", snapshot, 5, WAIT)] == ["a1", "a2", "b3", "b4", "b5"]
    assert b.call("read", name, "ra", -1)["data"] == "b5"
    # the host goes away: B's subscription ends with EVENT_SHUTDOWN (515)
    a.kill()
    last = b.call("events", live, 6, WAIT)[5]
    assert (last["type"], last["stat"]) == (EVENT_SHUTDOWN, 515)
    with pytest.raises(LogError) as err:
        b.call("read", name, "ra", 1)
    assert err.value.code == 503


def test_a_log_is_found_through_the_dht(spawn):
    hub = spawn("hub")
    a = spawn("a", **{"bootstrap-node": [hub.spr]})
    name = a.call("log_create")  # A advertises the log's key
    a.call("append", name, "ra", ["one", "two"])
    c = spawn("c", **{"bootstrap-node": [hub.spr]})  # C knows only the hub
    assert a.peer_id in c.call("providers", name)  # the key A provides, found from C
    assert c.call("log_open", name, "ro") == name
    assert c.call("read", name, "ro", -1) == {"recno": 2, "data": "two"}
    assert a.peer_id in c.call("net.peers")
    request = c.call("subscribe", name, "ro", 0, 1)
    assert a.call("append", name, "ra", ["three"]) == [3]
    events = c.call("events", request, 2, WAIT)
    assert [(e["type"], e.get("data")) for e in events] == [(EVENT_DATA, "three"), (EVENT_EOS, None)]
    with pytest.raises(LogError) as err:
        c.call("log_open", "no one hosts this log", "ro")
    assert err.value.code == 404

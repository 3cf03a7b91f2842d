"""Protocol violations are logged with a rate limit per peer, escaped and bounded."""

from __future__ import annotations

import logging

import pytest

from hoard.ratelog import RateLog


def test_a_flood_is_cut_to_a_burst_then_summarised(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    rate = RateLog(logging.getLogger("hoard.test.ratelog"), burst=3, window=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "hoard.test.ratelog"):
        emitted = [rate.log("peerA", "bad frame %d", i) for i in range(1000)]
        assert emitted.count(True) == 3
        assert rate.log("peerB", "other peer")  # each peer has its own window
        now[0] = 11.0
        assert rate.log("peerA", "bad frame again")
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 5
    assert "997 similar messages suppressed" in messages[-1]


def test_messages_are_escaped_and_keys_bounded(caplog: pytest.LogCaptureFixture) -> None:
    rate = RateLog(logging.getLogger("hoard.test.ratelog2"), burst=1, window=60.0, max_keys=10)
    with caplog.at_level(logging.WARNING, "hoard.test.ratelog2"):
        rate.log("peer", "name %s", "\x1b[2J" + "x" * 10_000)
        for i in range(100):
            rate.log(f"p{i}", "m")
    text = caplog.records[0].getMessage()
    assert "\x1b" not in text and "\\x1b" in text and len(text) < 600
    assert len(rate) == 10

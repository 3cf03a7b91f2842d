"""Chunkers cut the same blocks whatever the pieces' sizes and kinds, and the blocks they hand out
(views of `bytes` pieces where possible) never change when the caller reuses its buffers."""

import os
import random

import pytest
from pyfastcdc.cy import FastCDC

from hoard.content import CdcChunker, FixedChunker
from hoard.content.chunker import CDC_AVG, CDC_MAX, CDC_MIN

DATA = os.urandom(5 << 20)


def feed_all(chunker, data, sizes, kinds):
    """Feed `data` in pieces; a bytearray piece is zeroed right after it is fed (a reused buffer)."""
    blocks, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes(i)
        kind = kinds(i)
        if kind == "bytearray":
            buf = bytearray(data[pos:pos + n])
            blocks += chunker.feed(buf)
            buf[:] = bytes(len(buf))
        elif kind == "view":
            blocks += chunker.feed(memoryview(data)[pos:pos + n])
        else:
            blocks += chunker.feed(data[pos:pos + n])
        pos += n
        i += 1
    return [bytes(b) for b in blocks + chunker.flush()]


@pytest.mark.parametrize("seed", range(8))
def test_cdc_cuts_are_those_of_one_pass_over_the_stream(seed):
    rng = random.Random(seed)
    whole = [c.length for c in FastCDC(avg_size=CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX,
                                       normalized_chunking=1).cut_buf(DATA)]
    choices = [[1 << 20], [77_777], [1, 100, 70_000, 600_000, 2 << 20], [3000, 1 << 20], [500_000, 4 << 20]][seed % 5]
    blocks = feed_all(CdcChunker(), DATA, lambda i: rng.choice(choices),
                      lambda i: rng.choice(["bytes", "bytes", "bytearray", "view"]))
    assert b"".join(blocks) == DATA
    assert [len(b) for b in blocks] == whole


@pytest.mark.parametrize("block_size", [1000, 65536, 1 << 20])
def test_fixed_blocks_survive_reused_buffers(block_size):
    rng = random.Random(block_size)
    data = DATA[:3_000_000]
    blocks = feed_all(FixedChunker(block_size), data, lambda i: rng.choice([1, 999, 65536, 100_000, 1 << 20]),
                      lambda i: rng.choice(["bytes", "bytearray", "view"]))
    assert b"".join(blocks) == data
    assert all(len(b) == block_size for b in blocks[:-1]) and 0 < len(blocks[-1]) <= block_size

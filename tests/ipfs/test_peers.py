"""The test peers themselves: local-only, and able to exchange files with each other."""

from __future__ import annotations

import os
from pathlib import Path

from ipfs.peers import HeliaPeer, KuboPeer, local_only_problems


def test_peers_stay_on_loopback(kubo: KuboPeer, helia: HeliaPeer) -> None:
    assert local_only_problems(kubo) == []
    assert local_only_problems(helia) == []


def test_kubo_and_helia_exchange_files_by_bitswap(kubo: KuboPeer, helia: HeliaPeer, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    helia.connect(kubo.info.addr)
    cid = kubo.add(src)
    assert cid.startswith("Qm")
    helia.cat(cid, tmp_path / "from-kubo", timeout=30)
    assert (tmp_path / "from-kubo").read_bytes() == data

    other = tmp_path / "other.bin"
    other.write_bytes(os.urandom(70_000))
    hcid = helia.add_file(other)
    kubo.download(hcid, tmp_path / "from-helia", timeout=30)
    assert (tmp_path / "from-helia").read_bytes() == other.read_bytes()


def test_helia_car_round_trip(helia: HeliaPeer, tmp_path: Path) -> None:
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(600_000))
    cid = helia.add_file(src)
    helia.export_car(cid, tmp_path / "f.car")
    assert helia.import_car(tmp_path / "f.car") == [cid]

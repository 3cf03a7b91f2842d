"""The gRPC modules are compiled at build time (setup.py) from proto/, and hoard refuses
modules compiled from other bytes than the checkout's .proto files."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from hoard.api.grpc import protos
from hoard.errors import StateError

REPO = Path(__file__).resolve().parents[2]


def test_every_contract_was_compiled_from_the_checkouts_bytes():
    hashes = protos.generated_hashes()
    on_disk = sorted(p.relative_to(REPO / "proto").as_posix() for p in (REPO / "proto").rglob("*.proto"))
    assert sorted(hashes) == on_disk == sorted(protos.PROTO_FILES)
    for name in protos.PROTO_FILES:
        assert hashes[name] == hashlib.sha256((REPO / "proto" / name).read_bytes()).hexdigest()
        messages, services = protos.load(name)
        assert messages.__name__.startswith(protos.GEN_PACKAGE + ".")
        assert messages.DESCRIPTOR.name == name  # the descriptor was built from this file
        assert services.__name__ == messages.__name__ + "_grpc"


def test_a_changed_proto_file_asks_for_a_rebuild(tmp_path):
    name = protos.PROTO_FILES[0]
    copy = tmp_path / "proto"
    shutil.copytree(REPO / "proto", copy)
    protos.check_current(name, copy)  # same bytes: fine
    (copy / name).write_bytes((copy / name).read_bytes() + b"\n// edited\n")
    with pytest.raises(StateError, match="pip install -e"):
        protos.check_current(name, copy)
    (copy / name).unlink()
    protos.check_current(name, copy)  # no checkout (an installed wheel): the compiled modules are used


def test_an_unknown_contract_is_refused():
    with pytest.raises(StateError, match="not one of hoard's contracts"):
        protos.load("nope/v1/nope.proto")

"""The wire contracts (`proto/*.proto`) as Python modules, compiled when hoard is built.

`setup.py` runs `grpc_tools.protoc` over `proto/` in every build (wheel or `pip install -e .`)
and puts the `*_pb2` / `*_pb2_grpc` modules in the package `hoard.api.grpc._generated`,
together with the SHA-256 of each .proto file they came from. Nothing is compiled at run
time; `grpcio-tools` is a build requirement only (docs/packaging.md).

In a checkout (an editable install), `load` checks that the modules were generated from the
checkout's current .proto files and says to reinstall when they were not.

Add a contract by putting its .proto under `proto/` and its path in PROTO_FILES.
"""

from __future__ import annotations

import hashlib
import importlib
import types
from pathlib import Path

from hoard.errors import StateError

PROTO_FILES: list[str] = [
    "tvix/castore/v1/rpc_blobstore.proto",  # tvix castore BlobService, unchanged
    "hugo/v1/storage/storage.proto",  # hugo StorageService: the protobuf block of its API doc, unchanged
    "hoard/v1/logs.proto",  # hoard.v1.LogService: GDP logs for other languages
    "hoard/v1/transfer.proto",  # hoard.v1.TransferService: data transfer (go-data-transfer) for other languages
]

GEN_PACKAGE = "hoard.api.grpc._generated"
REBUILD_HINT = "run `pip install -e .` in the checkout (or build and install the wheel) to compile them"
_CHECKOUT_PROTO_DIR = Path(__file__).resolve().parents[4] / "proto"  # only exists in a source checkout
_checked: set[str] = set()


def generated_hashes() -> dict[str, str]:
    """The SHA-256 of each .proto file, as the build that generated the modules read it."""
    try:
        package = importlib.import_module(GEN_PACKAGE)
    except ImportError as exc:
        raise StateError(f"hoard's gRPC modules were not compiled ({GEN_PACKAGE} is missing): {REBUILD_HINT}") from exc
    hashes: dict[str, str] = package.PROTO_SHA256
    return hashes


def check_current(proto: str, proto_dir: Path = _CHECKOUT_PROTO_DIR) -> None:
    """Raise StateError if `proto` was compiled from other bytes than the file in `proto_dir`
    (when that file exists, i.e. hoard runs from a checkout)."""
    built = generated_hashes().get(proto)
    if built is None:
        raise StateError(f"{proto} was not compiled into {GEN_PACKAGE}: {REBUILD_HINT}")
    source = proto_dir / proto
    if source.is_file() and hashlib.sha256(source.read_bytes()).hexdigest() != built:
        raise StateError(f"{source} changed since hoard's gRPC modules were compiled: {REBUILD_HINT}")


def load(proto: str) -> tuple[types.ModuleType, types.ModuleType]:
    """The (messages, services) modules of one of PROTO_FILES: its `_pb2` and `_pb2_grpc`."""
    if proto not in PROTO_FILES:
        raise StateError(f"{proto} is not one of hoard's contracts ({', '.join(PROTO_FILES)})")
    if proto not in _checked:
        check_current(proto)
        _checked.add(proto)
    base = f"{GEN_PACKAGE}.{proto[:-len('.proto')].replace('/', '.')}"
    return importlib.import_module(base + "_pb2"), importlib.import_module(base + "_pb2_grpc")

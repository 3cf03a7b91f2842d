"""The castore/hugo client stubs, generated at test time from the two spec files, unchanged (the
node they talk to is a `harness.Daemon`)."""

from __future__ import annotations

import importlib
import os
import re
import sys
import types
from pathlib import Path

RPC_TIMEOUT = 60  # seconds, for every call

REPO = Path(__file__).resolve().parents[2]
CASTORE_SPEC = "tvix-castore-blobservice.proto"
HUGO_SPEC = "hugo-storage-api.md"


def spec_dir() -> Path | None:
    """The seed specs: $HOARD_SPECS_DIR, else shared/specs beside the checkout, if present."""
    beside = Path(__file__).resolve().parents[3] / "shared" / "specs"
    for candidate in (os.environ.get("HOARD_SPECS_DIR"), str(beside), "/work/shared/specs"):
        if candidate and (Path(candidate) / CASTORE_SPEC).is_file() and (Path(candidate) / HUGO_SPEC).is_file():
            return Path(candidate)
    return None


def hugo_proto_from_markdown(text: str) -> str:
    """The protobuf block of hugo's API doc, exactly as written there."""
    blocks = re.findall(r"```protobuf\n(.*?)```", text, re.DOTALL)
    assert len(blocks) == 1, "hugo-storage-api.md should hold exactly one protobuf block"
    return blocks[0]


def contract_texts() -> dict[str, str]:
    """The two contracts by the proto path they are compiled under: from the specs when
    available, else from the copies in proto/ (which a test checks against the specs)."""
    specs = spec_dir()
    if specs is not None:
        return {"tvix/castore/v1/rpc_blobstore.proto": (specs / CASTORE_SPEC).read_text(),
                "hugo/v1/storage/storage.proto": hugo_proto_from_markdown((specs / HUGO_SPEC).read_text())}
    return {name: (REPO / "proto" / name).read_text()
            for name in ("tvix/castore/v1/rpc_blobstore.proto", "hugo/v1/storage/storage.proto")}


def generate_clients(out: Path) -> types.SimpleNamespace:
    """Compile the contracts with grpc_tools into `out` and import the stubs."""
    from grpc_tools import protoc

    src = out / "protos"
    for name, text in contract_texts().items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    gen = out / "gen"
    gen.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).parent / "_proto"
    names = sorted(contract_texts())
    assert protoc.main(["protoc", f"-I{src}", f"-I{include}", f"--python_out={gen}", f"--grpc_python_out={gen}",
                        *names]) == 0
    sys.path.insert(0, str(gen))
    try:
        mod = importlib.import_module
        return types.SimpleNamespace(
            castore=mod("tvix.castore.v1.rpc_blobstore_pb2"), castore_grpc=mod("tvix.castore.v1.rpc_blobstore_pb2_grpc"),
            hugo=mod("hugo.v1.storage.storage_pb2"), hugo_grpc=mod("hugo.v1.storage.storage_pb2_grpc"))
    finally:
        sys.path.remove(str(gen))

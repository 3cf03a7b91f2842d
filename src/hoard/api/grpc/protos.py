"""The wire contracts (`proto/*.proto`) compiled to Python stubs on first use.

Nothing generated is committed: on first import the stubs are generated with
`grpc_tools.protoc` into the gitignored package `hoard._proto_gen` (or, where the package
dir is not writable, a per-user cache dir), together with copies of the .proto files, and
regenerated whenever a .proto file or the protobuf/grpc toolchain changes (a stamp file
records what they were built from). Generation is atomic and locked, so concurrent
processes are safe.

Add a contract by putting its .proto under `proto/` and its path in PROTO_FILES.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import importlib.metadata
import os
import re
import shutil
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path

from hoard.errors import StateError

PROTO_FILES: list[str] = [
    "tvix/castore/v1/rpc_blobstore.proto",  # tvix castore BlobService, unchanged
    "hugo/v1/storage/storage.proto",  # hugo StorageService: the protobuf block of its API doc, unchanged
    "hoard/v1/logs.proto",  # hoard.v1.LogService: GDP logs for other languages
    "hoard/v1/transfer.proto",  # hoard.v1.TransferService: data transfer (go-data-transfer) for other languages
]

GEN_PACKAGE = "hoard._proto_gen"
_PACKAGE_DIR = Path(__file__).resolve().parents[2] / "_proto_gen"
_REPO_PROTO_DIR = Path(__file__).resolve().parents[4] / "proto"
_ready: Path | None = None


def proto_root() -> Path:
    """Where the .proto files are: $HOARD_PROTO_DIR, the checkout's `proto/`, or the copies
    shipped inside the generated package."""
    candidates = [Path(os.environ["HOARD_PROTO_DIR"])] if os.environ.get("HOARD_PROTO_DIR") else []
    candidates += [_REPO_PROTO_DIR, _PACKAGE_DIR]
    for root in candidates:
        if all((root / name).is_file() for name in PROTO_FILES):
            return root
    raise StateError(f"cannot find hoard's .proto files ({', '.join(PROTO_FILES)}) in "
                     f"{', '.join(str(c) for c in candidates)}")


def _stamp(root: Path) -> str:
    digest = hashlib.sha256()
    for dist in ("grpcio-tools", "protobuf"):
        digest.update(f"{dist}={importlib.metadata.version(dist)}\n".encode())
    for name in PROTO_FILES:
        digest.update(name.encode() + b"\n" + (root / name).read_bytes() + b"\n")
    return digest.hexdigest()


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _generate(root: Path, target: Path, stamp: str) -> None:
    from grpc_tools import protoc

    target.parent.mkdir(parents=True, exist_ok=True)
    lock = Path(tempfile.gettempdir()) / f"hoard-proto-gen-{hashlib.sha256(str(target).encode()).hexdigest()[:16]}.lock"
    with _locked(lock):
        if (target / "STAMP").is_file() and (target / "STAMP").read_text() == stamp:
            return  # another process made it while we waited
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        tmp.chmod(0o755)  # mkdtemp makes it private; the package must be readable like the rest
        try:
            include = Path(protoc.__file__).parent / "_proto"
            args = ["protoc", f"-I{root}", f"-I{include}", f"--python_out={tmp}", f"--grpc_python_out={tmp}",
                    *PROTO_FILES]
            if protoc.main(args) != 0:
                raise StateError(f"protoc failed to compile {', '.join(PROTO_FILES)} from {root}")
            _relocate_imports(tmp)
            for name in PROTO_FILES:
                shutil.copyfile(root / name, tmp / name)
            for directory in [tmp, *(p for p in tmp.rglob("*") if p.is_dir())]:
                (directory / "__init__.py").touch()
            (tmp / "STAMP").write_text(stamp)
            if target.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
                os.replace(target, old / "gen")
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _relocate_imports(tmp: Path) -> None:
    """protoc writes `from tvix.castore.v1 import x_pb2`; make those imports `hoard._proto_gen.…`."""
    tops = sorted({name.split("/")[0] for name in PROTO_FILES})
    pattern = re.compile(rf"^(from|import) ({'|'.join(map(re.escape, tops))})([.\s])", re.MULTILINE)
    for module in tmp.rglob("*_pb2*.py"):
        text = module.read_text()
        module.write_text(pattern.sub(rf"\1 {GEN_PACKAGE}.\2\3", text))


def ensure_generated() -> Path:
    """Generate the stubs if they are missing or stale; returns their directory."""
    global _ready
    if _ready is not None:
        return _ready
    root = proto_root()
    stamp = _stamp(root)
    target = _PACKAGE_DIR
    if not _writable(target if target.exists() else target.parent):
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        target = cache / "hoard" / "proto_gen" / stamp[:16]
    stamp_file = target / "STAMP"
    if not (stamp_file.is_file() and stamp_file.read_text() == stamp):
        _generate(root, target, stamp)
    if target != _PACKAGE_DIR:  # a cache dir: make it the package's location
        package = types.ModuleType(GEN_PACKAGE)
        package.__path__ = [str(target)]
        sys.modules[GEN_PACKAGE] = package
    _ready = target
    return target


def load(proto: str) -> tuple[types.ModuleType, types.ModuleType]:
    """The (messages, services) modules of one of PROTO_FILES: its `_pb2` and `_pb2_grpc`."""
    if proto not in PROTO_FILES:
        raise StateError(f"{proto} is not one of hoard's contracts ({', '.join(PROTO_FILES)})")
    ensure_generated()
    base = f"{GEN_PACKAGE}.{proto[:-len('.proto')].replace('/', '.')}"
    return importlib.import_module(base + "_pb2"), importlib.import_module(base + "_pb2_grpc")

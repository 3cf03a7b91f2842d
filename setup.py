"""Build step: compile the wire contracts in proto/ into the package (docs/packaging.md).

Everything else about the package is declared in pyproject.toml. This file only extends
setuptools' `build_py` so that every build, wheel or editable, runs `grpc_tools.protoc` (a
build-system requirement, pinned there) over proto/ and puts the generated `*_pb2.py` /
`*_pb2_grpc.py` modules in the package `hoard.api.grpc._generated`:

- a wheel (`python -m build`, `pip install .`): into the build directory, so the wheel holds them;
- an editable install (`pip install -e .`): into src/hoard/api/grpc/_generated/ (gitignored),
  which the editable install imports from. After changing a .proto file, run it again:
  hoard refuses to load modules generated from other bytes than the checkout's (see
  `hoard.api.grpc.protos`).

protoc writes imports as `from tvix.castore.v1 import ...`; they are rewritten to the package.
`_generated/__init__.py` records the SHA-256 of each .proto file the modules came from.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_DIR = ROOT / "proto"
GEN_PACKAGE = "hoard.api.grpc._generated"
GEN_PATH = Path(*GEN_PACKAGE.split("."))


def compile_protos(out: Path) -> list[Path]:
    """Compile every .proto under proto/ into package directory `out` (replacing it); returns the files."""
    from grpc_tools import protoc  # a build-system requirement (pyproject.toml)

    names = sorted(p.relative_to(PROTO_DIR).as_posix() for p in PROTO_DIR.rglob("*.proto"))
    if not names:
        raise RuntimeError(f"no .proto files under {PROTO_DIR}")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".protos-", dir=out.parent))
    try:
        include = Path(protoc.__file__).parent / "_proto"
        args = ["protoc", f"-I{PROTO_DIR}", f"-I{include}", f"--python_out={tmp}", f"--grpc_python_out={tmp}", *names]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {', '.join(names)}")
        tops = sorted({name.split("/")[0] for name in names})
        pattern = re.compile(rf"^(from|import) ({'|'.join(map(re.escape, tops))})([.\s])", re.MULTILINE)
        for module in tmp.rglob("*_pb2*.py"):
            module.write_text(pattern.sub(rf"\1 {GEN_PACKAGE}.\2\3", module.read_text()))
        for directory in [p for p in tmp.rglob("*") if p.is_dir()]:
            (directory / "__init__.py").write_text("")
        hashes = {name: hashlib.sha256((PROTO_DIR / name).read_bytes()).hexdigest() for name in names}
        (tmp / "__init__.py").write_text(
            '"""Generated at build time from proto/ by setup.py; do not edit."""\n\n'
            "PROTO_SHA256: dict[str, str] = {\n"
            + "".join(f"    {name!r}: {digest!r},\n" for name, digest in hashes.items())
            + "}\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return sorted(p for p in out.rglob("*.py"))


class BuildPyWithProtos(build_py):
    """`build_py` that also generates the gRPC modules (into the source tree when editable)."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            compile_protos(ROOT / "src" / GEN_PATH)
        else:
            self._generated = compile_protos(Path(self.build_lib) / GEN_PATH)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *(str(p) for p in getattr(self, "_generated", []))]


setup(cmdclass={"build_py": BuildPyWithProtos})

"""The current header generation (`hoard capi build --abi current`): today's logos-storage-nim
signatures, checked by compiling test_current_abi.c against the built header and running it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hoard.capi.build import HEADERS, RUNTIME_INIT, functions
from hoard.capi.exports import EXPORTS_CURRENT
from hoard.errors import InvalidArgumentError

HERE = Path(__file__).resolve().parent
CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")

pytestmark = pytest.mark.timeout(300)

# logos-storage-nim's library/libstorage.nim (the generation with isPrivate and storage_network)
CURRENT = {
    "storage_version": "char *storage_version(void *ctx)",
    "storage_revision": "char *storage_revision(void *ctx)",
    "storage_destroy": "int storage_destroy(void *ctx)",
    "storage_network": "int storage_network(void *ctx, StorageCallback callback, void *userData)",
    "storage_get_metrics": "int storage_get_metrics(void *ctx, StorageCallback callback, void *userData)",
    "storage_toggle_private_queries":
        "int storage_toggle_private_queries(void *ctx, bool enabled, StorageCallback callback, void *userData)",
    "storage_download_init": "int storage_download_init(void *ctx, const char *cid, size_t chunkSize, bool local, "
                             "bool isPrivate, StorageCallback callback, void *userData)",
    "storage_download_stream": "int storage_download_stream(void *ctx, const char *cid, size_t chunkSize, bool local, "
                               "bool isPrivate, const char *filepath, StorageCallback callback, void *userData)",
    "storage_download_manifest": "int storage_download_manifest(void *ctx, const char *cid, bool isPrivate, "
                                 "StorageCallback callback, void *userData)",
}


def _norm(signature: str) -> str:
    return re.sub(r"\s*\*\s*", " *", " ".join(signature.split())).replace("( ", "(").replace(" )", ")")


def test_current_header_signatures() -> None:
    current = {fn.name: _norm(fn.decl(fn.name)) for fn in functions(abi="current")}
    seed = {fn.name: _norm(fn.decl(fn.name)) for fn in functions(abi="seed")}
    for name, signature in CURRENT.items():
        assert current[name] == _norm(signature)
    # everything else is as in the seed generation
    assert {n: s for n, s in current.items() if n not in CURRENT} == {n: s for n, s in seed.items() if n in current
                                                                      and n not in CURRENT}
    assert set(current) - set(seed) == {"storage_network", "storage_get_metrics", "storage_toggle_private_queries"}
    assert sorted(f"storage_{name}" for name in EXPORTS_CURRENT) == sorted(current)


@needs_cc
def test_current_abi_program(tmp_path: Path) -> None:
    from hoard.cli.main import cli

    libdir = tmp_path / "lib"
    result = CliRunner().invoke(cli, ["--json", "capi", "build", "--abi", "current", str(libdir)])
    assert result.exit_code == 0, result.output
    assert (libdir / "libstorage.h").read_text() == HEADERS["current"].read_text()
    nm = shutil.which("nm")
    if nm is not None:
        out = subprocess.run([nm, "-D", "--defined-only", str(libdir / "libstorage.so")], capture_output=True,
                             text=True, check=True).stdout
        names = {line.split()[-1] for line in out.splitlines() if line.strip()}
        assert names == {fn.name for fn in functions(abi="current")} | {"PyInit__hoard_libstorage", *RUNTIME_INIT}
    program = tmp_path / "test_current_abi"
    subprocess.run([str(CC), "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", str(program),
                    str(HERE / "test_current_abi.c"), f"-I{libdir}", f"-L{libdir}", "-lstorage", "-lpthread"],
                   check=True)
    env = {"LD_LIBRARY_PATH": str(libdir), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    proc = subprocess.run([str(program), str(tmp_path)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=240, check=False)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "PASS current" in proc.stdout


def test_unknown_abi_is_refused(tmp_path: Path) -> None:
    from hoard.capi import build

    with pytest.raises(InvalidArgumentError, match="unknown ABI 'future'"):
        build(tmp_path / "x", abi="future")

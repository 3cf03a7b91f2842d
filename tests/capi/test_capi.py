"""The C ABI: build libstorage.so with `hoard capi build`, then drive it from C programs.

The C test program (test_libstorage.c) does the real work; each case here runs one of its
tests in a fresh process, with nothing but LD_LIBRARY_PATH set (no PYTHONPATH, no venv
activation), so the library has to find its Python on its own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hoard.capi import HEADER, functions
from hoard.capi.build import RUNTIME_INIT
from hoard.capi.exports import EXPORTS
from hoard.node import Node

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CC = shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("c++") or shutil.which("g++")

needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler")

# The spec's signatures (logos-storage-c-api.txt, callback generation), whitespace-normalised.
SPEC = """
void *storage_new(const char *configJson, StorageCallback callback, void *userData)
int storage_start(void *ctx, StorageCallback callback, void *userData)
int storage_stop(void *ctx, StorageCallback callback, void *userData)
int storage_close(void *ctx, StorageCallback callback, void *userData)
int storage_destroy(void *ctx, StorageCallback callback, void *userData)
int storage_version(void *ctx, StorageCallback callback, void *userData)
int storage_revision(void *ctx, StorageCallback callback, void *userData)
int storage_repo(void *ctx, StorageCallback callback, void *userData)
int storage_debug(void *ctx, StorageCallback callback, void *userData)
int storage_spr(void *ctx, StorageCallback callback, void *userData)
int storage_peer_id(void *ctx, StorageCallback callback, void *userData)
int storage_peer_debug(void *ctx, const char *peerId, StorageCallback callback, void *userData)
int storage_log_level(void *ctx, const char *logLevel, StorageCallback callback, void *userData)
int storage_connect(void *ctx, const char *peerId, const char **peerAddresses, size_t peerAddressesSize, StorageCallback callback, void *userData)
int storage_upload_init(void *ctx, const char *filepath, size_t chunkSize, StorageCallback callback, void *userData)
int storage_upload_chunk(void *ctx, const char *sessionId, const uint8_t *chunk, size_t len, StorageCallback callback, void *userData)
int storage_upload_finalize(void *ctx, const char *sessionId, StorageCallback callback, void *userData)
int storage_upload_cancel(void *ctx, const char *sessionId, StorageCallback callback, void *userData)
int storage_upload_file(void *ctx, const char *sessionId, StorageCallback callback, void *userData)
int storage_download_init(void *ctx, const char *cid, size_t chunkSize, bool local, StorageCallback callback, void *userData)
int storage_download_stream(void *ctx, const char *cid, size_t chunkSize, bool local, const char *filepath, StorageCallback callback, void *userData)
int storage_download_chunk(void *ctx, const char *cid, StorageCallback callback, void *userData)
int storage_download_cancel(void *ctx, const char *cid, StorageCallback callback, void *userData)
int storage_download_manifest(void *ctx, const char *cid, StorageCallback callback, void *userData)
int storage_list(void *ctx, StorageCallback callback, void *userData)
int storage_space(void *ctx, StorageCallback callback, void *userData)
int storage_delete(void *ctx, const char *cid, StorageCallback callback, void *userData)
int storage_fetch(void *ctx, const char *cid, StorageCallback callback, void *userData)
int storage_exists(void *ctx, const char *cid, StorageCallback callback, void *userData)
void storage_set_event_callback(void *ctx, StorageCallback callback, void *userData)
"""


def _norm(signature: str) -> str:
    return re.sub(r"\s*\*\s*", " *", " ".join(signature.split())).replace("( ", "(").replace(" )", ")")


def test_header_has_every_spec_function_with_its_signature() -> None:
    expected = [_norm(line) for line in SPEC.strip().splitlines()]
    declared = [_norm(fn.decl(fn.name)) for fn in functions()]
    assert sorted(declared) == sorted(expected)
    text = HEADER.read_text()
    for define in ("#define RET_OK 0", "#define RET_ERR 1", "#define RET_MISSING_CALLBACK 2", "#define RET_PROGRESS 3",
                   "typedef void (*StorageCallback)(int callerRet, const char *msg, size_t len, void *userData);"):
        assert define in text


def test_every_header_function_has_an_implementation() -> None:
    assert sorted(f"storage_{name}" for name in EXPORTS) == sorted(fn.name for fn in functions())


@needs_cc
def test_header_compiles_as_c_and_cxx(tmp_path: Path) -> None:
    src = tmp_path / "h.c"
    src.write_text("#include <libstorage.h>\nint main(void) { StorageCallback cb = 0; (void)cb; return RET_OK; }\n")
    subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only", f"-I{HEADER.parent}",
                    str(src)], check=True)
    if CXX:
        subprocess.run([CXX, "-Wall", "-Werror", "-fsyntax-only", "-x", "c++", f"-I{HEADER.parent}", str(src)],
                       check=True)


# -- the built library -------------------------------------------------------------------
@pytest.fixture(scope="session")
def libdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if CC is None:
        pytest.skip("no C compiler")
    from hoard.cli.main import cli

    out = tmp_path_factory.mktemp("libstorage")
    result = CliRunner().invoke(cli, ["--json", "capi", "build", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "libstorage.so").is_file() and (out / "libstorage.h").read_text() == HEADER.read_text()
    return out


def compile_program(source: Path, libdir: Path, output: Path) -> Path:
    subprocess.run([CC, "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", str(output), str(source),
                    f"-I{libdir}", f"-L{libdir}", "-lstorage", "-lpthread"], check=True)
    return output


def clean_env(libdir: Path) -> dict[str, str]:
    """The environment of an ordinary program: no Python settings, only LD_LIBRARY_PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env["LD_LIBRARY_PATH"] = str(libdir)
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    return env


@pytest.fixture(scope="session")
def test_program(libdir: Path) -> Path:
    return compile_program(HERE / "test_libstorage.c", libdir, libdir / "test_libstorage")


def run_program(argv: list[str], libdir: Path, cwd: Path, timeout: float = 240,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env={**clean_env(libdir), **(env or {})}, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


@needs_cc
def test_library_exports_only_the_api(libdir: Path) -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    out = subprocess.run([nm, "-D", "--defined-only", str(libdir / "libstorage.so")], capture_output=True, text=True,
                         check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert names == {fn.name for fn in functions()} | {"PyInit__hoard_libstorage", *RUNTIME_INIT}


# Two contexts connect and fetch over the network once the node has connect()/peer_debug();
# until then storage_connect must answer "network not available" (the C test checks which).
NETWORK = callable(getattr(Node, "connect", None))


@needs_cc
@pytest.mark.parametrize("name", ["lifecycle", "chunks", "file", "errors", "threads", "contexts"])
def test_c_program(test_program: Path, libdir: Path, tmp_path: Path, name: str) -> None:
    env = {"TEST_LIBSTORAGE_NETWORK": "1" if NETWORK else "0"}
    proc = run_program([str(test_program), name, str(tmp_path)], libdir, tmp_path, env=env)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert f"PASS {name}" in proc.stdout
    assert "contract violation" not in proc.stderr


@needs_cc
def test_docs_example(libdir: Path, tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "capi.md").read_text()
    example = re.search(r"```c\n(/\* example\.c:.*?)```", doc, re.DOTALL)
    assert example, "docs/capi.md lost its example"
    source = tmp_path / "example.c"
    source.write_text(example.group(1))
    program = compile_program(source, libdir, tmp_path / "example")
    proc = run_program([str(program), str(tmp_path / "data")], libdir, tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("version v")
    assert lines[1].startswith("peer id 12D3KooW")
    assert lines[2].startswith("cid z")
    assert lines[3] == "hello from C"
    assert lines[4].startswith("manifest {") and '"datasetSize":13' in lines[4] and '"filename":"hello.txt"' in lines[4]
    assert lines[5:] == ["exists true", "exists(NULL) -> 1: libstorage error: cid is NULL"]


@needs_cc
@pytest.mark.skipif(os.environ.get("HOARD_CAPI_VALGRIND") != "1", reason="set HOARD_CAPI_VALGRIND=1 (slow)")
def test_under_valgrind(test_program: Path, libdir: Path, tmp_path: Path) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("no valgrind")
    argv = [valgrind, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", f"--suppressions={HERE / 'valgrind.supp'}", "--num-callers=30",
            str(test_program), "all", str(tmp_path)]
    # valgrind cannot see into pymalloc's arenas, nor map LMDB's 1 TiB of address space
    env_extra = {"PYTHONMALLOC": "malloc", "TEST_LIBSTORAGE_REPO_KIND": "memory"}
    proc = subprocess.run(argv, env={**clean_env(libdir), **env_extra}, cwd=tmp_path, capture_output=True, text=True,
                          timeout=3000)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-20000:]}"
    assert "PASS all" in proc.stdout


HOST_SCRIPT = r"""
import ctypes, sys, threading
lib = ctypes.CDLL(sys.argv[1])
CB = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
finals, done = [], threading.Event()

@CB
def callback(ret, msg, n, ud):
    finals.append((ret, ctypes.string_at(msg, n).decode() if msg else None))
    done.set()

lib.storage_new.restype = ctypes.c_void_p
lib.storage_new.argtypes = [ctypes.c_char_p, CB, ctypes.c_void_p]
for name in ("storage_peer_id", "storage_destroy"):
    getattr(lib, name).argtypes = [ctypes.c_void_p, CB, ctypes.c_void_p]

def wait(rc=0):
    assert rc == 0 and done.wait(60)
    done.clear()
    return finals[-1]

ctx = lib.storage_new(('{"data-dir": "%s"}' % sys.argv[2]).encode(), callback, None)
assert wait() == (0, "")
ret, peer = wait(lib.storage_peer_id(ctx, callback, None))
assert ret == 0 and peer.startswith("12D3KooW"), (ret, peer)
n = len(finals)
assert lib.storage_destroy(ctx, callback, None) == 0 and len(finals) == n  # synchronous, no callback
print("ok", peer)
"""


@needs_cc
def test_library_inside_a_python_process(libdir: Path, tmp_path: Path) -> None:
    """Loaded into a running interpreter (ctypes), the library uses that interpreter."""
    proc = subprocess.run([sys.executable, "-c", HOST_SCRIPT, str(libdir / "libstorage.so"), str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok 12D3KooW")


def test_cli_build_reports_a_bad_outdir(tmp_path: Path) -> None:
    from hoard.cli.main import cli

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = CliRunner().invoke(cli, ["capi", "build", str(blocker / "out")])
    assert result.exit_code == 2
    assert "cannot create" in result.output

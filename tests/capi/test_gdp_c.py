"""libgdp (gdp.h): the GDP programmatic API v0.8 from C, built by `hoard capi build`.

The C programs in tests/capi/gdp/ are written from the seed's document and its examples:
test_gdp.c checks the API call by call, gdp_writer.c and gdp_reader.c are the document's
writer and reader programs filled out. Each runs in a fresh process with nothing but
LD_LIBRARY_PATH and HOARD_DATA_DIR set (embedded node), or with -G against the REST API of a
real `hoard node start` process (gdp_init(addr)).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from hoard.capi.gdp_build import HEADER

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "gdp"
CC = shutil.which("cc") or shutil.which("gcc")
CXX = shutil.which("c++") or shutil.which("g++")

pytestmark = [pytest.mark.timeout(600), pytest.mark.skipif(CC is None, reason="no C compiler")]

# The functions the seed's document specifies (specs/gdp-programmatic-api-v0.8.txt), and the
# names its example programs call.
SEED_FUNCTIONS = set(re.findall(r"\w+", """
gdp_name_is_valid gdp_printable_name gdp_internal_name gdp_parse_name gdp_init
gdp_gcl_create gdp_gcl_open gdp_gcl_open_info_new gdp_gcl_open_info_free gdp_gcl_open_info_set_signing_key
gdp_gcl_open_info_set_signkey_cb gdp_gcl_open_info_set_caching gdp_gcl_close gdp_gcl_getname gdp_gcl_print
gdp_gcl_append gdp_gcl_read_by_recno gdp_gcl_read_by_ts gdp_gcl_read_async gdp_gcl_append_async
gdp_gcl_subscribe_by_recno gdp_gcl_subscribe_by_ts gdp_sub_qos_new gdp_sub_qos_free gdp_gcl_multiread
gdp_gcl_multiread_ts gdp_gcl_unsubscribe gdp_event_next gdp_event_gettype gdp_event_getstat gdp_event_getgcl
gdp_event_getdatum gdp_event_getudata gdp_event_free gdp_datum_new gdp_datum_free gdp_datum_print
gdp_datum_getrecno gdp_datum_getts gdp_datum_getdlen gdp_datum_getdbuf gdp_datum_getmdalg gdp_datum_getsig
gdp_buf_new gdp_buf_reset gdp_buf_free gdp_buf_getlength gdp_buf_read gdp_buf_peek gdp_buf_drain gdp_buf_write
gdp_buf_printf gdp_buf_move gdp_buf_dump gdp_gcl_getnrecs gdp_gcl_set_append_filter gdp_gcl_set_read_filter
gdp_gcl_parse_name gdp_datum_getbuf gdp_gcl_create_default
"""))

PROTOTYPE = re.compile(r"^[A-Za-z_][\w \*]*?\**\s*\**(\w+)\(", re.MULTILINE)


def declared_functions() -> set[str]:
    text = HEADER.read_text()
    body = text.split("#ifndef GDP_NO_ARITY_MACROS")[0]
    return {name for name in PROTOTYPE.findall(body) if not name.startswith("_") and name != "defined"}


def test_header_declares_every_function_of_the_seed() -> None:
    assert SEED_FUNCTIONS <= declared_functions(), SEED_FUNCTIONS - declared_functions()
    text = HEADER.read_text()
    for define in ("#define GDP_EVENT_DATA 1", "#define GDP_EVENT_EOS 2", "#define GDP_EVENT_SHUTDOWN 3",
                   "#define GDP_EVENT_CREATED 4", "#define GDP_EVENT_SUCCESS 5", "#define GDP_EVENT_FAILURE 6",
                   "#define GDP_EVENT_MISSING 7", "#define GDP_LIB_VERSION 0x000800",
                   "typedef uint8_t gdp_name_t[32];", "typedef void (*gdp_event_cbfunc_t)(gdp_event_t *gev);"):
        assert define in text


FORMS = r"""
#include <gdp/gdp.h>
#include <gdp/gdp_version.h>
int main(void)
{
    gdp_name_t name = {1};
    gdp_gcl_t *gcl = 0;
    gdp_datum_t *d = gdp_datum_new();
    EP_STAT (*create4)(gdp_name_t, gdp_name_t, gdp_gclmd_t *, gdp_gcl_t **) = gdp_gcl_create;
    EP_STAT estat = gdp_init(0);
    (void)create4;
    if (GDP_LIB_VERSION != 0x000800) return 1;
    estat = gdp_gcl_create(name, 0, 0, &gcl);   /* the synopsis */
    estat = gdp_gcl_create(name, &gcl);         /* the examples */
    estat = gdp_gcl_open(name, GDP_MODE_RO, 0, &gcl);
    estat = gdp_gcl_open(name, GDP_MODE_RO, &gcl);
    gdp_datum_print(d, stdout, GDP_DATUM_PRTEXT);
    gdp_datum_print(d, stdout);
    return EP_STAT_ISOK(estat) ? 0 : 1;
}
"""


def test_header_compiles_both_call_forms_as_c_and_cxx(tmp_path: Path) -> None:
    include = tmp_path / "include"
    (include / "gdp").mkdir(parents=True)
    shutil.copyfile(HEADER, include / "gdp.h")
    (include / "gdp" / "gdp.h").write_text('#include "../gdp.h"\n')
    (include / "gdp" / "gdp_version.h").write_text('#include "../gdp.h"\n')
    src = tmp_path / "forms.c"
    src.write_text(FORMS)
    subprocess.run([CC, "-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only", f"-I{include}",
                    str(src)], check=True)
    if CXX:
        subprocess.run([CXX, "-Wall", "-Werror", "-fsyntax-only", "-x", "c++", f"-I{include}", str(src)], check=True)
    bad = tmp_path / "bad.c"
    bad.write_text(FORMS.replace("gdp_gcl_create(name, &gcl);", "gdp_gcl_create(name, 0, &gcl);"))
    failed = subprocess.run([CC, "-std=c99", "-Wall", "-Werror", "-fsyntax-only", f"-I{include}", str(bad)],
                            capture_output=True, text=True)
    assert failed.returncode != 0 and "takes_2_or_4_arguments" in failed.stderr


# -- the built library -------------------------------------------------------------------
@pytest.fixture(scope="session")
def libdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from hoard.cli.main import cli

    out = tmp_path_factory.mktemp("libgdp")
    result = CliRunner().invoke(cli, ["--json", "capi", "build", str(out)])
    assert result.exit_code == 0, result.output
    assert '"gdpLibrary"' in result.output
    assert (out / "libgdp.so").is_file() and (out / "gdp.h").read_text() == HEADER.read_text()
    assert (out / "libstorage.so").is_file()  # one command builds both libraries
    return out


@pytest.fixture(scope="session")
def programs(libdir: Path) -> dict[str, Path]:
    out = {}
    for name in ("test_gdp", "gdp_writer", "gdp_reader"):
        out[name] = libdir / name
        subprocess.run([CC, "-std=gnu11", "-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o", str(out[name]),
                        str(PROGRAMS / f"{name}.c"), f"-I{libdir}", f"-L{libdir}", "-lgdp", "-lpthread"],
                       check=True)
    return out


def clean_env(libdir: Path, data_dir: Path, **extra: str) -> dict[str, str]:
    """An ordinary program's environment: no Python settings; the library and the data dir."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "HOARD_")) and k != "VIRTUAL_ENV"}
    env.update(LD_LIBRARY_PATH=str(libdir), PATH="/usr/local/bin:/usr/bin:/bin", HOARD_DATA_DIR=str(data_dir))
    env.update(extra)
    return env


def run(argv: list[str], env: dict[str, str], cwd: Path, input: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout)


def test_library_exports_only_the_api(libdir: Path) -> None:
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("no nm")
    out = subprocess.run([nm, "-D", "--defined-only", str(libdir / "libgdp.so")], capture_output=True, text=True,
                         check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    assert names == declared_functions() | {"GdpVersion", "PyInit__hoard_libgdp"}


TESTS = ["names", "buffers", "logs", "async", "subscribe", "multiread", "filters", "print", "keys"]


@pytest.mark.parametrize("name", TESTS)
def test_c_program_embedded(programs: dict[str, Path], libdir: Path, tmp_path: Path, name: str) -> None:
    proc = run([str(programs["test_gdp"]), name], clean_env(libdir, tmp_path / "data"), tmp_path)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert f"PASS {name}" in proc.stdout and "ok - gdp_init(NULL)" in proc.stdout


def test_data_dir_defaults_as_the_cli_does(programs: dict[str, Path], libdir: Path, tmp_path: Path) -> None:
    """Without HOARD_DATA_DIR the node is on ./hoard-data, the CLI's default."""
    env = clean_env(libdir, tmp_path)
    del env["HOARD_DATA_DIR"]
    proc = run([str(programs["gdp_writer"]), "default dir"], env, tmp_path, input="x\n")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "hoard-data" / "keys").is_dir()


def records(output: str) -> list[tuple[int, str]]:
    """(recno, text) of what gdp_reader -t printed."""
    lines = output.splitlines()
    out = []
    for i, line in enumerate(lines):
        match = re.match(r" >>> recno (\d+), len (\d+),", line)
        if match:
            out.append((int(match.group(1)), lines[i + 1]))
    return out


def test_writer_and_reader_programs(programs: dict[str, Path], libdir: Path, tmp_path: Path) -> None:
    env = clean_env(libdir, tmp_path / "data")
    writer = run([str(programs["gdp_writer"]), "example log"], env, tmp_path, input="first\nsecond\nthird\n")
    assert writer.returncode == 0, writer.stderr
    assert writer.stdout.split() == ["appended", "1", "appended", "2", "appended", "3"]

    again = run([str(programs["gdp_writer"]), "example log"], env, tmp_path, input="x\n")
    assert again.returncode == 1 and "409" in again.stderr  # the log exists: create fails
    more = run([str(programs["gdp_writer"]), "-a", "example log"], env, tmp_path, input="fourth\n")
    assert more.returncode == 0 and more.stdout.split() == ["appended", "4"], more.stderr

    reader = run([str(programs["gdp_reader"]), "-t", "example log"], env, tmp_path)
    assert reader.returncode == 0, reader.stderr
    assert records(reader.stdout) == [(1, "first"), (2, "second"), (3, "third"), (4, "fourth")]

    hexdump = run([str(programs["gdp_reader"]), "-f", "4", "example log"], env, tmp_path)
    assert hexdump.returncode == 0 and "66 6f 75 72 74 68" in hexdump.stdout  # "fourth"

    sub = run([str(programs["gdp_reader"]), "-t", "-s", "-f", "-2", "-n", "2", "example log"], env, tmp_path)
    assert sub.returncode == 0, sub.stderr
    assert records(sub.stdout) == [(3, "third"), (4, "fourth")] and "end 2" in sub.stdout  # EOS

    multi = run([str(programs["gdp_reader"]), "-t", "-m", "-f", "1", "example log"], env, tmp_path)
    assert multi.returncode == 0 and len(records(multi.stdout)) == 4 and "end 2" in multi.stdout

    missing = run([str(programs["gdp_reader"]), "no such log"], env, tmp_path)
    assert missing.returncode == 1 and "404" in missing.stderr


# -- attached to a running node: gdp_init("host:port") -----------------------------------
@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory):
    from harness import Daemon

    daemon = Daemon(tmp_path_factory.mktemp("gdp-node")).start()
    yield daemon
    assert daemon.stop() == 0, (daemon.root / "node.stderr").read_text(errors="replace")[-3000:]


def api_address(node) -> str:
    """The node's REST API address as GDP writes addresses: host:port."""
    return str(node.url).split("://", 1)[1]


@pytest.mark.parametrize("name", [t for t in TESTS if t != "keys"])
def test_c_program_attached(programs: dict[str, Path], libdir: Path, tmp_path: Path, node, name: str) -> None:
    env = clean_env(libdir, tmp_path / "unused")
    proc = run([str(programs["test_gdp"]), "-G", api_address(node), name], env, tmp_path)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert f"PASS {name}" in proc.stdout and "ok - gdp_init(addr)" in proc.stdout
    assert not (tmp_path / "unused").exists()  # nothing embedded


def test_live_subscription_between_programs(programs: dict[str, Path], libdir: Path, tmp_path: Path, node) -> None:
    """The document's reader subscribed to a log while its writer appends, in two processes."""
    env = clean_env(libdir, tmp_path / "unused")
    addr = api_address(node)
    name = f"live log {os.getpid()}"
    first = run([str(programs["gdp_writer"]), "-G", addr, name], env, tmp_path, input="one\ntwo\n")
    assert first.returncode == 0, first.stderr
    reader = subprocess.Popen([str(programs["gdp_reader"]), "-G", addr, "-t", "-s", "-f", "1", "-n", "4", name],
                              env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None
        assert reader.stdout.readline() == "subscribed\n"  # the subscription is in place
        second = run([str(programs["gdp_writer"]), "-G", addr, "-a", name], env, tmp_path, input="three\nfour\n")
        assert second.returncode == 0, second.stderr
        out, err = reader.communicate(timeout=120)
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert reader.returncode == 0, err
    assert records(out) == [(1, "one"), (2, "two"), (3, "three"), (4, "four")] and "end 2" in out
    # the node signed and stored them: its own CLI reads them back
    cli = node.cli("--json", "log", "read", name)
    assert cli.returncode == 0 and cli.stdout.count(b'"recno"') == 4, cli.stderr


def test_attached_writes_need_the_node_to_hold_the_key(programs: dict[str, Path], libdir: Path, tmp_path: Path,
                                                        node) -> None:
    """Attached, the node signs: opening for append a log whose key it lacks is SKEY_REQUIRED."""
    from hoard.logs.names import parse_name

    env = clean_env(libdir, tmp_path / "unused")
    name = f"keyless log {os.getpid()}"
    created = run([str(programs["gdp_writer"]), "-G", api_address(node), name], env, tmp_path, input="one\n")
    assert created.returncode == 0, created.stderr
    key = node.data_dir / "keys" / f"{parse_name(name)}.pem"
    key.rename(tmp_path / "moved.pem")
    try:
        refused = run([str(programs["gdp_writer"]), "-G", api_address(node), "-a", name], env, tmp_path,
                      input="two\n")
        assert refused.returncode == 1 and "secret key required" in refused.stderr, refused.stderr
        reader = run([str(programs["gdp_reader"]), "-G", api_address(node), "-t", name], env, tmp_path)
        assert records(reader.stdout) == [(1, "one")], reader.stderr  # reading needs no key
    finally:
        (tmp_path / "moved.pem").rename(key)


def test_a_data_dir_in_use_is_refused(programs: dict[str, Path], libdir: Path, tmp_path: Path, node) -> None:
    """gdp_init(NULL) on the data dir of a running node: 409, with the reason on stderr."""
    proc = run([str(programs["gdp_writer"]), "x"], clean_env(libdir, node.data_dir), tmp_path, input="x\n")
    assert proc.returncode == 1 and "409" in proc.stderr and "in use" in proc.stderr, proc.stderr


def test_attaching_to_nothing_fails(programs: dict[str, Path], libdir: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run([str(programs["gdp_writer"]), "-G", f"127.0.0.1:{port}", "x"], clean_env(libdir, tmp_path / "d"),
               tmp_path, input="x\n")
    assert proc.returncode == 1 and "initialization" in proc.stderr and "lost connection" in proc.stderr


# -- valgrind (opt-in, as tests/capi/test_capi.py's) ---------------------------------------
@pytest.mark.skipif(os.environ.get("HOARD_CAPI_VALGRIND") != "1", reason="set HOARD_CAPI_VALGRIND=1 (slow)")
def test_under_valgrind(programs: dict[str, Path], libdir: Path, tmp_path: Path) -> None:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("no valgrind")
    config = tmp_path / "config.json"
    config.write_text('{"repo-kind": "memory"}')  # valgrind cannot map LMDB's 1 TiB reservation
    argv = [valgrind, "--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite", f"--suppressions={HERE / 'valgrind.supp'}",
            f"--suppressions={PROGRAMS / 'valgrind.supp'}", "--num-callers=30",
            str(programs["test_gdp"]), "all"]
    env = clean_env(libdir, tmp_path / "data", PYTHONMALLOC="malloc", HOARD_CONFIG=str(config))
    proc = run(argv, env, tmp_path, timeout=3000)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-20000:]}"
    assert "PASS all" in proc.stdout

"""`import hoard` and `hoard --help` stay cheap: the network stack and the API servers load
only when they are used. Checked by what a fresh interpreter has in sys.modules, not by timing
(bench/cli.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("libp2p", "grpc", "grpc_tools", "fastapi", "starlette", "uvicorn", "httpx", "rich", "google.protobuf",
         "aioquic", "multiaddr")


def _loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_import_hoard_loads_no_network_or_server_stack():
    modules = _loaded_after("import hoard")
    assert "hoard" in modules
    assert _heavy(modules) == []
    assert "hoard.node.node" not in modules and "trio" not in modules


def test_opening_a_node_does_not_load_the_network_stack(tmp_path):
    modules = _loaded_after(
        "import hoard\n"
        f"with hoard.Node({{'data-dir': {str(tmp_path / 'd')!r}}}) as node:\n"
        "    session = node.upload_init('x.txt')\n"
        "    node.upload_chunk(session, b'some bytes')\n"
        "    cid = node.upload_finalize(session)\n"
        "    assert str(cid) in str(node.list())\n"
        "    assert str(node.peer_id()).startswith('12D3KooW')\n")
    assert "hoard.node.node" in modules
    # the upload is in the Logos format (the default): its manifest and tree are protobuf
    assert [m for m in _heavy(modules) if not m.startswith("google.protobuf")] == []


def test_cli_help_loads_no_network_or_server_stack():
    modules = _loaded_after(
        "import sys\nfrom hoard.cli.main import cli\n"
        "try:\n    cli(['--help'], prog_name='hoard')\nexcept SystemExit:\n    pass\n")
    assert _heavy(modules) == []


def test_lazy_names_resolve():
    modules = _loaded_after("import hoard\nassert hoard.Node.__name__ == 'Node'\nassert hoard.__version__\n"
                            "assert set(hoard.__all__) <= set(dir(hoard))")
    assert "hoard.node.node" in modules

"""The wheel built from a clean copy of the checkout installs into a fresh venv and runs a node;
an editable install of the copy compiles the protos into its src/ and notices a changed .proto.

A clean copy is the files git tracks (nothing generated, no egg-info, no untracked files).
`python -m build` makes the sdist from it and the wheel from the sdist, as a release would;
the wheel goes into a new venv with its dependencies from the package index (pip's cache and
the index's own wheels make this quick). That venv's `hoard` then starts a daemon on
127.0.0.1, and an upload and a download and a blob put and cat (REST), and the blob read back
over gRPC (`GrpcClient`: the build-time compiled modules) go through it; the bytes must come
back unchanged. Last, `hoard capi build` compiles the C ABI from the installed package.

Slow (about a minute when pip's cache is warm), bounded at 8 minutes; it runs in CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from harness import Daemon

from hoard.api.grpc.protos import GEN_PACKAGE, PROTO_FILES

REPO = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 240
INSTALL_TIMEOUT = 300

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None,
         cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _clean_env() -> dict[str, str]:
    """This environment without anything that would make the venv import the checkout."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("HOARD_")}


def _clean_copy(dest: Path) -> None:
    """The files git tracks, as they are in the working tree."""
    listed = _run(["git", "-C", str(REPO), "ls-files", "-z"], 60).stdout
    names = [n for n in listed.split("\0") if n]
    assert "pyproject.toml" in names and "setup.py" in names, "not a hoard checkout"
    for name in names:
        source = REPO / name
        if source.is_file():  # tracked but deleted in the working tree: not part of the copy
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _wheel_requirements(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as zf:
        metadata = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        lines = zf.read(metadata).decode().splitlines()
    return [line.split(":", 1)[1].strip() for line in lines if line.startswith("Requires-Dist:")]


def test_wheel_installs_into_a_fresh_venv_and_runs_a_node(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    _clean_copy(checkout)
    assert not (checkout / "src" / Path(*GEN_PACKAGE.split("."))).exists()

    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "build", "--outdir", str(dist), str(checkout)], BUILD_TIMEOUT, env=_clean_env())
    wheel = next(dist.glob("hoard-*.whl"))
    assert next(dist.glob("hoard-*.tar.gz"))  # the wheel was built from this sdist

    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    gen = "/".join(GEN_PACKAGE.split("."))
    for proto in PROTO_FILES:
        stem = proto[: -len(".proto")]
        assert f"{gen}/{stem}_pb2.py" in names and f"{gen}/{stem}_pb2_grpc.py" in names, proto
    runtime = [r for r in _wheel_requirements(wheel) if "extra ==" not in r]
    assert not [r for r in runtime if r.startswith(("grpcio-tools", "psutil", "pytest", "build"))], runtime
    assert "libp2p==0.8.1" in runtime

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    bin_dir = env_dir / "bin"
    env = _clean_env()
    _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
         INSTALL_TIMEOUT, env=env)
    where = _run([str(bin_dir / "python"), "-c", "import hoard; print(hoard.__file__)"], 60, env=env,
                 cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(env_dir), where  # the installed wheel, not the checkout

    payload = os.urandom(3 * 1024 * 1024 + 12345)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    with Daemon(tmp_path / "node", hoard=[str(bin_dir / "hoard")], env=env) as node:
        assert node.info["peerId"].startswith("12D3KooW")

        uploaded = node.cli("--api", node.url, "upload", str(source))
        assert uploaded.returncode == 0, uploaded.stderr.decode()
        cid = uploaded.stdout.decode().strip().splitlines()[-1]
        out = tmp_path / "downloaded.bin"
        downloaded = node.cli("--api", node.url, "download", cid, "-o", str(out))
        assert downloaded.returncode == 0, downloaded.stderr.decode()
        assert out.read_bytes() == payload

        put = node.cli("--api", node.url, "blob", "put", str(source))
        assert put.returncode == 0, put.stderr.decode()
        digest = put.stdout.decode().strip().splitlines()[-1]
        cat = node.cli("--api", node.url, "blob", "cat", digest)
        assert cat.returncode == 0, cat.stderr.decode()
        assert cat.stdout == payload
        probe = ("import pathlib, sys\nfrom hoard.api.grpc.client import GrpcClient\n"  # the build-time modules
                 "with GrpcClient(sys.argv[1]) as client:\n"
                 "    pathlib.Path(sys.argv[3]).write_bytes(b''.join(client.blobs.read(sys.argv[2])))\n")
        over_grpc = tmp_path / "over-grpc.bin"
        _run([str(bin_dir / "python"), "-c", probe, node.grpc_address, digest, str(over_grpc)], 120, env=env,
             cwd=tmp_path)
        assert over_grpc.read_bytes() == payload
    assert node.proc is not None and node.proc.returncode == 0

    capi = tmp_path / "capi"  # the C ABI builds from the installed package (libstorage.h is package data)
    _run([str(bin_dir / "hoard"), "capi", "build", str(capi)], 180, env=env, cwd=tmp_path)
    assert (capi / "libstorage.h").is_file() and (capi / "libstorage.so").is_file()


def test_editable_install_compiles_the_protos_into_src_and_notices_a_changed_proto(tmp_path: Path) -> None:
    checkout = tmp_path / "checkout"
    _clean_copy(checkout)
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = str(env_dir / "bin" / "python")
    env = _clean_env()
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", str(checkout)],
         INSTALL_TIMEOUT, env=env)
    generated = checkout / "src" / Path(*GEN_PACKAGE.split("."))
    assert (generated / "__init__.py").is_file()

    probe = ("import hoard.api.grpc.protos as p\n"
             "print(p.__file__)\n"
             "for name in p.PROTO_FILES:\n"
             "    messages, services = p.load(name)\n"
             "    assert messages.DESCRIPTOR.name == name\n")
    where = _run([python, "-c", probe], 60, env=env, cwd=tmp_path).stdout.strip()
    assert Path(where).is_relative_to(checkout / "src"), where

    edited = checkout / "proto" / PROTO_FILES[0]
    edited.write_bytes(edited.read_bytes() + b"\n// edited\n")
    stale = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
                           check=False)
    assert stale.returncode != 0 and "pip install -e" in stale.stderr, stale.stderr[-2000:]
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "-e", str(checkout)],
         INSTALL_TIMEOUT, env=env)
    _run([python, "-c", probe], 60, env=env, cwd=tmp_path)  # reinstalled: compiled from the new bytes

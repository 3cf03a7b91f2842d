"""`hoard download -o FILE` writes through a temporary file of its own: a `FILE.part` it did not
create is never deleted, truncated or followed, through a running node (REST) and embedded."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from harness import Daemon

from hoard.cli.main import cli
from hoard.errors import InvalidArgumentError
from hoard.outfile import OutputFile

pytestmark = pytest.mark.timeout(180)

DATA = b"downloaded bytes " * 5000
MISSING = "zDvZRwzm3Lk4hYkDMrpRnsRzFfPmZy1npBLyRx2EZTPq7xUa7Mds"  # a well-formed CID nobody stored


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    with Daemon(tmp_path_factory.mktemp("download-file")) as node:
        yield node


@pytest.fixture
def embedded(tmp_path):
    runner = CliRunner()
    data_dir = str(tmp_path / "embedded-data")

    def run(*args: str) -> tuple[int, str, str]:
        result = runner.invoke(cli, ["--data-dir", data_dir, *args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def through_node(running):
    def run(*args: str) -> tuple[int, str, str]:
        result = running.cli(*args)
        return result.returncode, result.stdout.decode(), result.stderr.decode()

    return run


@pytest.fixture(params=["running", "embedded"])
def hoard(request, running, embedded):
    return through_node(running) if request.param == "running" else embedded


def upload(hoard, tmp_path: Path) -> str:
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    code, out, err = hoard("--json", "upload", str(source))
    assert code == 0, err
    return str(json.loads(out)["cid"])


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part") and p.name != "out.bin.part")


def test_a_part_file_of_someone_else_is_left_alone(hoard, tmp_path):
    cid = upload(hoard, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    part = out_dir / "out.bin.part"
    part.write_bytes(b"not yours")
    code, _, err = hoard("download", MISSING, "-o", str(out_dir / "out.bin"))  # fails: nothing is written
    assert code != 0 and "Traceback" not in err
    assert part.read_bytes() == b"not yours" and not (out_dir / "out.bin").exists()
    code, _, err = hoard("download", cid, "-o", str(out_dir / "out.bin"))
    assert code == 0, err
    assert (out_dir / "out.bin").read_bytes() == DATA
    assert part.read_bytes() == b"not yours"
    assert leftovers(out_dir) == []


def test_a_part_symlink_is_not_followed(hoard, tmp_path):
    cid = upload(hoard, tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (out_dir / "out.bin.part").symlink_to(victim)
    code, _, err = hoard("download", cid, "-o", str(out_dir / "out.bin"))
    assert code == 0, err
    assert (out_dir / "out.bin").read_bytes() == DATA
    assert victim.read_bytes() == b"precious" and (out_dir / "out.bin.part").is_symlink()
    assert leftovers(out_dir) == []


def test_a_directory_as_the_output_is_refused_exactly(hoard, tmp_path):
    cid = upload(hoard, tmp_path)
    (tmp_path / "adir").mkdir()
    code, _, err = hoard("download", cid, "-o", str(tmp_path / "adir"))
    assert code != 0 and "is a directory" in err and "Traceback" not in err


def test_output_file_unit(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), OutputFile(target) as out:
        out.write(b"new, but failing")
        raise RuntimeError("stop")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["f"]
    with OutputFile(target) as out:
        out.write(b"new")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["f"]
    with pytest.raises(InvalidArgumentError, match="No such file or directory"):
        OutputFile(tmp_path / "missing-dir" / "f").open()


@pytest.mark.parametrize("family", ["blob", "file"])
def test_blob_cat_and_file_read_write_through_their_own_temp_file(embedded, tmp_path, family):
    source = tmp_path / "source.bin"
    source.write_bytes(DATA)
    if family == "blob":
        code, out, err = embedded("--json", "blob", "put", str(source))
        assert code == 0, err
        read = ["blob", "cat", json.loads(out)["digest"]]
    else:
        code, _, err = embedded("file", "write", "7", str(source))
        assert code == 0, err
        read = ["file", "read", "7"]
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    (out_dir / "out.bin.part").symlink_to(victim)
    code, _, err = embedded(*read, "-o", str(out_dir / "out.bin"))
    assert code == 0, err
    assert (out_dir / "out.bin").read_bytes() == DATA
    assert victim.read_bytes() == b"precious" and (out_dir / "out.bin.part").is_symlink()
    assert leftovers(out_dir) == []
    code, _, err = embedded(*read, "-o", str(tmp_path))  # a directory
    assert code == 2 and "is a directory" in err, err

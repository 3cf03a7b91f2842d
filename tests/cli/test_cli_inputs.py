"""Bad input files and config bytes give one exact line on stderr and a non-zero exit, never a
traceback, and change nothing (`hoard` run as a process, with raw bytes in its arguments)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def hoard(tmp_path: Path, *args: str | bytes) -> tuple[int, str]:
    command = [sys.executable.encode(), b"-m", b"hoard.cli.main", b"--data-dir", os.fsencode(tmp_path / "data"),
               *(os.fsencode(a) for a in args)]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    err = result.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return result.returncode, err.strip()


@pytest.mark.parametrize("command", [["upload"], ["blob", "put"], ["file", "write", "1"]], ids=" ".join)
def test_what_is_wrong_with_the_input_file(tmp_path, command):
    (tmp_path / "adir").mkdir()
    code, err = hoard(tmp_path, *command, "/dev/null")
    assert code == 2 and err.startswith("error: /dev/null is a character device, not a regular file"), err
    code, err = hoard(tmp_path, *command, str(tmp_path / "adir"))
    verb = " ".join(command[:2]) if command[0] != "upload" else "upload"
    assert code == 2 and err == f"error: {tmp_path / 'adir'} is a directory: {verb} takes a file", err
    code, err = hoard(tmp_path, *command, str(tmp_path / "missing"))
    assert code == 3 and err == f"error: no such file: {tmp_path / 'missing'}", err
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    code, err = hoard(tmp_path, *command, str(tmp_path / "dangling"))
    assert code == 3 and "is a symlink to a file that does not exist" in err, err


def test_a_file_name_that_is_not_utf8(tmp_path):
    name = os.fsencode(tmp_path) + b"/bad\xff\x1b[31m.bin"
    with open(name, "wb") as f:
        f.write(b"data")
    code, err = hoard(tmp_path, b"upload", name)
    assert code == 2 and "the file name bad\\xff\\x1b[31m.bin is not valid UTF-8" in err, err
    code, err = hoard(tmp_path, b"upload", os.fsencode(tmp_path) + b"/missing\xfe")
    assert code == 3 and err.endswith("no such file: " + str(tmp_path) + "/missing\\xfe"), err
    listed = subprocess.run([sys.executable, "-m", "hoard.cli.main", "--json", "--data-dir", str(tmp_path / "data"),
                             "list"], capture_output=True, timeout=60, check=True)
    assert json.loads(listed.stdout) == []  # nothing was stored


def test_a_config_that_is_not_utf8(tmp_path):
    config = tmp_path / "config.json"
    config.write_bytes(b'{"storage-quota": "\xff"}')
    code, err = hoard(tmp_path, "--config", str(config), "space")
    assert code == 2 and err == f"error: config file {config} is not UTF-8 text (byte 0xff at offset 19)", err

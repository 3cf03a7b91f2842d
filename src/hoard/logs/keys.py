"""Writer keys: Ed25519 secret keys in PEM files, one per log, under a key directory.

As GDP's gcl-create does, the key file is `<keydir>/<printable log name>.pem` (PKCS#8 PEM,
unencrypted, mode 0600; the directory is made 0700). It is written under a temporary name
before the log exists and renamed once the log's name is known, so that a log never exists
without its key (a crash in between leaves only an orphan temporary file).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Union

import nacl.signing

if TYPE_CHECKING:  # cryptography loads when a key file is read or written
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hoard.errors import LogError
from hoard.logs.names import LogName

__all__ = ["SigningKeyInput", "coerce_signing_key", "find_key", "key_path", "write_key", "write_temp_key"]

SigningKeyInput = Union[nacl.signing.SigningKey, "Ed25519PrivateKey", bytes, str, "os.PathLike[str]"]


def key_path(keydir: Path, name: LogName) -> Path:
    return Path(keydir) / f"{name}.pem"


def _pem(key: nacl.signing.SigningKey) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(bytes(key)).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp_key(keydir: Path, key: nacl.signing.SigningKey) -> Path:
    """Write `key` durably to a fresh temporary file in `keydir` (mode 0600); return its path."""
    keydir = Path(keydir)
    keydir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = keydir / f".new-{secrets.token_hex(8)}.pem.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, _pem(key))
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_key(keydir: Path, name: LogName, tmp: Path) -> Path:
    """Give the temporary key file written by `write_temp_key` its final name (durably)."""
    final = key_path(keydir, name)
    os.replace(tmp, final)
    _fsync_dir(Path(keydir))
    return final


def _load_pem(data: bytes, where: str) -> nacl.signing.SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise LogError(f"cannot read the signing key {where}: {exc}", status=400) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise LogError(f"the signing key {where} is not an Ed25519 key", status=400)
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return nacl.signing.SigningKey(raw)


def find_key(keydir: Path | None, name: LogName) -> nacl.signing.SigningKey | None:
    """The key in `<keydir>/<name>.pem`, or None if there is no such file."""
    if keydir is None:
        return None
    path = key_path(keydir, name)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return _load_pem(data, str(path))


def coerce_signing_key(value: SigningKeyInput) -> nacl.signing.SigningKey:
    """A signing key from a PyNaCl `SigningKey`, a cryptography `Ed25519PrivateKey`, a 32-byte
    seed, PEM bytes, or the path of a PEM file."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(value, nacl.signing.SigningKey):
        return value
    if isinstance(value, Ed25519PrivateKey):
        return nacl.signing.SigningKey(value.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
    if isinstance(value, (bytes, bytearray)):
        if len(value) == 32:
            return nacl.signing.SigningKey(bytes(value))
        return _load_pem(bytes(value), "given")
    if isinstance(value, (str, os.PathLike)):
        try:
            data = Path(value).read_bytes()
        except OSError as exc:
            raise LogError(f"cannot read the signing key {value}: {exc}", status=400) from exc
        return _load_pem(data, str(value))
    raise LogError(f"not a signing key: {type(value).__name__}", status=400)

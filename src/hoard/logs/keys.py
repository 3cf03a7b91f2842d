"""Writer keys: the secret key of each log, in PEM files named after the log, found as GDP finds them.

Key types: **EC** (GDP's default; hoard generates P-256 and reads any named curve) and
**Ed25519** (hoard's default for the logs it creates). A key file is PKCS#8 PEM ("BEGIN PRIVATE
KEY"; traditional "BEGIN EC PRIVATE KEY" is read too), optionally **encrypted** ("BEGIN
ENCRYPTED PRIVATE KEY"): its passphrase comes from a passphrase callback (GDP prompts the user;
a library asks its caller), and a missing or wrong one is LogError 403 (`SKEY_REQUIRED`).

Writing (log_create): the key file is `<keydir>/<printable log name>.pem` (mode 0600; the
directory is made 0700), as GDP's gcl-create writes `KEYS/<name>.pem`. It is written under a
temporary name before the log exists and renamed once the log's name is known, so that a log
never exists without its key (a crash in between leaves only an orphan temporary file).

Finding (log_open for writing, GDP doc §5.1): a file named after the log — `<printable log
name>.pem`, the 43-character name — in each directory of the search path, the first found
wins. The path is hoard's `keydir` first, then GDP's `swarm.gdp.crypto.key.path` (colon-
separated; `~` is the user's home; relative entries are relative to the current directory),
whose default is `.:KEYS:~/.swarm/gdp/keys:/usr/local/etc/swarm/gdp/keys:/etc/swarm/gdp/keys`.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Union

import nacl.signing

if TYPE_CHECKING:  # cryptography loads when a key file is read or written
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hoard.errors import LogError
from hoard.logs.names import LogName
from hoard.logs.records import SigningKey

__all__ = [
    "DEFAULT_KEY_PATH", "KEY_TYPES", "Passphrase", "SigningKey", "SigningKeyInput", "coerce_signing_key",
    "find_key", "find_key_file", "generate_key", "key_path", "parse_key_path", "search_dirs", "write_key", "write_temp_key",
]

SigningKeyInput = Union[nacl.signing.SigningKey, "Ed25519PrivateKey", "EllipticCurvePrivateKey", bytes, str,
                        "os.PathLike[str]"]
Passphrase = bytes | str | Callable[[str], bytes | str | None]
"""A passphrase, or a callback `fn(where) -> passphrase or None` asked only for an encrypted
key (`where` names the file)."""

DEFAULT_KEY_PATH = ".:KEYS:~/.swarm/gdp/keys:/usr/local/etc/swarm/gdp/keys:/etc/swarm/gdp/keys"
"""GDP's default `swarm.gdp.crypto.key.path`."""

KEY_TYPES = ("ed25519", "ec")


def key_path(keydir: Path, name: LogName) -> Path:
    return Path(keydir) / f"{name}.pem"


def parse_key_path(value: str | Sequence[str | os.PathLike[str]] | None) -> tuple[Path, ...]:
    """A key search path: GDP's colon-separated text, or a sequence of directories; None is
    GDP's default. Empty entries are skipped; `~` is expanded."""
    if value is None:
        value = DEFAULT_KEY_PATH
    parts: Iterable[str | os.PathLike[str]] = value.split(":") if isinstance(value, str) else value
    out: list[Path] = []
    for part in parts:
        if not isinstance(part, (str, os.PathLike)):
            raise LogError(f"a key path entry is a directory name, not {type(part).__name__}", status=400)
        text = os.fspath(part)
        if text:
            out.append(Path(os.path.expanduser(text)))
    return tuple(out)


def search_dirs(keydir: Path | None, path: str | Sequence[str | os.PathLike[str]] | None) -> tuple[Path, ...]:
    """The directories searched for a log's key, in order: `keydir`, then `path`'s."""
    dirs = ([Path(keydir)] if keydir is not None else []) + list(parse_key_path(path))
    seen: set[Path] = set()
    return tuple(d for d in dirs if not (d in seen or seen.add(d)))  # type: ignore[func-returns-value]


def generate_key(key_type: str = "ed25519") -> SigningKey:
    """A new writer key: "ed25519" or "ec" (NIST P-256, GDP's key type EC)."""
    kind = key_type.lower() if isinstance(key_type, str) else key_type
    if kind == "ed25519":
        return nacl.signing.SigningKey.generate()
    if kind == "ec":
        from cryptography.hazmat.primitives.asymmetric import ec

        return ec.generate_private_key(ec.SECP256R1())
    raise LogError(f"unknown key type {key_type!r} (ed25519 or ec)", status=400)


def _pem(key: SigningKey, passphrase: bytes | str | None) -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Ed25519PrivateKey.from_private_bytes(bytes(key)) if isinstance(key, nacl.signing.SigningKey) else key
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    else:
        secret = passphrase.encode() if isinstance(passphrase, str) else bytes(passphrase)
        if not secret:
            raise LogError("an empty passphrase encrypts nothing", status=400)
        encryption = serialization.BestAvailableEncryption(secret)
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp_key(keydir: Path, key: SigningKey, passphrase: bytes | str | None = None) -> Path:
    """Write `key` (encrypted with `passphrase`, if given) durably to a fresh temporary file in
    `keydir` (mode 0600); return its path."""
    data = _pem(key, passphrase)
    keydir = Path(keydir)
    keydir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = keydir / f".new-{secrets.token_hex(8)}.pem.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
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


def _ask(passphrase: Passphrase | None, where: str) -> bytes:
    secret = passphrase(where) if callable(passphrase) else passphrase
    if secret is None or secret in (b"", ""):
        raise LogError(f"the signing key {where} is encrypted and no passphrase was given", status=403,
                       gdp_stat="SKEY_REQUIRED")
    if isinstance(secret, str):
        return secret.encode()
    if isinstance(secret, (bytes, bytearray)):
        return bytes(secret)
    raise LogError(f"a passphrase is bytes or str, not {type(secret).__name__}", status=400)


def _load_pem(data: bytes, where: str, passphrase: Passphrase | None = None) -> SigningKey:
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # encrypted: ask for the passphrase (only now)
        secret = _ask(passphrase, where)
        try:
            key = serialization.load_pem_private_key(data, password=secret)
        except (ValueError, TypeError) as exc:
            raise LogError(f"wrong passphrase for the signing key {where} (it cannot be decrypted)", status=403,
                           gdp_stat="SKEY_REQUIRED") from exc
    except ValueError as exc:
        raise LogError(f"cannot read the signing key {where}: {exc}", status=400) from exc
    return _coerce_object(key, where)


def _coerce_object(key: object, where: str) -> SigningKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(key, Ed25519PrivateKey):
        return nacl.signing.SigningKey(key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key
    raise LogError(f"the signing key {where} is {type(key).__name__.removesuffix('PrivateKey') or 'unknown'}: "
                   "hoard signs with EC or Ed25519 keys", status=400)


def find_key_file(keydir: Path | None, name: LogName,
                  path: str | Sequence[str | os.PathLike[str]] | None = None) -> Path | None:
    """The first existing `<dir>/<name>.pem` of `search_dirs(keydir, path)` (`path` None: GDP's
    default), without reading it; None if there is none."""
    for directory in search_dirs(keydir, path):
        candidate = key_path(directory, name)
        if candidate.is_file():
            return candidate
    return None


def find_key(keydir: Path | None, name: LogName, *,
             path: str | Sequence[str | os.PathLike[str]] | None = None,
             passphrase: Passphrase | None = None) -> SigningKey | None:
    """The key in the first `<dir>/<name>.pem` of `search_dirs(keydir, path)` (`path` None:
    GDP's default), or None if there is no such file. An encrypted file asks `passphrase`."""
    for directory in search_dirs(keydir, path):
        candidate = key_path(directory, name)
        try:
            data = candidate.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError as exc:
            raise LogError(f"cannot read the signing key {candidate}: {exc}", status=403,
                           gdp_stat="SKEY_REQUIRED") from exc
        return _load_pem(data, str(candidate), passphrase)
    return None


def coerce_signing_key(value: SigningKeyInput, passphrase: Passphrase | None = None) -> SigningKey:
    """A signing key from a PyNaCl `SigningKey`, a cryptography Ed25519 or EC private key, a
    32-byte Ed25519 seed, PEM bytes, or the path of a PEM file (an encrypted one asks `passphrase`)."""
    if isinstance(value, nacl.signing.SigningKey):
        return value
    if isinstance(value, (bytes, bytearray)):
        if len(value) == 32:
            return nacl.signing.SigningKey(bytes(value))
        return _load_pem(bytes(value), "given", passphrase)
    if isinstance(value, (str, os.PathLike)):
        try:
            data = Path(value).read_bytes()
        except OSError as exc:
            raise LogError(f"cannot read the signing key {value}: {exc}", status=400) from exc
        return _load_pem(data, str(value), passphrase)
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(value, (Ed25519PrivateKey, ec.EllipticCurvePrivateKey)):
        return _coerce_object(value, "given")
    raise LogError(f"not a signing key: {type(value).__name__}", status=400)

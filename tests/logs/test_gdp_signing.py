"""GDP signing as the seed's text describes it (specs/gdp-programmatic-api-v0.8.txt §3.3, §5.1; DIGEST §5).

* PUB metadata is `[md_alg u8][keytype u8][keylen u16 BE][DER public key]`; GDP's default is an
  EC key (keytype 3) with SHA-256 (md_alg 3).
* A record's signature: the digest seeded with the log name (32 bytes) and the serialized
  metadata, then recno (8 bytes, big-endian) and the data; signed with the secret key.
* The secret key is a PEM file named after the log (`<name>.pem`), possibly encrypted; it is
  searched for in the directories of `swarm.gdp.crypto.key.path`, by default ".", "KEYS",
  "~/.swarm/gdp/keys", "/usr/local/etc/swarm/gdp/keys" and "/etc/swarm/gdp/keys".
* open_info: `set_signing_key`, `set_signkey_cb` (invoked only if a key is required, notably
  because it is not already cached), `set_caching` (keep the log cached after close).

The checks below compute signatures with `cryptography` and `hashlib` from that text, not
with hoard's code.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from _logs_kit import WAIT, Collector, TickClock
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hoard.errors import LogError
from hoard.logs import EVENT_DATA, EVENT_EOS, Log, LogService, OpenInfo
from hoard.logs.keys import DEFAULT_KEY_PATH, find_key_file, parse_key_path
from hoard.logs.metadata import PUB
from hoard.logs.records import Datum
from hoard.store import BlockStore

GDP_DEFAULT_PATH = [".", "KEYS", "~/.swarm/gdp/keys", "/usr/local/etc/swarm/gdp/keys", "/etc/swarm/gdp/keys"]


def pub_fields(log: Log) -> tuple[int, int, int, object]:
    value = log.metadata.get(PUB)
    assert value is not None
    md_alg, keytype, keylen = struct.unpack(">BBH", value[:4])
    return md_alg, keytype, keylen, serialization.load_der_public_key(value[4:])


def gdp_message(log: Log, recno: int, data: bytes) -> bytes:
    """What GDP's digest covers: gcl name || serialized metadata || recno (u64 BE) || data."""
    return log.name.raw + log.metadata.serialize() + struct.pack(">Q", recno) + data


def gdp_sign(key: ec.EllipticCurvePrivateKey, log: Log, recno: int, data: bytes) -> bytes:
    return key.sign(gdp_message(log, recno, data), ec.ECDSA(hashes.SHA256()))


def key_file(keydir: Path, log: Log) -> Path:
    return keydir / f"{log.name}.pem"


@pytest.fixture
def service(blockstore: BlockStore, keydir: Path):
    svc = LogService(blockstore, keydir, clock=TickClock(), key_path="")
    yield svc
    svc.close()


def test_an_ec_log_names_gdp_s_key_type_and_digest_in_pub(service, keydir):
    log = service.log_create({"SYN": "ec"}, key_type="ec")
    md_alg, keytype, keylen, public = pub_fields(log)
    assert (md_alg, keytype, keylen) == (3, 3, 256)  # EP_CRYPTO_MD_SHA256, EP_CRYPTO_KEYTYPE_EC, bits
    assert isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == "secp256r1"
    secret = serialization.load_pem_private_key(key_file(keydir, log).read_bytes(), password=None)
    assert isinstance(secret, ec.EllipticCurvePrivateKey)
    assert secret.public_key().public_numbers() == public.public_numbers()
    ed = service.log_create({"SYN": "ed"})
    assert pub_fields(ed)[:3] == (3, 4, 256)  # hoard's Ed25519 keytype stays 4


def test_ec_records_carry_gdp_s_signature(service):
    log = service.log_create(key_type="ec")
    public = pub_fields(log)[3]
    assert isinstance(public, ec.EllipticCurvePublicKey)
    for i in range(1, 6):
        log.append(b"record %d" % i)
    for i in range(1, 6):
        datum = log.read_by_recno(i)
        public.verify(datum.sig, gdp_message(log, i, datum.data), ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):  # the signature binds the record number
            public.verify(datum.sig, gdp_message(log, i + 1, datum.data), ec.ECDSA(hashes.SHA256()))


def test_the_host_accepts_a_record_signed_from_the_seed_s_text_and_refuses_others(service, keydir):
    log = service.log_create(key_type="ec")
    log.append(b"first")
    secret = serialization.load_pem_private_key(key_file(keydir, log).read_bytes(), password=None)
    assert isinstance(secret, ec.EllipticCurvePrivateKey)
    head = log.read_by_recno(1)
    results: list[LogError | None] = []

    def submit(datum: Datum) -> LogError | None:
        import threading
        done = threading.Event()

        def finished(_datum: Datum, error: LogError | None, _tail: object) -> None:
            results.append(error)
            done.set()

        service.host.append(log.name, datum, finished)  # untrusted: the host verifies it
        assert done.wait(WAIT)
        return results[-1]

    ts = service.clock()
    good = Datum(2, ts, b"second", gdp_sign(secret, log, 2, b"second"), head.hash)
    assert submit(good) is None
    forged_key = ec.generate_private_key(ec.SECP256R1())
    forged = Datum(3, service.clock(), b"third", gdp_sign(forged_key, log, 3, b"third"), good.hash)
    error = submit(forged)
    assert error is not None and (error.code, error.gdp_stat) == (403, "CRYPTO_SIGFAIL")
    wrong_recno = Datum(3, service.clock(), b"third", gdp_sign(secret, log, 4, b"third"), good.hash)
    error = submit(wrong_recno)
    assert error is not None and error.code == 403
    assert log.nrecs == 2 and log.read_by_recno(2).data == b"second"


def test_ec_records_verify_on_read_on_subscribe_and_after_reopening(blockstore, keydir):
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as service:
        log = service.log_create(key_type="ec")
        for i in range(1, 4):
            log.append(b"r%d" % i)
        collector = Collector()
        log.subscribe_by_recno(1, 5, collector)
        log.append(b"r4")
        log.append(b"r5")
        events = collector.wait_for(6)
        assert [e.type for e in events] == [EVENT_DATA] * 5 + [EVENT_EOS]
        assert [e.datum.data for e in events[:5]] == [b"r%d" % i for i in range(1, 6)]
        name = log.name
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as again:  # from the store
        reader = again.log_open(name, "ro")
        assert [reader.read_by_recno(i).data for i in range(1, 6)] == [b"r%d" % i for i in range(1, 6)]
        writer = again.log_open(name, "ao")  # the key file is found by the log's name
        assert writer.append(b"r6").recno == 6
        assert reader.read_by_recno(-1).data == b"r6"


def test_an_encrypted_key_asks_the_passphrase_callback_once_needed(service, keydir):
    log = service.log_create(key_type="ec", passphrase="correct horse")
    log.append(b"one")
    log.close()
    pem = key_file(keydir, log).read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    asked: list[str] = []

    def passphrase(where: str) -> str:
        asked.append(where)
        return "correct horse"

    reader = service.log_open(log.name, "ro", info=OpenInfo(passphrase_cb=passphrase))
    assert asked == []  # reading needs no key
    writer = service.log_open(log.name, "ra", info=OpenInfo(passphrase_cb=passphrase))
    assert asked == [str(key_file(keydir, log))]
    assert writer.append(b"two").recno == 2
    writer.close()
    reader.close()


def test_a_missing_or_wrong_passphrase_is_a_clear_error_that_changes_nothing(service, keydir):
    log = service.log_create(key_type="ec", passphrase=b"right")
    log.append(b"one")
    log.close()
    with pytest.raises(LogError) as err:
        service.log_open(log.name, "ra")
    assert (err.value.code, err.value.gdp_stat) == (403, "SKEY_REQUIRED")
    assert "encrypted" in err.value.message and "no passphrase" in err.value.message
    with pytest.raises(LogError) as err:
        service.log_open(log.name, "ra", info=OpenInfo(passphrase_cb=lambda where: "wrong"))
    assert err.value.code == 403 and "wrong passphrase" in err.value.message
    assert service.log_open(log.name, "ro").nrecs == 1
    assert service.log_open(log.name, "ra", info=OpenInfo(passphrase_cb=lambda where: b"right")).nrecs == 1


def test_an_encrypted_ed25519_pem_given_as_a_key(service, tmp_path):
    log = service.log_create()
    seed_key = service.keydir / f"{log.name}.pem"
    secret = serialization.load_pem_private_key(seed_key.read_bytes(), password=None)
    assert isinstance(secret, Ed25519PrivateKey)
    encrypted = tmp_path / "elsewhere.pem"
    encrypted.write_bytes(secret.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.BestAvailableEncryption(b"pw")))
    log.close()
    seed_key.unlink()
    handle = service.log_open(log.name, "ra", signing_key=str(encrypted),
                              info=OpenInfo(passphrase_cb=lambda where: "pw"))
    assert handle.append(b"x").recno == 1


def test_the_default_search_path_is_gdp_s():
    assert DEFAULT_KEY_PATH.split(":") == GDP_DEFAULT_PATH
    home = Path("~").expanduser()
    assert parse_key_path(None) == (Path("."), Path("KEYS"), home / ".swarm/gdp/keys",
                                    Path("/usr/local/etc/swarm/gdp/keys"), Path("/etc/swarm/gdp/keys"))
    assert parse_key_path("a::b") == (Path("a"), Path("b"))


def _move_key(log: Log, keydir: Path, to: Path) -> None:
    to.mkdir(parents=True, exist_ok=True)
    key_file(keydir, log).rename(to / f"{log.name}.pem")


def test_the_key_is_found_in_the_configured_path_by_the_log_s_name(blockstore, keydir, tmp_path):
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as maker:
        log = maker.log_create(key_type="ec")
        log.close()
    _move_key(log, keydir, tmp_path / "second")
    path = f"{tmp_path / 'first'}:{tmp_path / 'second'}"
    assert find_key_file(keydir, log.name, path) == tmp_path / "second" / f"{log.name}.pem"
    assert find_key_file(keydir, log.name, "") is None
    with LogService(blockstore, keydir, clock=TickClock(), key_path=path) as service:
        assert service.log_open(log.name, "ra").append(b"found").recno == 1
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as service:
        with pytest.raises(LogError) as err:
            service.log_open(log.name, "ra")
        assert (err.value.code, err.value.gdp_stat) == (403, "SKEY_REQUIRED")
        assert f"{log.name}.pem" in err.value.message


@pytest.mark.parametrize("where", ["KEYS", "~/.swarm/gdp/keys", "."])
def test_the_default_path_finds_keys_in_gdp_s_places(blockstore, keydir, tmp_path, monkeypatch, where):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as maker:
        log = maker.log_create()
        log.close()
    target = {"KEYS": work / "KEYS", "~/.swarm/gdp/keys": home / ".swarm/gdp/keys", ".": work}[where]
    _move_key(log, keydir, target)
    with LogService(blockstore, keydir, clock=TickClock()) as service:  # key_path None: GDP's default
        assert service.log_open(log.name, "ao").append(b"x").recno == 1


def test_signkey_cb_is_invoked_only_when_a_key_is_required_and_not_cached(blockstore, keydir, tmp_path):
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as maker:
        log = maker.log_create(key_type="ec")
        log.close()
    stash = tmp_path / "stash"
    _move_key(log, keydir, stash)
    calls: list[tuple[object, object]] = []

    def signkey_cb(name, udata):
        calls.append((name, udata))
        return stash / f"{name}.pem"

    info = OpenInfo().set_signkey_cb(signkey_cb, "my udata")
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as service:
        service.log_open(log.name, "ro", info=info)
        assert calls == []  # reading requires no key
        first = service.log_open(log.name, "ra", info=info)
        assert calls == [(log.name, "my udata")]
        second = service.log_open(log.name, "ao", info=info)  # the open handle's key is cached
        assert len(calls) == 1
        second.append(b"a")
        second.close()
        first.close()  # the last writable handle: the key is not kept (GDP's default)
        service.log_open(log.name, "ao", info=info).append(b"b")
        assert len(calls) == 2
        none = OpenInfo().set_signkey_cb(lambda name, udata: None)
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as fresh:
        with pytest.raises(LogError) as err:
            fresh.log_open(log.name, "ao", info=none)
        assert (err.value.code, err.value.gdp_stat) == (403, "SKEY_REQUIRED")


def test_set_caching_keeps_the_key_after_close_until_reclaimed(blockstore, keydir, tmp_path):
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as maker:
        log = maker.log_create(key_type="ec")
        log.close()
    stash = tmp_path / "stash"
    _move_key(log, keydir, stash)
    calls: list[object] = []

    def signkey_cb(name, udata):
        calls.append(name)
        return stash / f"{name}.pem"

    kept = OpenInfo().set_signkey_cb(signkey_cb).set_caching(True)
    with LogService(blockstore, keydir, clock=TickClock(), key_path="") as service:
        service.log_open(log.name, "ao", info=kept).close()
        service.log_open(log.name, "ao", info=kept).close()  # cached: no callback
        assert calls == [log.name]
    with LogService(blockstore, keydir, clock=TickClock(), key_path="", cache_ttl=0) as service:
        service.log_open(log.name, "ao", info=kept).close()
        service.log_open(log.name, "ao", info=kept).close()  # reclaimed at once (ttl 0)
        assert calls == [log.name] * 3


def test_a_key_that_does_not_match_pub_is_refused(service, tmp_path):
    log = service.log_create(key_type="ec")
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(LogError) as err:
        service.log_open(log.name, "ao", signing_key=other)
    assert (err.value.code, err.value.gdp_stat) == (403, "CRYPTO_SIGFAIL")


def test_pub_with_another_key_type_is_refused():
    from hoard.logs.metadata import decode_pub

    der = serialization.load_pem_private_key(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        password=None).public_key().public_bytes(serialization.Encoding.DER,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    for keytype, md_alg in ((1, 3), (2, 3), (3, 1), (4, 3)):  # RSA, DSA, EC with SHA-1, "Ed25519" holding EC
        with pytest.raises(LogError) as err:
            decode_pub(struct.pack(">BBH", md_alg, keytype, 256) + der)
        assert err.value.code == 400
    assert decode_pub(struct.pack(">BBH", 3, 3, 256) + der) == der


def test_ec_records_verify_remotely(tmp_path):
    """A hosts an EC log; B opens it over /hoard/logs/1, appends (signed at B, verified at A)
    and reads and subscribes (verified at B)."""
    import hoard

    config = {"listen-addrs": ["/ip4/127.0.0.1/tcp/0"]}
    a = hoard.Node({"data-dir": str(tmp_path / "a"), **config})
    b = hoard.Node({"data-dir": str(tmp_path / "b"), **config})
    try:
        a.start()
        b.start()
        b.connect(a.peer_id(), list(a.debug().addrs))
        log = a.components.logs.service.log_create({"SYN": "remote ec"}, key_type="ec")  # the node's own LogService
        log.append(b"at a")
        key = Path(a.repo()) / "keys" / f"{log.name}.pem"
        remote = b.logs.open(str(log.name), "ra", signing_key=str(key))
        assert remote.metadata == log.metadata and remote.public_key == log.public_key
        collector = Collector()
        remote.subscribe_by_recno(1, 2, collector)
        second = remote.append(b"from b")
        events = collector.wait_for(3)
        assert [e.datum.data for e in events[:2]] == [b"at a", b"from b"] and events[2].type == EVENT_EOS
        public = pub_fields(log)[3]
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(second.sig, gdp_message(log, 2, b"from b"), ec.ECDSA(hashes.SHA256()))
        assert log.read_by_recno(2) == second == remote.read_by_recno(-1)
    finally:
        b.close()
        a.close()

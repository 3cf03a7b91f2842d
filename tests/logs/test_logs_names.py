"""Log names: 32 bytes, 43-char printable form, gdp_parse_name semantics, the zero name."""

from __future__ import annotations

import base64
import hashlib

import pytest

from hoard.errors import LogError
from hoard.logs import LogName, parse_name


def test_printable_form_is_43_char_urlsafe_base64_without_padding():
    raw = bytes(range(200, 232))
    name = LogName(raw)
    text = str(name)
    assert len(text) == 43
    assert "=" not in text and "+" not in text and "/" not in text
    assert base64.urlsafe_b64decode(text + "=") == raw


def test_parse_name_decodes_a_printable_name_to_itself():
    name = LogName(hashlib.sha256(b"x").digest())
    assert parse_name(str(name)) == name
    assert LogName.from_printable(str(name)) == name


def test_parse_name_hashes_any_other_string_with_sha256():
    assert parse_name("my-log").raw == hashlib.sha256(b"my-log").digest()
    assert parse_name("ünïcode").raw == hashlib.sha256("ünïcode".encode()).digest()


def test_a_43_char_string_that_is_not_canonical_base64_is_hashed():
    name = LogName(bytes(31) + b"\x01")
    text = str(name)
    assert text.endswith("E")
    odd = text[:-1] + "F"  # same 32 bytes under a lenient decoder, but not the printable form
    assert parse_name(odd).raw == hashlib.sha256(odd.encode()).digest()


def test_a_43_char_string_outside_the_alphabet_is_hashed():
    text = "!" * 43
    assert parse_name(text).raw == hashlib.sha256(text.encode()).digest()


def test_all_zero_name_is_invalid_400():
    zero = LogName(bytes(32))
    assert not zero.is_valid()
    with pytest.raises(LogError) as err:
        parse_name(str(zero))
    assert err.value.code == 400
    assert err.value.gdp_stat == "NULL_GCL"
    with pytest.raises(LogError):
        parse_name(bytes(32))


def test_raw_bytes_must_be_32():
    assert parse_name(b"\x01" * 32) == LogName(b"\x01" * 32)
    with pytest.raises(LogError) as err:
        LogName(b"short")
    assert err.value.code == 400


def test_names_are_values():
    a, b = LogName(b"\x02" * 32), LogName(b"\x02" * 32)
    assert a == b and hash(a) == hash(b) and bytes(a) == b"\x02" * 32
    assert {a: 1}[b] == 1
    with pytest.raises(AttributeError):
        a.raw = b"x"  # type: ignore[misc]


def test_the_logs_namespace_is_sorted_and_complete():
    import importlib

    import hoard.logs
    for module in ["hoard.logs"] + [f"hoard.logs.{m}" for m in (
            "names", "metadata", "records", "keys", "store", "subscriptions", "events", "host", "log", "service")]:
        mod = importlib.import_module(module)
        assert list(mod.__all__) == sorted(mod.__all__), module
        assert all(hasattr(mod, name) for name in mod.__all__), module
    assert hoard.logs.EVENT_DATA == 1 and hoard.logs.EVENT_MISSING == 7

"""Header handling of the REST layer: upload mimetypes and filenames, download disposition, ranges."""

import pytest

from hoard.api.rest.headers import (
    ByteRange,
    HeaderError,
    RangeNotSatisfiable,
    content_disposition,
    content_type,
    parse_range,
    upload_filename,
    upload_mimetype,
)


@pytest.mark.parametrize("header, expected", [
    (None, None), ("", None), ("image/png", "image/png"), ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
    ("application/x-www-form-urlencoded", None),  # curl's default for --data-binary
])
def test_upload_mimetype_accepts_known_types(header, expected):
    assert upload_mimetype(header) == expected


@pytest.mark.parametrize("header", ["nonsense", "application/x-no-such-type", "image/", "text/plain\r\nX: y",
                                    "image/" + "p" * 300])
def test_upload_mimetype_refuses_unknown_or_malformed_types(header):
    with pytest.raises(HeaderError):
        upload_mimetype(header)


@pytest.mark.parametrize("header, expected", [
    (None, None), ("attachment", None), ('attachment; filename="a.txt"', "a.txt"), ("attachment; filename=a.txt", "a.txt"),
    ('attachment; filename="with \\"quote\\".txt"', 'with "quote".txt'),
    ("attachment; filename*=UTF-8''%E2%82%AC%20rates.txt", "€ rates.txt"),
    ('attachment; filename="fallback.txt"; filename*=UTF-8\'\'%C3%BC.txt', "ü.txt"),
    ('attachment; filename="\xc3\xbc.txt"', "ü.txt"),  # UTF-8 bytes as a latin-1 header
])
def test_upload_filename_parses_content_disposition(header, expected):
    assert upload_filename(header) == expected


@pytest.mark.parametrize("header", ['attachment; filename="a/b"', 'attachment; filename="..\\\\x"', 'attachment; filename=""',
                                    'attachment; filename=".."', "attachment; filename*=UTF-8''%0A.txt",
                                    'attachment; filename="' + "n" * 256 + '"', "attachment; filename*=nope''%FF"])
def test_upload_filename_refuses_paths_controls_and_long_names(header):
    with pytest.raises(HeaderError):
        upload_filename(header)


def test_content_disposition_quotes_ascii_and_encodes_the_rest():
    assert content_disposition(None) == "attachment"
    assert content_disposition("a b.txt") == 'attachment; filename="a b.txt"'
    assert content_disposition('say "hi".txt') == "attachment; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt"
    assert content_disposition("€.txt") == "attachment; filename=\"_.txt\"; filename*=UTF-8''%E2%82%AC.txt"


def test_content_type_defaults_to_octet_stream():
    assert content_type(None) == "application/octet-stream"
    assert content_type("image/png") == "image/png"
    assert content_type("bad\ntype") == "application/octet-stream"


@pytest.mark.parametrize("header, expected", [
    ("bytes=0-9", ByteRange(0, 10, 100)), ("bytes=90-", ByteRange(90, 100, 100)), ("bytes=-10", ByteRange(90, 100, 100)),
    ("bytes=-1000", ByteRange(0, 100, 100)), ("bytes=50-1000", ByteRange(50, 100, 100)), ("BYTES = 1 - 2", ByteRange(1, 3, 100)),
    (None, None), ("", None), ("bytes=5-4", None), ("bytes=0-1,3-4", None), ("pages=1-2", None), ("bytes=-", None),
    ("bytes=" + "9" * 30 + "-", None),
])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header, size", [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0), ("bytes=-5", 0)])
def test_parse_range_unsatisfiable(header, size):
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_byte_range_content_range():
    assert ByteRange(5, 10, 100).content_range() == "bytes 5-9/100"

"""The Logos dataset format: the same bytes get the CIDs Logos gives them, and decoding checks all.

Expected values are computed independently here (hashlib, a hand-written protobuf writer) or
taken from the Logos sources: the CID the official Go bindings' upload test expects, and the
wire-format fixtures of logos-storage-nim's manifest tests (tests/.../testmanifestcoders).
"""

import hashlib
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hoard.content.formats import (
    DEFAULT_BLOCK_SIZE,
    LogosDatasetWriter,
    LogosManifest,
    MerkleProof,
    MerkleTree,
    block_cid,
    encode_dataset,
    logos_file_meta,
    pad,
    tree_cid,
    verify_block,
)
from hoard.content.formats.logos import nim_mimetype, nim_split_file
from hoard.content.formats.logos_tree import depth
from hoard.errors import IntegrityError, InvalidArgumentError, StateError
from hoard.ids import CID, CODEX_BLOCK, CODEX_MANIFEST, CODEX_ROOT, RAW, SHA2_256

HELLO_CID = "zDvZRwzmAkhzDRPH5EW242gJBNZ2T7aoH2v1fVH66FxXL4kSbvyM"
ZERO = bytes(32)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def c(x: bytes, y: bytes, key: int) -> bytes:
    return sha(x + y + bytes([key]))


def varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))


def field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def envelope(*fields: bytes) -> bytes:
    return field(1, b"".join(fields))


def collect():
    blocks: dict[CID, bytes] = {}
    return blocks, blocks.__setitem__


TREE = CID.from_digest(CODEX_ROOT, sha(b"root"), SHA2_256)


def legacy_header(tree=TREE.binary, block_size=65536, size=12, codec=0xCD02, hcodec=0x12, version=2, extra=b""):
    return (field(1, tree) + field(2, block_size) + field(3, size) + field(4, codec) + field(5, hcodec)
            + field(6, version) + extra)


# -- the CID Logos clients expect -----------------------------------------------------------------
def test_hello_world_as_hello_txt_has_the_logos_cid():
    blocks, put = collect()
    filename, mimetype = logos_file_meta("hello.txt")
    dataset = encode_dataset(b"Hello World!", put, filename=filename, mimetype=mimetype)
    assert str(dataset.manifest_cid) == HELLO_CID
    assert (filename, mimetype) == ("hello.txt", "text/plain")
    # one padded block, then the manifest block
    padded = b"Hello World!" + bytes(DEFAULT_BLOCK_SIZE - 12)
    block = CID.from_digest(CODEX_BLOCK, sha(padded), SHA2_256)
    assert blocks == {block: padded, dataset.manifest_cid: dataset.manifest_bytes}
    # a single block's root is compress(leaf, zero, 3)
    assert dataset.manifest.tree_cid == CID.from_digest(CODEX_ROOT, c(sha(padded), ZERO, 3), SHA2_256)
    # the manifest bytes, written by hand
    assert dataset.manifest_bytes == envelope(legacy_header(dataset.manifest.tree_cid.binary) + field(8, b"hello.txt")
                                              + field(9, b"text/plain"))


def test_hello_manifest_decodes_and_prints_as_logos_json():
    _, put = collect()
    dataset = encode_dataset(b"Hello World!", put, filename="hello.txt", mimetype="text/plain")
    manifest = LogosManifest.decode(dataset.manifest_bytes, CID.parse(HELLO_CID))
    assert manifest == dataset.manifest
    assert (manifest.blocks_count, manifest.block_length(0)) == (1, 12)
    assert manifest.to_json() == {"treeCid": str(manifest.tree_cid), "datasetSize": 12, "blockSize": 65536,
                                  "filename": "hello.txt", "mimetype": "text/plain", "protected": False}
    assert str(manifest.tree_cid).startswith("zDz")


# -- blocks and the tree --------------------------------------------------------------------------
def test_blocks_are_padded_and_addressed_by_sha256():
    assert pad(b"ab", 4) == b"ab\0\0" and pad(b"abcd", 4) == b"abcd"
    with pytest.raises(InvalidArgumentError):
        pad(b"abcde", 4)
    cid = block_cid(pad(b"ab", 4))
    assert (cid.version, cid.codec, cid.hash_code, cid.digest) == (1, CODEX_BLOCK, SHA2_256, sha(b"ab\0\0"))


def test_multi_block_dataset_with_an_odd_block_count():
    data = os.urandom(4 * 1024 + 17)  # 5 blocks of 1 KiB, the last padded
    blocks, put = collect()
    dataset = encode_dataset(data, put, block_size=1024)
    padded = [pad(data[i:i + 1024], 1024) for i in range(0, len(data), 1024)]
    leaves = [sha(p) for p in padded]
    layer1 = [c(leaves[0], leaves[1], 1), c(leaves[2], leaves[3], 1), c(leaves[4], ZERO, 3)]
    layer2 = [c(layer1[0], layer1[1], 0), c(layer1[2], ZERO, 2)]
    root = c(layer2[0], layer2[1], 0)
    assert dataset.tree.layers == [leaves, layer1, layer2, [root]]
    assert dataset.manifest.tree_cid == CID.from_digest(CODEX_ROOT, root, SHA2_256)
    assert (dataset.manifest.dataset_size, dataset.manifest.blocks_count) == (len(data), 5)
    block_cids = [CID.from_digest(CODEX_BLOCK, leaf, SHA2_256) for leaf in leaves]
    assert tree_cid(block_cids) == dataset.manifest.tree_cid
    assert [dataset.tree.leaf_cid(i) for i in range(5)] == block_cids
    # a download reads the blocks in order and keeps datasetSize bytes
    manifest = LogosManifest.decode(blocks[dataset.manifest_cid], dataset.manifest_cid)
    read = b"".join(blocks[cid][:manifest.block_length(i)] for i, cid in enumerate(block_cids))
    assert read == data and manifest.block_length(4) == 17


def test_even_block_count_tree():
    leaves = [sha(bytes([i])) for i in range(4)]
    tree = MerkleTree.from_leaves(leaves)
    assert tree.root == c(c(leaves[0], leaves[1], 1), c(leaves[2], leaves[3], 1), 0)
    assert depth(4) == 2 and depth(1) == 1 and depth(5) == 3


def test_piece_boundaries_do_not_change_the_dataset():
    data = os.urandom(10_000)
    whole_blocks, put = collect()
    whole = encode_dataset(data, put, block_size=777, filename="f.bin")
    pieces_blocks, put = collect()
    writer = LogosDatasetWriter(put, block_size=777, filename="f.bin")
    rng, pos = random.Random(7), 0
    while pos < len(data):
        step = rng.choice([0, 1, 5, 776, 777, 778, 2000])
        writer.write(memoryview(data)[pos:pos + step])
        pos += step
    assert writer.finish().manifest_cid == whole.manifest_cid and pieces_blocks == whole_blocks


@pytest.mark.parametrize("count", [*range(1, 18), 100])
def test_every_proof_verifies_and_round_trips(count):
    leaves = [sha(i.to_bytes(4, "big")) for i in range(count)]
    tree = MerkleTree.from_leaves(leaves)
    for index in range(count):
        proof = tree.proof(index)
        assert len(proof.path) == depth(count)
        proof.verify(tree.leaf_cid(index), tree.root_cid)
        assert MerkleProof.decode(proof.encode()) == proof
        with pytest.raises(IntegrityError):
            proof.verify(tree.leaf_cid((index + 1) % count) if count > 1 else block_cid(b"x"), tree.root_cid)


def test_proof_bytes_are_codex_coders():
    proof = MerkleTree.from_leaves([sha(b"a")]).proof(0)
    # mcodec 0x12, index 0, nleaves 1, path: one node message wrapping 32 zero bytes
    assert proof.encode() == field(1, 0x12) + field(2, 0) + field(3, 1) + field(4, field(1, ZERO))


def test_tree_encodes_all_nodes_and_decodes_checked():
    tree = MerkleTree.from_leaves([sha(bytes([i])) for i in range(3)])
    data = tree.encode()
    nodes = [n for layer in tree.layers for n in layer]
    assert data == field(1, 0x12) + field(2, 3) + b"".join(field(3, field(1, n)) for n in nodes)
    assert MerkleTree.decode(data, tree.root_cid).layers == tree.layers
    forged = field(1, 0x12) + field(2, 3) + b"".join(field(3, field(1, n)) for n in [*nodes[:-1], ZERO])
    with pytest.raises(IntegrityError, match="not the tree of its leaves"):
        MerkleTree.decode(forged)
    with pytest.raises(IntegrityError, match="does not match"):
        MerkleTree.decode(data, TREE)


@pytest.mark.parametrize("data, why", [
    (field(1, 0x13) + field(2, 0) + field(3, 1) + field(4, field(1, ZERO)), "not sha2-256"),
    (field(1, 0x12) + field(2, 1) + field(3, 1) + field(4, field(1, ZERO)), "index 1 of 1"),
    (field(1, 0x12) + field(2, 0) + field(3, 2), "0 nodes"),
    (field(1, 0x12) + field(2, 0) + field(3, 1) + field(4, field(1, b"short")), "node of 5 bytes"),
    (field(1, 0x12) + field(2, b"x") + field(3, 1), "wire type"),
    (b"\xff\xff", "not a protobuf"),
])
def test_bad_proofs_are_refused(data, why):
    with pytest.raises(IntegrityError, match=why):
        MerkleProof.decode(data)


# -- verifying a block that arrived from a peer -----------------------------------------------------
def test_verify_block_against_the_tree():
    data = os.urandom(3000)
    blocks, put = collect()
    dataset = encode_dataset(data, put, block_size=1024)
    manifest, tree = dataset.manifest, dataset.tree
    block2 = blocks[tree.leaf_cid(2)]
    assert verify_block(manifest, 2, block2, tree.proof(2)) == tree.leaf_cid(2)
    with pytest.raises(IntegrityError, match="not block 2"):
        verify_block(manifest, 2, block2[:-1] + b"\1", tree.proof(2))
    with pytest.raises(IntegrityError, match="expected 1024"):
        verify_block(manifest, 2, block2[:952], tree.proof(2))
    with pytest.raises(IntegrityError, match="proof is for block 1"):
        verify_block(manifest, 2, block2, tree.proof(1))
    other = MerkleTree.from_leaves([*tree.layers[0], sha(b"extra")])
    with pytest.raises(IntegrityError, match="of 4, expected block 2 of 3"):
        verify_block(manifest, 2, block2, other.proof(2))


# -- the manifest: both encodings, and validation ----------------------------------------------------
# logos-storage-nim's wire-format fixtures of the versioned format (treeCid: raw sha2-256 0x00..0x1e 0xaa)
UPSTREAM_WITH_NAMES = bytes([
    0x0A, 0x4E, 0x08, 0x00, 0x12, 0x24, 0x01, 0x55, 0x12, 0x20, *range(0x1F), 0xAA, 0x18, 0x80, 0x80, 0x04,
    0x20, 0x80, 0x80, 0x40, 0x28, 0x82, 0x9A, 0x03, 0x30, 0x12, 0x38, 0x02, 0x42, 0x08, *b"test.txt",
    0x4A, 0x0A, *b"text/plain"])
UPSTREAM_LARGE = bytes([
    0x0A, 0x3A, 0x08, 0x00, 0x12, 0x24, 0x01, 0x55, 0x12, 0x20, *range(0x1F), 0xAA, 0x18, 0x80, 0x80, 0x04,
    0x20, 0x80, 0x80, 0x80, 0x80, 0x14, 0x28, 0x82, 0x9A, 0x03, 0x30, 0x12, 0x38, 0x02])
UPSTREAM_TREE = bytes([0x01, 0x55, 0x12, 0x20, *range(0x1F), 0xAA])
CODEX_TREE = CID(bytes([0x01, 0x83, 0x9A, 0x03, 0x12, 0x20, *range(0x1F), 0xAA]))


def _with_codex_tree(upstream: bytes) -> bytes:
    """The upstream fixture with its raw treeCid replaced by the codex-root CID of the same digest."""
    body = upstream[2:].replace(b"\x12\x24" + UPSTREAM_TREE, b"\x12\x26" + CODEX_TREE.binary)
    return bytes([0x0A, len(body)]) + body


def test_versioned_format_matches_the_upstream_fixtures():
    manifest = LogosManifest(CODEX_TREE, 1048576, 65536, "test.txt", "text/plain", manifest_version=0)
    assert manifest.encode()[1] == _with_codex_tree(UPSTREAM_WITH_NAMES)
    assert LogosManifest.decode(_with_codex_tree(UPSTREAM_WITH_NAMES)) == manifest
    large = LogosManifest.decode(_with_codex_tree(UPSTREAM_LARGE))
    assert (large.dataset_size, large.manifest_version, large.filename) == (5 << 30, 0, None)
    assert large.encode()[1] == _with_codex_tree(UPSTREAM_LARGE)


def test_upstream_fixture_with_a_raw_tree_cid_is_refused_clearly():
    with pytest.raises(IntegrityError, match="not a Logos tree CID"):
        LogosManifest.decode(UPSTREAM_WITH_NAMES)


def test_later_manifest_versions_are_unsupported():
    data = bytearray(_with_codex_tree(UPSTREAM_LARGE))
    data[3] = 1  # the manifestVersion varint, as the upstream test corrupts it
    with pytest.raises(InvalidArgumentError, match="manifestVersion 1"):
        LogosManifest.decode(bytes(data))


def test_both_formats_of_one_dataset_differ_only_in_encoding():
    legacy = LogosManifest(TREE, 100, 64, "a.txt", "text/plain")
    versioned = LogosManifest(TREE, 100, 64, "a.txt", "text/plain", manifest_version=0)
    (legacy_cid, legacy_bytes), (versioned_cid, versioned_bytes) = legacy.encode(), versioned.encode()
    assert legacy_cid != versioned_cid and legacy_cid.codec == versioned_cid.codec == CODEX_MANIFEST
    assert LogosManifest.decode(legacy_bytes, legacy_cid) == legacy
    assert LogosManifest.decode(versioned_bytes, versioned_cid) == versioned


def test_unknown_fields_are_skipped_and_empty_names_read_as_none():
    data = envelope(legacy_header(extra=field(8, b"") + field(9, b"") + field(15, 7))) + field(3, b"junk")
    manifest = LogosManifest.decode(data)
    assert (manifest.filename, manifest.mimetype, manifest.dataset_size) == (None, None, 12)


def test_manifest_must_match_its_cid():
    _, data = LogosManifest(TREE, 5).encode()
    with pytest.raises(IntegrityError):
        LogosManifest.decode(data, CID.sha256(b"other", CODEX_MANIFEST))
    with pytest.raises(InvalidArgumentError, match="not a Logos manifest CID"):
        LogosManifest.decode(data, CID.sha256(data, RAW))


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"\xff" * 8, "not a protobuf"),
    (envelope(legacy_header())[:8], "not a protobuf"),
    (field(2, b"x"), "no Header"),
    (field(1, 5), "wire type"),
    (envelope(field(1, TREE.binary) + field(2, 65536)), "missing datasetSize, codec, hcodec, version"),
    (envelope(legacy_header(codec=0x55)), "codec is 0x55"),
    (envelope(legacy_header(hcodec=0x1E)), "hcodec is 0x1e"),
    (envelope(legacy_header(version=1)), "version is 0x1"),
    (envelope(legacy_header(tree=b"\x01\x02")), "treeCid is not a CID"),
    (envelope(legacy_header(tree=CID.sha256(b"x", CODEX_BLOCK).binary)), "not a Logos tree CID"),
    (envelope(legacy_header(size=0)), "datasetSize 0"),
    (envelope(legacy_header(block_size=0)), "blockSize 0"),
    (envelope(legacy_header(block_size=1 << 40)), "blockSize"),
    (envelope(legacy_header(block_size=1, size=1 << 40)), "more than the limit"),
    (envelope(legacy_header(size=b"12")), "wire type"),
    (envelope(legacy_header(extra=field(8, b"../etc/passwd"))), "not a safe base name"),
    (envelope(legacy_header(extra=field(8, b"a/b"))), "not a safe base name"),
    (envelope(legacy_header(extra=field(8, b".."))), "not a safe base name"),
    (envelope(legacy_header(extra=field(8, b"line\nbreak"))), "not a safe base name"),
    (envelope(legacy_header(extra=field(8, b"\xff\xfe"))), "not UTF-8"),
    (envelope(legacy_header(extra=field(8, b"x" * 256))), "longer than 255"),
    (envelope(legacy_header(extra=field(9, "tëxt/plain".encode()))), "not printable ASCII"),
    (b"\x0a\x80\x80\x04" + bytes(65536), "more than"),
])
def test_bad_manifests_are_refused_with_a_clear_message(data, why):
    with pytest.raises(IntegrityError, match=why):
        LogosManifest.decode(data)


def test_protected_manifests_are_unsupported():
    with pytest.raises(InvalidArgumentError, match="erasure-coded"):
        LogosManifest.decode(envelope(legacy_header(extra=field(7, field(1, 3)))))


@pytest.mark.parametrize("kwargs", [
    {"tree_cid": CID.sha256(b"x", RAW)}, {"dataset_size": 0}, {"block_size": 0}, {"filename": "a/b"},
    {"mimetype": "\x00"}, {"manifest_version": 1}, {"uploaded_at": 5, "manifest_version": 0},
])
def test_constructor_validates(kwargs):
    with pytest.raises(InvalidArgumentError):
        LogosManifest(**{"tree_cid": TREE, "dataset_size": 1, **kwargs})


def test_uploaded_at_of_some_codex_versions_round_trips():
    manifest = LogosManifest(TREE, 12, uploaded_at=1_700_000_000)
    assert LogosManifest.decode(manifest.encode()[1]) == manifest
    assert manifest.encode()[1] == envelope(legacy_header() + field(10, 1_700_000_000))


# -- the writer ---------------------------------------------------------------------------------------
def test_empty_dataset_is_refused_as_logos_refuses_it():
    _, put = collect()
    with pytest.raises(InvalidArgumentError, match="empty dataset"):
        encode_dataset(b"", put)


def test_writer_is_finished_once_and_checks_its_arguments_first():
    blocks, put = collect()
    writer = LogosDatasetWriter(put, block_size=4)
    writer.write(b"abcdefghij")
    assert writer.size == 10 and len(blocks) == 2
    writer.finish()
    with pytest.raises(StateError):
        writer.write(b"x")
    with pytest.raises(StateError):
        writer.finish()
    with pytest.raises(InvalidArgumentError):
        LogosDatasetWriter(put, block_size=0)
    with pytest.raises(InvalidArgumentError, match="safe base name"):
        LogosDatasetWriter(put, filename="../x")


# -- filename and mimetype, as Nim gives them ---------------------------------------------------------
@pytest.mark.parametrize("path, expected", [
    ("usr/local/nimc.html", ("usr/local", "nimc", ".html")),  # Nim's own examples
    ("/usr/local/os", ("/usr/local", "os", "")),
    ("/usr/local/", ("/usr/local", "", "")),
    ("/tmp.txt", ("/", "tmp", ".txt")),
    ("hello.txt", ("", "hello", ".txt")),
    (".bashrc", ("", ".bashrc", "")),
    ("dir/.hidden", ("dir", ".hidden", "")),
    ("a.tar.gz", ("", "a.tar", ".gz")),
    ("a..b", ("", "a.", ".b")),
    ("file.", ("", "file.", "")),
])
def test_nim_split_file(path, expected):
    assert nim_split_file(path) == expected


def test_nim_mimetypes():
    assert nim_mimetype("txt") == "text/plain" and nim_mimetype(".txt") == "text/plain"
    assert nim_mimetype("MP4") == "video/mp4" and nim_mimetype("html") == "text/html"
    assert nim_mimetype("b") == "chemical/x-molconn-Z"  # Nim's table spells it so
    assert nim_mimetype("") is None and nim_mimetype("invalid") is None
    assert nim_mimetype("\u212apl") is None  # only ASCII is lowercased, as Nim's toLowerAscii


@pytest.mark.parametrize("path, expected", [
    ("hello.txt", ("hello.txt", "text/plain")),
    ("/data/Photo.JPG", ("Photo.JPG", "image/jpeg")),
    ("archive.tar.gz", ("archive.tar.gz", "application/gzip")),
    ("README", ("README", None)),
    ("x.unknownext", ("x.unknownext", None)),
    ("", (None, None)),
])
def test_logos_file_meta(path, expected):
    assert logos_file_meta(path) == expected


# -- no input makes the decoders fail other than with a hoard error ----------------------------------
_VALID = LogosManifest(TREE, 100_000, 1024, "a.txt", "text/plain").encode()[1]
_PROOF = MerkleTree.from_leaves([sha(bytes([i])) for i in range(7)]).proof(5).encode()


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)).map(
                     lambda m: _VALID[:m[0]] + bytes([m[1]]) + _VALID[m[0] + 1:])))
def test_manifest_decoder_fails_only_with_hoard_errors(data):
    try:
        manifest = LogosManifest.decode(data)
    except (IntegrityError, InvalidArgumentError):
        return
    assert LogosManifest.decode(manifest.encode()[1]) == manifest


@settings(max_examples=300, deadline=None)
@given(st.tuples(st.integers(0, len(_PROOF) - 1), st.integers(0, 255)).map(
    lambda m: _PROOF[:m[0]] + bytes([m[1]]) + _PROOF[m[0] + 1:]))
def test_proof_decoder_fails_only_with_hoard_errors(data):
    try:
        MerkleProof.decode(data)
    except IntegrityError:
        pass

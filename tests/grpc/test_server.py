"""The node's gRPC server: address reporting, reflection, message limits, contracts, CLI."""

import json
import os

import blake3
import grpc
import pytest
from _grpc_node import CASTORE_SPEC, HUGO_SPEC, REPO, RPC_TIMEOUT, hugo_proto_from_markdown, spec_dir
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

pytestmark = pytest.mark.timeout(180)

SERVICES = {"tvix.castore.v1.BlobService": ["Stat", "Read", "Put"],
            "hugo.v1.storage.StorageService": ["Read", "StreamRead", "Write", "StreamWrite"]}


def test_node_reports_its_grpc_address_at_start_and_in_node_json(grpc_node):
    host, port = grpc_node.grpc_address.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    runtime = json.loads((grpc_node.data_dir / "node.json").read_text())
    assert runtime["grpcAddr"] == grpc_node.grpc_address


def test_reflection_lists_and_describes_both_services(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    assert set(SERVICES) <= set(database.get_services())
    pool = DescriptorPool(database)
    for name, methods in SERVICES.items():
        assert [m.name for m in pool.FindServiceByName(name).methods] == methods


def test_reflection_answers_the_v1_protocol_too(channel):
    from grpc_reflection.v1alpha import reflection_pb2  # v1 has the same messages

    info = channel.stream_stream("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    responses = info(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=RPC_TIMEOUT)
    names = {s.name for response in responses for s in response.list_services_response.service}
    assert set(SERVICES) <= names


def test_a_generic_client_can_call_through_reflection(channel):
    """What grpcurl does: find the method by reflection, build messages from the descriptors."""
    from google.protobuf import message_factory

    pool = DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    method = pool.FindServiceByName("tvix.castore.v1.BlobService").methods_by_name["Stat"]
    request_cls = message_factory.GetMessageClass(method.input_type)
    response_cls = message_factory.GetMessageClass(method.output_type)
    stat = channel.unary_unary("/tvix.castore.v1.BlobService/Stat", request_serializer=request_cls.SerializeToString,
                               response_deserializer=response_cls.FromString)
    with pytest.raises(grpc.RpcError) as info:
        stat(request_cls(digest=os.urandom(32)), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_messages_over_the_receive_limit_are_refused(blobs, stubs):
    too_big = stubs.castore.BlobChunk(data=b"\0" * (33 << 20))  # past 32 MiB (hugo's message size) + framing
    with pytest.raises(grpc.RpcError) as info:
        blobs.Put(iter([too_big]), timeout=RPC_TIMEOUT)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.skipif(spec_dir() is None, reason="the seed specs are not available here")
def test_proto_files_are_the_spec_contracts_unchanged():
    specs = spec_dir()
    assert (REPO / "proto/tvix/castore/v1/rpc_blobstore.proto").read_bytes() == (specs / CASTORE_SPEC).read_bytes()
    assert (REPO / "proto/hugo/v1/storage/storage.proto").read_text() == \
        hugo_proto_from_markdown((specs / HUGO_SPEC).read_text())


def test_cli_blob_commands_against_the_running_node(grpc_node, tmp_path):
    """The CLI reaches the running node over REST (NodeClient); gRPC serves the same blobs."""
    data = os.urandom(1_500_000)
    source = tmp_path / "blob.bin"
    source.write_bytes(data)
    put = grpc_node.cli("blob", "put", str(source))
    assert put.returncode == 0, put.stderr
    digest = put.stdout.decode().strip().splitlines()[-1]
    assert digest.startswith("b3:")
    stat = grpc_node.cli("--json", "blob", "stat", digest)
    assert stat.returncode == 0, stat.stderr
    assert json.loads(stat.stdout)["size"] == len(data)
    assert json.loads(stat.stdout)["hex"] == blake3.blake3(data).hexdigest()
    cat = grpc_node.cli("blob", "cat", digest)
    assert cat.returncode == 0 and cat.stdout == data


def test_cli_file_write_and_read_at_versions_against_the_running_node(grpc_node, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.write_bytes(b"A" * 1000)
    second.write_bytes(b"B" * 10)
    ino = "424242"
    assert grpc_node.cli("file", "write", ino, str(first)).returncode == 0
    written = grpc_node.cli("--json", "file", "write", ino, "--index", "0", str(second))
    assert written.returncode == 0, written.stderr
    assert json.loads(written.stdout)["indices"] == [0]
    assert json.loads(written.stdout)["version"] == 2  # from the hugo-version trailer
    assert grpc_node.cli("file", "read", ino, "--version", "1").stdout == b"A" * 1000
    assert grpc_node.cli("file", "read", ino).stdout == b"B" * 10
    missing = grpc_node.cli("file", "read", ino, "--version", "3")
    assert missing.returncode == 3 and b"no version 3" in missing.stderr


def test_a_grpc_port_in_use_is_a_clear_error(grpc_node, tmp_path):
    import hoard
    from hoard.api.grpc import serve

    port = int(grpc_node.grpc_address.rsplit(":", 1)[1])
    with (hoard.Node({"data-dir": str(tmp_path / "second")}) as second,
          pytest.raises(hoard.errors.StateError, match=f"cannot serve gRPC on 127.0.0.1:{port}")):
        serve(second, "127.0.0.1", port)

"""The public namespace is deliberate: `__all__` is sorted and every name in it exists."""

import hoard
import hoard.errors


def test_all_is_sorted_and_complete():
    for module in (hoard, hoard.errors):
        assert list(module.__all__) == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_error_has_a_distinct_stable_code_and_mappings():
    classes = [getattr(hoard.errors, n) for n in hoard.errors.__all__
               if isinstance(getattr(hoard.errors, n), type) and issubclass(getattr(hoard.errors, n), hoard.HoardError)]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes))
    for cls in classes:
        assert isinstance(cls.grpc_status, str) and 400 <= cls.http_status < 600 or cls is hoard.HoardError
        assert isinstance(cls.exit_code, int) and cls.exit_code > 0


def test_node_and_async_node_offer_the_same_operations():
    ops = {n for n in dir(hoard.Node) if not n.startswith("_")}
    async_ops = {n for n in dir(hoard.AsyncNode) if not n.startswith("_")}
    assert ops == async_ops
    assert {"upload_init", "upload_file", "download_stream", "space", "delete", "fetch", "debug"} <= ops
    from hoard.node import async_node, node

    for name in ("NetApi", "BlobsApi", "FilesApi", "LogsApi", "TransferApi", "DataTransfer"):
        sync_ops = {n for n in dir(getattr(node, name)) if not n.startswith("_")}
        assert sync_ops and sync_ops == {n for n in dir(getattr(async_node, f"Async{name}")) if not n.startswith("_")}


def test_node_namespaces_are_declared_and_typed(tmp_path):
    with hoard.Node({"data-dir": str(tmp_path / "d")}) as node:
        log = node.logs.create(name="by-keyword")  # no dispatcher parameter named `name` to clash with
        assert node.logs.open(name=str(log.name), mode="ro").name == log.name
        assert node.logs.writable(log.name)
        assert node.blobs.stat(node.blobs.put(b"abc").digest).size == 3
        assert node.net.peers() == [] and node.net.addrs() == []

"""The Catalog conformance suite. Every catalog backend's tests subclass `CatalogConformance`.

Importable without pytest (xunit-style setup and teardown), like
`blob_testing`.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from hoard.errors import InvalidArgumentError
from hoard.store.catalog import Catalog, CatalogBatch

__all__ = ["CatalogConformance", "PersistentCatalogConformance"]


class CatalogConformance:
    """Behaviours every Catalog must have."""

    catalog: Catalog
    tmp: Path

    def make_catalog(self, path: Path) -> Catalog:
        """A new, empty catalog keeping any files under `path`."""
        raise NotImplementedError

    def setup_method(self, method: Any = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="hoard-catalog-"))
        self.catalog = self.make_catalog(self.tmp)

    def teardown_method(self, method: Any = None) -> None:
        try:
            self.catalog.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def test_missing_row_is_none(self) -> None:
        assert self.catalog.get("t", b"k") is None
        assert list(self.catalog.scan("t")) == []

    def test_put_get_delete(self) -> None:
        self.catalog.commit(CatalogBatch().put("t", b"k", b"v"))
        assert self.catalog.get("t", b"k") == b"v"
        assert self.catalog.get("other", b"k") is None
        self.catalog.commit(CatalogBatch().delete("t", b"k"))
        assert self.catalog.get("t", b"k") is None

    def test_scan_by_prefix_in_key_order(self) -> None:
        self.catalog.commit(CatalogBatch().put("t", b"b2", b"3").put("t", b"a", b"0")
                            .put("t", b"b1", b"2").put("t", b"c", b"4").put("u", b"b0", b"x"))
        assert list(self.catalog.scan("t", b"b")) == [(b"b1", b"2"), (b"b2", b"3")]
        assert [k for k, _ in self.catalog.scan("t")] == [b"a", b"b1", b"b2", b"c"]

    def test_scan_is_a_snapshot(self) -> None:
        self.catalog.commit(CatalogBatch().put("t", b"a", b"1").put("t", b"b", b"2"))
        seen = []
        for key, _ in self.catalog.scan("t"):
            seen.append(key)
            self.catalog.commit(CatalogBatch().put("t", b"z" + key, b"new"))
        assert seen == [b"a", b"b"]

    def test_batch_is_atomic_and_last_write_wins(self) -> None:
        batch = CatalogBatch().put("t", b"k", b"1").delete("t", b"k").put("u", b"k", b"2")
        self.catalog.commit(batch)
        assert self.catalog.get("t", b"k") is None and self.catalog.get("u", b"k") == b"2"

    def test_empty_commit_and_sync_are_fine(self) -> None:
        self.catalog.commit(CatalogBatch(), durable=True)
        self.catalog.sync()

    def test_bad_table_name_is_refused_before_anything_changes(self) -> None:
        for bad in ("", "has space", "x" * 65):
            try:
                CatalogBatch().put(bad, b"k", b"v")
            except InvalidArgumentError:
                continue
            raise AssertionError(f"table name {bad!r} accepted")

    def test_close_is_idempotent(self) -> None:
        other = self.make_catalog(self.tmp / "second")
        other.close()
        other.close()



class PersistentCatalogConformance(CatalogConformance):
    """The suite plus persistence."""

    def reopen_catalog(self, catalog: Catalog, path: Path) -> Catalog:
        """Close `catalog` and open the same data again."""
        raise NotImplementedError

    def test_rows_survive_reopen(self) -> None:
        self.catalog.commit(CatalogBatch().put("datasets", b"k", b"v"), durable=True)
        self.catalog = self.reopen_catalog(self.catalog, self.tmp)
        assert self.catalog.get("datasets", b"k") == b"v"

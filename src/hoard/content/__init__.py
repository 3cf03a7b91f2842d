"""Content: chunkers, manifests, the block index, datasets, the ingest path, upload and download sessions."""

from hoard.content.chunker import DEFAULT_BLOCK_SIZE, CdcChunker, FixedChunker
from hoard.content.download import LocalReader
from hoard.content.ingest import Ingest, IngestSession
from hoard.content.manifest import Manifest, guess_mimetype
from hoard.content.repo import ContentStore, DatasetInfo, Space
from hoard.content.upload import Upload

__all__ = ["DEFAULT_BLOCK_SIZE", "CdcChunker", "ContentStore", "DatasetInfo", "FixedChunker", "Ingest",
           "IngestSession", "LocalReader", "Manifest", "Space", "Upload", "guess_mimetype"]

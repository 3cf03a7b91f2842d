"""The bounds hoard enforces on everything that comes from outside, in one place.

Every decoder checks its input against these before doing work proportional to it, so a
hostile peer, web page or caller cannot make a node spend unbounded time or memory.
docs/security.md explains each bound and the threat it answers.
"""

from __future__ import annotations

from typing import Final

# -- identifiers ----------------------------------------------------------------------
#: Longest CID text accepted. A CIDv1 with a 64-byte digest is under 80 bytes; written in
#: base2 (the most verbose multibase) that is ~650 characters. Anything longer is refused
#: before any multibase decoding (some decoders are quadratic in the input length).
MAX_CID_TEXT: Final = 700
#: Longest binary CID accepted (version + codec + multihash code/length + 64-byte digest).
MAX_CID_BYTES: Final = 96

# -- the block index (hoard's dag-cbor dataset format) ---------------------------------
#: Entries in one block-index node (the writer's fan-out is 1024).
MAX_INDEX_FANOUT: Final = 1024
#: Levels of the block index below the manifest: 1024**6 blocks is far beyond any dataset.
MAX_INDEX_DEPTH: Final = 6
#: Blocks in one dataset: 2**26 blocks of 64 KiB is 4 TiB.
MAX_DATASET_BLOCKS: Final = 1 << 26

# -- dataset manifests (content/manifest.py) --------------------------------------------
#: Largest data block anywhere (a block always fits one network or gRPC message), except hugo file blocks.
MAX_BLOCK_BYTES: Final = 4 << 20
#: Largest hugo file block (one `Write`/`StreamWrite` message: hugo's 32 MiB gRPC message size, DIGEST §2).
#: Such blocks stay local: the block protocols serve blocks up to MAX_BLOCK_BYTES only.
MAX_FILE_BLOCK_BYTES: Final = 32 << 20
#: Largest encoded manifest node; a real one is under 1 KiB.
MAX_MANIFEST_BYTES: Final = 4096
#: Longest dataset filename, in UTF-8 bytes (Logos MaxFilenameSize).
MAX_FILENAME_BYTES: Final = 255
#: Longest dataset mimetype, in bytes (Logos MaxMimetypeSize).
MAX_MIMETYPE_BYTES: Final = 255
#: Longest chunker description (e.g. "fastcdc-v2020(131072,262144,524288)").
MAX_CHUNKER_TEXT: Final = 64

# -- logging (ratelog.py) ------------------------------------------------------------------
#: Protocol violations logged per peer per window; the rest are counted, then summarised.
VIOLATION_LOG_BURST: Final = 5
#: The window of VIOLATION_LOG_BURST, in seconds.
VIOLATION_LOG_WINDOW: Final = 60.0
#: Peers whose violations are tracked at once (the least recent is forgotten first).
VIOLATION_LOG_KEYS: Final = 1024

# -- /hoard/logs/1 (logs/conn.py, logs/remote.py) -------------------------------------------
#: Calls (OPEN, NRECS, READ, READ_TS, SUBSCRIBE) a client may have unanswered on one stream;
#: the client waits for room, a host resets a stream that exceeds it.
LOG_MAX_OUTSTANDING_CALLS: Final = 256
#: Reply bytes a host holds for one stream that the peer has not read yet; past it, the host
#: waits (up to LOG_REPLY_STALL_SECONDS) before answering the next call, then resets the stream.
LOG_MAX_UNSENT_REPLY_BYTES: Final = 8 << 20
#: How long a host waits for a peer to read its replies before resetting the stream.
LOG_REPLY_STALL_SECONDS: Final = 20.0
#: Received frames waiting to be handled on one stream (appends are handled on arrival).
LOG_MAX_PENDING_FRAMES: Final = 4096
#: `/hoard/logs/1` streams one peer may have open to a host at once, and all peers together.
LOG_MAX_STREAMS_PER_PEER: Final = 8
LOG_MAX_STREAMS: Final = 512

# -- /hoard/transfer/1 (transfer/) ----------------------------------------------------------
#: Largest encoded voucher or voucher result (a deal proposal or a payment voucher is a few KiB).
TRANSFER_MAX_VOUCHER_BYTES: Final = 16 << 10
#: Longest voucher (result) type identifier, and peer-ID text in a channel ID.
TRANSFER_MAX_TYPE_ID: Final = 128
TRANSFER_MAX_PEER_TEXT: Final = 128
#: Channels a peer may have open with this node as responder (not finished), and all peers.
#: A sending channel whose peer does not read holds about 20 MiB (its in-flight window,
#: a store batch and the stream's buffers), so these also bound that memory (64 x ~20 MiB).
TRANSFER_MAX_CHANNELS_PER_PEER: Final = 8
TRANSFER_MAX_CHANNELS: Final = 64
#: Bytes all sending channels together may hold in memory (blocks read from the store and queued on
#: streams, not yet written). Without it, 64 channels whose peers never read held ~1.3 GB; with
#: it, a sender waits for room (one whose peer reads gets it back as its bytes are written).
TRANSFER_SEND_BUDGET: Final = 256 << 20
#: Finished (completed, failed, cancelled) channels a node keeps, in memory and in its store; the
#: oldest are forgotten, so `hoard transfer list` / ListChannels stay bounded (256 channels with
#: 16 KiB vouchers are ~4 MiB, well under the gRPC message limit).
TRANSFER_MAX_FINISHED_CHANNELS: Final = 256
#: `/hoard/transfer/1` streams one peer may have open to this node at once, and all peers.
TRANSFER_MAX_STREAMS_PER_PEER: Final = 64
TRANSFER_MAX_STREAMS: Final = 1024

# -- REST API (api/rest/security.py, api/rest/server.py) ------------------------------------
#: Uploads (`POST /data`) served at once; more are answered 503 with Retry-After.
REST_MAX_UPLOADS: Final = 8
#: Smallest `blockSize` a REST upload may ask for (0 still means the default, 65536).
REST_MIN_BLOCK_SIZE: Final = 4096
#: Seconds a client has to send a request's headers (from connecting, or after the last answer).
REST_HEADER_TIMEOUT: Final = 10.0
#: Seconds an upload body may stall between two pieces before the request is dropped.
REST_BODY_IDLE_TIMEOUT: Final = 30.0
#: Seconds an idle keep-alive connection is kept open.
REST_KEEP_ALIVE: Final = 5
#: Connections (and requests in progress) at once; more are answered 503. High enough that slow
#: clients (closed after REST_HEADER_TIMEOUT) cannot crowd out others; an idle connection is small.
REST_MAX_CONNECTIONS: Final = 1024
#: Largest request head (request line and headers).
REST_MAX_HEADER_BYTES: Final = 16 << 10

# -- gRPC API (api/grpc/server.py, api/grpc/streams.py) ----------------------------------------
#: Threads serving gRPC calls.
GRPC_MAX_WORKERS: Final = 48
#: Streaming calls (Subscribe, Events, castore Put/Read, hugo streams, reflection) at once; more
#: are refused with RESOURCE_EXHAUSTED, so GRPC_MAX_WORKERS - GRPC_MAX_STREAMS threads are always
#: left for unary calls, however many long-lived streams clients hold open.
GRPC_MAX_STREAMS: Final = 32
#: Events one server stream (log Subscribe, transfer Events) holds for a client that has not read
#: them yet, and their bytes; past either, the stream is ended with RESOURCE_EXHAUSTED.
GRPC_STREAM_MAX_QUEUED: Final = 4096
GRPC_STREAM_MAX_QUEUED_BYTES: Final = 16 << 20
#: Seconds an overflowed stream waits for its client to read what was sent before it is cancelled.
GRPC_STREAM_STALL_SECONDS: Final = 10.0

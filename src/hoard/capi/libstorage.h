/*
 * libstorage.h: the Logos Storage C API, served by hoard.
 *
 * This is the callback generation of the header (DIGEST §1.1, the "first libstorage.h"):
 * every call, storage_version, storage_revision and storage_destroy included, takes
 * (..., StorageCallback callback, void *userData). storage_peer_debug is always compiled in.
 * `hoard capi build --abi current` builds today's generation instead (libstorage_current.h).
 *
 * Which call does what (docs/capi.md has the details):
 *  - storage_version and storage_revision call back on the calling thread, once, with RET_OK
 *    and the text, before they return RET_OK.
 *  - storage_destroy is synchronous and never calls back: it closes the node if still open and
 *    frees the context before it returns RET_OK (RET_ERR for an unknown or destroyed context).
 *    No callback of the context runs after it returns, so the caller may free userData then.
 *  - Every other call answers asynchronously, as follows.
 *  - The int a function returns is the dispatch status only: RET_MISSING_CALLBACK when the
 *    callback is NULL (nothing else happens), RET_OK once the request was accepted, RET_ERR
 *    when it could not be dispatched; in that last case the callback has already been called
 *    once with RET_ERR and a message starting "libstorage error: " before the function returned.
 *  - After RET_OK, the result arrives later as exactly one final callback, RET_OK with the
 *    result string (possibly "") or RET_ERR with the error message, after any RET_PROGRESS
 *    callbacks of that request.
 *  - Callbacks of a context run on its node's worker thread (close and calls after close: on a
 *    short-lived thread of the context), one at a time and in order; never on the calling
 *    thread once the call has returned. Callbacks must not block.
 *  - msg is valid only during the callback; it is NUL-terminated for text results (for data
 *    chunks use len).
 */
#ifndef LIBSTORAGE_H
#define LIBSTORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RET_OK 0
#define RET_ERR 1
#define RET_MISSING_CALLBACK 2
#define RET_PROGRESS 3

typedef void (*StorageCallback)(int callerRet, const char *msg, size_t len, void *userData);

/* Runtime init (Logos: the Nim runtime's): idempotent, optional, safe before storage_new. */
void libstorageNimMain(void);
void NimMain(void);

/* Context lifecycle */
void *storage_new(const char *configJson, StorageCallback callback, void *userData);
int storage_start(void *ctx, StorageCallback callback, void *userData);
int storage_stop(void *ctx, StorageCallback callback, void *userData);
int storage_close(void *ctx, StorageCallback callback, void *userData);
int storage_destroy(void *ctx, StorageCallback callback, void *userData); /* synchronous, no callback */

/* Version (the callback runs on the calling thread, before the call returns) */
int storage_version(void *ctx, StorageCallback callback, void *userData);
int storage_revision(void *ctx, StorageCallback callback, void *userData);
int storage_repo(void *ctx, StorageCallback callback, void *userData);

/* Debug */
int storage_debug(void *ctx, StorageCallback callback, void *userData);
int storage_spr(void *ctx, StorageCallback callback, void *userData);
int storage_peer_id(void *ctx, StorageCallback callback, void *userData);
int storage_peer_debug(void *ctx, const char *peerId, StorageCallback callback, void *userData);

/* Logging */
int storage_log_level(void *ctx, const char *logLevel, StorageCallback callback, void *userData);

/* Networking */
int storage_connect(void *ctx, const char *peerId, const char **peerAddresses, size_t peerAddressesSize,
                    StorageCallback callback, void *userData);

/* Upload */
int storage_upload_init(void *ctx, const char *filepath, size_t chunkSize, StorageCallback callback,
                        void *userData);
int storage_upload_chunk(void *ctx, const char *sessionId, const uint8_t *chunk, size_t len,
                         StorageCallback callback, void *userData);
int storage_upload_finalize(void *ctx, const char *sessionId, StorageCallback callback, void *userData);
int storage_upload_cancel(void *ctx, const char *sessionId, StorageCallback callback, void *userData);
int storage_upload_file(void *ctx, const char *sessionId, StorageCallback callback, void *userData);

/* Download */
int storage_download_init(void *ctx, const char *cid, size_t chunkSize, bool local, StorageCallback callback,
                          void *userData);
int storage_download_stream(void *ctx, const char *cid, size_t chunkSize, bool local, const char *filepath,
                            StorageCallback callback, void *userData);
int storage_download_chunk(void *ctx, const char *cid, StorageCallback callback, void *userData);
int storage_download_cancel(void *ctx, const char *cid, StorageCallback callback, void *userData);
int storage_download_manifest(void *ctx, const char *cid, StorageCallback callback, void *userData);

/* Storage operations */
int storage_list(void *ctx, StorageCallback callback, void *userData);
int storage_space(void *ctx, StorageCallback callback, void *userData);
int storage_delete(void *ctx, const char *cid, StorageCallback callback, void *userData);
int storage_fetch(void *ctx, const char *cid, StorageCallback callback, void *userData);
int storage_exists(void *ctx, const char *cid, StorageCallback callback, void *userData);

/* Reserved: stores the callback; no events are sent yet. */
void storage_set_event_callback(void *ctx, StorageCallback callback, void *userData);

#ifdef __cplusplus
}
#endif

#endif /* LIBSTORAGE_H */

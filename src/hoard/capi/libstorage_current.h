/*
 * libstorage.h: the Logos Storage C API, served by hoard (the "current" generation).
 *
 * Built with `hoard capi build --abi current OUTDIR`. This is the header generation of today's
 * logos-storage-nim: storage_version and storage_revision take only the context and return a
 * string the caller frees; storage_destroy takes only the context and returns its status;
 * storage_download_init, storage_download_stream and storage_download_manifest take an
 * `isPrivate` flag; storage_network, storage_get_metrics and storage_toggle_private_queries
 * exist. The default build (libstorage.h) is the earlier, callback generation.
 *
 * Which call does what (docs/capi.md has the details):
 *  - storage_version, storage_revision: synchronous, no callback; return a malloc'd
 *    NUL-terminated string (free it), NULL only if the embedded runtime cannot start.
 *  - storage_destroy: synchronous, no callback; closes the node if still open and frees the
 *    context before returning RET_OK (RET_ERR for an unknown or destroyed context). No callback
 *    of the context runs after it returns.
 *  - Every other int function returns the dispatch status: RET_MISSING_CALLBACK when the
 *    callback is NULL (nothing else happens), RET_OK once the request was accepted (its result
 *    arrives later as exactly one final callback, after any RET_PROGRESS ones, on the node's
 *    worker thread), RET_ERR when it could not be dispatched (the callback has then already been
 *    called once with RET_ERR and a "libstorage error: " message, before the function returned).
 *  - isPrivate = true (queries over the Logos mix network) is refused: hoard has no mix network.
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
int storage_destroy(void *ctx);

/* Version (synchronous; free the result) */
char *storage_version(void *ctx);
char *storage_revision(void *ctx);

/* Info */
int storage_repo(void *ctx, StorageCallback callback, void *userData);
int storage_network(void *ctx, StorageCallback callback, void *userData);
int storage_get_metrics(void *ctx, StorageCallback callback, void *userData);

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
int storage_toggle_private_queries(void *ctx, bool enabled, StorageCallback callback, void *userData);

/* Upload */
int storage_upload_init(void *ctx, const char *filepath, size_t chunkSize, StorageCallback callback,
                        void *userData);
int storage_upload_chunk(void *ctx, const char *sessionId, const uint8_t *chunk, size_t len,
                         StorageCallback callback, void *userData);
int storage_upload_finalize(void *ctx, const char *sessionId, StorageCallback callback, void *userData);
int storage_upload_cancel(void *ctx, const char *sessionId, StorageCallback callback, void *userData);
int storage_upload_file(void *ctx, const char *sessionId, StorageCallback callback, void *userData);

/* Download */
int storage_download_init(void *ctx, const char *cid, size_t chunkSize, bool local, bool isPrivate,
                          StorageCallback callback, void *userData);
int storage_download_stream(void *ctx, const char *cid, size_t chunkSize, bool local, bool isPrivate,
                            const char *filepath, StorageCallback callback, void *userData);
int storage_download_chunk(void *ctx, const char *cid, StorageCallback callback, void *userData);
int storage_download_cancel(void *ctx, const char *cid, StorageCallback callback, void *userData);
int storage_download_manifest(void *ctx, const char *cid, bool isPrivate, StorageCallback callback,
                              void *userData);

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

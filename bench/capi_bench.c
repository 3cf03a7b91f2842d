/*
 * capi_bench.c: throughput of hoard through the C ABI (driven by bench/capi.py).
 *
 *   capi_bench DATADIR SOURCEFILE UPLOADFILE PIECE CHUNK OUTFILE
 *
 * Runs, on a fresh node in DATADIR, with the content of SOURCEFILE (read into memory first):
 *   upload_chunks    upload_init + upload_chunk(PIECE bytes) ... + upload_finalize
 *   upload_file      upload_init(UPLOADFILE) + upload_file (progress counted; other random bytes)
 *   download_chunks  download_init(CHUNK) + download_chunk ... until the end
 *   download_stream  download_stream(CHUNK), chunks delivered to the callback
 *   download_file    download_stream(CHUNK, OUTFILE), chunks to the callback and the file
 * Each step waits for its final callback, as an application does. Prints one JSON object.
 */
#include <libstorage.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, ret;
    char msg[1024];
    size_t progress_bytes, progress_calls;
    unsigned long long checksum;
} req_t;

static void on_callback(int ret, const char *msg, size_t len, void *userData)
{
    req_t *r = userData;
    pthread_mutex_lock(&r->mu);
    if (ret == RET_PROGRESS) {
        r->progress_calls++;
        r->progress_bytes += len;
        if (msg != NULL && len > 0) /* touch the data as a consumer would */
            r->checksum += (unsigned char)msg[0] + (unsigned char)msg[len - 1];
    } else {
        r->done = 1;
        r->ret = ret;
        snprintf(r->msg, sizeof r->msg, "%.*s", msg ? (int)len : 0, msg ? msg : "");
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void req_reset(req_t *r)
{
    r->done = 0;
    r->progress_bytes = r->progress_calls = 0;
}

static void req_wait(req_t *r, int rc, const char *what)
{
    if (rc != RET_OK) {
        fprintf(stderr, "%s: dispatch failed (%d): %s\n", what, rc, r->msg);
        exit(1);
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done)
        pthread_cond_wait(&r->cv, &r->mu);
    pthread_mutex_unlock(&r->mu);
    if (r->ret != RET_OK) {
        fprintf(stderr, "%s: %s\n", what, r->msg);
        exit(1);
    }
}

#define CALL(r, what, expr)       \
    do {                          \
        req_reset(r);             \
        req_wait(r, (expr), what); \
    } while (0)

static double clock_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double t0, c0;

static void start_timer(void)
{
    t0 = clock_of(CLOCK_MONOTONIC);
    c0 = clock_of(CLOCK_PROCESS_CPUTIME_ID);
}

static void report(const char *op)
{
    printf(", \"%s\": {\"wall\": %.6f, \"cpu\": %.6f}", op, clock_of(CLOCK_MONOTONIC) - t0,
           clock_of(CLOCK_PROCESS_CPUTIME_ID) - c0);
}

int main(int argc, char **argv)
{
    req_t r = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
    char config[2048], session[64], cid[256];
    size_t size, piece, chunk;
    unsigned char *data;
    FILE *f;
    void *ctx;

    if (argc != 7) {
        fprintf(stderr, "usage: %s DATADIR SOURCEFILE UPLOADFILE PIECE CHUNK OUTFILE\n", argv[0]);
        return 2;
    }
    piece = strtoul(argv[4], NULL, 10);
    chunk = strtoul(argv[5], NULL, 10);
    f = fopen(argv[2], "rb");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc(size);
    if (fread(data, 1, size, f) != size)
        return 1;
    fclose(f);

    snprintf(config, sizeof config, "{\"data-dir\": \"%s\", \"log-level\": \"WARN\"}", argv[1]);
    ctx = storage_new(config, on_callback, &r);
    if (ctx == NULL)
        return 1;
    req_wait(&r, RET_OK, "storage_new");
    printf("{\"size\": %zu, \"piece\": %zu, \"chunk\": %zu", size, piece, chunk);

    /* upload by chunks */
    start_timer();
    CALL(&r, "upload_init", storage_upload_init(ctx, "bench.bin", 0, on_callback, &r));
    snprintf(session, sizeof session, "%s", r.msg);
    for (size_t off = 0; off < size; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        CALL(&r, "upload_chunk", storage_upload_chunk(ctx, session, data + off, n, on_callback, &r));
    }
    CALL(&r, "upload_finalize", storage_upload_finalize(ctx, session, on_callback, &r));
    report("upload_chunks");
    snprintf(cid, sizeof cid, "%s", r.msg);

    /* upload a file */
    start_timer();
    CALL(&r, "upload_init", storage_upload_init(ctx, argv[3], 0, on_callback, &r));
    snprintf(session, sizeof session, "%s", r.msg);
    CALL(&r, "upload_file", storage_upload_file(ctx, session, on_callback, &r));
    if (r.progress_bytes != size)
        return 1;
    report("upload_file");

    /* download by chunks */
    start_timer();
    CALL(&r, "download_init", storage_download_init(ctx, cid, chunk, true, on_callback, &r));
    size_t got = 0;
    for (;;) {
        CALL(&r, "download_chunk", storage_download_chunk(ctx, cid, on_callback, &r));
        if (r.progress_calls == 0)
            break;
        got += r.progress_bytes;
    }
    report("download_chunks");
    if (got != size)
        return 1;
    CALL(&r, "download_cancel", storage_download_cancel(ctx, cid, on_callback, &r));

    /* stream to the callback */
    start_timer();
    CALL(&r, "download_stream", storage_download_stream(ctx, cid, chunk, true, NULL, on_callback, &r));
    report("download_stream");
    if (r.progress_bytes != size)
        return 1;

    /* stream to a file (and the callback) */
    start_timer();
    CALL(&r, "download_stream", storage_download_stream(ctx, cid, chunk, true, argv[6], on_callback, &r));
    report("download_file");
    if (r.progress_bytes != size)
        return 1;

    CALL(&r, "destroy", storage_destroy(ctx, on_callback, &r));
    printf(", \"checksum\": %llu}\n", r.checksum);
    free(data);
    return 0;
}

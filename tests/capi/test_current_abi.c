/*
 * test_current_abi.c: the "current" header generation (hoard capi build --abi current).
 *
 *   test_current_abi WORKDIR
 *
 * char *storage_version(void *) / storage_revision (freed by the caller), int storage_destroy(void *),
 * the isPrivate flags of the download calls, storage_network, storage_get_metrics and
 * storage_toggle_private_queries. Prints "PASS current" and exits 0 when every check holds.
 */
#include <libstorage.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(cond, ...)                                                                            \
    do {                                                                                            \
        if (!(cond)) {                                                                              \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                         \
            fprintf(stderr, __VA_ARGS__);                                                           \
            fprintf(stderr, "\n");                                                                  \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t caller;
    int finals, ret, on_caller;
    char msg[8192];
    size_t received;
} req_t;

static void on_callback(int ret, const char *msg, size_t len, void *userData)
{
    req_t *r = userData;
    pthread_mutex_lock(&r->mu);
    if (pthread_equal(pthread_self(), r->caller))
        r->on_caller++;
    if (ret == RET_PROGRESS) {
        r->received += len;
    } else {
        r->finals++;
        r->ret = ret;
        snprintf(r->msg, sizeof r->msg, "%.*s", msg ? (int)len : 0, msg ? msg : "");
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

static void req_init(req_t *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    r->caller = pthread_self();
}

/* Wait for the final callback of a call that returned rc; returns its callerRet. */
static int finish(req_t *r, int rc, const char *what)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 60;
    pthread_mutex_lock(&r->mu);
    if (rc == RET_ERR) {
        CHECK(r->finals == 1, "%s: RET_ERR without its callback", what);
    } else {
        CHECK(rc == RET_OK, "%s returned %d", what, rc);
        while (!r->finals)
            CHECK(pthread_cond_timedwait(&r->cv, &r->mu, &deadline) != ETIMEDOUT, "%s: no callback", what);
        CHECK(r->on_caller == 0, "%s: called back on the calling thread", what);
    }
    pthread_mutex_unlock(&r->mu);
    return r->ret;
}

static const char *ok(req_t *r, int rc, const char *what)
{
    CHECK(finish(r, rc, what) == RET_OK, "%s: %s", what, r->msg);
    return r->msg;
}

int main(int argc, char **argv)
{
    req_t r;
    char config[2048], cid[256], session[64];
    CHECK(argc == 2, "usage: test_current_abi WORKDIR");

    libstorageNimMain();
    NimMain(); /* idempotent */

    req_init(&r);
    snprintf(config, sizeof config,
             "{\"data-dir\": \"%s/current\", \"listen-addrs\": [\"/ip4/127.0.0.1/tcp/0\"], \"log-level\": \"WARN\"}",
             argv[1]);
    void *ctx = storage_new(config, on_callback, &r);
    CHECK(ctx != NULL, "storage_new: %s", r.msg);
    ok(&r, RET_OK, "storage_new");

    char *version = storage_version(ctx);
    CHECK(version != NULL && (version[0] == 'v' || strcmp(version, "untagged build") == 0), "version %s",
          version ? version : "(null)");
    char *revision = storage_revision(ctx);
    CHECK(revision != NULL && revision[0] != '\0', "empty revision");
    printf("ok - version %s, revision %s (caller frees)\n", version, revision);
    free(version);
    free(revision);

    req_init(&r);
    CHECK(strcmp(ok(&r, storage_network(ctx, on_callback, &r), "storage_network"), "hoard") == 0, "network %s", r.msg);
    req_init(&r);
    ok(&r, storage_start(ctx, on_callback, &r), "storage_start");

    req_init(&r);
    ok(&r, storage_toggle_private_queries(ctx, false, on_callback, &r), "toggle_private_queries(false)");
    CHECK(strcmp(r.msg, "false") == 0, "previous setting %s", r.msg);
    req_init(&r);
    CHECK(finish(&r, storage_toggle_private_queries(ctx, true, on_callback, &r), "toggle(true)") == RET_ERR &&
              strstr(r.msg, "mix network"), "toggle(true): %s", r.msg);
    printf("ok - toggle_private_queries: %s\n", r.msg);

    req_init(&r);
    snprintf(session, sizeof session, "%s", ok(&r, storage_upload_init(ctx, "a.txt", 0, on_callback, &r), "init"));
    req_init(&r);
    ok(&r, storage_upload_chunk(ctx, session, (const uint8_t *)"current abi", 11, on_callback, &r), "chunk");
    req_init(&r);
    snprintf(cid, sizeof cid, "%s", ok(&r, storage_upload_finalize(ctx, session, on_callback, &r), "finalize"));

    req_init(&r);
    int rc = storage_download_init(ctx, cid, 0, true, true, on_callback, &r);
    CHECK(rc == RET_ERR && r.finals == 1 && strstr(r.msg, "mix network"), "private download_init: %d %s", rc, r.msg);
    req_init(&r);
    ok(&r, storage_download_init(ctx, cid, 0, true, false, on_callback, &r), "download_init");
    req_init(&r);
    ok(&r, storage_download_stream(ctx, cid, 4, true, false, NULL, on_callback, &r), "download_stream");
    CHECK(r.received == 11, "streamed %zu bytes", r.received);
    req_init(&r);
    ok(&r, storage_download_manifest(ctx, cid, false, on_callback, &r), "download_manifest");
    CHECK(strstr(r.msg, "\"datasetSize\":11") && strstr(r.msg, "a.txt"), "manifest %s", r.msg);
    req_init(&r);
    rc = storage_download_manifest(ctx, cid, true, on_callback, &r);
    CHECK(rc == RET_ERR && strstr(r.msg, "mix network"), "private manifest: %d %s", rc, r.msg);
    printf("ok - downloads (isPrivate refused: %s)\n", r.msg);

    req_init(&r);
    ok(&r, storage_get_metrics(ctx, on_callback, &r), "storage_get_metrics");
    CHECK(r.msg[0] == '{' && strstr(r.msg, "\"hoard_repo_blocks\":"), "metrics %s", r.msg);
    printf("ok - metrics %.80s...\n", r.msg);

    req_init(&r);
    ok(&r, storage_close(ctx, on_callback, &r), "storage_close");
    CHECK(storage_destroy(ctx) == RET_OK, "storage_destroy");
    CHECK(storage_destroy(ctx) == RET_ERR, "storage_destroy twice");
    req_init(&r);
    rc = storage_start(ctx, on_callback, &r);
    CHECK(rc == RET_ERR && strstr(r.msg, "invalid context"), "start after destroy: %d %s", rc, r.msg);
    printf("ok - close, destroy (synchronous)\n");
    printf("PASS current\n");
    return 0;
}

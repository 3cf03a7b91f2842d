/*
 * gdp_lib.c: the C half of libgdp.so (gdp_build.py compiles it with cffi's embedding mode).
 *
 * What needs no node lives here, in plain C: buffers, datums, metadata lists, open-info,
 * names (but parsing, which hashes), EP_STAT strings, the event queue and gdp_event_next,
 * filters, and the GCL handle's cached state. Everything that touches logs is a call into the
 * embedded Python (gdp_exports.py, the extern "Python" hoard_gdp_* functions declared by the
 * build), which runs it on a hoard node: embedded on $HOARD_DATA_DIR, or a running one over gRPC.
 *
 * Python calls back into this file through the hoard_gdp_fill / hoard_gdp_post / ... helpers
 * (declared in the build's cdef), with the GIL released, so an application callback run from
 * there may call any gdp_* function.
 */
#define GDP_NO_ARITY_MACROS 1
#include "gdp.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#define HOARD_EXPORT __attribute__((visibility("default")))
#define HOARD_TAG 0x4744 /* what every hoard_gdp_* Python function returns when it ran */

/* ---- the embedded interpreter ------------------------------------------------------ */
static pthread_once_t hoard_py_once = PTHREAD_ONCE_INIT;
static int hoard_py_failed;

static void hoard_py_init(void)
{
    PyStatus status;
    PyConfig config;
    if (Py_IsInitialized())
        return;
    PyConfig_InitPythonConfig(&config);
    config.install_signal_handlers = 0;
    config.parse_argv = 0;
    status = PyConfig_SetBytesString(&config, &config.program_name, HOARD_PYTHON_EXECUTABLE);
    if (!PyStatus_Exception(status))
        status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        fprintf(stderr, "libgdp: cannot start the embedded Python %s: %s\n", HOARD_PYTHON_EXECUTABLE,
                status.err_msg ? status.err_msg : "unknown error");
        hoard_py_failed = 1;
        return;
    }
    PyEval_SaveThread(); /* release the GIL; cffi takes it for each call */
}

static int hoard_ready(void)
{
    pthread_once(&hoard_py_once, hoard_py_init);
    return !hoard_py_failed;
}

/* The status of a hoard_gdp_* call: its own, or INTERNAL_ERROR when Python itself failed. */
static EP_STAT hoard_status(int ran, const uint32_t *code)
{
    if (ran != HOARD_TAG)
        return GDP_STAT_INTERNAL_ERROR;
    return EP_STAT_FROM_INT(*code); /* read after the call: a pointer, as argument order is unspecified */
}

#define HOARD_REQUIRE_PY()                     \
    do {                                       \
        if (!hoard_ready())                    \
            return GDP_STAT_INTERNAL_ERROR;    \
    } while (0)

HOARD_EXPORT const char GdpVersion[] = HOARD_GDP_VERSION_STRING;

/* ---- EP_STAT strings ---------------------------------------------------------------- */
static const char *hoard_detail_text(uint32_t detail)
{
    static const struct {
        uint32_t detail;
        const char *text;
    } table[] = {
        {1, "message format error"}, {2, "message too short"}, {3, "read overflow"},
        {4, "not implemented"}, {5, "PDU write failure"}, {6, "PDU read failure"},
        {7, "protocol version mismatch"}, {8, "no sequence number"}, {9, "more input needed"},
        {10, "GCL not open"}, {11, "request id unknown"}, {12, "internal error"},
        {13, "bad I/O mode"}, {14, "GCL name syntax error"}, {15, "buffer failure"},
        {16, "GCL name required"}, {17, "protocol failure"}, {18, "corrupt index"},
        {19, "corrupt GCL"}, {20, "lost connection to GDP"}, {21, "GCL version mismatch"},
        {22, "GCL is read-only"}, {23, "GCL not found"}, {24, "corrupt PDU"},
        {25, "secret key required"}, {26, "GCL read error"}, {27, "record out of sequence"},
        {28, "signature failure"}, {29, "physical I/O error"}, {30, "record expired"},
        {31, "dead request"}, {32, "bad reference count"}, {33, "record missing"},
        {34, "record duplicated"}, {35, "datum required"},
        {200, "success"}, {201, "created"}, {202, "deleted"}, {203, "valid"}, {204, "changed"},
        {205, "content"}, {400, "bad request"}, {401, "unauthorized"}, {402, "bad option"},
        {403, "forbidden"}, {404, "not found"}, {405, "method not allowed"}, {406, "not acceptable"},
        {409, "conflict"}, {410, "gone"}, {412, "precondition failed"},
        {413, "request entity too large"}, {415, "unsupported media type"}, {430, "missing record"},
        {431, "duplicate record"}, {500, "internal server error"}, {501, "not implemented"},
        {502, "bad gateway"}, {503, "service unavailable"}, {504, "gateway timeout"},
        {505, "proxying not supported"}, {507, "insufficient storage"},
        {514, "couldn't write W replicas"}, {515, "lost subscription"}, {600, "no route available"},
    };
    size_t i;
    for (i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].detail == detail)
            return table[i].text;
    return NULL;
}

HOARD_EXPORT char *ep_stat_tostr(EP_STAT estat, char *buf, size_t bsize)
{
    static const char *sev[] = {"OK", "OK", "OK", "OK", "WARN", "ERROR", "SEVERE", "ABORT"};
    const char *text = NULL;
    if (buf == NULL || bsize == 0)
        return buf;
    if (estat.code == 0) {
        snprintf(buf, bsize, "OK");
        return buf;
    }
    if (GDP_STAT_IS_GDP(estat))
        text = hoard_detail_text(EP_STAT_DETAIL(estat));
    if (EP_STAT_ISOK(estat) && !GDP_STAT_IS_GDP(estat))
        snprintf(buf, bsize, "OK [%u]", (unsigned)estat.code);
    else if (text != NULL)
        snprintf(buf, bsize, "%s: [%s:%u] %s", sev[EP_STAT_SEVERITY(estat)],
                 EP_STAT_REGISTRY(estat) == EP_REGISTRY_UCB ? "UCB:GDP" : "?", (unsigned)EP_STAT_DETAIL(estat), text);
    else
        snprintf(buf, bsize, "%s: [%u:%u:%u]", sev[EP_STAT_SEVERITY(estat)], (unsigned)EP_STAT_REGISTRY(estat),
                 (unsigned)EP_STAT_MODULE(estat), (unsigned)EP_STAT_DETAIL(estat));
    return buf;
}

HOARD_EXPORT EP_STAT ep_time_now(EP_TIME_SPEC *tv)
{
    struct timespec now;
    if (tv == NULL)
        return GDP_STAT_NAK_BADREQ;
    clock_gettime(CLOCK_REALTIME, &now);
    tv->tv_sec = (int64_t)now.tv_sec;
    tv->tv_nsec = (uint32_t)now.tv_nsec;
    tv->tv_accuracy = 0.0f;
    return EP_STAT_OK;
}

/* ---- keys --------------------------------------------------------------------------- */
struct ep_crypto_key {
    uint8_t *data;
    size_t len;
    int form;
};

HOARD_EXPORT EP_CRYPTO_KEY *ep_crypto_key_read_mem(const void *buf, size_t bufsize, int keyform, uint32_t flags)
{
    EP_CRYPTO_KEY *key;
    (void)flags;
    if (buf == NULL || bufsize == 0)
        return NULL;
    key = calloc(1, sizeof *key);
    if (key == NULL || (key->data = malloc(bufsize)) == NULL) {
        free(key);
        return NULL;
    }
    memcpy(key->data, buf, bufsize);
    key->len = bufsize;
    key->form = keyform;
    return key;
}

HOARD_EXPORT EP_CRYPTO_KEY *ep_crypto_key_read_file(const char *fname, int keyform, uint32_t flags)
{
    FILE *fp;
    uint8_t *data = NULL;
    size_t len = 0, cap = 0, n;
    EP_CRYPTO_KEY *key;
    if (fname == NULL || (fp = fopen(fname, "rb")) == NULL)
        return NULL;
    for (;;) {
        if (len == cap) {
            uint8_t *grown = realloc(data, cap ? cap * 2 : 4096);
            if (grown == NULL || cap > (1U << 20)) { /* a key file is a few KiB */
                free(grown ? grown : data);
                fclose(fp);
                return NULL;
            }
            data = grown;
            cap = cap ? cap * 2 : 4096;
        }
        n = fread(data + len, 1, cap - len, fp);
        if (n == 0)
            break;
        len += n;
    }
    fclose(fp);
    key = ep_crypto_key_read_mem(data, len, keyform, flags);
    free(data);
    return key;
}

HOARD_EXPORT void ep_crypto_key_free(EP_CRYPTO_KEY *key)
{
    if (key == NULL)
        return;
    free(key->data);
    free(key);
}

/* ---- buffers ------------------------------------------------------------------------ */
struct gdp_buf {
    uint8_t *data;
    size_t start, end, cap; /* the content is data[start, end) */
};

HOARD_EXPORT gdp_buf_t *gdp_buf_new(void)
{
    return calloc(1, sizeof(gdp_buf_t));
}

HOARD_EXPORT void gdp_buf_reset(gdp_buf_t *b)
{
    if (b != NULL)
        b->start = b->end = 0;
}

HOARD_EXPORT void gdp_buf_free(gdp_buf_t *b)
{
    if (b == NULL)
        return;
    free(b->data);
    free(b);
}

HOARD_EXPORT size_t gdp_buf_getlength(gdp_buf_t *b)
{
    return b == NULL ? 0 : b->end - b->start;
}

HOARD_EXPORT size_t gdp_buf_peek(gdp_buf_t *b, void *out, size_t sz)
{
    size_t n = gdp_buf_getlength(b);
    if (n > sz)
        n = sz;
    if (n > 0 && out != NULL)
        memcpy(out, b->data + b->start, n);
    return n;
}

HOARD_EXPORT int gdp_buf_drain(gdp_buf_t *b, size_t sz)
{
    size_t n = gdp_buf_getlength(b);
    if (b == NULL)
        return -1;
    b->start += sz < n ? sz : n;
    if (b->start == b->end)
        b->start = b->end = 0;
    return 0;
}

HOARD_EXPORT size_t gdp_buf_read(gdp_buf_t *b, void *out, size_t sz)
{
    size_t n = gdp_buf_peek(b, out, sz);
    gdp_buf_drain(b, n);
    return n;
}

static int hoard_buf_reserve(gdp_buf_t *b, size_t more)
{
    size_t used = b->end - b->start, cap;
    uint8_t *grown;
    if (b->end + more <= b->cap)
        return 0;
    if (used + more <= b->cap && b->start > 0) { /* room at the front: compact */
        memmove(b->data, b->data + b->start, used);
        b->start = 0;
        b->end = used;
        return 0;
    }
    if (more > SIZE_MAX / 2 - used)
        return -1;
    cap = b->cap ? b->cap : 256;
    while (cap < used + more)
        cap *= 2;
    grown = malloc(cap);
    if (grown == NULL)
        return -1;
    if (used)
        memcpy(grown, b->data + b->start, used);
    free(b->data);
    b->data = grown;
    b->cap = cap;
    b->start = 0;
    b->end = used;
    return 0;
}

HOARD_EXPORT int gdp_buf_write(gdp_buf_t *b, const void *in, size_t sz)
{
    if (b == NULL || (in == NULL && sz > 0))
        return -1;
    if (sz == 0)
        return 0;
    if (hoard_buf_reserve(b, sz) < 0)
        return -1;
    memcpy(b->data + b->end, in, sz);
    b->end += sz;
    return 0;
}

HOARD_EXPORT int gdp_buf_printf(gdp_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b == NULL || fmt == NULL)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || hoard_buf_reserve(b, (size_t)n + 1) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->end, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->end += (size_t)n; /* the NUL is not part of the data */
    return n;
}

HOARD_EXPORT int gdp_buf_move(gdp_buf_t *ob, gdp_buf_t *ib, size_t sz)
{
    size_t n = gdp_buf_getlength(ib);
    if (ob == NULL || ib == NULL)
        return -1;
    if (n > sz)
        n = sz;
    if (gdp_buf_write(ob, ib->data + ib->start, n) < 0)
        return -1;
    return gdp_buf_drain(ib, n);
}

HOARD_EXPORT void gdp_buf_dump(gdp_buf_t *b, FILE *fp)
{
    size_t i, n = gdp_buf_getlength(b);
    if (fp == NULL)
        return;
    fprintf(fp, "gdp_buf %p: %zu bytes", (void *)b, n);
    for (i = 0; i < n; i++)
        fprintf(fp, "%s%02x", i % 16 == 0 ? "\n  " : " ", b->data[b->start + i]);
    fputc('\n', fp);
}

/* ---- datums ------------------------------------------------------------------------- */
struct gdp_datum {
    gdp_recno_t recno;
    EP_TIME_SPEC ts;
    int sigmdalg;
    gdp_buf_t *dbuf;
    gdp_buf_t *sig;
};

HOARD_EXPORT gdp_datum_t *gdp_datum_new(void)
{
    gdp_datum_t *d = calloc(1, sizeof *d);
    if (d == NULL)
        return NULL;
    d->dbuf = gdp_buf_new();
    d->sig = gdp_buf_new();
    if (d->dbuf == NULL || d->sig == NULL) {
        gdp_buf_free(d->dbuf);
        gdp_buf_free(d->sig);
        free(d);
        return NULL;
    }
    return d;
}

HOARD_EXPORT void gdp_datum_free(gdp_datum_t *d)
{
    if (d == NULL)
        return;
    gdp_buf_free(d->dbuf);
    gdp_buf_free(d->sig);
    free(d);
}

HOARD_EXPORT void gdp_datum_reset(gdp_datum_t *d)
{
    if (d == NULL)
        return;
    d->recno = 0;
    memset(&d->ts, 0, sizeof d->ts);
    d->sigmdalg = 0;
    gdp_buf_reset(d->dbuf);
    gdp_buf_reset(d->sig);
}

HOARD_EXPORT gdp_recno_t gdp_datum_getrecno(const gdp_datum_t *d)
{
    return d == NULL ? 0 : d->recno;
}

HOARD_EXPORT void gdp_datum_getts(const gdp_datum_t *d, EP_TIME_SPEC *ts)
{
    if (ts == NULL)
        return;
    if (d == NULL)
        memset(ts, 0, sizeof *ts);
    else
        memcpy(ts, &d->ts, sizeof *ts);
}

HOARD_EXPORT size_t gdp_datum_getdlen(const gdp_datum_t *d)
{
    return d == NULL ? 0 : gdp_buf_getlength(d->dbuf);
}

HOARD_EXPORT gdp_buf_t *gdp_datum_getdbuf(const gdp_datum_t *d)
{
    return d == NULL ? NULL : d->dbuf;
}

HOARD_EXPORT gdp_buf_t *gdp_datum_getbuf(const gdp_datum_t *d)
{
    return gdp_datum_getdbuf(d);
}

HOARD_EXPORT int gdp_datum_getsigmdalg(const gdp_datum_t *d)
{
    return d == NULL ? 0 : d->sigmdalg;
}

HOARD_EXPORT int gdp_datum_getmdalg(const gdp_datum_t *d)
{
    return gdp_datum_getsigmdalg(d);
}

HOARD_EXPORT gdp_buf_t *gdp_datum_getsig(const gdp_datum_t *d)
{
    return d == NULL ? NULL : d->sig;
}

HOARD_EXPORT void gdp_datum_print(const gdp_datum_t *d, FILE *fp, uint32_t flags)
{
    size_t i, n;
    const uint8_t *data;
    if (fp == NULL)
        return;
    if (d == NULL) {
        fprintf(fp, "<null datum>\n");
        return;
    }
    n = gdp_buf_getlength(d->dbuf);
    data = n ? d->dbuf->data + d->dbuf->start : (const uint8_t *)"";
    if (!(flags & GDP_DATUM_PRQUIET)) {
        struct tm tm;
        time_t secs = (time_t)d->ts.tv_sec;
        char when[40] = "";
        if (gmtime_r(&secs, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(fp, " >>> recno %" PRIgdp_recno ", len %zu, ts %s.%09uZ", d->recno, n, when,
                (unsigned)d->ts.tv_nsec);
        if (flags & GDP_DATUM_PRDEBUG)
            fprintf(fp, " (datum %p, sigmdalg %d, siglen %zu)", (const void *)d, d->sigmdalg,
                    gdp_buf_getlength(d->sig));
        fputc('\n', fp);
    }
    if (flags & GDP_DATUM_PRTEXT) {
        fprintf(fp, "%.*s\n", (int)n, (const char *)data);
    } else {
        for (i = 0; i < n; i++)
            fprintf(fp, "%02x%s", data[i], (i % 16 == 15 || i + 1 == n) ? "\n" : " ");
    }
    if ((flags & GDP_DATUM_PRSIG) && gdp_buf_getlength(d->sig) > 0) {
        fprintf(fp, "  signature (md %d, %zu bytes):", d->sigmdalg, gdp_buf_getlength(d->sig));
        for (i = 0; i < gdp_buf_getlength(d->sig); i++)
            fprintf(fp, "%02x", d->sig->data[d->sig->start + i]);
        fputc('\n', fp);
    }
}

/* ---- metadata lists ----------------------------------------------------------------- */
struct hoard_md_entry {
    gdp_gclmd_id_t id;
    size_t len;
    uint8_t *data;
};

struct gdp_gclmd {
    int n, cap;
    struct hoard_md_entry *e;
};

HOARD_EXPORT gdp_gclmd_t *gdp_gclmd_new(int entries)
{
    gdp_gclmd_t *gmd = calloc(1, sizeof *gmd);
    if (gmd == NULL)
        return NULL;
    gmd->cap = entries > 0 ? entries : 4;
    gmd->e = calloc((size_t)gmd->cap, sizeof *gmd->e);
    if (gmd->e == NULL) {
        free(gmd);
        return NULL;
    }
    return gmd;
}

HOARD_EXPORT void gdp_gclmd_free(gdp_gclmd_t *gmd)
{
    int i;
    if (gmd == NULL)
        return;
    for (i = 0; i < gmd->n; i++)
        free(gmd->e[i].data);
    free(gmd->e);
    free(gmd);
}

HOARD_EXPORT EP_STAT gdp_gclmd_add(gdp_gclmd_t *gmd, gdp_gclmd_id_t id, size_t len, const void *data)
{
    struct hoard_md_entry *e;
    if (gmd == NULL || (data == NULL && len > 0) || len > UINT32_MAX)
        return GDP_STAT_NAK_BADREQ;
    if (gmd->n >= 65535)
        return GDP_STAT_NAK_TOOLARGE;
    if (gmd->n == gmd->cap) {
        e = realloc(gmd->e, (size_t)gmd->cap * 2 * sizeof *e);
        if (e == NULL)
            return GDP_STAT_BUFFER_FAILURE;
        gmd->e = e;
        gmd->cap *= 2;
    }
    e = &gmd->e[gmd->n];
    e->data = malloc(len ? len : 1);
    if (e->data == NULL)
        return GDP_STAT_BUFFER_FAILURE;
    if (len)
        memcpy(e->data, data, len);
    e->id = id;
    e->len = len;
    gmd->n++;
    return EP_STAT_OK;
}

HOARD_EXPORT EP_STAT gdp_gclmd_get(gdp_gclmd_t *gmd, int indx, gdp_gclmd_id_t *id, size_t *len, const void **data)
{
    if (gmd == NULL || indx < 0 || indx >= gmd->n)
        return GDP_STAT_NAK_NOTFOUND;
    if (id != NULL)
        *id = gmd->e[indx].id;
    if (len != NULL)
        *len = gmd->e[indx].len;
    if (data != NULL)
        *data = gmd->e[indx].data;
    return EP_STAT_OK;
}

HOARD_EXPORT EP_STAT gdp_gclmd_find(gdp_gclmd_t *gmd, gdp_gclmd_id_t id, size_t *len, const void **val)
{
    int i;
    for (i = 0; gmd != NULL && i < gmd->n; i++)
        if (gmd->e[i].id == id)
            return gdp_gclmd_get(gmd, i, NULL, len, val);
    return GDP_STAT_NAK_NOTFOUND;
}

/* GDP's serialization: u16 count, {u32 id, u32 len} per entry (big-endian), then the data. */
static uint8_t *hoard_gclmd_serialize(const gdp_gclmd_t *gmd, size_t *lenp)
{
    size_t len = 2, off;
    int i;
    uint8_t *out, *p;
    for (i = 0; i < gmd->n; i++)
        len += 8 + gmd->e[i].len;
    out = malloc(len);
    if (out == NULL)
        return NULL;
    out[0] = (uint8_t)(gmd->n >> 8);
    out[1] = (uint8_t)gmd->n;
    p = out + 2;
    for (i = 0; i < gmd->n; i++, p += 8) {
        uint32_t id = gmd->e[i].id, l = (uint32_t)gmd->e[i].len;
        p[0] = (uint8_t)(id >> 24), p[1] = (uint8_t)(id >> 16), p[2] = (uint8_t)(id >> 8), p[3] = (uint8_t)id;
        p[4] = (uint8_t)(l >> 24), p[5] = (uint8_t)(l >> 16), p[6] = (uint8_t)(l >> 8), p[7] = (uint8_t)l;
    }
    off = (size_t)(p - out);
    for (i = 0; i < gmd->n; i++) {
        if (gmd->e[i].len)
            memcpy(out + off, gmd->e[i].data, gmd->e[i].len);
        off += gmd->e[i].len;
    }
    *lenp = len;
    return out;
}

/* ---- names -------------------------------------------------------------------------- */
static const char hoard_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

HOARD_EXPORT bool gdp_name_is_valid(const gdp_name_t gname)
{
    size_t i;
    if (gname == NULL)
        return false;
    for (i = 0; i < sizeof(gdp_name_t); i++)
        if (gname[i] != 0)
            return true;
    return false;
}

HOARD_EXPORT char *gdp_printable_name(const gdp_name_t internal, gdp_pname_t printable)
{
    size_t i, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (printable == NULL)
        return NULL;
    if (internal == NULL) {
        printable[0] = '\0';
        return printable;
    }
    for (i = 0; i < sizeof(gdp_name_t); i++) {
        acc = (acc << 8) | internal[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            printable[o++] = hoard_b64[(acc >> bits) & 0x3f];
        }
    }
    if (bits > 0)
        printable[o++] = hoard_b64[(acc << (6 - bits)) & 0x3f];
    printable[o] = '\0';
    return printable;
}

HOARD_EXPORT EP_STAT gdp_internal_name(const gdp_pname_t printable, gdp_name_t internal)
{
    uint8_t out[sizeof(gdp_name_t)];
    size_t i, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (printable == NULL || internal == NULL || strlen(printable) != GDP_GCL_PNAME_LEN)
        return GDP_STAT_GCL_NAME_INVALID;
    for (i = 0; i < GDP_GCL_PNAME_LEN; i++) {
        const char *p = memchr(hoard_b64, printable[i], 64);
        if (p == NULL || printable[i] == '\0')
            return GDP_STAT_GCL_NAME_INVALID;
        acc = (acc << 6) | (uint32_t)(p - hoard_b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    memcpy(internal, out, sizeof out);
    return EP_STAT_OK;
}

/* ---- the Python side (defined by cffi from gdp_exports.py) --------------------------- */
static int hoard_gdp_init(const char *addr, uint32_t *stat);
static int hoard_gdp_parse_name(const char *ext, uint8_t *out, uint32_t *stat);
static int hoard_gdp_create(const uint8_t *name, const uint8_t *md, size_t mdlen, uint8_t *name_out,
                            intptr_t *handle, int64_t *nrecs, uint32_t *stat);
static int hoard_gdp_open(const uint8_t *name, int mode, gdp_gcl_open_info_t *info, uint8_t *name_out,
                          intptr_t *handle, int64_t *nrecs, uint32_t *stat);
static int hoard_gdp_metadata(intptr_t handle, gdp_gclmd_t *gmd, uint32_t *stat);
static int hoard_gdp_close(intptr_t handle, uint32_t *stat);
static int hoard_gdp_append(intptr_t handle, const uint8_t *data, size_t len, gdp_datum_t *datum, uint32_t *stat);
static int hoard_gdp_append_async(intptr_t handle, gdp_gcl_t *gcl, const uint8_t *data, size_t len,
                                  gdp_event_cbfunc_t cb, void *udata, uint32_t *stat);
static int hoard_gdp_read(intptr_t handle, int by_ts, int64_t recno, int64_t sec, uint32_t nsec,
                          gdp_datum_t *datum, uint32_t *stat);
static int hoard_gdp_request(intptr_t handle, gdp_gcl_t *gcl, int kind, int by_ts, int64_t start, int64_t sec,
                             uint32_t nsec, int32_t numrecs, gdp_event_cbfunc_t cb, void *udata, uint32_t *stat);
static int hoard_gdp_unsubscribe(intptr_t handle, gdp_event_cbfunc_t cb, void *udata, uint32_t *stat);
static int hoard_gdp_shutdown(void);

/* ---- open info ---------------------------------------------------------------------- */
typedef EP_STAT (*hoard_signkey_cb)(gdp_name_t gname, void *signkey_udata, EP_CRYPTO_KEY **skey);

struct gdp_gcl_open_info {
    EP_CRYPTO_KEY *skey;
    hoard_signkey_cb signkey_cb;
    void *signkey_udata;
    bool keep_in_cache;
};

HOARD_EXPORT gdp_gcl_open_info_t *gdp_gcl_open_info_new(void)
{
    return calloc(1, sizeof(gdp_gcl_open_info_t));
}

HOARD_EXPORT void gdp_gcl_open_info_free(gdp_gcl_open_info_t *info)
{
    if (info == NULL)
        return;
    ep_crypto_key_free(info->skey); /* "when info is freed, the signing key will be freed as well" */
    free(info);
}

HOARD_EXPORT EP_STAT gdp_gcl_open_info_set_signing_key(gdp_gcl_open_info_t *info, EP_CRYPTO_KEY *skey)
{
    if (info == NULL)
        return GDP_STAT_NAK_BADREQ;
    if (info->skey != skey)
        ep_crypto_key_free(info->skey);
    info->skey = skey;
    return EP_STAT_OK;
}

HOARD_EXPORT EP_STAT gdp_gcl_open_info_set_signkey_cb(gdp_gcl_open_info_t *info, hoard_signkey_cb signkey_cb,
                                                      void *signkey_udata)
{
    if (info == NULL)
        return GDP_STAT_NAK_BADREQ;
    info->signkey_cb = signkey_cb;
    info->signkey_udata = signkey_udata;
    return EP_STAT_OK;
}

HOARD_EXPORT EP_STAT gdp_gcl_open_info_set_caching(gdp_gcl_open_info_t *info, bool keep_in_cache)
{
    if (info == NULL)
        return GDP_STAT_NAK_BADREQ;
    info->keep_in_cache = keep_in_cache;
    return EP_STAT_OK;
}

/* For Python: what an open-info holds. */
static const uint8_t *hoard_gdp_key_data(EP_CRYPTO_KEY *key, size_t *len, int *form)
{
    *len = key == NULL ? 0 : key->len;
    *form = key == NULL ? 0 : key->form;
    return key == NULL ? NULL : key->data;
}

static const uint8_t *hoard_gdp_info_key(gdp_gcl_open_info_t *info, size_t *len, int *form)
{
    return hoard_gdp_key_data(info == NULL ? NULL : info->skey, len, form);
}

static int hoard_gdp_info_flags(gdp_gcl_open_info_t *info)
{
    if (info == NULL)
        return 0;
    return (info->signkey_cb != NULL ? 1 : 0) | (info->keep_in_cache ? 2 : 0);
}

/* For Python: run the application's signkey_cb; the key it returns is handed over to us. */
static uint32_t hoard_gdp_call_signkey_cb(gdp_gcl_open_info_t *info, const uint8_t *name, EP_CRYPTO_KEY **skey)
{
    gdp_name_t gname;
    *skey = NULL;
    if (info == NULL || info->signkey_cb == NULL)
        return GDP_STAT_SKEY_REQUIRED.code;
    memcpy(gname, name, sizeof gname);
    return info->signkey_cb(gname, info->signkey_udata, skey).code;
}

/* ---- sub qos ------------------------------------------------------------------------ */
struct gdp_sub_qos {
    int reserved; /* the doc defines no quality yet; subscriptions are always reliable */
};

HOARD_EXPORT gdp_sub_qos_t *gdp_sub_qos_new(void)
{
    return calloc(1, sizeof(gdp_sub_qos_t));
}

HOARD_EXPORT void *gdp_sub_qos_free(gdp_sub_qos_t *qos)
{
    free(qos);
    return NULL;
}

/* ---- GCL handles -------------------------------------------------------------------- */
typedef EP_STAT (*hoard_filter)(gdp_datum_t *, void *);

struct gdp_gcl {
    intptr_t handle; /* the Python side's key */
    gdp_name_t name;
    gdp_iomode_t mode;
    pthread_mutex_t mu; /* nrecs and the filters */
    gdp_recno_t nrecs;
    hoard_filter append_filter, read_filter;
    void *append_filterdata, *read_filterdata;
};

static gdp_gcl_t *hoard_gcl_new(intptr_t handle, const uint8_t *name, gdp_iomode_t mode, int64_t nrecs)
{
    gdp_gcl_t *gcl = calloc(1, sizeof *gcl);
    if (gcl == NULL)
        return NULL;
    gcl->handle = handle;
    memcpy(gcl->name, name, sizeof gcl->name);
    gcl->mode = mode;
    gcl->nrecs = nrecs;
    pthread_mutex_init(&gcl->mu, NULL);
    return gcl;
}

static void hoard_gcl_seen(gdp_gcl_t *gcl, gdp_recno_t recno)
{
    pthread_mutex_lock(&gcl->mu);
    if (recno > gcl->nrecs)
        gcl->nrecs = recno;
    pthread_mutex_unlock(&gcl->mu);
}

static EP_STAT hoard_read_filter(gdp_gcl_t *gcl, gdp_datum_t *datum)
{
    hoard_filter filter;
    void *data;
    pthread_mutex_lock(&gcl->mu);
    filter = gcl->read_filter;
    data = gcl->read_filterdata;
    pthread_mutex_unlock(&gcl->mu);
    return filter == NULL ? EP_STAT_OK : filter(datum, data);
}

/* For Python: fill a datum with a record. */
static void hoard_gdp_fill(gdp_datum_t *d, int64_t recno, int64_t sec, uint32_t nsec, const uint8_t *data,
                           size_t len, const uint8_t *sig, size_t siglen, int mdalg)
{
    d->recno = recno;
    d->ts.tv_sec = sec;
    d->ts.tv_nsec = nsec;
    d->ts.tv_accuracy = 0.0f;
    d->sigmdalg = mdalg;
    gdp_buf_reset(d->dbuf);
    gdp_buf_reset(d->sig);
    if (len > 0 && gdp_buf_write(d->dbuf, data, len) < 0)
        gdp_buf_reset(d->dbuf);
    if (siglen > 0 && gdp_buf_write(d->sig, sig, siglen) < 0)
        gdp_buf_reset(d->sig);
}

/* At exit: close the embedded node (its appends are durable already; this releases the data
   dir and stops its threads), or the connection to the attached one. */
static void hoard_atexit(void)
{
    (void)hoard_gdp_shutdown();
}

HOARD_EXPORT EP_STAT gdp_init(const char *gdpd_addr)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static int done;
    uint32_t stat = 0;
    EP_STAT estat;
    HOARD_REQUIRE_PY();
    pthread_mutex_lock(&mu);
    if (done) { /* once per process, as GDP's */
        pthread_mutex_unlock(&mu);
        return EP_STAT_OK;
    }
    estat = hoard_status(hoard_gdp_init(gdpd_addr, &stat), &stat);
    if (EP_STAT_ISOK(estat)) {
        done = 1;
        atexit(hoard_atexit);
    }
    pthread_mutex_unlock(&mu);
    return estat;
}

HOARD_EXPORT EP_STAT gdp_parse_name(const char *external, gdp_name_t internal)
{
    uint32_t stat = 0;
    if (external == NULL || internal == NULL)
        return GDP_STAT_GCL_NAME_INVALID;
    HOARD_REQUIRE_PY();
    return hoard_status(hoard_gdp_parse_name(external, internal, &stat), &stat);
}

HOARD_EXPORT EP_STAT gdp_gcl_parse_name(const char *external, gdp_name_t internal)
{
    return gdp_parse_name(external, internal);
}

HOARD_EXPORT EP_STAT gdp_gcl_create(gdp_name_t gcl_name, gdp_name_t logdname, gdp_gclmd_t *gmd, gdp_gcl_t **gclp)
{
    uint8_t *md = NULL, name[sizeof(gdp_name_t)];
    size_t mdlen = 0;
    intptr_t handle = 0;
    int64_t nrecs = 0;
    uint32_t stat = 0;
    EP_STAT estat;
    (void)logdname; /* the log is hosted by the node the library runs or is attached to */
    if (gclp == NULL)
        return GDP_STAT_NAK_BADREQ;
    *gclp = NULL;
    HOARD_REQUIRE_PY();
    if (gmd != NULL && (md = hoard_gclmd_serialize(gmd, &mdlen)) == NULL)
        return GDP_STAT_BUFFER_FAILURE;
    estat = hoard_status(hoard_gdp_create(gdp_name_is_valid(gcl_name) ? gcl_name : NULL, md, mdlen, name, &handle,
                                          &nrecs, &stat), &stat);
    free(md);
    if (!EP_STAT_ISOK(estat))
        return estat;
    *gclp = hoard_gcl_new(handle, name, GDP_MODE_RA, nrecs);
    if (*gclp == NULL) {
        (void)hoard_gdp_close(handle, &stat);
        return GDP_STAT_BUFFER_FAILURE;
    }
    return estat;
}

HOARD_EXPORT EP_STAT gdp_gcl_create_default(gdp_name_t gcl_name, gdp_gcl_t **gclp)
{
    return gdp_gcl_create(gcl_name, NULL, NULL, gclp);
}

HOARD_EXPORT EP_STAT gdp_gcl_open(gdp_name_t name, gdp_iomode_t rw, gdp_gcl_open_info_t *info, gdp_gcl_t **gclp)
{
    uint8_t real[sizeof(gdp_name_t)];
    intptr_t handle = 0;
    int64_t nrecs = 0;
    uint32_t stat = 0;
    EP_STAT estat;
    if (gclp == NULL)
        return GDP_STAT_NAK_BADREQ;
    *gclp = NULL;
    if (!gdp_name_is_valid(name))
        return GDP_STAT_NULL_GCL;
    if (rw != GDP_MODE_RO && rw != GDP_MODE_AO && rw != GDP_MODE_RA)
        return GDP_STAT_BAD_IOMODE;
    HOARD_REQUIRE_PY();
    estat = hoard_status(hoard_gdp_open(name, (int)rw, info, real, &handle, &nrecs, &stat), &stat);
    if (!EP_STAT_ISOK(estat))
        return estat;
    *gclp = hoard_gcl_new(handle, real, rw, nrecs);
    if (*gclp == NULL) {
        (void)hoard_gdp_close(handle, &stat);
        return GDP_STAT_BUFFER_FAILURE;
    }
    return estat;
}

/* ---- the event queue (requests made without a callback) ------------------------------ */
struct _gdp_event {
    int type;
    gdp_gcl_t *gcl;
    gdp_datum_t *datum;
    void *udata;
    EP_STAT stat;
    struct _gdp_event *next;
};

static pthread_mutex_t hoard_ev_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hoard_ev_cv = PTHREAD_COND_INITIALIZER;
static gdp_event_t *hoard_ev_head, *hoard_ev_tail;

/* For Python: an event of a request; to its callback (here, on this library thread) or the queue. */
static void hoard_gdp_post(gdp_gcl_t *gcl, int type, uint32_t stat, int has_datum, int64_t recno, int64_t sec,
                           uint32_t nsec, const uint8_t *data, size_t len, const uint8_t *sig, size_t siglen,
                           int mdalg, gdp_event_cbfunc_t cb, void *udata)
{
    gdp_event_t *gev = calloc(1, sizeof *gev);
    if (gev == NULL) {
        fprintf(stderr, "libgdp: out of memory: an event was lost\n");
        return;
    }
    gev->type = type;
    gev->gcl = gcl;
    gev->udata = udata;
    gev->stat = EP_STAT_FROM_INT(stat);
    if (has_datum) {
        gev->datum = gdp_datum_new();
        if (gev->datum == NULL) {
            free(gev);
            fprintf(stderr, "libgdp: out of memory: an event was lost\n");
            return;
        }
        hoard_gdp_fill(gev->datum, recno, sec, nsec, data, len, sig, siglen, mdalg);
        hoard_gcl_seen(gcl, recno);
        if (type == GDP_EVENT_DATA) {
            EP_STAT fstat = hoard_read_filter(gcl, gev->datum);
            if (!EP_STAT_ISOK(fstat)) {
                gev->type = GDP_EVENT_FAILURE;
                gev->stat = fstat;
            }
        }
    }
    if (cb != NULL) {
        cb(gev);
        return;
    }
    pthread_mutex_lock(&hoard_ev_mu);
    if (hoard_ev_tail != NULL)
        hoard_ev_tail->next = gev;
    else
        hoard_ev_head = gev;
    hoard_ev_tail = gev;
    pthread_cond_broadcast(&hoard_ev_cv);
    pthread_mutex_unlock(&hoard_ev_mu);
}

static gdp_event_t *hoard_ev_take(gdp_gcl_t *gcl)
{
    gdp_event_t *gev, *prev = NULL;
    for (gev = hoard_ev_head; gev != NULL; prev = gev, gev = gev->next) {
        if (gcl != NULL && gev->gcl != gcl)
            continue;
        if (prev != NULL)
            prev->next = gev->next;
        else
            hoard_ev_head = gev->next;
        if (hoard_ev_tail == gev)
            hoard_ev_tail = prev;
        gev->next = NULL;
        return gev;
    }
    return NULL;
}

HOARD_EXPORT gdp_event_t *gdp_event_next(gdp_gcl_t *gcl, EP_TIME_SPEC *timeout)
{
    struct timespec deadline;
    gdp_event_t *gev;
    if (timeout != NULL) { /* a delta from now, as GDP implements it */
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += (time_t)timeout->tv_sec;
        deadline.tv_nsec += (long)(timeout->tv_nsec % 1000000000U);
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&hoard_ev_mu);
    while ((gev = hoard_ev_take(gcl)) == NULL) {
        if (timeout == NULL)
            pthread_cond_wait(&hoard_ev_cv, &hoard_ev_mu);
        else if (pthread_cond_timedwait(&hoard_ev_cv, &hoard_ev_mu, &deadline) == ETIMEDOUT) {
            gev = hoard_ev_take(gcl);
            break;
        }
    }
    pthread_mutex_unlock(&hoard_ev_mu);
    return gev;
}

HOARD_EXPORT int gdp_event_gettype(gdp_event_t *gev)
{
    return gev == NULL ? _GDP_EVENT_FREE : gev->type;
}

HOARD_EXPORT EP_STAT gdp_event_getstat(gdp_event_t *gev)
{
    return gev == NULL ? GDP_STAT_NAK_BADREQ : gev->stat;
}

HOARD_EXPORT gdp_gcl_t *gdp_event_getgcl(gdp_event_t *gev)
{
    return gev == NULL ? NULL : gev->gcl;
}

HOARD_EXPORT gdp_datum_t *gdp_event_getdatum(gdp_event_t *gev)
{
    return gev == NULL ? NULL : gev->datum;
}

HOARD_EXPORT void *gdp_event_getudata(gdp_event_t *gev)
{
    return gev == NULL ? NULL : gev->udata;
}

HOARD_EXPORT EP_STAT gdp_event_free(gdp_event_t *gev)
{
    if (gev == NULL)
        return GDP_STAT_NAK_BADREQ;
    gdp_datum_free(gev->datum);
    free(gev);
    return EP_STAT_OK;
}

HOARD_EXPORT void gdp_event_print(const gdp_event_t *gev, FILE *fp)
{
    char buf[120];
    if (fp == NULL)
        return;
    if (gev == NULL) {
        fprintf(fp, "<null event>\n");
        return;
    }
    fprintf(fp, "event type %d, gcl %p, udata %p, stat %s\n", gev->type, (void *)gev->gcl, gev->udata,
            ep_stat_tostr(gev->stat, buf, sizeof buf));
    if (gev->datum != NULL)
        gdp_datum_print(gev->datum, fp, GDP_DATUM_PRQUIET | GDP_DATUM_PRTEXT);
}

/* ---- GCL operations ----------------------------------------------------------------- */
HOARD_EXPORT EP_STAT gdp_gcl_close(gdp_gcl_t *gcl)
{
    uint32_t stat = 0;
    EP_STAT estat;
    gdp_event_t *gev;
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    HOARD_REQUIRE_PY();
    /* Python waits for the handle's queued appends and ends its requests: no event of it is
       posted after this returns. */
    estat = hoard_status(hoard_gdp_close(gcl->handle, &stat), &stat);
    pthread_mutex_lock(&hoard_ev_mu);
    while ((gev = hoard_ev_take(gcl)) != NULL) /* events nobody will ask for */
        gdp_event_free(gev);
    pthread_mutex_unlock(&hoard_ev_mu);
    pthread_mutex_destroy(&gcl->mu);
    free(gcl);
    return estat;
}

HOARD_EXPORT EP_STAT gdp_gcl_getname(const gdp_gcl_t *gcl, gdp_name_t namebuf)
{
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    if (namebuf == NULL)
        return GDP_STAT_NAK_BADREQ;
    memcpy(namebuf, gcl->name, sizeof(gdp_name_t));
    return EP_STAT_OK;
}

HOARD_EXPORT gdp_recno_t gdp_gcl_getnrecs(const gdp_gcl_t *gcl)
{
    gdp_recno_t n;
    if (gcl == NULL)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&gcl->mu);
    n = gcl->nrecs;
    pthread_mutex_unlock((pthread_mutex_t *)&gcl->mu);
    return n;
}

HOARD_EXPORT EP_STAT gdp_gcl_getmetadata(gdp_gcl_t *gcl, gdp_gclmd_t **gmdp)
{
    uint32_t stat = 0;
    EP_STAT estat;
    gdp_gclmd_t *gmd;
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    if (gmdp == NULL)
        return GDP_STAT_NAK_BADREQ;
    *gmdp = NULL;
    HOARD_REQUIRE_PY();
    if ((gmd = gdp_gclmd_new(0)) == NULL)
        return GDP_STAT_BUFFER_FAILURE;
    estat = hoard_status(hoard_gdp_metadata(gcl->handle, gmd, &stat), &stat);
    if (!EP_STAT_ISOK(estat)) {
        gdp_gclmd_free(gmd);
        return estat;
    }
    *gmdp = gmd;
    return estat;
}

HOARD_EXPORT void gdp_gcl_print(const gdp_gcl_t *gcl, FILE *fp)
{
    gdp_pname_t pname;
    if (fp == NULL)
        return;
    if (gcl == NULL) {
        fprintf(fp, "GCL: NULL\n");
        return;
    }
    fprintf(fp, "GCL@%p: %s\n\tiomode = %d, nrecs = %" PRIgdp_recno ", handle = %ld\n", (const void *)gcl,
            gdp_printable_name(gcl->name, pname), (int)gcl->mode, gdp_gcl_getnrecs(gcl), (long)gcl->handle);
}

HOARD_EXPORT void gdp_gcl_set_append_filter(gdp_gcl_t *gcl, EP_STAT (*filter)(gdp_datum_t *, void *),
                                            void *filterdata)
{
    if (gcl == NULL)
        return;
    pthread_mutex_lock(&gcl->mu);
    gcl->append_filter = filter;
    gcl->append_filterdata = filterdata;
    pthread_mutex_unlock(&gcl->mu);
}

HOARD_EXPORT void gdp_gcl_set_read_filter(gdp_gcl_t *gcl, EP_STAT (*filter)(gdp_datum_t *, void *), void *filterdata)
{
    if (gcl == NULL)
        return;
    pthread_mutex_lock(&gcl->mu);
    gcl->read_filter = filter;
    gcl->read_filterdata = filterdata;
    pthread_mutex_unlock(&gcl->mu);
}

/* Before an append: the mode, the record number the client assigns (nrecs + 1, as GDP's),
   then the append filter. */
static EP_STAT hoard_before_append(gdp_gcl_t *gcl, gdp_datum_t *datum)
{
    hoard_filter filter;
    void *data;
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    if (datum == NULL)
        return GDP_STAT_DATUM_REQUIRED;
    if (!(gcl->mode & GDP_MODE_AO))
        return GDP_STAT_READONLY;
    pthread_mutex_lock(&gcl->mu);
    datum->recno = gcl->nrecs + 1;
    filter = gcl->append_filter;
    data = gcl->append_filterdata;
    pthread_mutex_unlock(&gcl->mu);
    return filter == NULL ? EP_STAT_OK : filter(datum, data);
}

HOARD_EXPORT EP_STAT gdp_gcl_append(gdp_gcl_t *gcl, gdp_datum_t *datum)
{
    uint32_t stat = 0;
    EP_STAT estat = hoard_before_append(gcl, datum);
    gdp_buf_t *b;
    if (!EP_STAT_ISOK(estat))
        return estat;
    HOARD_REQUIRE_PY();
    b = datum->dbuf;
    /* Python copies the data; the datum then holds the committed record's number, time and
       signature, and its data is consumed (as GDP's append drains the buffer it sends). */
    estat = hoard_status(hoard_gdp_append(gcl->handle, b->data ? b->data + b->start : (const uint8_t *)"",
                                          gdp_buf_getlength(b), datum, &stat), &stat);
    gdp_buf_reset(b);
    if (EP_STAT_ISOK(estat))
        hoard_gcl_seen(gcl, datum->recno);
    return estat;
}

HOARD_EXPORT EP_STAT gdp_gcl_append_async(gdp_gcl_t *gcl, gdp_datum_t *datum, gdp_event_cbfunc_t cbfunc,
                                          void *udata)
{
    uint32_t stat = 0;
    EP_STAT estat = hoard_before_append(gcl, datum);
    gdp_buf_t *b;
    if (!EP_STAT_ISOK(estat))
        return estat;
    HOARD_REQUIRE_PY();
    b = datum->dbuf;
    estat = hoard_status(hoard_gdp_append_async(gcl->handle, gcl, b->data ? b->data + b->start : (const uint8_t *)"",
                                                gdp_buf_getlength(b), cbfunc, udata, &stat), &stat);
    gdp_buf_reset(b);
    if (EP_STAT_ISOK(estat)) { /* numbered optimistically, as GDP's client does */
        pthread_mutex_lock(&gcl->mu);
        gcl->nrecs++;
        pthread_mutex_unlock(&gcl->mu);
    }
    return estat;
}

static EP_STAT hoard_read(gdp_gcl_t *gcl, int by_ts, gdp_recno_t recno, const EP_TIME_SPEC *ts, gdp_datum_t *datum)
{
    uint32_t stat = 0;
    EP_STAT estat;
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    if (datum == NULL)
        return GDP_STAT_DATUM_REQUIRED;
    HOARD_REQUIRE_PY();
    estat = hoard_status(hoard_gdp_read(gcl->handle, by_ts, recno, ts ? ts->tv_sec : 0, ts ? ts->tv_nsec : 0, datum,
                                        &stat), &stat);
    if (!EP_STAT_ISOK(estat))
        return estat;
    hoard_gcl_seen(gcl, datum->recno);
    return hoard_read_filter(gcl, datum);
}

HOARD_EXPORT EP_STAT gdp_gcl_read_by_recno(gdp_gcl_t *gcl, gdp_recno_t recno, gdp_datum_t *datum)
{
    return hoard_read(gcl, 0, recno, NULL, datum);
}

HOARD_EXPORT EP_STAT gdp_gcl_read_by_ts(gdp_gcl_t *gcl, EP_TIME_SPEC *ts, gdp_datum_t *datum)
{
    if (ts == NULL)
        return GDP_STAT_NAK_BADREQ;
    return hoard_read(gcl, 1, 0, ts, datum);
}

enum { HOARD_REQ_SUBSCRIBE = 0, HOARD_REQ_MULTIREAD = 1, HOARD_REQ_READ = 2 };

static EP_STAT hoard_request(gdp_gcl_t *gcl, int kind, int by_ts, gdp_recno_t start, const EP_TIME_SPEC *ts,
                             int32_t numrecs, gdp_event_cbfunc_t cbfunc, void *udata)
{
    uint32_t stat = 0;
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    if (by_ts && ts == NULL)
        return GDP_STAT_NAK_BADREQ;
    HOARD_REQUIRE_PY();
    return hoard_status(hoard_gdp_request(gcl->handle, gcl, kind, by_ts, start, ts ? ts->tv_sec : 0,
                                          ts ? ts->tv_nsec : 0, numrecs, cbfunc, udata, &stat), &stat);
}

HOARD_EXPORT EP_STAT gdp_gcl_read_async(gdp_gcl_t *gcl, gdp_recno_t recno, gdp_event_cbfunc_t cbfunc, void *udata)
{
    return hoard_request(gcl, HOARD_REQ_READ, 0, recno, NULL, 1, cbfunc, udata);
}

HOARD_EXPORT EP_STAT gdp_gcl_subscribe_by_recno(gdp_gcl_t *gcl, gdp_recno_t start, int32_t numrecs,
                                                gdp_sub_qos_t *qos, gdp_event_cbfunc_t cbfunc, void *udata)
{
    (void)qos;
    return hoard_request(gcl, HOARD_REQ_SUBSCRIBE, 0, start, NULL, numrecs, cbfunc, udata);
}

HOARD_EXPORT EP_STAT gdp_gcl_subscribe_by_ts(gdp_gcl_t *gcl, EP_TIME_SPEC *start, int32_t numrecs,
                                             gdp_sub_qos_t *qos, gdp_event_cbfunc_t cbfunc, void *udata)
{
    (void)qos;
    return hoard_request(gcl, HOARD_REQ_SUBSCRIBE, 1, 0, start, numrecs, cbfunc, udata);
}

HOARD_EXPORT EP_STAT gdp_gcl_multiread(gdp_gcl_t *gcl, gdp_recno_t start, int32_t numrecs,
                                       gdp_event_cbfunc_t cbfunc, void *udata)
{
    return hoard_request(gcl, HOARD_REQ_MULTIREAD, 0, start, NULL, numrecs, cbfunc, udata);
}

HOARD_EXPORT EP_STAT gdp_gcl_multiread_ts(gdp_gcl_t *gcl, EP_TIME_SPEC *start, int32_t numrecs,
                                          gdp_event_cbfunc_t cbfunc, void *udata)
{
    return hoard_request(gcl, HOARD_REQ_MULTIREAD, 1, 0, start, numrecs, cbfunc, udata);
}

HOARD_EXPORT EP_STAT gdp_gcl_unsubscribe(gdp_gcl_t *gcl, gdp_event_cbfunc_t cbfunc, void *udata)
{
    uint32_t stat = 0;
    if (gcl == NULL)
        return GDP_STAT_NULL_GCL;
    HOARD_REQUIRE_PY();
    return hoard_status(hoard_gdp_unsubscribe(gcl->handle, cbfunc, udata, &stat), &stat);
}

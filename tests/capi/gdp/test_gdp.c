/*
 * test_gdp.c: drives hoard's libgdp.so through gdp.h only, written from the GDP programmatic
 * API v0.8 document (specs/gdp-programmatic-api-v0.8.txt) and its digest (DIGEST.md §5).
 *
 *   cc -Wall -Wextra -Werror -o test_gdp test_gdp.c -IOUT -LOUT -lgdp -lpthread
 *   HOARD_DATA_DIR=DIR LD_LIBRARY_PATH=OUT ./test_gdp [-G host:port] TEST...
 *
 * TEST: names buffers logs async subscribe multiread filters keys, or all (every one). With
 * -G the library attaches to the running node there (gdp_init(addr)); without, gdp_init(NULL)
 * opens an embedded node on $HOARD_DATA_DIR. Prints "ok - ..." lines and "PASS <test>";
 * exits 1 on the first failed check.
 */
#include <gdp/gdp.h>
#include <gdp/gdp_version.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fprintf(stderr, "\n");                                          \
            exit(1);                                                        \
        }                                                                   \
    } while (0)

#define CHECK_STAT(expr, expected)                                                                    \
    do {                                                                                              \
        EP_STAT _got = (expr);                                                                        \
        char _a[120], _b[120];                                                                        \
        CHECK(EP_STAT_IS_SAME(_got, (expected)), "%s: got %s, expected %s", #expr,                    \
              ep_stat_tostr(_got, _a, sizeof _a), ep_stat_tostr((expected), _b, sizeof _b));          \
    } while (0)

#define CHECK_OK(expr)                                                                                \
    do {                                                                                              \
        EP_STAT _got = (expr);                                                                        \
        char _a[120];                                                                                 \
        CHECK(EP_STAT_ISOK(_got), "%s: %s", #expr, ep_stat_tostr(_got, _a, sizeof _a));               \
    } while (0)

static const char *gdpd_addr; /* -G */
static int attached;
static char unique[64];        /* makes log names unique to this run */

static void ok(const char *what)
{
    printf("ok - %s\n", what);
    fflush(stdout);
}

static void log_name(const char *tag, gdp_name_t name)
{
    char text[160];
    snprintf(text, sizeof text, "test_gdp %s %s", unique, tag);
    CHECK_OK(gdp_parse_name(text, name));
}

static EP_TIME_SPEC seconds(int s)
{
    EP_TIME_SPEC t = {s, 0, 0.0f};
    return t;
}

/* The data of a datum as a NUL-terminated string (caller frees). */
static char *datum_text(gdp_datum_t *d)
{
    gdp_buf_t *b = gdp_datum_getdbuf(d);
    size_t n = gdp_buf_getlength(b);
    char *out = malloc(n + 1);
    CHECK(out != NULL, "malloc");
    CHECK(gdp_buf_peek(b, out, n) == n, "peek");
    out[n] = '\0';
    return out;
}

static void check_data(gdp_datum_t *d, const char *expected)
{
    char *text = datum_text(d);
    CHECK(strcmp(text, expected) == 0, "data '%s', expected '%s'", text, expected);
    free(text);
}

static gdp_recno_t append_text(gdp_gcl_t *gcl, gdp_datum_t *d, const char *text)
{
    CHECK(gdp_buf_write(gdp_datum_getbuf(d), text, strlen(text)) == 0, "gdp_buf_write");
    CHECK_OK(gdp_gcl_append(gcl, d));
    CHECK(gdp_datum_getdlen(d) == 0, "append consumes the datum's data (%zu left)", gdp_datum_getdlen(d));
    return gdp_datum_getrecno(d);
}

static gdp_gcl_t *new_log(const char *tag, int records)
{
    gdp_name_t name;
    gdp_gcl_t *gcl = NULL;
    gdp_datum_t *d = gdp_datum_new();
    char text[64];
    int i;
    log_name(tag, name);
    CHECK_OK(gdp_gcl_create(name, NULL, NULL, &gcl));
    for (i = 1; i <= records; i++) {
        snprintf(text, sizeof text, "record %d", i);
        CHECK(append_text(gcl, d, text) == i, "recno %d", i);
    }
    gdp_datum_free(d);
    return gcl;
}

/* Next event of gcl from the queue (10 s bound), of the expected type. */
static gdp_event_t *expect_event(gdp_gcl_t *gcl, int type)
{
    EP_TIME_SPEC t = seconds(30);
    gdp_event_t *gev = gdp_event_next(gcl, &t);
    char buf[120];
    CHECK(gev != NULL, "no event within 30 s (expected type %d)", type);
    CHECK(gdp_event_gettype(gev) == type, "event type %d (stat %s), expected %d", gdp_event_gettype(gev),
          ep_stat_tostr(gdp_event_getstat(gev), buf, sizeof buf), type);
    CHECK(gdp_event_getgcl(gev) == gcl, "event of another gcl");
    return gev;
}

static void expect_records(gdp_gcl_t *gcl, gdp_recno_t first, gdp_recno_t last)
{
    gdp_recno_t r;
    char text[64];
    for (r = first; r <= last; r++) {
        gdp_event_t *gev = expect_event(gcl, GDP_EVENT_DATA);
        CHECK(gdp_datum_getrecno(gdp_event_getdatum(gev)) == r, "recno %" PRIgdp_recno ", expected %" PRIgdp_recno,
              gdp_datum_getrecno(gdp_event_getdatum(gev)), r);
        CHECK_STAT(gdp_event_getstat(gev), GDP_STAT_ACK_CONTENT);
        snprintf(text, sizeof text, "record %" PRIgdp_recno, r);
        check_data(gdp_event_getdatum(gev), text);
        CHECK_OK(gdp_event_free(gev));
    }
}

static void expect_eos(gdp_gcl_t *gcl)
{
    gdp_event_t *gev = expect_event(gcl, GDP_EVENT_EOS);
    CHECK(gdp_event_getdatum(gev) == NULL, "EOS carries no datum");
    CHECK_OK(gdp_event_free(gev));
}

static void expect_no_event(gdp_gcl_t *gcl)
{
    EP_TIME_SPEC t = {0, 300000000, 0.0f};
    gdp_event_t *gev = gdp_event_next(gcl, &t);
    CHECK(gev == NULL, "unexpected event of type %d", gdp_event_gettype(gev));
}

/* -- names, status codes, version ---------------------------------------------------- */
static void test_names(void)
{
    gdp_name_t a, b, zero;
    gdp_pname_t pa, pb;
    char buf[120];
    static const uint8_t sha256_hello[4] = {0x2c, 0xf2, 0x4d, 0xba}; /* SHA-256("hello") */

    CHECK(GDP_LIB_VERSION == 0x000800, "GDP_LIB_VERSION 0x%06x", GDP_LIB_VERSION);
    CHECK(strlen(GdpVersion) > 0, "GdpVersion");
    CHECK_OK(gdp_parse_name("hello", a));
    CHECK(memcmp(a, sha256_hello, 4) == 0, "a name that is not printable is its SHA-256");
    CHECK(gdp_name_is_valid(a), "valid");
    CHECK(strlen(gdp_printable_name(a, pa)) == GDP_GCL_PNAME_LEN, "43 characters: %s", pa);
    CHECK(strchr(pa, '+') == NULL && strchr(pa, '/') == NULL && strchr(pa, '=') == NULL, "URL-safe: %s", pa);
    CHECK_OK(gdp_internal_name(pa, b));
    CHECK(GDP_NAME_SAME(a, b), "internal(printable(n)) == n");
    CHECK_OK(gdp_parse_name(pa, b));
    CHECK(GDP_NAME_SAME(a, b), "a printable name parses to itself");
    CHECK_OK(gdp_gcl_parse_name(gdp_printable_name(b, pb), a)); /* the examples' name for it */
    CHECK(GDP_NAME_SAME(a, b) && strcmp(pa, pb) == 0, "gdp_gcl_parse_name");
    CHECK_STAT(gdp_internal_name(strcpy(pb, "too short"), b), GDP_STAT_GCL_NAME_INVALID);
    memcpy(pb, pa, sizeof pb);
    pb[5] = '+'; /* not URL-safe base64 */
    CHECK_STAT(gdp_internal_name(pb, b), GDP_STAT_GCL_NAME_INVALID);
    memset(zero, 0, sizeof zero);
    CHECK(!gdp_name_is_valid(zero), "the all-zero name is invalid");
    ok("names: parse, print, internal, valid");

    CHECK(EP_STAT_ISOK(EP_STAT_OK) && EP_STAT_ISOK(GDP_STAT_ACK_CREATED), "OK statuses");
    CHECK(!EP_STAT_ISOK(GDP_STAT_NAK_NOTFOUND) && EP_STAT_ISERROR(GDP_STAT_NAK_NOTFOUND), "NAK");
    CHECK(EP_STAT_DETAIL(GDP_STAT_NAK_NOTFOUND) == 404 && GDP_STAT_IS_GDP(GDP_STAT_NAK_NOTFOUND), "detail");
    CHECK(EP_STAT_REGISTRY(GDP_STAT_NAK_BADOPT) == EP_REGISTRY_UCB && EP_STAT_MODULE(GDP_STAT_NAK_BADOPT) == 1, "reg");
    CHECK(EP_STAT_ISWARN(GDP_STAT_NAK_LOST_SUBSCR) && EP_STAT_ISSEVERE(GDP_STAT_NAK_INTERNAL), "severities");
    CHECK(strstr(ep_stat_tostr(GDP_STAT_NAK_NOTFOUND, buf, sizeof buf), "not found") != NULL, "%s", buf);
    CHECK(strcmp(ep_stat_tostr(EP_STAT_OK, buf, sizeof buf), "OK") == 0, "%s", buf);
    ok("EP_STAT: severities, registry, module, detail, strings");
}

/* -- buffers, datums, metadata -------------------------------------------------------- */
static void test_buffers(void)
{
    gdp_buf_t *b = gdp_buf_new(), *c = gdp_buf_new();
    gdp_datum_t *d = gdp_datum_new();
    gdp_gclmd_t *md = gdp_gclmd_new(0);
    char out[64];
    size_t len;
    const void *val;
    gdp_gclmd_id_t id;
    EP_TIME_SPEC ts;
    int i;

    CHECK(b && c && d && md, "allocations");
    CHECK(gdp_buf_write(b, "hello ", 6) == 0, "write");
    CHECK(gdp_buf_printf(b, "%s %d", "world", 42) == 8, "printf");
    CHECK(gdp_buf_getlength(b) == 14, "length %zu", gdp_buf_getlength(b));
    CHECK(gdp_buf_peek(b, out, 5) == 5 && memcmp(out, "hello", 5) == 0, "peek");
    CHECK(gdp_buf_getlength(b) == 14, "peek leaves the data");
    CHECK(gdp_buf_read(b, out, 6) == 6 && gdp_buf_getlength(b) == 8, "read consumes");
    CHECK(gdp_buf_move(c, b, 5) == 0 && gdp_buf_getlength(c) == 5 && gdp_buf_getlength(b) == 3, "move");
    CHECK(gdp_buf_drain(b, 100) == 0 && gdp_buf_getlength(b) == 0, "drain");
    memset(out, 0, sizeof out);
    CHECK(gdp_buf_read(c, out, sizeof out) == 5 && strcmp(out, "world") == 0, "moved data: %s", out);
    for (i = 0; i < 10000; i++) /* grows */
        CHECK(gdp_buf_write(b, "0123456789", 10) == 0, "write %d", i);
    CHECK(gdp_buf_getlength(b) == 100000, "grown");
    gdp_buf_reset(b);
    CHECK(gdp_buf_getlength(b) == 0, "reset");
    gdp_buf_free(b);
    gdp_buf_free(c);
    ok("buffers: write, printf, peek, read, drain, move, reset");

    CHECK(gdp_datum_getrecno(d) == 0 && gdp_datum_getdlen(d) == 0, "a new datum is empty");
    CHECK(gdp_datum_getbuf(d) == gdp_datum_getdbuf(d), "getbuf is getdbuf");
    gdp_datum_getts(d, &ts);
    CHECK(ts.tv_sec == 0 && ts.tv_nsec == 0, "no timestamp");
    CHECK(gdp_datum_getsig(d) != NULL && gdp_buf_getlength(gdp_datum_getsig(d)) == 0, "no signature");
    gdp_datum_free(d);
    ok("datums: new, getters, free");

    CHECK_OK(gdp_gclmd_add(md, GDP_GCLMD_SYN, 10, "text/plain"));
    CHECK_OK(gdp_gclmd_add(md, GDP_GCLMD_LOC, 4, "here"));
    CHECK_OK(gdp_gclmd_find(md, GDP_GCLMD_LOC, &len, &val));
    CHECK(len == 4 && memcmp(val, "here", 4) == 0, "find");
    CHECK_OK(gdp_gclmd_get(md, 0, &id, &len, &val));
    CHECK(id == GDP_GCLMD_SYN && len == 10, "get");
    CHECK_STAT(gdp_gclmd_get(md, 2, &id, &len, &val), GDP_STAT_NAK_NOTFOUND);
    CHECK_STAT(gdp_gclmd_find(md, GDP_GCLMD_XTM, &len, &val), GDP_STAT_NAK_NOTFOUND);
    gdp_gclmd_free(md);
    ok("metadata lists: new, add, get, find, free");
}

/* -- create, open, append, read, close ------------------------------------------------- */
static void test_logs(void)
{
    gdp_name_t name, got, other;
    gdp_gcl_t *gcl = NULL, *ro = NULL, *again = NULL;
    gdp_gclmd_t *md = gdp_gclmd_new(0), *back = NULL;
    gdp_datum_t *d = gdp_datum_new();
    EP_TIME_SPEC ts2, ts3;
    size_t len;
    const void *val;
    char text[32];
    int i;

    log_name("logs", name);
    CHECK_OK(gdp_gclmd_add(md, GDP_GCLMD_SYN, 10, "text/plain"));
    CHECK_OK(gdp_gcl_create(name, NULL, md, &gcl)); /* the synopsis' four arguments */
    gdp_gclmd_free(md);
    CHECK_OK(gdp_gcl_getname(gcl, got));
    CHECK(GDP_NAME_SAME(name, got), "getname");
    CHECK(gdp_gcl_getnrecs(gcl) == 0, "a new log has no records");
    CHECK_STAT(gdp_gcl_create(name, NULL, NULL, &again), GDP_STAT_NAK_CONFLICT);
    CHECK(again == NULL, "no handle on failure");
    ok("gdp_gcl_create(name, logdname, gmd, &gcl); an existing name is 409");

    for (i = 1; i <= 3; i++) {
        snprintf(text, sizeof text, "record %d", i);
        CHECK(append_text(gcl, d, text) == i, "records are numbered from 1");
        gdp_datum_getts(d, i == 2 ? &ts2 : &ts3);
        CHECK(gdp_buf_getlength(gdp_datum_getsig(d)) > 0 && gdp_datum_getsigmdalg(d) == EP_CRYPTO_MD_SHA256,
              "appends are signed");
    }
    CHECK(ts2.tv_sec > 1500000000 && ts3.tv_sec >= ts2.tv_sec, "commit timestamps");
    CHECK(gdp_gcl_getnrecs(gcl) == 3, "nrecs %" PRIgdp_recno, gdp_gcl_getnrecs(gcl));
    ok("gdp_gcl_append: numbered, stamped, signed, data consumed");

    for (i = 1; i <= 3; i++) {
        snprintf(text, sizeof text, "record %d", i);
        CHECK_OK(gdp_gcl_read_by_recno(gcl, i, d));
        CHECK(gdp_datum_getrecno(d) == i, "recno");
        check_data(d, text);
    }
    CHECK_OK(gdp_gcl_read_by_recno(gcl, -1, d));
    CHECK(gdp_datum_getrecno(d) == 3, "-1 is the last record");
    CHECK_OK(gdp_gcl_read_by_recno(gcl, -10, d));
    CHECK(gdp_datum_getrecno(d) == 1, "further back is the first");
    CHECK_STAT(gdp_gcl_read_by_recno(gcl, 0, d), GDP_STAT_NAK_NOTFOUND);
    CHECK_STAT(gdp_gcl_read_by_recno(gcl, 4, d), GDP_STAT_NAK_NOTFOUND);
    CHECK_OK(gdp_gcl_read_by_ts(gcl, &ts2, d));
    CHECK(gdp_datum_getrecno(d) <= 2, "read_by_ts: the first record at or after ts");
    ts3.tv_sec += 3600;
    CHECK_STAT(gdp_gcl_read_by_ts(gcl, &ts3, d), GDP_STAT_NAK_NOTFOUND);
    ok("gdp_gcl_read_by_recno / read_by_ts");

    CHECK_OK(gdp_gcl_getmetadata(gcl, &back));
    CHECK_OK(gdp_gclmd_find(back, GDP_GCLMD_SYN, &len, &val));
    CHECK(len == 10 && memcmp(val, "text/plain", 10) == 0, "SYN kept");
    CHECK_OK(gdp_gclmd_find(back, GDP_GCLMD_PUB, &len, &val));
    CHECK_OK(gdp_gclmd_find(back, GDP_GCLMD_CTM, &len, &val));
    gdp_gclmd_free(back);
    ok("gdp_gcl_getmetadata: the caller's entries, CTM, PUB");

    CHECK_OK(gdp_gcl_open(name, GDP_MODE_RO, &ro)); /* the examples' three arguments */
    CHECK(gdp_gcl_getnrecs(ro) == 3, "open returns nrecs");
    CHECK_OK(gdp_gcl_read_by_recno(ro, 2, d));
    check_data(d, "record 2");
    CHECK(gdp_buf_write(gdp_datum_getbuf(d), "x", 1) == 0, "write");
    CHECK_STAT(gdp_gcl_append(ro, d), GDP_STAT_READONLY);
    CHECK_OK(gdp_gcl_close(ro));
    CHECK_STAT(gdp_gcl_open(name, (gdp_iomode_t)7, NULL, &ro), GDP_STAT_BAD_IOMODE);
    memset(other, 0, sizeof other);
    CHECK_STAT(gdp_gcl_open(other, GDP_MODE_RO, NULL, &ro), GDP_STAT_NULL_GCL);
    log_name("never created", other);
    CHECK_STAT(gdp_gcl_open(other, GDP_MODE_RO, NULL, &ro), GDP_STAT_NAK_NOTFOUND);
    CHECK_OK(gdp_gcl_open(name, GDP_MODE_AO, NULL, &again));
    CHECK_STAT(gdp_gcl_read_by_recno(again, 1, d), GDP_STAT_BAD_IOMODE);
    CHECK(append_text(again, d, "record 4") == 4, "an append-only handle appends");
    CHECK_OK(gdp_gcl_close(again));
    ok("gdp_gcl_open: RO, AO; read-only, bad mode, null name, unknown log");

    log_name("example create", other);
    CHECK_OK(gdp_gcl_create(other, &again)); /* the examples' two arguments */
    CHECK(append_text(again, d, "record 1") == 1, "append");
    CHECK_OK(gdp_gcl_close(again));
    again = NULL;
    CHECK_STAT(gdp_gcl_create_default(name, &again), GDP_STAT_NAK_CONFLICT); /* the function behind it */
    CHECK(again == NULL, "no handle on failure");
    ok("gdp_gcl_create(name, &gcl) = gdp_gcl_create_default");

    md = gdp_gclmd_new(1);
    CHECK_OK(gdp_gclmd_add(md, GDP_GCLMD_LOC, strlen(unique), unique));
    CHECK_OK(gdp_gcl_create(NULL, NULL, md, &again)); /* no name: named after its metadata */
    gdp_gclmd_free(md);
    CHECK_OK(gdp_gcl_getname(again, other));
    CHECK(gdp_name_is_valid(other) && !GDP_NAME_SAME(other, name), "a derived name");
    CHECK_OK(gdp_gcl_close(again));
    CHECK_OK(gdp_gcl_open(other, GDP_MODE_RO, NULL, &again));
    CHECK_OK(gdp_gcl_getmetadata(again, &back));
    CHECK_OK(gdp_gclmd_find(back, GDP_GCLMD_LOC, &len, &val));
    CHECK(len == strlen(unique) && memcmp(val, unique, len) == 0, "LOC");
    gdp_gclmd_free(back);
    CHECK_OK(gdp_gcl_close(again));
    ok("gdp_gcl_create(NULL, ...): the log is named after its metadata, and opens by that name");

    CHECK_OK(gdp_gcl_close(gcl));
    gdp_datum_free(d);
}

/* -- asynchronous appends and reads ---------------------------------------------------- */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t caller;
    int events, on_caller, last_type;
    gdp_recno_t recnos[64];
    void *udata;
} waiter_t;

static waiter_t waiter = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, {0}, NULL};

static void callback(gdp_event_t *gev)
{
    pthread_mutex_lock(&waiter.mu);
    if (pthread_equal(pthread_self(), waiter.caller))
        waiter.on_caller++;
    if (gdp_event_getdatum(gev) != NULL && waiter.events < 64)
        waiter.recnos[waiter.events] = gdp_datum_getrecno(gdp_event_getdatum(gev));
    waiter.last_type = gdp_event_gettype(gev);
    waiter.udata = gdp_event_getudata(gev);
    waiter.events++;
    pthread_cond_broadcast(&waiter.cv);
    pthread_mutex_unlock(&waiter.mu);
    gdp_event_free(gev); /* the callback frees its event */
}

static void wait_events(int n)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    pthread_mutex_lock(&waiter.mu);
    while (waiter.events < n)
        CHECK(pthread_cond_timedwait(&waiter.cv, &waiter.mu, &deadline) == 0, "%d of %d callbacks", waiter.events, n);
    pthread_mutex_unlock(&waiter.mu);
}

static void reset_waiter(void)
{
    pthread_mutex_lock(&waiter.mu);
    waiter.caller = pthread_self();
    waiter.events = waiter.on_caller = waiter.last_type = 0;
    waiter.udata = NULL;
    pthread_mutex_unlock(&waiter.mu);
}

static void test_async(void)
{
    gdp_gcl_t *gcl = new_log("async", 0);
    gdp_datum_t *d = gdp_datum_new();
    gdp_event_t *gev;
    int i, token = 7;

    for (i = 1; i <= 3; i++) {
        CHECK(gdp_buf_printf(gdp_datum_getbuf(d), "record %d", i) > 0, "printf");
        CHECK_OK(gdp_gcl_append_async(gcl, d, NULL, NULL));
        CHECK(gdp_datum_getdlen(d) == 0, "append_async takes the data");
    }
    for (i = 1; i <= 3; i++) {
        gev = expect_event(gcl, GDP_EVENT_CREATED);
        CHECK_STAT(gdp_event_getstat(gev), GDP_STAT_ACK_CREATED);
        CHECK(gdp_datum_getrecno(gdp_event_getdatum(gev)) == i, "created in order");
        gdp_event_free(gev);
    }
    CHECK(gdp_gcl_getnrecs(gcl) == 3, "nrecs");
    ok("append_async without a callback: GDP_EVENT_CREATED per record, in order, via gdp_event_next");

    reset_waiter();
    for (i = 4; i <= 5; i++) {
        CHECK(gdp_buf_printf(gdp_datum_getbuf(d), "record %d", i) > 0, "printf");
        CHECK_OK(gdp_gcl_append_async(gcl, d, callback, &token));
    }
    wait_events(2);
    CHECK(waiter.on_caller == 0, "callbacks never run on the calling thread");
    CHECK(waiter.recnos[0] == 4 && waiter.recnos[1] == 5 && waiter.last_type == GDP_EVENT_CREATED, "created");
    CHECK(waiter.udata == &token, "udata passed through");
    ok("append_async with a callback: on a library thread, with its udata");

    CHECK_OK(gdp_gcl_read_async(gcl, 2, NULL, &token));
    gev = expect_event(gcl, GDP_EVENT_DATA);
    CHECK(gdp_event_getudata(gev) == &token, "udata");
    check_data(gdp_event_getdatum(gev), "record 2");
    gdp_event_free(gev);
    CHECK_OK(gdp_gcl_read_async(gcl, 99, NULL, NULL));
    gev = expect_event(gcl, GDP_EVENT_FAILURE);
    CHECK_STAT(gdp_event_getstat(gev), GDP_STAT_NAK_NOTFOUND);
    gdp_event_free(gev);
    ok("read_async: GDP_EVENT_DATA, or GDP_EVENT_FAILURE with the status");

    expect_no_event(gcl);
    ok("gdp_event_next returns NULL when its timeout expires");
    CHECK_OK(gdp_gcl_close(gcl));
    gdp_datum_free(d);
}

/* -- subscriptions ----------------------------------------------------------------------- */
static void test_subscribe(void)
{
    gdp_gcl_t *gcl = new_log("subscribe", 20);
    gdp_datum_t *d = gdp_datum_new();
    gdp_sub_qos_t *qos = gdp_sub_qos_new();
    EP_TIME_SPEC ts5;
    char text[32];
    int i;

    /* the doc's table, for a log of 20 records */
    CHECK_OK(gdp_gcl_subscribe_by_recno(gcl, 1, 10, NULL, NULL, NULL));
    expect_records(gcl, 1, 10);
    expect_eos(gcl);
    CHECK_OK(gdp_gcl_subscribe_by_recno(gcl, -10, 10, qos, NULL, NULL));
    expect_records(gcl, 11, 20);
    expect_eos(gcl);
    ok("subscribe (1, 10) and (-10, 10): existing records, then EOS");

    CHECK_OK(gdp_gcl_subscribe_by_recno(gcl, -10, 20, NULL, NULL, NULL));
    expect_records(gcl, 11, 20);
    for (i = 21; i <= 30; i++) {
        snprintf(text, sizeof text, "record %d", i);
        CHECK(append_text(gcl, d, text) == i, "append %d", i);
    }
    expect_records(gcl, 21, 30);
    expect_eos(gcl);
    ok("subscribe (-10, 20): 11-20 at once, then 21-30 as they are appended, then EOS");

    CHECK_STAT(gdp_gcl_subscribe_by_recno(gcl, 1, -1, NULL, NULL, NULL), GDP_STAT_NAK_BADOPT);
    ok("subscribe with numrecs -1: 4.02 bad option");

    CHECK_OK(gdp_gcl_read_by_recno(gcl, 5, d));
    gdp_datum_getts(d, &ts5);
    CHECK_OK(gdp_gcl_subscribe_by_ts(gcl, &ts5, 3, NULL, NULL, NULL));
    {
        gdp_event_t *gev = expect_event(gcl, GDP_EVENT_DATA);
        gdp_recno_t first = gdp_datum_getrecno(gdp_event_getdatum(gev));
        CHECK(first <= 5, "starts at the first record at or after ts (%" PRIgdp_recno ")", first);
        gdp_event_free(gev);
        expect_records(gcl, first + 1, first + 2);
        expect_eos(gcl);
    }
    ok("subscribe_by_ts");

    /* a live subscription with a callback, then unsubscribe: no further event, no EOS */
    reset_waiter();
    CHECK_OK(gdp_gcl_subscribe_by_recno(gcl, 0, 0, NULL, callback, &waiter));
    CHECK(append_text(gcl, d, "record 31") == 31, "append");
    CHECK(append_text(gcl, d, "record 32") == 32, "append");
    wait_events(2);
    CHECK(waiter.recnos[0] == 31 && waiter.recnos[1] == 32 && waiter.on_caller == 0, "new records only");
    CHECK_OK(gdp_gcl_unsubscribe(gcl, callback, NULL));
    CHECK(append_text(gcl, d, "record 33") == 33, "append");
    /* a NULL-callback subscription opened after the unsubscribe sees 33; the callback must not */
    CHECK_OK(gdp_gcl_subscribe_by_recno(gcl, 33, 1, NULL, NULL, NULL));
    expect_records(gcl, 33, 33);
    expect_eos(gcl);
    pthread_mutex_lock(&waiter.mu);
    CHECK(waiter.events == 2, "no callback after unsubscribe (%d)", waiter.events);
    pthread_mutex_unlock(&waiter.mu);
    ok("subscribe (0, 0) with a callback: new records; unsubscribe ends it without EOS");

    CHECK_OK(gdp_gcl_subscribe_by_recno(gcl, 0, 0, NULL, NULL, NULL));
    CHECK_OK(gdp_gcl_unsubscribe(gcl, NULL, NULL));
    CHECK(append_text(gcl, d, "record 34") == 34, "append");
    expect_no_event(gcl);
    ok("unsubscribe(gcl, NULL, NULL) ends every subscription of the handle");

    gdp_sub_qos_free(qos);
    CHECK_OK(gdp_gcl_close(gcl));
    gdp_datum_free(d);
}

static void test_multiread(void)
{
    gdp_gcl_t *gcl = new_log("multiread", 20);
    gdp_datum_t *d = gdp_datum_new();
    EP_TIME_SPEC ts;

    CHECK_OK(gdp_gcl_multiread(gcl, 1, 10, NULL, NULL));
    expect_records(gcl, 1, 10);
    expect_eos(gcl);
    CHECK_OK(gdp_gcl_multiread(gcl, -10, 10, NULL, NULL));
    expect_records(gcl, 11, 20);
    expect_eos(gcl);
    CHECK_OK(gdp_gcl_multiread(gcl, -10, 20, NULL, NULL));
    expect_records(gcl, 11, 20);
    expect_eos(gcl);
    CHECK_OK(gdp_gcl_multiread(gcl, 1, 0, NULL, NULL));
    expect_records(gcl, 1, 20);
    expect_eos(gcl);
    CHECK_OK(gdp_gcl_multiread(gcl, -30, 30, NULL, NULL));
    expect_records(gcl, 1, 20);
    expect_eos(gcl);
    CHECK_STAT(gdp_gcl_multiread(gcl, 0, 5, NULL, NULL), GDP_STAT_NAK_NOTFOUND);
    CHECK_STAT(gdp_gcl_multiread(gcl, 30, 10, NULL, NULL), GDP_STAT_NAK_NOTFOUND);
    CHECK_STAT(gdp_gcl_multiread(gcl, 1, -1, NULL, NULL), GDP_STAT_NAK_BADOPT);
    ok("multiread: the doc's table (1,10) (-10,10) (-10,20) (1,0) (-30,30); 0 and past the end 404; -1 402");

    CHECK_OK(gdp_gcl_read_by_recno(gcl, 18, d));
    gdp_datum_getts(d, &ts);
    CHECK_OK(gdp_gcl_multiread_ts(gcl, &ts, 0, NULL, NULL));
    {
        gdp_event_t *gev = expect_event(gcl, GDP_EVENT_DATA);
        gdp_recno_t first = gdp_datum_getrecno(gdp_event_getdatum(gev));
        gdp_event_free(gev);
        expect_records(gcl, first + 1, 20);
        expect_eos(gcl);
    }
    ok("multiread_ts");
    CHECK_OK(gdp_gcl_close(gcl));
    gdp_datum_free(d);
}

/* -- filters ------------------------------------------------------------------------------ */
static EP_STAT upper(gdp_datum_t *datum, void *data)
{
    gdp_buf_t *b = gdp_datum_getbuf(datum);
    size_t n = gdp_buf_getlength(b), i;
    char *text = malloc(n + 1);
    (*(int *)data)++;
    gdp_buf_read(b, text, n);
    for (i = 0; i < n; i++)
        if (text[i] >= 'a' && text[i] <= 'z')
            text[i] = (char)(text[i] - 'a' + 'A');
    gdp_buf_write(b, text, n);
    free(text);
    return EP_STAT_OK;
}

static EP_STAT refuse(gdp_datum_t *datum, void *data)
{
    (void)datum;
    (void)data;
    return GDP_STAT_NAK_FORBIDDEN;
}

static EP_STAT mark(gdp_datum_t *datum, void *data)
{
    (void)data;
    return gdp_buf_write(gdp_datum_getbuf(datum), "!", 1) == 0 ? EP_STAT_OK : GDP_STAT_BUFFER_FAILURE;
}

static void test_filters(void)
{
    gdp_gcl_t *gcl = new_log("filters", 0);
    gdp_datum_t *d = gdp_datum_new();
    gdp_event_t *gev;
    int calls = 0;

    gdp_gcl_set_append_filter(gcl, upper, &calls);
    CHECK(append_text(gcl, d, "shout") == 1, "append");
    CHECK(calls == 1, "the append filter ran once");
    gdp_gcl_set_append_filter(gcl, refuse, NULL);
    CHECK(gdp_buf_write(gdp_datum_getbuf(d), "no", 2) == 0, "write");
    CHECK_STAT(gdp_gcl_append(gcl, d), GDP_STAT_NAK_FORBIDDEN);
    gdp_buf_reset(gdp_datum_getbuf(d));
    gdp_gcl_set_append_filter(gcl, NULL, NULL);
    CHECK_OK(gdp_gcl_read_by_recno(gcl, 1, d));
    check_data(d, "SHOUT");
    ok("append filter: changes the datum before it is sent; its failure is the append's");

    gdp_gcl_set_read_filter(gcl, mark, NULL);
    CHECK_OK(gdp_gcl_read_by_recno(gcl, 1, d));
    check_data(d, "SHOUT!");
    CHECK_OK(gdp_gcl_multiread(gcl, 1, 1, NULL, NULL));
    gev = expect_event(gcl, GDP_EVENT_DATA);
    check_data(gdp_event_getdatum(gev), "SHOUT!");
    gdp_event_free(gev);
    expect_eos(gcl);
    ok("read filter: on reads and on delivered records");
    CHECK_OK(gdp_gcl_close(gcl));
    gdp_datum_free(d);
}

/* -- keys and open information (embedded: the node's data dir holds the writer keys) -------- */
static int signkey_calls;

static EP_STAT signkey(gdp_name_t gname, void *udata, EP_CRYPTO_KEY **skey)
{
    gdp_pname_t pname;
    char path[1024];
    signkey_calls++;
    snprintf(path, sizeof path, "%s/keys/%s.pem", (const char *)udata, gdp_printable_name(gname, pname));
    *skey = ep_crypto_key_read_file(path, EP_CRYPTO_KEYFORM_PEM, EP_CRYPTO_F_SECRET);
    return *skey != NULL ? EP_STAT_OK : GDP_STAT_SKEY_REQUIRED;
}

static EP_STAT no_key(gdp_name_t gname, void *udata, EP_CRYPTO_KEY **skey)
{
    (void)gname;
    (void)udata;
    *skey = NULL;
    return GDP_STAT_SKEY_REQUIRED;
}

static void test_keys(void)
{
    const char *dir = getenv("HOARD_DATA_DIR");
    gdp_gcl_t *gcl = new_log("keys", 1), *other_log = new_log("other keys", 0), *w = NULL;
    gdp_name_t name, other;
    gdp_pname_t pname;
    gdp_gcl_open_info_t *info;
    gdp_datum_t *d = gdp_datum_new();
    char path[1024];

    CHECK(dir != NULL, "HOARD_DATA_DIR");
    CHECK_OK(gdp_gcl_getname(gcl, name));
    CHECK_OK(gdp_gcl_getname(other_log, other));
    CHECK_OK(gdp_gcl_close(gcl));
    CHECK_OK(gdp_gcl_close(other_log));

    info = gdp_gcl_open_info_new();
    CHECK_OK(gdp_gcl_open_info_set_signkey_cb(info, signkey, (void *)dir));
    CHECK_OK(gdp_gcl_open_info_set_caching(info, false));
    CHECK_OK(gdp_gcl_open(name, GDP_MODE_AO, info, &w));
    CHECK(signkey_calls == 1, "signkey_cb asked once (%d)", signkey_calls);
    CHECK(append_text(w, d, "record 2") == 2, "signed with the key the callback gave");
    CHECK_OK(gdp_gcl_close(w));
    gdp_gcl_open_info_free(info);
    ok("open_info_set_signkey_cb: asked for the key when one is required");

    info = gdp_gcl_open_info_new();
    CHECK_OK(gdp_gcl_open_info_set_signkey_cb(info, no_key, NULL));
    CHECK_STAT(gdp_gcl_open(name, GDP_MODE_AO, info, &w), GDP_STAT_SKEY_REQUIRED);
    CHECK(w == NULL, "no handle");
    gdp_gcl_open_info_free(info);
    ok("a signkey_cb that has no key: the open fails with its status");

    info = gdp_gcl_open_info_new();
    snprintf(path, sizeof path, "%s/keys/%s.pem", dir, gdp_printable_name(other, pname));
    CHECK_OK(gdp_gcl_open_info_set_signing_key(info, ep_crypto_key_read_file(path, EP_CRYPTO_KEYFORM_PEM,
                                                                              EP_CRYPTO_F_SECRET)));
    CHECK_STAT(gdp_gcl_open(name, GDP_MODE_RA, info, &w), GDP_STAT_CRYPTO_SIGFAIL);
    gdp_gcl_open_info_free(info); /* frees the key too */
    info = gdp_gcl_open_info_new();
    snprintf(path, sizeof path, "%s/keys/%s.pem", dir, gdp_printable_name(name, pname));
    CHECK_OK(gdp_gcl_open_info_set_signing_key(info, ep_crypto_key_read_file(path, EP_CRYPTO_KEYFORM_PEM,
                                                                              EP_CRYPTO_F_SECRET)));
    CHECK_OK(gdp_gcl_open_info_set_caching(info, true));
    CHECK_OK(gdp_gcl_open(name, GDP_MODE_RA, info, &w));
    gdp_gcl_open_info_free(info); /* "can be freed as soon as it has been used in gdp_gcl_open" */
    CHECK(append_text(w, d, "record 3") == 3, "append");
    CHECK_OK(gdp_gcl_close(w));
    ok("open_info_set_signing_key: the log's key opens it, another log's is refused");

    info = gdp_gcl_open_info_new();
    signkey_calls = 0;
    CHECK_OK(gdp_gcl_open_info_set_signkey_cb(info, signkey, (void *)dir));
    CHECK_OK(gdp_gcl_open(name, GDP_MODE_AO, info, &w));
    CHECK(signkey_calls == 0, "the key was kept in the cache (keep_in_cache): no callback");
    CHECK(append_text(w, d, "record 4") == 4, "append");
    CHECK_OK(gdp_gcl_close(w));
    gdp_gcl_open_info_free(info);
    ok("open_info_set_caching(true): the writer key stays cached after close");
    gdp_datum_free(d);
}

static void test_print(void)
{
    gdp_gcl_t *gcl = new_log("print", 1);
    gdp_datum_t *d = gdp_datum_new();
    FILE *fp = tmpfile();
    char text[4096];
    size_t n;

    CHECK(fp != NULL, "tmpfile");
    CHECK_OK(gdp_gcl_read_by_recno(gcl, 1, d));
    gdp_datum_print(d, fp, GDP_DATUM_PRTEXT);
    gdp_datum_print(d, fp); /* the examples' two arguments: a hex dump */
    gdp_gcl_print(gcl, fp);
    rewind(fp);
    n = fread(text, 1, sizeof text - 1, fp);
    text[n] = '\0';
    fclose(fp);
    CHECK(strstr(text, "recno 1") != NULL && strstr(text, "record 1\n") != NULL, "%s", text);
    CHECK(strstr(text, "72 65 63 6f 72 64") != NULL, "hex dump: %s", text);
    CHECK(strstr(text, "nrecs = 1") != NULL, "gcl print: %s", text);
    ok("gdp_datum_print (two and three arguments), gdp_gcl_print");
    CHECK_OK(gdp_gcl_close(gcl));
    gdp_datum_free(d);
}

static const struct {
    const char *name;
    void (*fn)(void);
    int embedded_only;
} tests[] = {
    {"names", test_names, 0},         {"buffers", test_buffers, 0}, {"logs", test_logs, 0},
    {"async", test_async, 0},         {"subscribe", test_subscribe, 0}, {"multiread", test_multiread, 0},
    {"filters", test_filters, 0},     {"print", test_print, 0},     {"keys", test_keys, 1},
};

int main(int argc, char **argv)
{
    int opt, i, ran;
    size_t t;
    while ((opt = getopt(argc, argv, "G:")) != -1) {
        if (opt == 'G') {
            gdpd_addr = optarg;
            attached = 1;
        } else {
            fprintf(stderr, "usage: %s [-G host:port] test...\n", argv[0]);
            return 2;
        }
    }
    snprintf(unique, sizeof unique, "%ld.%ld", (long)getpid(), (long)time(NULL));
    CHECK_OK(gdp_init(gdpd_addr));
    CHECK_OK(gdp_init(gdpd_addr)); /* once per process: a second call is harmless */
    ok(attached ? "gdp_init(addr)" : "gdp_init(NULL)");
    for (i = optind; i < argc; i++) {
        ran = 0;
        for (t = 0; t < sizeof tests / sizeof tests[0]; t++) {
            if (strcmp(argv[i], "all") != 0 && strcmp(argv[i], tests[t].name) != 0)
                continue;
            if (tests[t].embedded_only && attached)
                continue;
            tests[t].fn();
            ran = 1;
        }
        CHECK(ran, "unknown test %s", argv[i]);
        printf("PASS %s\n", argv[i]);
    }
    return 0;
}

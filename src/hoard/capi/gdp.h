/*
 * gdp.h: the Global Data Plane programmatic API v0.8 (specs/gdp-programmatic-api-v0.8.txt),
 * served by hoard's logs. Link with -lgdp (libgdp.so, built by `hoard capi build OUTDIR`).
 *
 * docs/gdp-capi.md has the details and every choice; in short:
 *  - gdp_init(NULL) opens an embedded hoard node on the data dir $HOARD_DATA_DIR (default
 *    ./hoard-data, or data-dir of the $HOARD_CONFIG file), as the `hoard` CLI does;
 *    gdp_init("host:port") attaches to the gRPC API of a running node (`hoard node start`).
 *  - Synchronous calls block until done and return an EP_STAT; asynchronous ones return once
 *    the request is accepted and report through a callback (on a library thread, never the
 *    caller's) or, with a NULL callback, through gdp_event_next. Free every event.
 *  - Both of the seed's create forms: the four-argument synopsis, and the two-argument form of
 *    its example programs (gdp_gcl_create_default). gdp_gcl_create, gdp_gcl_open and
 *    gdp_datum_print are macros that pick by argument count (define GDP_NO_ARITY_MACROS to
 *    get the plain functions only).
 *  - The libep subset the API needs (EP_STAT, EP_TIME_SPEC, EP_CRYPTO_KEY, the buffers) is
 *    declared here; there is no separate libep or libevent to link.
 */
#ifndef HOARD_GDP_H
#define HOARD_GDP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <inttypes.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- libep: status codes ------------------------------------------------------------
 * A status is 32 bits: severity (3) | registry (11) | module (8) | detail (10). Severities
 * below WARN are success; an OK status may carry a small positive integer. */
typedef struct _ep_stat {
    uint32_t code;
} EP_STAT;

#define _EP_STAT_SEVBITS 3
#define _EP_STAT_REGBITS 11
#define _EP_STAT_MODBITS 8
#define _EP_STAT_DETBITS 10
#define _EP_STAT_MODSHIFT _EP_STAT_DETBITS
#define _EP_STAT_REGSHIFT (_EP_STAT_MODSHIFT + _EP_STAT_MODBITS)
#define _EP_STAT_SEVSHIFT (_EP_STAT_REGSHIFT + _EP_STAT_REGBITS)
#define _EP_STAT_MASK(bits) ((1U << (bits)) - 1)

#define EP_STAT_SEV_OK 0
#define EP_STAT_SEV_WARN 4
#define EP_STAT_SEV_ERROR 5
#define EP_STAT_SEV_SEVERE 6
#define EP_STAT_SEV_ABORT 7

#define EP_REGISTRY_GENERIC 0x000
#define EP_REGISTRY_USER 0x001
#define EP_REGISTRY_EPLIB 0x100
#define EP_REGISTRY_UCB 0x103

#define EP_STAT_NEW(s, r, m, d)                                                       \
    ((EP_STAT){(((uint32_t)(s) & _EP_STAT_MASK(_EP_STAT_SEVBITS)) << _EP_STAT_SEVSHIFT) | \
               (((uint32_t)(r) & _EP_STAT_MASK(_EP_STAT_REGBITS)) << _EP_STAT_REGSHIFT) | \
               (((uint32_t)(m) & _EP_STAT_MASK(_EP_STAT_MODBITS)) << _EP_STAT_MODSHIFT) | \
               ((uint32_t)(d) & _EP_STAT_MASK(_EP_STAT_DETBITS))})
#define EP_STAT_SEVERITY(c) (((c).code >> _EP_STAT_SEVSHIFT) & _EP_STAT_MASK(_EP_STAT_SEVBITS))
#define EP_STAT_REGISTRY(c) (((c).code >> _EP_STAT_REGSHIFT) & _EP_STAT_MASK(_EP_STAT_REGBITS))
#define EP_STAT_MODULE(c) (((c).code >> _EP_STAT_MODSHIFT) & _EP_STAT_MASK(_EP_STAT_MODBITS))
#define EP_STAT_DETAIL(c) ((c).code & _EP_STAT_MASK(_EP_STAT_DETBITS))

#define EP_STAT_ISOK(c) (EP_STAT_SEVERITY(c) < EP_STAT_SEV_WARN)
#define EP_STAT_ISWARN(c) (EP_STAT_SEVERITY(c) == EP_STAT_SEV_WARN)
#define EP_STAT_ISERROR(c) (EP_STAT_SEVERITY(c) == EP_STAT_SEV_ERROR)
#define EP_STAT_ISSEVERE(c) (EP_STAT_SEVERITY(c) == EP_STAT_SEV_SEVERE)
#define EP_STAT_ISABORT(c) (EP_STAT_SEVERITY(c) == EP_STAT_SEV_ABORT)
#define EP_STAT_ISFAIL(c) (EP_STAT_SEVERITY(c) >= EP_STAT_SEV_WARN)
#define EP_STAT_IS_SAME(a, b) ((a).code == (b).code)
#define EP_STAT_TO_INT(s) ((s).code)
#define EP_STAT_FROM_INT(i) ((EP_STAT){(uint32_t)(i)})
#define EP_STAT_CHECK(st, failure)  \
    {                               \
        if (!EP_STAT_ISOK(st)) {    \
            failure;                \
        }                           \
    }

#define EP_STAT_OK EP_STAT_NEW(EP_STAT_SEV_OK, EP_REGISTRY_GENERIC, 0, 0)

/* "OK", or "ERROR: [UCB:GDP:404] not found" etc.; returns buf. */
char *ep_stat_tostr(EP_STAT estat, char *buf, size_t bsize);

/* ---- libep: time -------------------------------------------------------------------- */
#pragma pack(push, 1)
typedef struct {
    int64_t tv_sec;     /* seconds since January 1, 1970 (UTC) */
    uint32_t tv_nsec;   /* nanoseconds */
    float tv_accuracy;  /* accuracy in seconds (0: unknown) */
} EP_TIME_SPEC;
#pragma pack(pop)

EP_STAT ep_time_now(EP_TIME_SPEC *tv);

/* ---- libep: keys (what gdp_gcl_open_info_set_signing_key and signkey_cb hand over) ---- */
typedef struct ep_crypto_key EP_CRYPTO_KEY;

#define EP_CRYPTO_KEYFORM_UNKNOWN 0
#define EP_CRYPTO_KEYFORM_PEM 1
#define EP_CRYPTO_KEYFORM_DER 2
#define EP_CRYPTO_F_PUBLIC 0x0000
#define EP_CRYPTO_F_SECRET 0x0001

#define EP_CRYPTO_MD_NULL 0
#define EP_CRYPTO_MD_SHA1 1
#define EP_CRYPTO_MD_SHA224 2
#define EP_CRYPTO_MD_SHA256 3
#define EP_CRYPTO_MD_SHA384 4
#define EP_CRYPTO_MD_SHA512 5

/* A secret key from a PEM (possibly encrypted: its passphrase is asked when it is used) or
 * DER file, or from memory (copied). NULL if it cannot be read. Free with ep_crypto_key_free. */
EP_CRYPTO_KEY *ep_crypto_key_read_file(const char *fname, int keyform, uint32_t flags);
EP_CRYPTO_KEY *ep_crypto_key_read_mem(const void *buf, size_t bufsize, int keyform, uint32_t flags);
void ep_crypto_key_free(EP_CRYPTO_KEY *key);

/* ---- version ------------------------------------------------------------------------ */
#define GDP_LIB_VERSION 0x000800 /* 0.8.0: the API version this library implements */
extern const char GdpVersion[];  /* "hoard libgdp 0.8.0 (hoard <version>)" */

/* ---- status codes (module GDP of the UCB registry) ---------------------------------- */
#define GDP_MODULE 1
#define GDP_STAT_NEW(sev, det) EP_STAT_NEW(EP_STAT_SEV_##sev, EP_REGISTRY_UCB, GDP_MODULE, det)
#define GDP_STAT_IS_GDP(c) (EP_STAT_REGISTRY(c) == EP_REGISTRY_UCB && EP_STAT_MODULE(c) == GDP_MODULE)

/* local statuses (detail 1..35) */
#define GDP_STAT_MSGFMT GDP_STAT_NEW(ERROR, 1)
#define GDP_STAT_SHORTMSG GDP_STAT_NEW(ERROR, 2)
#define GDP_STAT_READ_OVERFLOW GDP_STAT_NEW(WARN, 3)
#define GDP_STAT_NOT_IMPLEMENTED GDP_STAT_NEW(SEVERE, 4)
#define GDP_STAT_PDU_WRITE_FAIL GDP_STAT_NEW(ERROR, 5)
#define GDP_STAT_PDU_READ_FAIL GDP_STAT_NEW(ERROR, 6)
#define GDP_STAT_PDU_VERSION_MISMATCH GDP_STAT_NEW(SEVERE, 7)
#define GDP_STAT_PDU_NO_SEQ GDP_STAT_NEW(ERROR, 8)
#define GDP_STAT_KEEP_READING GDP_STAT_NEW(WARN, 9)
#define GDP_STAT_NOT_OPEN GDP_STAT_NEW(ERROR, 10)
#define GDP_STAT_UNKNOWN_RID GDP_STAT_NEW(SEVERE, 11)
#define GDP_STAT_INTERNAL_ERROR GDP_STAT_NEW(ABORT, 12)
#define GDP_STAT_BAD_IOMODE GDP_STAT_NEW(ERROR, 13)
#define GDP_STAT_GCL_NAME_INVALID GDP_STAT_NEW(ERROR, 14)
#define GDP_STAT_BUFFER_FAILURE GDP_STAT_NEW(ABORT, 15)
#define GDP_STAT_NULL_GCL GDP_STAT_NEW(ERROR, 16)
#define GDP_STAT_PROTOCOL_FAIL GDP_STAT_NEW(SEVERE, 17)
#define GDP_STAT_CORRUPT_INDEX GDP_STAT_NEW(SEVERE, 18)
#define GDP_STAT_CORRUPT_GCL GDP_STAT_NEW(SEVERE, 19)
#define GDP_STAT_DEAD_DAEMON GDP_STAT_NEW(ABORT, 20)
#define GDP_STAT_GCL_VERSION_MISMATCH GDP_STAT_NEW(SEVERE, 21)
#define GDP_STAT_READONLY GDP_STAT_NEW(ERROR, 22)
#define GDP_STAT_NOTFOUND GDP_STAT_NEW(ERROR, 23)
#define GDP_STAT_PDU_CORRUPT GDP_STAT_NEW(ABORT, 24)
#define GDP_STAT_SKEY_REQUIRED GDP_STAT_NEW(ERROR, 25)
#define GDP_STAT_GCL_READ_ERROR GDP_STAT_NEW(ERROR, 26)
#define GDP_STAT_RECNO_SEQ_ERROR GDP_STAT_NEW(ERROR, 27)
#define GDP_STAT_CRYPTO_SIGFAIL GDP_STAT_NEW(ERROR, 28)
#define GDP_STAT_PHYSIO_ERROR GDP_STAT_NEW(ERROR, 29)
#define GDP_STAT_RECORD_EXPIRED GDP_STAT_NEW(WARN, 30)
#define GDP_STAT_DEAD_REQ GDP_STAT_NEW(ERROR, 31)
#define GDP_STAT_BAD_REFCNT GDP_STAT_NEW(ABORT, 32)
#define GDP_STAT_RECORD_MISSING GDP_STAT_NEW(WARN, 33)
#define GDP_STAT_RECORD_DUPLICATED GDP_STAT_NEW(WARN, 34)
#define GDP_STAT_DATUM_REQUIRED GDP_STAT_NEW(ERROR, 35)

/* acks and naks: detail = the HTTP/CoAP-like code */
#define GDP_STAT_ACK_SUCCESS GDP_STAT_NEW(OK, 200)
#define GDP_STAT_ACK_CREATED GDP_STAT_NEW(OK, 201)
#define GDP_STAT_ACK_DELETED GDP_STAT_NEW(OK, 202)
#define GDP_STAT_ACK_VALID GDP_STAT_NEW(OK, 203)
#define GDP_STAT_ACK_CHANGED GDP_STAT_NEW(OK, 204)
#define GDP_STAT_ACK_CONTENT GDP_STAT_NEW(OK, 205)
#define GDP_STAT_NAK_BADREQ GDP_STAT_NEW(ERROR, 400)
#define GDP_STAT_NAK_UNAUTH GDP_STAT_NEW(ERROR, 401)
#define GDP_STAT_NAK_BADOPT GDP_STAT_NEW(ERROR, 402)
#define GDP_STAT_NAK_FORBIDDEN GDP_STAT_NEW(ERROR, 403)
#define GDP_STAT_NAK_NOTFOUND GDP_STAT_NEW(ERROR, 404)
#define GDP_STAT_NAK_METHNOTALLOWED GDP_STAT_NEW(ERROR, 405)
#define GDP_STAT_NAK_NOTACCEPTABLE GDP_STAT_NEW(ERROR, 406)
#define GDP_STAT_NAK_CONFLICT GDP_STAT_NEW(ERROR, 409)
#define GDP_STAT_NAK_GONE GDP_STAT_NEW(ERROR, 410)
#define GDP_STAT_NAK_PRECONFAILED GDP_STAT_NEW(ERROR, 412)
#define GDP_STAT_NAK_TOOLARGE GDP_STAT_NEW(ERROR, 413)
#define GDP_STAT_NAK_UNSUPMEDIA GDP_STAT_NEW(ERROR, 415)
#define GDP_STAT_NAK_REC_MISSING GDP_STAT_NEW(WARN, 430)
#define GDP_STAT_NAK_DUP_RECORD GDP_STAT_NEW(WARN, 431)
#define GDP_STAT_NAK_INTERNAL GDP_STAT_NEW(SEVERE, 500)
#define GDP_STAT_NAK_NOTIMPL GDP_STAT_NEW(SEVERE, 501)
#define GDP_STAT_NAK_BADGATEWAY GDP_STAT_NEW(SEVERE, 502)
#define GDP_STAT_NAK_SVCUNAVAIL GDP_STAT_NEW(SEVERE, 503)
#define GDP_STAT_NAK_GWTIMEOUT GDP_STAT_NEW(SEVERE, 504)
#define GDP_STAT_NAK_PROXYNOTSUP GDP_STAT_NEW(SEVERE, 505)
#define GDP_STAT_NAK_REPLICATE_FAIL GDP_STAT_NEW(SEVERE, 514)
#define GDP_STAT_NAK_LOST_SUBSCR GDP_STAT_NEW(WARN, 515)
#define GDP_STAT_NAK_NOROUTE GDP_STAT_NEW(ERROR, 600)

/* ---- names -------------------------------------------------------------------------- */
typedef uint8_t gdp_name_t[32];                 /* 256-bit internal name */
#define GDP_GCL_PNAME_LEN 43                    /* URL-safe base64, no padding */
typedef char gdp_pname_t[GDP_GCL_PNAME_LEN + 1]; /* printable name, NUL-terminated */

#define GDP_NAME_SAME(a, b) (memcmp((a), (b), sizeof(gdp_name_t)) == 0)
bool gdp_name_is_valid(const gdp_name_t gname);
char *gdp_printable_name(const gdp_name_t internal, gdp_pname_t printable);
EP_STAT gdp_internal_name(const gdp_pname_t printable, gdp_name_t internal);
EP_STAT gdp_parse_name(const char *external, gdp_name_t internal);
EP_STAT gdp_gcl_parse_name(const char *external, gdp_name_t internal); /* the examples' name */

/* ---- types -------------------------------------------------------------------------- */
typedef int64_t gdp_recno_t;
#define PRIgdp_recno PRId64

typedef enum {
    GDP_MODE_ANY = 0x3,
    GDP_MODE_RO = 0x1,
    GDP_MODE_AO = 0x2,
    GDP_MODE_RA = 0x3,
} gdp_iomode_t;
typedef gdp_iomode_t gcl_iomode_t;

typedef struct gdp_gcl gdp_gcl_t;
typedef struct gdp_datum gdp_datum_t;
typedef struct gdp_buf gdp_buf_t;
typedef struct _gdp_event gdp_event_t;
typedef struct gdp_gclmd gdp_gclmd_t;
typedef struct gdp_gcl_open_info gdp_gcl_open_info_t;
typedef struct gdp_sub_qos gdp_sub_qos_t;
typedef uint32_t gdp_gclmd_id_t;

typedef void (*gdp_event_cbfunc_t)(gdp_event_t *gev);

/* ---- initialization ----------------------------------------------------------------- */
EP_STAT gdp_init(const char *gdpd_addr);

/* ---- metadata ----------------------------------------------------------------------- */
#define GDP_GCLMD_XID 0x00584944U /* external id */
#define GDP_GCLMD_PUB 0x00505542U /* public key (hoard adds it) */
#define GDP_GCLMD_CTM 0x0043544DU /* creation time */
#define GDP_GCLMD_XTM 0x0058544DU /* expiration time */
#define GDP_GCLMD_CID 0x00434944U /* creator id */
#define GDP_GCLMD_SYN 0x0053594EU /* syntax */
#define GDP_GCLMD_LOC 0x004C4F43U /* location */
#define GDP_GCLMD_EOLIST 0x00000000U

gdp_gclmd_t *gdp_gclmd_new(int entries);
void gdp_gclmd_free(gdp_gclmd_t *gmd);
EP_STAT gdp_gclmd_add(gdp_gclmd_t *gmd, gdp_gclmd_id_t id, size_t len, const void *data);
EP_STAT gdp_gclmd_get(gdp_gclmd_t *gmd, int indx, gdp_gclmd_id_t *id, size_t *len, const void **data);
EP_STAT gdp_gclmd_find(gdp_gclmd_t *gmd, gdp_gclmd_id_t id, size_t *len, const void **val);

/* ---- GCL operations ----------------------------------------------------------------- */
EP_STAT gdp_gcl_create(gdp_name_t gcl_name, gdp_name_t logdname, gdp_gclmd_t *gmd, gdp_gcl_t **gclp);
/* The examples' gdp_gcl_create(name, &gcl): no metadata, the default log server. */
EP_STAT gdp_gcl_create_default(gdp_name_t gcl_name, gdp_gcl_t **gclp);
EP_STAT gdp_gcl_open(gdp_name_t name, gdp_iomode_t rw, gdp_gcl_open_info_t *info, gdp_gcl_t **gclp);
EP_STAT gdp_gcl_close(gdp_gcl_t *gcl);
EP_STAT gdp_gcl_getname(const gdp_gcl_t *gcl, gdp_name_t namebuf);
gdp_recno_t gdp_gcl_getnrecs(const gdp_gcl_t *gcl);
EP_STAT gdp_gcl_getmetadata(gdp_gcl_t *gcl, gdp_gclmd_t **gmdp); /* caller frees *gmdp */
void gdp_gcl_print(const gdp_gcl_t *gcl, FILE *fp);

gdp_gcl_open_info_t *gdp_gcl_open_info_new(void);
void gdp_gcl_open_info_free(gdp_gcl_open_info_t *info);
EP_STAT gdp_gcl_open_info_set_signing_key(gdp_gcl_open_info_t *info, EP_CRYPTO_KEY *skey);
EP_STAT gdp_gcl_open_info_set_signkey_cb(gdp_gcl_open_info_t *info,
                                         EP_STAT (*signkey_cb)(gdp_name_t gname, void *signkey_udata,
                                                               EP_CRYPTO_KEY **skey),
                                         void *signkey_udata);
EP_STAT gdp_gcl_open_info_set_caching(gdp_gcl_open_info_t *info, bool keep_in_cache);

EP_STAT gdp_gcl_append(gdp_gcl_t *gcl, gdp_datum_t *datum);
EP_STAT gdp_gcl_append_async(gdp_gcl_t *gcl, gdp_datum_t *datum, gdp_event_cbfunc_t cbfunc, void *udata);
EP_STAT gdp_gcl_read_by_recno(gdp_gcl_t *gcl, gdp_recno_t recno, gdp_datum_t *datum);
EP_STAT gdp_gcl_read_by_ts(gdp_gcl_t *gcl, EP_TIME_SPEC *ts, gdp_datum_t *datum);
EP_STAT gdp_gcl_read_async(gdp_gcl_t *gcl, gdp_recno_t recno, gdp_event_cbfunc_t cbfunc, void *udata);

gdp_sub_qos_t *gdp_sub_qos_new(void);
void *gdp_sub_qos_free(gdp_sub_qos_t *qos);

EP_STAT gdp_gcl_subscribe_by_recno(gdp_gcl_t *gcl, gdp_recno_t start, int32_t numrecs, gdp_sub_qos_t *qos,
                                   gdp_event_cbfunc_t cbfunc, void *udata);
EP_STAT gdp_gcl_subscribe_by_ts(gdp_gcl_t *gcl, EP_TIME_SPEC *start, int32_t numrecs, gdp_sub_qos_t *qos,
                                gdp_event_cbfunc_t cbfunc, void *udata);
EP_STAT gdp_gcl_multiread(gdp_gcl_t *gcl, gdp_recno_t start, int32_t numrecs, gdp_event_cbfunc_t cbfunc,
                          void *udata);
EP_STAT gdp_gcl_multiread_ts(gdp_gcl_t *gcl, EP_TIME_SPEC *start, int32_t numrecs, gdp_event_cbfunc_t cbfunc,
                             void *udata);
EP_STAT gdp_gcl_unsubscribe(gdp_gcl_t *gcl, gdp_event_cbfunc_t cbfunc, void *udata);

void gdp_gcl_set_append_filter(gdp_gcl_t *gcl, EP_STAT (*filter)(gdp_datum_t *, void *), void *filterdata);
void gdp_gcl_set_read_filter(gdp_gcl_t *gcl, EP_STAT (*filter)(gdp_datum_t *, void *), void *filterdata);

/* ---- events ------------------------------------------------------------------------- */
#define _GDP_EVENT_FREE 0
#define GDP_EVENT_DATA 1     /* a record (subscribe, multiread, read_async) */
#define GDP_EVENT_EOS 2      /* the subscription or multiread ended */
#define GDP_EVENT_SHUTDOWN 3 /* ended because the log's host shut down */
#define GDP_EVENT_CREATED 4  /* append_async: the record is committed */
#define GDP_EVENT_SUCCESS 5  /* generic success */
#define GDP_EVENT_FAILURE 6  /* an asynchronous operation failed: see gdp_event_getstat */
#define GDP_EVENT_MISSING 7  /* a record that should exist is missing */

gdp_event_t *gdp_event_next(gdp_gcl_t *gcl, EP_TIME_SPEC *timeout);
int gdp_event_gettype(gdp_event_t *gev);
EP_STAT gdp_event_getstat(gdp_event_t *gev);
gdp_gcl_t *gdp_event_getgcl(gdp_event_t *gev);
gdp_datum_t *gdp_event_getdatum(gdp_event_t *gev);
void *gdp_event_getudata(gdp_event_t *gev);
EP_STAT gdp_event_free(gdp_event_t *gev);
void gdp_event_print(const gdp_event_t *gev, FILE *fp);

/* ---- datums ------------------------------------------------------------------------- */
#define GDP_DATUM_PRTEXT 0x00000001U
#define GDP_DATUM_PRDEBUG 0x00000002U
#define GDP_DATUM_PRSIG 0x00000004U
#define GDP_DATUM_PRQUIET 0x00000008U

gdp_datum_t *gdp_datum_new(void);
void gdp_datum_free(gdp_datum_t *datum);
void gdp_datum_reset(gdp_datum_t *datum);
void gdp_datum_print(const gdp_datum_t *datum, FILE *fp, uint32_t flags);
gdp_recno_t gdp_datum_getrecno(const gdp_datum_t *datum);
void gdp_datum_getts(const gdp_datum_t *datum, EP_TIME_SPEC *ts);
size_t gdp_datum_getdlen(const gdp_datum_t *datum);
gdp_buf_t *gdp_datum_getdbuf(const gdp_datum_t *datum);
gdp_buf_t *gdp_datum_getbuf(const gdp_datum_t *datum); /* the examples' name */
int gdp_datum_getsigmdalg(const gdp_datum_t *datum);
int gdp_datum_getmdalg(const gdp_datum_t *datum);
gdp_buf_t *gdp_datum_getsig(const gdp_datum_t *datum);

/* ---- buffers ------------------------------------------------------------------------ */
gdp_buf_t *gdp_buf_new(void);
void gdp_buf_reset(gdp_buf_t *b);
void gdp_buf_free(gdp_buf_t *b);
size_t gdp_buf_getlength(gdp_buf_t *b);
size_t gdp_buf_read(gdp_buf_t *b, void *out, size_t sz);
size_t gdp_buf_peek(gdp_buf_t *b, void *out, size_t sz);
int gdp_buf_drain(gdp_buf_t *b, size_t sz);
int gdp_buf_write(gdp_buf_t *b, const void *in, size_t sz);
int gdp_buf_printf(gdp_buf_t *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int gdp_buf_move(gdp_buf_t *ob, gdp_buf_t *ib, size_t sz);
void gdp_buf_dump(gdp_buf_t *b, FILE *fp);

/* ---- the seed's call forms, picked by argument count -------------------------------- */
#ifndef GDP_NO_ARITY_MACROS
#define _GDP_PICK4(_1, _2, _3, _4, name, ...) name
#define _GDP_PICK3(_1, _2, _3, name, ...) name
#define _GDP_OPEN3(name, rw, gclp) gdp_gcl_open(name, rw, NULL, gclp)
#define _GDP_PRINT2(datum, fp) gdp_datum_print(datum, fp, 0)
/* gdp_gcl_create(name, logdname, gmd, &gcl) or gdp_gcl_create(name, &gcl) */
#define gdp_gcl_create(...) \
    _GDP_PICK4(__VA_ARGS__, gdp_gcl_create, _gdp_gcl_create_takes_2_or_4_arguments, gdp_gcl_create_default, \
               _gdp_gcl_create_takes_2_or_4_arguments)(__VA_ARGS__)
/* gdp_gcl_open(name, mode, info, &gcl) or gdp_gcl_open(name, mode, &gcl) */
#define gdp_gcl_open(...) \
    _GDP_PICK4(__VA_ARGS__, gdp_gcl_open, _GDP_OPEN3, _gdp_gcl_open_takes_3_or_4_arguments, \
               _gdp_gcl_open_takes_3_or_4_arguments)(__VA_ARGS__)
/* gdp_datum_print(datum, fp, flags) or gdp_datum_print(datum, fp) */
#define gdp_datum_print(...) \
    _GDP_PICK3(__VA_ARGS__, gdp_datum_print, _GDP_PRINT2, _gdp_datum_print_takes_2_or_3_arguments)(__VA_ARGS__)
#endif

#ifdef __cplusplus
}
#endif

#endif /* HOARD_GDP_H */

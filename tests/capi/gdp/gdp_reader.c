/*
 * gdp_reader.c: the reader of the GDP programmatic API document (Appendix A, an excerpt of
 * apps/gdp-reader.c), filled out to a complete program, with the subscription variant the
 * document describes.
 *
 *   gdp_reader [-G host:port] [-t] [-s | -m] [-f first] [-n numrecs] log-name
 *
 * Without -s/-m: reads records from `first` (default 1) with gdp_gcl_read_by_recno until a read
 * fails (the document's loop). -s subscribes (gdp_gcl_subscribe_by_recno) and -m multireads,
 * then prints every GDP_EVENT_DATA from gdp_event_next until the end of the subscription; a
 * subscription prints "subscribed" once it is in place. -t prints data as text
 * (GDP_DATUM_PRTEXT); otherwise as the document's two-argument gdp_datum_print does.
 */
#include <gdp/gdp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_error(void)
{
    fprintf(stderr, "usage: gdp_reader [-G host:port] [-t] [-s | -m] [-f first] [-n numrecs] log-name\n");
    exit(2);
}

static void fail(const char *what, EP_STAT estat)
{
    char ebuf[120];
    fprintf(stderr, "gdp_reader: %s: %s\n", what, ep_stat_tostr(estat, ebuf, sizeof ebuf));
    exit(1);
}

int main(int argc, char **argv)
{
    gdp_gcl_t *gcl;
    EP_STAT estat;
    gdp_name_t gcliname; // internal name of GCL
    gdp_datum_t *d;
    gdp_recno_t recno = 1;
    const char *gdpd_addr = NULL;
    int opt, text = 0, subscribe = 0, multiread = 0, numrecs = 0;

    // general startup and initialization
    while ((opt = getopt(argc, argv, "G:tsmf:n:")) != -1) {
        switch (opt) {
        case 'G': gdpd_addr = optarg; break;
        case 't': text = 1; break;
        case 's': subscribe = 1; break;
        case 'm': multiread = 1; break;
        case 'f': recno = atoll(optarg); break;
        case 'n': numrecs = atoi(optarg); break;
        default: usage_error();
        }
    }
    if (argc - optind != 1 || (subscribe && multiread))
        usage_error();
    estat = gdp_init(gdpd_addr);
    if (!EP_STAT_ISOK(estat))
        fail("initialization", estat);
    d = gdp_datum_new();

    // parse command line name to internal format
    estat = gdp_gcl_parse_name(argv[optind], gcliname);
    if (!EP_STAT_ISOK(estat))
        fail("name syntax", estat);

    // attempt to open the GCL
    estat = gdp_gcl_open(gcliname, GDP_MODE_RO, &gcl);
    if (!EP_STAT_ISOK(estat))
        fail("open", estat);

    if (!subscribe && !multiread) {
        for (;;) {
            estat = gdp_gcl_read_by_recno(gcl, recno++, d);
            EP_STAT_CHECK(estat, break);
            if (text)
                gdp_datum_print(d, stdout, GDP_DATUM_PRTEXT);
            else
                gdp_datum_print(d, stdout);
        }
        if (!EP_STAT_IS_SAME(estat, GDP_STAT_NAK_NOTFOUND)) // the end of the log
            fail("read", estat);
    } else {
        // enable the subscription
        if (subscribe)
            estat = gdp_gcl_subscribe_by_recno(gcl, recno, numrecs, NULL, NULL, NULL);
        else
            estat = gdp_gcl_multiread(gcl, recno, numrecs, NULL, NULL);
        if (!EP_STAT_ISOK(estat))
            fail(subscribe ? "subscribe" : "multiread", estat);
        printf("subscribed\n");
        fflush(stdout);
        for (;;) {
            gdp_event_t *gev = gdp_event_next(NULL, NULL);
            int type = gdp_event_gettype(gev);
            if (type == GDP_EVENT_DATA) {
                gdp_datum_print(gdp_event_getdatum(gev), stdout, text ? GDP_DATUM_PRTEXT : 0);
                fflush(stdout);
            } else if (type == GDP_EVENT_EOS || type == GDP_EVENT_SHUTDOWN) {
                printf("end %d\n", type);
                gdp_event_free(gev);
                break;
            } else if (type == GDP_EVENT_FAILURE || type == GDP_EVENT_MISSING) {
                fail("event", gdp_event_getstat(gev));
            }
            gdp_event_free(gev);
        }
    }
    gdp_gcl_close(gcl);
    gdp_datum_free(d);
    exit(0);
}

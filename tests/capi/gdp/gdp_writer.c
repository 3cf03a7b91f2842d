/*
 * gdp_writer.c: the writer of the GDP programmatic API document (Appendix A, an excerpt of
 * apps/gdp-writer.c), filled out to a complete program. Reads lines from stdin and appends
 * each as a record of the log named on the command line.
 *
 *   gdp_writer [-G host:port] [-a] log-name
 *
 * Without -a the log is created (the document's two-argument gdp_gcl_create); with -a an
 * existing log is opened for appending. -G attaches to a running node (gdp_init's address).
 * Prints "appended <recno>" per record; exits 0 when every line was appended.
 */
#include <gdp/gdp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage_error(void)
{
    fprintf(stderr, "usage: gdp_writer [-G host:port] [-a] log-name\n");
    exit(2);
}

static void fail(const char *what, EP_STAT estat)
{
    char ebuf[120];
    fprintf(stderr, "gdp_writer: %s: %s\n", what, ep_stat_tostr(estat, ebuf, sizeof ebuf));
    exit(1);
}

int main(int argc, char **argv)
{
    gdp_gcl_t *gcl;
    EP_STAT estat;
    gdp_name_t gcliname; // internal name of GCL
    gdp_datum_t *d;
    const char *gdpd_addr = NULL;
    int opt, append = 0;
    char buf[4096];

    // general startup and initialization
    while ((opt = getopt(argc, argv, "aG:")) != -1) {
        if (opt == 'a')
            append = 1;
        else if (opt == 'G')
            gdpd_addr = optarg;
        else
            usage_error();
    }
    if (argc - optind != 1)
        usage_error();
    estat = gdp_init(gdpd_addr);
    if (!EP_STAT_ISOK(estat))
        fail("initialization", estat);
    d = gdp_datum_new();

    // parse command line name to internal format
    estat = gdp_gcl_parse_name(argv[optind], gcliname);
    if (!EP_STAT_ISOK(estat))
        fail("name syntax", estat);

    if (append)
        estat = gdp_gcl_open(gcliname, GDP_MODE_AO, NULL, &gcl);
    else
        estat = gdp_gcl_create(gcliname, &gcl); // attempt to create that name
    if (!EP_STAT_ISOK(estat))
        fail(append ? "open" : "creation", estat);

    // read lines from standard input
    while (fgets(buf, sizeof buf, stdin) != NULL) {
        char *p = strchr(buf, '\n');
        if (p != NULL)
            *p = '\0';

        // write them to the dataplane
        if (gdp_buf_write(gdp_datum_getbuf(d), buf, strlen(buf)) < 0)
            estat = GDP_STAT_BUFFER_FAILURE;
        else
            estat = gdp_gcl_append(gcl, d);
        EP_STAT_CHECK(estat, break);
        printf("appended %" PRIgdp_recno "\n", gdp_datum_getrecno(d));
        fflush(stdout);
    }
    if (!EP_STAT_ISOK(estat))
        fail("append", estat);

    // cleanup and exit
    gdp_gcl_close(gcl);
    gdp_datum_free(d);
    exit(!EP_STAT_ISOK(estat));
}

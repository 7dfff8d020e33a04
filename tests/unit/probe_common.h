/* probe_common.h - what the command-line probes behind the integration tests (bq_probe,
 * gauth_probe) share: the options every probe takes, the HTTP client and Google credentials it
 * drives its module with, and its output of one JSON object per line. */
#ifndef PROBE_COMMON_H
#define PROBE_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "gauth.h"
#include "http.h"

/* The getopt_long entries of the common options, first in every probe's table: --credentials,
 * --attempts, --budget-ms, --log-level, --help. A probe's own options use other letters.
 * (clang-format would lay the macro body out as if it were code.) */
/* clang-format off */
#define PROBE_OPTIONS \
	{"credentials", required_argument, NULL, 'c'}, \
	{"attempts", required_argument, NULL, 'a'}, \
	{"budget-ms", required_argument, NULL, 'b'}, \
	{"log-level", required_argument, NULL, 'l'}, \
	{"help", no_argument, NULL, 'h'}
/* clang-format on */

struct probe_common {
	void (*usage)(FILE *f); /* the probe's synopsis */
	const char *credentials;
	struct http_policy policy; /* preset by the probe; --attempts and --budget-ms change it */
	struct http_client *http;
	struct gauth *auth;
};

/* Print the usage to stdout when status is 0, else to stderr, and exit with status: a probe
 * gives up before it holds anything. */
__attribute__((noreturn)) void probe_usage(const struct probe_common *pc, int status);

/* Take option c (from getopt_long with PROBE_OPTIONS in the table) when it is a common one:
 * true, or false when it is the probe's own. --help and a bad --log-level end the probe
 * through probe_usage(). */
bool probe_option(struct probe_common *pc, int c, const char *arg);

/* Start libcurl, an HTTP client with options ho and the credentials pc->credentials (the GCE
 * metadata server at metadata_host; NULL for the default). 0, or a negative errno code with
 * err saying what failed. Whatever it returns, probe_close() undoes it. */
int probe_open(struct probe_common *pc, const struct http_options *ho, const char *metadata_host,
               char *err, size_t errlen);
void probe_close(struct probe_common *pc);

/* Print o as one compact line, flushed so the test reads it before the probe's next step, and
 * drop the reference. */
void probe_emit(json_t *o);

#endif

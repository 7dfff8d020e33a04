/* audit.h - seetickets-bq --audit: is every source row in BigQuery, once?
 *
 * Reads the source as a poll would (the feeds run with a sink and write no
 * state), then what the running service holds (its spool and dead letters,
 * read only), then BigQuery (one query per table), in that order, so that a
 * row moving from the spool to BigQuery meanwhile is seen in one of them.
 * README "Is everything there?" says what each class means. */
#ifndef STBQ_AUDIT_H
#define STBQ_AUDIT_H

#include <stdbool.h>
#include <stdio.h>

#include "bigquery.h"
#include "config.h"
#include "feed.h"
#include "loop.h"

#define AUDIT_EXAMPLES     10   /* example keys shown per class */
#define AUDIT_DATE_MARGIN  3600 /* a sale dated this long before a poll was served to it */
#define AUDIT_WAIT_EXTRA_S 60   /* --wait: a poll may take this long beyond its interval */

struct audit_options {
	bool json;        /* one JSON document instead of the summary */
	bool wait;        /* wait for the service's next complete poll to confirm findings */
	const char *feed; /* NULL: every enabled feed */
};

struct audit;

/* cal: the calendar the sales feed reads (the audit adds BigQuery's events). */
struct audit *audit_new(const struct config *cfg, struct bq *bq, struct loop *loop,
                        struct calendar *cal, const struct audit_options *o); /* NULL: ENOMEM */
void audit_free(struct audit *a);
/* The sink a feed of this kind must be given (feed_env.sink, with dry_run). */
const struct feed_sink *audit_sink(struct audit *a, enum feed_kind kind);
/* Run it and print the result on `out`. events may serve the sales feed's
 * automatic codes only (it is audited when o->feed allows). 0: nothing
 * missing, duplicated or stale; 1: something is; negative errno when the
 * source or BigQuery could not be read. */
int audit_run(struct audit *a, struct feed *events, struct feed *sales, FILE *out);

#endif

/* feed.h - one feed's cycle, shared by sales and events:
 * fetch -> coerce -> drop known keys -> spool -> insert -> commit.
 *
 * The feed owns its key set (keys in BigQuery or already spooled), its
 * spool, and the identities of rows it dead-lettered. Everything it talks to
 * (See Tickets, BigQuery, the loop, the configuration) is borrowed from the
 * daemon and may be swapped between polls by a reload. */
#ifndef STBQ_FEED_H
#define STBQ_FEED_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "bigquery.h"
#include "calendar.h"
#include "config.h"
#include "loop.h"
#include "schema.h"
#include "seetickets.h"

#define FEED_SEED_PROGRESS_MS 5000     /* a progress record every 5 s while seeding */
#define FEED_SEED_EXTEND_USEC 30000000 /* EXTEND_TIMEOUT_USEC sent with each progress */
#define FEED_DATE_OVERLAP_S   3600     /* date-filter windows overlap; keys remove repeats */
/* insertId de-duplication lasts about a minute; the daemon trusts it for
 * this long. One send call spans at most half of it, and a streaming batch
 * whose outcome has been unknown for half of it is checked against the table
 * (one query) before it is sent again, so every send of a row starts within
 * this of its first. STBQ_DEDUP_TRUST_MS overrides it for tests that shorten
 * the fake's window. */
#define FEED_DEDUP_TRUST_MS 50000

enum feed_kind { FEED_EVENTS, FEED_SALES };

/* --audit: every row read from the source and coerced, known or not, goes
 * here instead of on (line: its compact BigQuery JSON, without the columns
 * the daemon adds, not NUL-terminated). 0 or negative errno. */
struct feed_sink {
	int (*row)(const char *key, size_t klen, const char *line, size_t len, void *ud);
	void *ud;
};

/* What the daemon lends every feed; the pointers may change between polls. */
struct feed_env {
	const struct config *cfg;
	struct bq *bq;
	struct st_client *st;
	struct loop *loop;    /* NULL in --once mode */
	struct calendar *cal; /* the event calendar: events write it, sales read it */
	uint64_t trust_ms;    /* insertId de-duplication trusted this long (FEED_DEDUP_TRUST_MS) */
	bool dry_run;         /* print new rows to dry_out, write no state */
	FILE *dry_out;
	const struct feed_sink *sink; /* --audit (with dry_run): every row goes there */
};

/* Result of one poll, logged and exported as metrics. */
struct feed_stats {
	size_t fetched, fresh, inserted, rejected;
	size_t changed, inserted_changes; /* track_changes: changed versions spooled, confirmed */
	uint64_t duration_ms;
	int error;         /* 0 or the negative errno that ended the poll early */
	bool rows_pending; /* rows remain spooled, unconfirmed */
	bool no_codes;     /* sales: the calendar had no event code to ask for */
};

struct feed;

struct feed *feed_new(enum feed_kind kind, const struct feed_env *env); /* NULL on ENOMEM */
void feed_free(struct feed *f);
const char *feed_name(const struct feed *f);
const struct schema *feed_schema(const struct feed *f);
void feed_set_env(struct feed *f, const struct feed_env *env); /* after a reload */
/* With track_changes, the feed of f's changed versions (owned by f), else NULL. */
struct feed *feed_changes(const struct feed *f);

/* The feed's tables exist with the right columns (create: make or complete
 * them): the base table and, with track_changes, TABLE_changes and the view
 * TABLE_current. 0 or negative errno (logged). */
int feed_ensure_tables(struct feed *f, bool create);
/* The definition of the view TABLE_current (malloc'd), NULL on ENOMEM. */
char *feed_current_view_sql(const struct feed *f);
/* Load the keys BigQuery already has (events: into the calendar too, with
 * their start times), plus the identities of dead-lettered rows. 0 or
 * negative errno. */
int feed_seed(struct feed *f);
/* Open the spool and send what an earlier run left there: rows BigQuery
 * already holds (seeding ran first) or already dead-lettered are skipped;
 * spooled events go into the calendar. A segment that cannot be read is set
 * aside with an error. 0, or negative errno with rows still spooled. */
int feed_replay(struct feed *f);
/* Call fn for the "row" of each dead letter in STATE_DIR/rejected-FEED.ndjson
 * (feed: a feed's name, "sales_changes" too), in order; a line that cannot be
 * read is skipped. A nonzero return of fn stops and is returned. 0 when the
 * file does not exist, -errno when it cannot be read. */
int feed_dead_letters_foreach(const char *state_dir, const char *feed,
                              int (*fn)(const json_t *row, void *ud), void *ud);
/* STATE_DIR/last-poll-FEED: the start (Unix seconds) of the last poll that
 * read every row the source served and spooled or dead-lettered each. */
#define FEED_LAST_POLL_PREFIX "last-poll-"
/* One poll. Fills *st; 0 or the negative errno of the failure. */
int feed_poll(struct feed *f, struct feed_stats *st);

size_t feed_known(const struct feed *f);   /* keys in the set */
size_t feed_spooled(const struct feed *f); /* segments waiting */
const struct feed_stats *feed_last(const struct feed *f);

#endif

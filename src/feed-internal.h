/* feed-internal.h - what feed.c (fetching) and feed-drain.c (the spool to
 * BigQuery) share about one feed. Nothing outside the two uses it. */
#ifndef STBQ_FEED_INTERNAL_H
#define STBQ_FEED_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "feed.h"
#include "keyset.h"
#include "spool.h"

#define FEED_IDENTITY_LEN         80
#define FEED_DEADLETTER_LOG_MAX   10          /* warnings of single dead letters per poll */
#define FEED_DEADLETTER_MAX_BYTES (64u << 20) /* rejected-FEED.ndjson stops growing here */
#define FEED_YIELD_ROWS           4096        /* rows between looks at signals and watchdog */

/* What this process knows of one spool segment, per line number (1-based). */
enum {
	SEG_DONE = 1,     /* confirmed by BigQuery or dead-lettered */
	SEG_EXCLUDED = 2, /* not part of the segment's load plan (done before it) */
};

struct segstate {
	char *path;
	unsigned char *line; /* SEG_* flags per line number */
	size_t cap;
	uint64_t unknown_since_ms; /* streaming: first send whose outcome is unknown (0: none) */
	bool planned;              /* load plan read (or written) */
	bool load;                 /* the segment goes by load jobs */
};

struct feed {
	enum feed_kind kind;
	const struct schema *schema;
	struct feed_env env;
	struct keyset *seen;     /* in BigQuery or spooled */
	struct keyset *released; /* of those, keys whose row BigQuery rejected: a corrected
	                            version is accepted again */
	struct keyset *rejected; /* identities of dead-lettered rows */
	/* Their keys (string keys only): a row whose key is not here cannot be
	 * one of them, so only such rows need the identity check, which takes a
	 * jansson tree. When an add failed, every row is checked. */
	struct keyset *rejected_keys;
	bool rejected_keys_partial;
	struct feed *changes;  /* a tracked feed's changed versions (owned) */
	struct feed *base;     /* a feed of changed versions: the feed it belongs to */
	char *table;           /* ... and its table, TABLE_changes */
	int64_t observed_us;   /* the latest _observed_at given: they never repeat */
	struct keyset *latest; /* at start-up: the newest landed _observed_at of a key */
	bool scanned;          /* the spool's leftovers were scanned */
	struct spool *spool;
	struct segstate *segs;
	size_t nsegs;
	struct feed_stats last;
	uint64_t seed_last_progress;
	size_t dl_logged, dl_unlogged; /* dead-letter warnings of this poll: said, counted */
	bool dl_full_said;             /* the dead-letter file's limit was reported */
};

const char *feed_table(const struct feed *f);
/* track_changes: the feed has a feed of changed versions, and `seen` holds
 * each key's fingerprint. */
static inline bool feed_tracked(const struct feed *f)
{
	return f->changes != NULL;
}
/* A key is known when it is in BigQuery or spooled, and its row was not
 * rejected by BigQuery since. */
bool feed_key_known(const struct feed *f, const char *key, size_t len);
/* A key whose row BigQuery rejected: it may come again, corrected. */
int feed_key_release(struct feed *f, const char *key);
/* "\x01sha256:<hex>" of a row's canonical JSON: how a dead-lettered row is
 * recognised when it comes back, even without a key. */
int feed_row_identity(const json_t *row, char out[FEED_IDENTITY_LEN]);
bool feed_is_rejected(const struct feed *f, const json_t *row);
void feed_remember_rejected(struct feed *f, const json_t *row);
/* Append one dead letter and fsync it. 0 or -errno (logged). */
int feed_dead_letter(struct feed *f, const json_t *row, const char *reason, const char *stage);

/* The identity of a changed version, its insertId: fingerprint, time seen
 * (Unix microseconds) and key (or the key's hash when that would be too
 * long for a key set). */
#define FEED_CHANGE_ID_LEN 64
int feed_change_id(const char *key, size_t klen, uint64_t fp, int64_t observed_us,
                   char out[KEYSET_MAX_KEY_LEN + 1]);
/* "2026-12-04T23:10:14.123456Z" (as the daemon writes _observed_at) -> Unix
 * microseconds. 0 or -EINVAL. */
int feed_observed_parse(const char *text, size_t len, int64_t *us);

/* Ask the changes table which versions of these keys it holds: their ids
 * into `ids`, and each key's newest _observed_at into `latest` (may be NULL). */
int feed_versions_landed(struct feed *c, const char *const *keys, size_t n, struct keyset *ids,
                         struct keyset *latest);

/* feed-drain.c */
void feed_segs_clear(struct feed *f);
/* Open the spool (once) and scan what an earlier run left in it. */
int feed_open_spool(struct feed *f);
/* Send every segment's unconfirmed lines; retire segments that are done. */
int feed_drain_all(struct feed *f);
/* A segment just written by this process: every line starts unconfirmed. */
int feed_track_segment(struct feed *f, const char *path);

#endif

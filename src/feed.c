/* feed.c - one feed's cycle: fetch -> coerce -> drop known keys -> spool -> insert -> commit.
 *
 * The key set holds every key that is in BigQuery or safely in the spool. A
 * key joins it only after the row is fsynced in a spool segment, so a row
 * that could not be spooled is fetched again next time rather than lost.
 * Sending the spool to BigQuery is feed-drain.c's job. A row that cannot be
 * read, coerced or stored goes to the dead letters, remembered by its
 * content, so that it costs only itself: the same row is not dead-lettered
 * again, and a corrected version is taken. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <openssl/evp.h>

#include "checkpoint.h"
#include "feed-internal.h"
#include "jscan.h"
#include "log.h"
#include "util.h"

#define FEED_IDENTITY_PREFIX "\x01sha256:" /* cannot clash with a key: keys have no control chars */
#define FEED_LOOKUP_GROUP    256 /* keys converted for keyset_has_many() at a time (stack) */

/* ---- small helpers ---------------------------------------------------- */

const char *feed_name(const struct feed *f)
{
	return f->schema->feed;
}

const struct schema *feed_schema(const struct feed *f)
{
	return f->schema;
}

size_t feed_known(const struct feed *f)
{
	return keyset_count(f->seen);
}

size_t feed_spooled(const struct feed *f)
{
	return (f->spool ? spool_count(f->spool) : 0) + (f->changes ? feed_spooled(f->changes) : 0);
}

const struct feed_stats *feed_last(const struct feed *f)
{
	return &f->last;
}

const char *feed_table(const struct feed *f)
{
	if (f->base)
		return f->table;
	return f->kind == FEED_SALES ? f->env.cfg->sales.feed.table : f->env.cfg->events.feed.table;
}

bool feed_key_known(const struct feed *f, const char *key, size_t len)
{
	return keyset_has(f->seen, key, len) &&
	       (keyset_count(f->released) == 0 || !keyset_has(f->released, key, len));
}

int feed_key_release(struct feed *f, const char *key)
{
	return keyset_add(f->released, key, strlen(key)) < 0 ? -ENOMEM : 0;
}

struct copy_but {
	struct keyset *to;
	const char *skip;
	size_t len;
};

static int copy_but_one(const char *key, size_t len, void *ud)
{
	struct copy_but *c = ud;
	if (len == c->len && memcmp(key, c->skip, len) == 0)
		return 0;
	return keyset_add(c->to, key, len) < 0 ? -ENOMEM : 0;
}

/* A released key was spooled again: known once more. Rejections are rare,
 * so the set is rebuilt rather than given a delete. */
static int unrelease(struct feed *f, const char *key, size_t len)
{
	if (keyset_count(f->released) == 0 || !keyset_has(f->released, key, len))
		return 0;
	struct copy_but c = {.to = keyset_new(keyset_count(f->released)), .skip = key, .len = len};
	if (!c.to || keyset_foreach(f->released, copy_but_one, &c) < 0) {
		keyset_free(c.to);
		return -ENOMEM;
	}
	keyset_free(f->released);
	f->released = c.to;
	return 0;
}

int feed_row_identity(const json_t *row, char out[FEED_IDENTITY_LEN])
{
	/* The columns the daemon adds are not the row's: a row BigQuery refused
	 * is the same row when it comes back from the API without them. */
	json_t *plain = NULL;
	if (json_is_object(row) && (json_object_get(row, SCHEMA_FINGERPRINT) ||
	                            json_object_get(row, SCHEMA_OBSERVED_AT))) {
		if (!(plain = json_copy((json_t *)row)))
			return -ENOMEM;
		json_object_del(plain, SCHEMA_FINGERPRINT);
		json_object_del(plain, SCHEMA_OBSERVED_AT);
		row = plain;
	}
	char *s = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	json_decref(plain);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!s)
		return -ENOMEM;
	int ok = EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL);
	free(s);
	if (!ok)
		return -EIO;
	size_t p = (size_t)snprintf(out, FEED_IDENTITY_LEN, "%s", FEED_IDENTITY_PREFIX);
	for (unsigned int i = 0; i < mdlen && p + 2 < FEED_IDENTITY_LEN; i++)
		p += (size_t)snprintf(out + p, FEED_IDENTITY_LEN - p, "%02x", md[i]);
	return 0;
}

int feed_change_id(const char *key, size_t klen, uint64_t fp, int64_t observed_us,
                   char out[KEYSET_MAX_KEY_LEN + 1])
{
	int n = snprintf(out, KEYSET_MAX_KEY_LEN + 1, "%016" PRIx64 ":%" PRId64 ":", fp,
	                 observed_us);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n + klen <= KEYSET_MAX_KEY_LEN) {
		memcpy(out + n, key, klen);
		out[n + klen] = '\0';
	} else {
		snprintf(out + n, KEYSET_MAX_KEY_LEN + 1 - (size_t)n, "#%016" PRIx64,
		         schema_fingerprint(key, klen));
	}
	return 0;
}

int feed_observed_parse(const char *text, size_t len, int64_t *us)
{
	char sec[21];
	int64_t s, frac = 0;
	/* Exactly as observe() writes it, digit for digit: the parser below reads
	 * a C string and would take "2026-12-04" followed by a NUL for a date. */
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	if (!text || len != sizeof(shape) - 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		if (shape[i] == 'd' ? text[i] < '0' || text[i] > '9' : text[i] != shape[i])
			return -EINVAL;
	memcpy(sec, text, 19);
	memcpy(sec + 19, "Z", 2);
	for (size_t i = 20; i < 26; i++)
		frac = frac * 10 + (text[i] - '0');
	if (schema_parse_time(sec, &s) < 0)
		return -EINVAL;
	*us = s * 1000000 + frac;
	return 0;
}

/* A changed version's _observed_at: now, but always after the one before,
 * so that two versions of a key never share one (it is part of their id). */
static int64_t observe(struct feed *f, char out[32])
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t us = (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
	if (us <= f->observed_us)
		us = f->observed_us + 1;
	f->observed_us = us;
	time_t sec = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%06dZ", (int)(us % 1000000));
	return us;
}

bool feed_is_rejected(const struct feed *f, const json_t *row)
{
	char id[FEED_IDENTITY_LEN];
	if (keyset_count(f->rejected) == 0 || feed_row_identity(row, id) < 0)
		return false;
	return keyset_has(f->rejected, id, strlen(id));
}

void feed_remember_rejected(struct feed *f, const json_t *row)
{
	char id[FEED_IDENTITY_LEN];
	if (feed_row_identity(row, id) == 0)
		(void)keyset_add(f->rejected, id, strlen(id));
	const json_t *k = json_object_get(row, f->schema->key);
	if (json_is_string(k) && json_string_length(k) > 0 &&
	    keyset_add(f->rejected_keys, json_string_value(k), json_string_length(k)) < 0)
		f->rejected_keys_partial = true; /* a too long key included: check every row */
}

/* Whether a row with this (string) key may be a dead-lettered one. */
static bool may_be_rejected(const struct feed *f, const char *key, size_t len)
{
	return f->rejected_keys_partial || keyset_has(f->rejected_keys, key, len);
}

/* STATE_DIR/<prefix><feed><suffix>, e.g. "rejected-" "sales" ".ndjson". */
static char *state_path(const struct feed *f, const char *prefix, const char *suffix)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s%s%s", f->env.cfg->state_dir, prefix, feed_name(f), suffix) < 0)
		return NULL;
	return p;
}

/* The key of an API row as text (a string, or a number sent for it), or NULL. */
static const char *api_key_text(const struct feed *f, const json_t *row, char buf[32])
{
	const json_t *k = json_is_object(row) ? json_object_get(row, f->schema->key) : NULL;
	if (json_is_string(k))
		return json_string_value(k);
	if (json_is_integer(k) &&
	    snprintf(buf, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(k)) > 0)
		return buf;
	return NULL;
}

/* The warning for one dead letter: the first FEED_DEADLETTER_LOG_MAX of a
 * poll each get one, the rest are counted and summed up at its end, so that
 * a flood of bad rows cannot flood the journal. Only the key as the API sent
 * it may be logged (and only when it is plain): the rest of a sale is
 * personal data. */
static void dead_letter_note(struct feed *f, const json_t *row, const char *reason,
                             const char *stage)
{
	if (f->env.sink) /* the audit counts them; it writes no dead letter */
		return;
	if (f->dl_logged >= FEED_DEADLETTER_LOG_MAX) {
		f->dl_unlogged++;
		return;
	}
	f->dl_logged++;
	char keybuf[32], shown[LOG_VALUE_MAX];
	const char *key = api_key_text(f, row, keybuf);
	log_warning("%s: row %s%s dead-lettered at %s stage: %s", feed_name(f),
	            key ? "with key " : "without a key",
	            key ? log_value(key, strlen(key), shown) : "", stage, reason);
}

/* One dead letter {"row","reason","time","stage"} as an NDJSON line. */
static int dead_letter_format(const json_t *row, const char *reason, const char *stage,
                              struct buf *out)
{
	char when[32];
	util_utc_now(when);
	json_t *o = json_pack("{s:O,s:s,s:s,s:s}", "row", row, "reason", reason, "time", when,
	                      "stage", stage);
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	int r = line ? buf_puts(out, line) : -ENOMEM;
	if (r == 0)
		r = buf_append(out, "\n", 1);
	free(line);
	return r;
}

/* Append dead letters to the file with one write and one fsync: the rows
 * leave the pipeline only once their dead letters are durable. */
static int dead_letters_write(struct feed *f, const struct buf *lines)
{
	if (f->env.dry_run || lines->len == 0)
		return 0;
	char *path = state_path(f, "rejected-", ".ndjson");
	if (!path)
		return -ENOMEM;
	/* No symlink: a link planted in the state directory must not redirect
	 * the write of a daemon run by hand as root. */
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0640);
	int r = fd < 0 ? -errno : 0;
	struct stat st;
	if (r == 0 && fstat(fd, &st) < 0)
		r = -errno;
	if (r == 0 && (uint64_t)st.st_size + lines->len > FEED_DEADLETTER_MAX_BYTES) {
		r = -EFBIG;
		if (!f->dl_full_said)
			log_error(
			        "%s: %s has reached %u MiB, its limit: rejected rows are held back "
			        "(and fetched again) until it is moved aside",
			        feed_name(f), path, FEED_DEADLETTER_MAX_BYTES >> 20);
		f->dl_full_said = true;
	} else if (r == 0) {
		r = util_write_all(fd, lines->data, lines->len);
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
	}
	if (fd >= 0)
		close(fd);
	if (r < 0 && r != -EFBIG)
		log_error("%s: cannot write dead letters to %s: %s", feed_name(f), path,
		          strerror(-r));
	free(path);
	return r;
}

int feed_dead_letter(struct feed *f, const json_t *row, const char *reason, const char *stage)
{
	struct buf line = {0};
	dead_letter_note(f, row, reason, stage);
	int r = f->env.dry_run ? 0 : dead_letter_format(row, reason, stage, &line);
	if (r == 0)
		r = dead_letters_write(f, &line);
	buf_free(&line);
	return r;
}

/* ---- life cycle -------------------------------------------------------- */

static struct feed *feed_alloc(enum feed_kind kind, const struct schema *schema,
                               const struct feed_env *env, bool valued)
{
	struct feed *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->kind = kind;
	f->schema = schema;
	f->env = *env;
	f->seen = valued ? keyset_new_valued(0) : keyset_new(0);
	f->released = keyset_new(0);
	f->rejected = keyset_new(0);
	f->rejected_keys = keyset_new(0);
	if (!f->seen || !f->released || !f->rejected || !f->rejected_keys) {
		feed_free(f);
		return NULL;
	}
	return f;
}

struct feed *feed_new(enum feed_kind kind, const struct feed_env *env)
{
	const struct config_feed *cf =
	        kind == FEED_SALES ? &env->cfg->sales.feed : &env->cfg->events.feed;
	bool track = cf->track_changes;
	const struct schema *s = kind == FEED_SALES
	                                 ? (track ? &schema_sales_tracked : &schema_sales)
	                                 : (track ? &schema_events_tracked : &schema_events);
	struct feed *f = feed_alloc(kind, s, env, track);
	if (!f || !track)
		return f;
	/* The changed versions are a feed of their own for the spool and the
	 * drain: their own segments, table and dead letters. */
	f->changes = feed_alloc(kind,
	                        kind == FEED_SALES ? &schema_sales_changes : &schema_events_changes,
	                        env, false);
	if (!f->changes ||
	    asprintf(&f->changes->table, "%s%s", cf->table, CONFIG_CHANGES_SUFFIX) < 0) {
		if (f->changes)
			f->changes->table = NULL;
		feed_free(f);
		return NULL;
	}
	f->changes->base = f;
	return f;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	feed_free(f->changes);
	feed_segs_clear(f);
	spool_free(f->spool);
	keyset_free(f->seen);
	keyset_free(f->released);
	keyset_free(f->rejected);
	keyset_free(f->rejected_keys);
	keyset_free(f->latest);
	free(f->table);
	free(f);
}

void feed_set_env(struct feed *f, const struct feed_env *env)
{
	f->env = *env;
	if (f->changes)
		feed_set_env(f->changes, env);
}

struct feed *feed_changes(const struct feed *f)
{
	return f->changes;
}

/* ---- seeding ----------------------------------------------------------- */

static void seed_progress(size_t rows, size_t total, void *ud)
{
	struct feed *f = ud;
	/* Room for every key at once: no rehash while seeding (a hint; without
	 * room the set grows as it goes). */
	if (rows == 0 && total != SIZE_MAX &&
	    keyset_reserve(f->seen, keyset_count(f->seen) + total) < 0)
		log_debug("%s: no room for %zu keys at once; the key set grows as it goes",
		          feed_name(f), total);
	uint64_t now = util_now_ms();
	if (now - f->seed_last_progress < FEED_SEED_PROGRESS_MS)
		return;
	f->seed_last_progress = now;
	log_info("%s: seeding, %zu keys of table %s loaded so far", feed_name(f), rows,
	         feed_table(f));
	if (f->env.loop) {
		loop_notify_status(f->env.loop, "seeding %s: %zu keys loaded", feed_table(f), rows);
		loop_notify_extend_timeout(f->env.loop, FEED_SEED_EXTEND_USEC);
		loop_poll_signals(f->env.loop);
	}
}

static int seed_row(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct feed *f = ud;
	if (n < 1 || !v[0] || lens[0] == 0)
		return 0;
	/* Tracked: the key's latest fingerprint is the last column (NULL for a
	 * row from before tracking: 0, "unknown", so its version is recorded). */
	int r = feed_tracked(f)
	                ? keyset_put(f->seen, v[0], lens[0],
	                             schema_fingerprint_parse(v[n - 1], v[n - 1] ? lens[n - 1] : 0))
	                : keyset_add(f->seen, v[0], lens[0]);
	if (feed_tracked(f) && n >= 3 && v[n - 2]) {
		long long us = strtoll(v[n - 2], NULL, 10);
		if (us > f->observed_us)
			f->observed_us = us;
	}
	if (r == -EINVAL) /* a key we could never have written; nothing to compare with */
		return 0;
	if (r < 0)
		return r;
	if (f->kind == FEED_EVENTS && f->env.cal &&
	    calendar_note(f->env.cal, v[0], n > 1 ? v[1] : NULL) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

int feed_dead_letters_foreach(const char *state_dir, const char *feed,
                              int (*fn)(const json_t *row, void *ud), void *ud)
{
	char *path = NULL;
	if (asprintf(&path, "%s/rejected-%s.ndjson", state_dir, feed) < 0)
		return -ENOMEM;
	FILE *in = fopen(path, "re");
	free(path);
	if (!in)
		return errno == ENOENT ? 0 : -errno;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int r = 0;
	while (r == 0 && (n = getline(&line, &cap, in)) > 0) {
		json_t *o = json_loadb(line, (size_t)n, 0, NULL);
		const json_t *row = json_object_get(o, "row");
		if (row)
			r = fn(row, ud);
		json_decref(o);
	}
	free(line);
	fclose(in);
	return r;
}

static int rejected_row(const json_t *row, void *ud)
{
	struct feed *f = ud;
	feed_remember_rejected(f, row);
	/* A rejected event still exists at the source: its sales are wanted. */
	char buf[32];
	const char *id = f->kind == FEED_EVENTS ? api_key_text(f, row, buf) : NULL;
	if (id && f->env.cal)
		(void)calendar_note(f->env.cal, id,
		                    json_string_value(json_object_get(row, "starts")));
	return 0;
}

static int load_rejected(struct feed *f)
{
	return feed_dead_letters_foreach(f->env.cfg->state_dir, feed_name(f), rejected_row, f);
}

/* ---- tables -------------------------------------------------------------- */

/* TABLE_current: each key's latest version, the base row unless a changed
 * version exists; _observed_at is NULL for a base row, and NULLs sort last
 * under DESC in BigQuery. Only plain SQL that BigQuery and the test fake
 * agree on (explicit columns, no EXCEPT, no QUALIFY). */
char *feed_current_view_sql(const struct feed *f)
{
	const struct config *c = f->env.cfg;
	const struct schema *s = f->schema;
	struct buf cols = {0};
	char *sql = NULL;
	for (size_t i = 0; i < s->ncolumns; i++)
		buf_printf(&cols, "`%s`, ", s->columns[i].name);
	if (buf_puts(&cols, SCHEMA_FINGERPRINT) < 0 ||
	    asprintf(&sql,
	             "SELECT %s, " SCHEMA_OBSERVED_AT " FROM (SELECT %s, " SCHEMA_OBSERVED_AT
	             ", ROW_NUMBER() OVER (PARTITION BY `%s` ORDER BY " SCHEMA_OBSERVED_AT
	             " DESC, " SCHEMA_FINGERPRINT " DESC) AS _version FROM (SELECT %s, CAST(NULL "
	             "AS TIMESTAMP) AS " SCHEMA_OBSERVED_AT " FROM `%s.%s.%s` UNION ALL SELECT "
	             "%s, " SCHEMA_OBSERVED_AT " FROM `%s.%s.%s%s`)) WHERE _version = 1",
	             cols.data, cols.data, s->key, cols.data, c->bigquery.project,
	             c->bigquery.dataset, feed_table(f), cols.data, c->bigquery.project,
	             c->bigquery.dataset, feed_table(f), CONFIG_CHANGES_SUFFIX) < 0)
		sql = NULL;
	buf_free(&cols);
	return sql;
}

int feed_ensure_tables(struct feed *f, bool create)
{
	json_t *base = NULL;
	int r = bq_ensure_table_like(f->env.bq, feed_table(f), f->schema, NULL, create,
	                             f->changes ? &base : NULL);
	if (r < 0 || !f->changes)
		return r;
	/* The view unites the two tables: the changes table takes the base's
	 * column types (an older table may hold `date` as TIMESTAMP). */
	r = bq_ensure_table_like(f->env.bq, feed_table(f->changes), f->changes->schema, base,
	                         create, NULL);
	json_decref(base);
	char *sql = r == 0 ? feed_current_view_sql(f) : NULL;
	char *view = NULL;
	if (r == 0 && (!sql || asprintf(&view, "%s%s", feed_table(f), CONFIG_CURRENT_SUFFIX) < 0))
		r = -ENOMEM, view = NULL;
	if (r == 0)
		r = bq_ensure_view(f->env.bq, view, sql, feed_name(f), create);
	free(view);
	free(sql);
	return r;
}

/* ---- seeding the changed versions ---------------------------------------- */

#define FEED_LOOKUP_KEYS 10000 /* keys per query parameter when looking up spooled versions */

struct spooled_keys {
	struct feed *c;
	struct keyset *keys;
};

static int spooled_key(const char *line, size_t len, size_t lineno, void *ud)
{
	struct spooled_keys *sk = ud;
	const char *key;
	size_t klen;
	(void)lineno;
	if (jscan_valid_object(line, len) &&
	    jscan_plain_member(line, len, sk->c->schema->key, &key, &klen))
		return keyset_add(sk->keys, key, klen) == -ENOMEM ? -ENOMEM : 0;
	json_t *row = json_loadb(line, len, 0, NULL);
	const char *k = row ? schema_row_key(sk->c->schema, row) : NULL;
	int r = k && keyset_add(sk->keys, k, strlen(k)) == -ENOMEM ? -ENOMEM : 0;
	json_decref(row);
	return r;
}

struct landed {
	struct feed *base;     /* its observed_us is kept past every landed version */
	struct keyset *ids;    /* the landed versions' ids */
	struct keyset *latest; /* NULL, or each key's newest landed _observed_at */
};

/* A landed version: (key, _fingerprint, UNIX_MICROS(_observed_at)). */
static int landed_version(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct landed *l = ud;
	char id[KEYSET_MAX_KEY_LEN + 1], *end;
	if (n < 3 || !v[0] || !v[2])
		return 0;
	errno = 0;
	long long us = strtoll(v[2], &end, 10);
	if (errno || *end || lens[0] == 0)
		return 0;
	uint64_t fp = schema_fingerprint_parse(v[1], v[1] ? lens[1] : 0);
	uint64_t newest = 0;
	if (feed_change_id(v[0], lens[0], fp, us, id) < 0 ||
	    keyset_add(l->ids, id, strlen(id)) == -ENOMEM)
		return -ENOMEM;
	if (l->base && us > l->base->observed_us)
		l->base->observed_us = us;
	if (!l->latest || (keyset_get(l->latest, v[0], lens[0], &newest) && (int64_t)newest >= us))
		return 0;
	return keyset_put(l->latest, v[0], lens[0], (uint64_t)us) == -ENOMEM ? -ENOMEM : 0;
}

int feed_versions_landed(struct feed *c, const char *const *keys, size_t n, struct keyset *ids,
                         struct keyset *latest)
{
	const struct config *cfg = c->env.cfg;
	char *sql = NULL;
	struct landed l = {c->base, ids, latest};
	json_t *params = bq_param_strings("keys", keys, n);
	int r = -ENOMEM;
	if (params && asprintf(&sql,
	                       "SELECT %s, " SCHEMA_FINGERPRINT ", UNIX_MICROS(" SCHEMA_OBSERVED_AT
	                       ") FROM `%s.%s.%s` WHERE %s IN UNNEST(@keys)",
	                       c->schema->key, cfg->bigquery.project, cfg->bigquery.dataset,
	                       feed_table(c), c->schema->key) >= 0)
		r = bq_query_params(c->env.bq, sql, params, landed_version, &l, NULL);
	else
		sql = NULL;
	json_decref(params);
	free(sql);
	return r;
}

struct key_batch {
	const char **keys;
	size_t n;
	struct feed *c;
	int r;
};

static int lookup_batch(struct key_batch *kb)
{
	int r = feed_versions_landed(kb->c, kb->keys, kb->n, kb->c->seen, kb->c->latest);
	for (size_t i = 0; i < kb->n; i++)
		free((char *)kb->keys[i]);
	kb->n = 0;
	return r;
}

static int batch_key(const char *key, size_t len, void *ud)
{
	struct key_batch *kb = ud;
	if (!(kb->keys[kb->n] = strndup(key, len)))
		return -ENOMEM;
	if (++kb->n == FEED_LOOKUP_KEYS)
		return lookup_batch(kb);
	return 0;
}

/* Which versions an earlier run left spooled have landed: the table is asked
 * for the versions of their keys only (they are few), and the newest landed
 * one of each key is kept for the scan (feed-drain.c), which must not let an
 * older spooled version stand for the latest. */
static int changes_seed(struct feed *c)
{
	int e = load_rejected(c);
	if (e < 0)
		log_warning("%s: cannot read earlier dead letters: %s", feed_name(c), strerror(-e));
	if (c->env.dry_run)
		return 0;
	if (!c->spool) {
		int r = spool_open(c->env.cfg->state_dir, feed_name(c), &c->spool);
		if (r < 0) {
			log_error("%s: cannot open the spool in %s: %s", feed_name(c),
			          c->env.cfg->state_dir, strerror(-r));
			return r;
		}
	}
	struct spooled_keys sk = {.c = c, .keys = keyset_new(0)};
	int r = sk.keys ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < spool_count(c->spool); i++)
		if (spool_foreach(c->spool, i, spooled_key, &sk) == -ENOMEM)
			r = -ENOMEM; /* an unreadable segment is the scan's to set aside */
	keyset_free(c->latest);
	c->latest = r == 0 ? keyset_new_valued(keyset_count(sk.keys)) : NULL;
	struct key_batch kb = {.keys = calloc(FEED_LOOKUP_KEYS, sizeof(char *)), .c = c};
	if (r == 0 && (!c->latest || !kb.keys))
		r = -ENOMEM;
	if (r == 0 && keyset_count(sk.keys) > 0) {
		r = keyset_foreach(sk.keys, batch_key, &kb);
		if (r == 0 && kb.n)
			r = lookup_batch(&kb);
		for (size_t i = 0; i < kb.n; i++)
			free((char *)kb.keys[i]);
		if (r == 0)
			log_info(
			        "%s: %zu keys have changed versions spooled by an earlier run; %zu "
			        "versions of them are in table %s",
			        feed_name(c), keyset_count(sk.keys), keyset_count(c->seen),
			        feed_table(c));
		else if (r != -ECANCELED)
			log_error("%s: cannot look up the spooled versions in table %s: %s",
			          feed_name(c), feed_table(c), strerror(-r));
	}
	free(kb.keys);
	keyset_free(sk.keys);
	return r;
}

int feed_seed(struct feed *f)
{
	char *sql = NULL;
	const struct config *c = f->env.cfg;
	int r;
	/* Tracked: the view's latest version of each key, base and changes in
	 * one query. */
	const char *from = feed_tracked(f) ? CONFIG_CURRENT_SUFFIX : "";
	/* _observed_at too: the newest one anywhere is where this process's
	 * versions start, so that a wall clock set back never makes a new
	 * version sort before a landed one in the view. */
	const char *fp = feed_tracked(f) ? ", " SCHEMA_OBSERVED_AT ", " SCHEMA_FINGERPRINT : "";
	if (f->kind == FEED_SALES)
		r = asprintf(&sql,
		             "SELECT uniqueCode%s FROM `%s.%s.%s%s` WHERE uniqueCode IS NOT NULL",
		             fp, c->bigquery.project, c->bigquery.dataset, feed_table(f), from);
	else
		r = asprintf(&sql, "SELECT id, starts%s FROM `%s.%s.%s%s` WHERE id IS NOT NULL", fp,
		             c->bigquery.project, c->bigquery.dataset, feed_table(f), from);
	if (r < 0)
		return -ENOMEM;
	uint64_t start = util_now_ms();
	f->seed_last_progress = start;
	/* Dead letters first: for the calendar, what the table holds is newer. */
	int e = load_rejected(f);
	if (e < 0)
		log_warning("%s: cannot read earlier dead letters: %s", feed_name(f), strerror(-e));
	log_info("%s: seeding known keys from table %s", feed_name(f), feed_table(f));
	r = bq_query(f->env.bq, sql, seed_row, f, seed_progress);
	free(sql);
	if (r < 0) {
		log_error("%s: seeding from table %s failed: %s", feed_name(f), feed_table(f),
		          strerror(-r));
		return r;
	}
	log_info("%s: %zu keys known in table %s%s (seeded in %" PRIu64 " ms)", feed_name(f),
	         keyset_count(f->seen), feed_table(f), from, util_now_ms() - start);
	return f->changes ? changes_seed(f->changes) : 0;
}

static int feed_replay_one(struct feed *f);

int feed_replay(struct feed *f)
{
	if (f->env.dry_run)
		return 0;
	int r = feed_replay_one(f);
	/* Then the changed versions: their scan brings the fingerprints of
	 * versions spooled but not landed up to date, over the base's. */
	if (f->changes && r != -ECANCELED && (r == 0 || r == -EAGAIN)) {
		int c = feed_replay_one(f->changes);
		if (c < 0 && r == 0)
			r = c;
	}
	return r;
}

static int feed_replay_one(struct feed *f)
{
	int r = feed_open_spool(f);
	if (r < 0)
		return r;
	if (spool_count(f->spool) == 0)
		return 0;
	r = feed_drain_all(f);
	if (r < 0 && r != -ECANCELED)
		log_warning("%s: spooled rows could not all be sent yet (%s); they stay spooled",
		            feed_name(f), strerror(-r));
	return r;
}

/* ---- fetching ---------------------------------------------------------- */

struct page_ctx {
	struct feed *f;
	struct buf ndjson;
	struct keyset *page_keys;   /* keys accepted from this page, not yet durable
	                             (tracked: with their fingerprints) */
	struct buf changes;         /* tracked: this page's changed versions */
	struct keyset *change_keys; /* ... their keys and new fingerprints */
	bool segment_open;
	bool changes_open;  /* a segment of the changes feed is open */
	size_t undelivered; /* rejected rows whose dead letter could not be written */
	bool stopped;       /* on_page failed: a local failure (disk, memory) ends the poll */
	struct buf dl;      /* this page's dead letters, written at once */
	json_t *dl_rows;    /* ... and their rows, remembered once written */
};

/* Lines into a feed's spool: durable before anything depends on them. The
 * poll's segment is begun with its first lines. */
static int accept_lines(struct feed *f, bool *segment_open, const struct buf *lines)
{
	if (lines->len == 0)
		return 0;
	if (!*segment_open) {
		int r = spool_begin(f->spool);
		if (r < 0)
			return r;
		*segment_open = true;
	}
	return spool_append(f->spool, lines->data, lines->len);
}

static int accept_page(struct page_ctx *pc)
{
	return accept_lines(pc->f, &pc->segment_open, &pc->ndjson);
}

/* The page's changed versions, into the changes feed's spool. */
static int accept_changes(struct page_ctx *pc)
{
	return accept_lines(pc->f->changes, &pc->changes_open, &pc->changes);
}

struct key_source {
	struct feed *f;
	const struct keyset *from; /* the page's set the key came from, with its value */
};

static int add_page_key(const char *key, size_t len, void *ud)
{
	struct key_source *ks = ud;
	struct feed *f = ks->f;
	uint64_t fp = 0;
	if (feed_tracked(f))
		(void)keyset_get(ks->from, key, len, &fp);
	if (keyset_put(f->seen, key, len, fp) < 0)
		return -ENOMEM;
	return unrelease(f, key, len);
}

/* A row leaves through the dead letters, once: queued here, written with
 * the page's others by flush_rejects(). */
static int reject(struct page_ctx *pc, const json_t *row, const char *why, const char *stage)
{
	struct feed *f = pc->f;
	dead_letter_note(f, row, why, stage);
	if (f->env.dry_run) {
		f->last.rejected++;
		return 0;
	}
	if (!pc->dl_rows && !(pc->dl_rows = json_array()))
		return -ENOMEM;
	if (dead_letter_format(row, why, stage, &pc->dl) < 0 ||
	    json_array_append(pc->dl_rows, (json_t *)row) < 0)
		return -ENOMEM;
	return 0;
}

static void flush_rejects(struct page_ctx *pc)
{
	struct feed *f = pc->f;
	size_t n = json_array_size(pc->dl_rows), i;
	json_t *row;
	if (n == 0)
		return;
	if (dead_letters_write(f, &pc->dl) == 0) {
		f->last.rejected += n;
		json_array_foreach(pc->dl_rows, i, row)
		{
			feed_remember_rejected(f, row);
		}
	} else {
		/* Neither sent nor dead-lettered: they come again with the next
		 * fetch, but this poll did not handle every row. */
		pc->undelivered += n;
	}
	buf_reset(&pc->dl);
	json_array_clear(pc->dl_rows);
}

/* The events feed tells the calendar of every event it sees: new, known,
 * changed or rejected (it still exists at the source). */
static int note_event(struct page_ctx *pc, const json_t *api, const json_t *bq)
{
	struct feed *f = pc->f;
	char buf[32];
	if (f->kind != FEED_EVENTS || !f->env.cal)
		return 0;
	const json_t *src = bq ? bq : api;
	const char *id = bq ? schema_row_key(f->schema, bq) : api_key_text(f, api, buf);
	const char *starts = json_string_value(json_object_get(src, "starts"));
	return id && calendar_note(f->env.cal, id, starts) == -ENOMEM ? -ENOMEM : 0;
}

/* A version of a known key that BigQuery refused (a later process has only
 * the dead letters to tell). Rare: only a key with such a dead letter is
 * read into a tree. */
static bool refused_version(const struct feed *f, const char *text, size_t len, const char *key,
                            size_t klen)
{
	if (!f->changes || keyset_count(f->changes->rejected) == 0 ||
	    !may_be_rejected(f->changes, key, klen))
		return false;
	json_t *row = json_loadb(text, len, 0, NULL);
	bool refused = row && feed_is_rejected(f->changes, row);
	json_decref(row);
	return refused;
}

/* Tracked: the coerced row at pc->ndjson[mark..] (no newline yet). A new key
 * keeps it there with its _fingerprint; a known key whose fingerprint
 * differs gives a changed version for the changes feed; the same version
 * again gives nothing. */
static int take_tracked(struct page_ctx *pc, size_t mark, const char *key, size_t klen)
{
	struct feed *f = pc->f;
	const char *text = pc->ndjson.data + mark;
	size_t len = pc->ndjson.len - mark;
	if (f->env.sink) {
		int r = f->env.sink->row(key, klen, text, len, f->env.sink->ud);
		pc->ndjson.len = mark;
		return r;
	}
	uint64_t fp = schema_fingerprint(text, len), now = 0;
	char hex[17], when[32];
	snprintf(hex, sizeof(hex), "%016" PRIx64, fp);
	/* One lookup gives both: known, and the fingerprint it is known by. */
	if (keyset_get(f->seen, key, klen, &now) &&
	    (keyset_count(f->released) == 0 || !keyset_has(f->released, key, klen))) {
		/* A version already taken from this page is the one to compare with. */
		(void)keyset_get(pc->change_keys, key, klen, &now);
		if (now != fp && refused_version(f, text, len, key, klen)) {
			/* BigQuery refused this version before (it is in the changes'
			 * dead letters): like a refused row, it is not sent again. */
			if (keyset_put(pc->change_keys, key, klen, fp) < 0)
				return -ENOMEM;
		} else if (now != fp) {
			observe(f, when);
			if (buf_append(&pc->changes, text, len - 1) < 0 ||
			    buf_printf(&pc->changes,
			               ",\"" SCHEMA_FINGERPRINT "\":\"%s\",\"" SCHEMA_OBSERVED_AT
			               "\":\"%s\"}\n",
			               hex, when) < 0 ||
			    keyset_put(pc->change_keys, key, klen, fp) < 0)
				return -ENOMEM;
			f->last.changed++;
		}
		pc->ndjson.len = mark;
		return 0;
	}
	if (keyset_has(pc->page_keys, key, klen)) {
		pc->ndjson.len = mark;
		return 0;
	}
	pc->ndjson.len--; /* the closing brace, put back after the fingerprint */
	if (buf_printf(&pc->ndjson, ",\"" SCHEMA_FINGERPRINT "\":\"%s\"}\n", hex) < 0 ||
	    keyset_put(pc->page_keys, key, klen, fp) < 0)
		return -ENOMEM;
	f->last.fresh++;
	return 0;
}

static int take_row(struct page_ctx *pc, const json_t *api)
{
	struct feed *f = pc->f;
	json_t *bq = NULL;
	char why[200];
	f->last.fetched++;
	if (feed_is_rejected(f, api))
		return note_event(pc, api, NULL);
	int c = schema_coerce(f->schema, api, &bq, why, sizeof(why));
	if (c == -ENOMEM)
		return c;
	if (c < 0) {
		int e = reject(pc, api, why, "coerce");
		return e < 0 ? e : note_event(pc, api, NULL);
	}
	int r = note_event(pc, api, bq);
	const char *key = schema_row_key(f->schema, bq);
	size_t klen = strlen(key);
	bool every = feed_tracked(f) || f->env.sink; /* every row is looked at, not only new ones */
	if (r < 0 ||
	    (!every && (feed_key_known(f, key, klen) || keyset_has(pc->page_keys, key, klen))) ||
	    feed_is_rejected(f, bq)) {
		json_decref(bq);
		return r;
	}
	char *line = json_dumps(bq, JSON_COMPACT);
	if (line && every) {
		size_t mark = pc->ndjson.len;
		r = buf_append(&pc->ndjson, line, strlen(line)) < 0
		            ? -ENOMEM
		            : take_tracked(pc, mark, key, klen);
		free(line);
		json_decref(bq);
		return r;
	}
	if (!line || keyset_add(pc->page_keys, key, klen) < 0 ||
	    buf_append(&pc->ndjson, line, strlen(line)) < 0 || buf_append(&pc->ndjson, "\n", 1) < 0)
		r = -ENOMEM;
	else
		f->last.fresh++;
	free(line);
	json_decref(bq);
	return r;
}

/* A page of many thousand rows: stay responsive to SIGTERM and keep the
 * watchdog fed. */
static int yield_now(struct feed *f, size_t i)
{
	if ((i + 1) % FEED_YIELD_ROWS == 0 && f->env.loop && loop_poll_signals(f->env.loop))
		return -ECANCELED;
	return 0;
}

/* An element that is not even JSON: its text is the row. */
static int take_bad(struct page_ctx *pc, const struct st_bad_row *bad)
{
	struct feed *f = pc->f;
	json_t *raw = json_string(bad->text);
	int r = 0;
	f->last.fetched++;
	if (!raw)
		r = -ENOMEM;
	else if (!feed_is_rejected(f, raw))
		r = reject(pc, raw, bad->why, "parse");
	json_decref(raw);
	return r;
}

/* An element of a sales page left unread by the scan (its key is not
 * known): straight from its text to its spool line when schema-text.c
 * vouches for it, else as take_row() and take_bad() would. The outcome is
 * the same either way; the fast way builds no tree. */
static int take_text(struct page_ctx *pc, const char *text, size_t len, size_t *nbad)
{
	struct feed *f = pc->f;
	size_t mark = pc->ndjson.len;
	const char *key;
	size_t klen;
	int r = schema_coerce_text(f->schema, text, len, &pc->ndjson, &key, &klen);
	if (r < 0)
		return r;
	if (r == 1 && may_be_rejected(f, key, klen)) {
		/* A dead-lettered row is recognised by its identity: the slow way. */
		pc->ndjson.len = mark;
		r = 0;
	}
	if (r == 1 && (feed_tracked(f) || f->env.sink)) {
		f->last.fetched++;
		return take_tracked(pc, mark, key, klen);
	}
	if (r == 1) {
		f->last.fetched++;
		if (feed_key_known(f, key, klen) || keyset_has(pc->page_keys, key, klen)) {
			pc->ndjson.len = mark;
			return 0;
		}
		if (keyset_add(pc->page_keys, key, klen) < 0 ||
		    buf_append(&pc->ndjson, "\n", 1) < 0)
			return -ENOMEM;
		f->last.fresh++;
		return 0;
	}
	json_t *row;
	struct st_bad_row bad;
	r = st_read_row(text, len, &row, &bad);
	if (r == 0) {
		r = take_row(pc, row);
		json_decref(row);
	} else if (r == 1) {
		(*nbad)++;
		r = take_bad(pc, &bad);
		free(bad.text);
	}
	return r;
}

/* The sales fetch's filter (stpage.h): a row whose key is in BigQuery (or
 * durably spooled) needs nothing but counting. A known row is not looked at
 * further, so one that a later poll serves broken is not dead-lettered. */
static bool row_known(const char *key, size_t len, void *ud)
{
	const struct feed *f = ud;
	/* Tracked: a known row is read too, for its fingerprint. */
	return !feed_tracked(f) && !f->env.sink && feed_key_known(f, key, len);
}

/* The same for a page's keys at once: the key set's reads overlap. */
static void rows_known(const struct st_span *keys, size_t n, bool *out, void *ud)
{
	struct feed *f = ud;
	struct keyset_key k[FEED_LOOKUP_GROUP];
	if (feed_tracked(f) || f->env.sink) {
		memset(out, 0, n * sizeof(*out));
		return;
	}
	for (size_t at = 0; at < n; at += FEED_LOOKUP_GROUP) {
		size_t m = n - at < FEED_LOOKUP_GROUP ? n - at : FEED_LOOKUP_GROUP;
		for (size_t i = 0; i < m; i++)
			k[i] = (struct keyset_key){keys[at + i].text, keys[at + i].len};
		keyset_has_many(f->seen, k, m, out + at);
	}
	if (keyset_count(f->released) == 0)
		return;
	for (size_t i = 0; i < n; i++)
		if (out[i] && keyset_has(f->released, keys[i].text, keys[i].len))
			out[i] = false;
}

static int on_page(const struct st_page *page, void *ud)
{
	struct page_ctx *pc = ud;
	struct feed *f = pc->f;
	size_t i;
	json_t *api;
	int r = 0;

	f->last.fetched += page->nknown;
	buf_reset(&pc->ndjson);
	buf_reset(&pc->changes);
	keyset_free(pc->page_keys);
	keyset_free(pc->change_keys);
	size_t rows = json_array_size(page->rows) + page->nunread;
	pc->page_keys = feed_tracked(f) ? keyset_new_valued(rows) : keyset_new(rows);
	pc->change_keys = feed_tracked(f) ? keyset_new_valued(0) : NULL;
	if (!pc->page_keys || (feed_tracked(f) && !pc->change_keys))
		r = -ENOMEM;
	/* Elements that are not even JSON: their text is the row. */
	for (i = 0; i < page->nbad && r == 0; i++)
		r = take_bad(pc, &page->bad[i]);
	json_array_foreach(page->rows, i, api)
	{
		if (r == 0)
			r = take_row(pc, api);
		if (r == 0)
			r = yield_now(f, i);
	}
	size_t nbad = 0;
	for (i = 0; i < page->nunread && r == 0; i++) {
		r = take_text(pc, page->unread[i].text, page->unread[i].len, &nbad);
		if (r == 0)
			r = yield_now(f, i);
	}
	if (nbad)
		log_info("%s: %zu of %zu rows of a page are not valid JSON; the others go on",
		         feed_name(f), nbad, page->count);
	flush_rejects(pc);
	if (r == 0 && f->env.dry_run) {
		if ((pc->ndjson.len && fwrite(pc->ndjson.data, 1, pc->ndjson.len, f->env.dry_out) !=
		                               pc->ndjson.len) ||
		    (pc->changes.len && fwrite(pc->changes.data, 1, pc->changes.len,
		                               f->env.dry_out) != pc->changes.len))
			r = -EIO;
	} else if (r == 0 && feed_tracked(f) && (r = accept_changes(pc)) < 0) {
		/* Their fingerprints stay as they were: seen again next poll. */
		log_error("%s: cannot spool %zu changed rows (%s); fetching stops until the spool "
		          "can be written (free space in %s)",
		          feed_name(f), keyset_count(pc->change_keys), strerror(-r),
		          f->env.cfg->state_dir);
		f->last.changed -= keyset_count(pc->change_keys);
	}
	/* The versions are durable (or it is a dry run): their fingerprints are
	 * taken now, whatever becomes of the page's new rows, or a full disk
	 * between the two appends would have them recorded again next poll. */
	struct key_source src = {f, pc->change_keys};
	if (r == 0 && feed_tracked(f))
		r = keyset_foreach(pc->change_keys, add_page_key, &src);
	if (r == 0 && !f->env.dry_run && (r = accept_page(pc)) < 0) {
		/* Not durable, so not accepted: these keys stay unknown and the
		 * rows are fetched again once the disk has room. */
		log_error("%s: cannot spool %zu new rows (%s); fetching stops until the spool "
		          "can be written (free space in %s)",
		          feed_name(f), keyset_count(pc->page_keys), strerror(-r),
		          f->env.cfg->state_dir);
		f->last.fresh -= keyset_count(pc->page_keys);
	}
	src.from = pc->page_keys;
	if (r == 0)
		r = keyset_foreach(pc->page_keys, add_page_key, &src);
	if (r)
		pc->stopped = true;
	return r;
}

struct coded {
	const char *code;
	const char *start; /* its date-filter window start */
};

static int by_start_then_code(const void *a, const void *b)
{
	const struct coded *x = a, *y = b;
	int c = strcmp(x->start, y->start);
	return c ? c : strcmp(x->code, y->code);
}

/* The sales poll: the calendar's codes in chunks of codes_per_request. A
 * chunk that fails (See Tickets trouble, a malformed page, paging cut short)
 * does not stop the chunks after it; a local failure (spool, memory) or a
 * refused key does. With the date filter each code has its own window start,
 * codes with the same start share chunks, and a code's checkpoint moves only
 * when its chunk was fetched completely and every row of it delivered. */
static int fetch_sales(struct feed *f, struct page_ctx *pc)
{
	const struct config *cfg = f->env.cfg;
	size_t n = 0;
	int64_t now = util_wall_s();
	const char **codes = calendar_codes(f->env.cal, cfg, now, &n);
	if (!codes)
		return -ENOMEM;
	if (n == 0) {
		size_t known = cfg->sales.n_event_codes ? 0 : calendar_count(f->env.cal);
		f->last.no_codes = true;
		if (known)
			log_warning("sales: no event code to ask for: all %zu known events started "
			            "more than %d days ago (sales.event_lookback_days)",
			            known, cfg->sales.event_lookback_days);
		else
			log_notice("sales: no event code to ask for: no event is known yet");
		free(codes);
		return 0;
	}
	bool window = cfg->sales.date_filter;
	char *path = NULL;
	struct checkpoints *cp = NULL;
	struct coded *cc = calloc(n, sizeof(*cc));
	const char **chunk = calloc(n, sizeof(*chunk));
	int r = cc && chunk ? 0 : -ENOMEM;
	if (r == 0 && window) {
		if (asprintf(&path, "%s/checkpoint-sales", cfg->state_dir) < 0)
			path = NULL;
		cp = path ? checkpoints_load(path) : NULL;
		if (!cp)
			r = -ENOMEM;
	}
	for (size_t i = 0; i < n && r == 0; i++)
		cc[i] = (struct coded){codes[i], window ? checkpoints_get(cp, codes[i]) : ""};
	if (r == 0 && window)
		qsort(cc, n, sizeof(*cc), by_start_then_code);

	char end[40], start[40];
	struct tm tm;
	time_t tt = (time_t)now;
	gmtime_r(&tt, &tm);
	strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tm);
	size_t per = cfg->sales.codes_per_request > 0 ? (size_t)cfg->sales.codes_per_request : 1;
	int first_err = 0;
	/* Most sales of a poll are in BigQuery already: skip them unread. */
	const struct st_known known = {
	        .known = row_known, .userdata = f, .leave_unread = true, .known_many = rows_known};
	for (size_t at = 0; at < n && r == 0; at += per) {
		size_t k = n - at < per ? n - at : per;
		for (size_t j = 0; j < k; j++)
			chunk[j] = cc[at + j].code;
		/* Sorted by start: the chunk's first has the earliest window. */
		snprintf(start, sizeof(start), "%s", cc[at].start);
		size_t undelivered = pc->undelivered;
		int e = st_fetch_sales(f->env.st, chunk, k, window ? start : NULL,
		                       window ? end : NULL, &known, on_page, pc);
		if (e == 0 && pc->undelivered == undelivered) {
			for (size_t j = 0; window && j < k && r == 0; j++)
				r = checkpoints_set(cp, chunk[j], now - FEED_DATE_OVERLAP_S);
			continue;
		}
		if (pc->stopped || e == -ECANCELED || e == -EKEYREJECTED || e == -ENOMEM) {
			r = e;
			break;
		}
		if (e < 0) {
			char shown[LOG_VALUE_MAX];
			log_warning(
			        "sales: the %zu event codes from %s on could not be polled (%s); "
			        "the other codes go on",
			        k, log_value(chunk[0], strlen(chunk[0]), shown), strerror(-e));
			if (!first_err)
				first_err = e;
		}
	}
	/* The windows move only once their rows are durable in the spool. */
	if (cp && !f->env.dry_run) {
		int w = checkpoints_save(cp);
		if (w < 0)
			log_warning("sales: cannot write the date-filter checkpoints: %s",
			            strerror(-w));
	}
	checkpoints_free(cp);
	free(path);
	free(chunk);
	free(cc);
	free(codes);
	return r ? r : first_err;
}

/* Close the poll's segment and track it; the first error wins. */
static int end_segment(struct feed *f, int r)
{
	int e = spool_end(f->spool);
	if (e < 0 && r == 0)
		r = e;
	size_t last = spool_count(f->spool);
	if (last > 0 && feed_track_segment(f, spool_path(f->spool, last - 1)) < 0)
		r = r ? r : -ENOMEM;
	return r;
}

/* The audit tells a row the service missed from one that came after its
 * last poll by this (feed.h). Not being able to write it costs only that. */
static void note_complete_poll(struct feed *f, int64_t started)
{
	char *path = state_path(f, FEED_LAST_POLL_PREFIX, "");
	char text[32];
	int n = snprintf(text, sizeof(text), "%" PRId64 "\n", started);
	int r = path ? util_write_file_atomic(path, text, (size_t)n, 0640) : -ENOMEM;
	if (r < 0)
		log_warning("%s: cannot record the poll in %s: %s", feed_name(f),
		            path ? path : f->env.cfg->state_dir, strerror(-r));
	free(path);
}

int feed_poll(struct feed *f, struct feed_stats *st)
{
	uint64_t start = util_now_ms();
	int64_t started = util_wall_s();
	int r;
	struct page_ctx pc = {.f = f};

	f->last = (struct feed_stats){0};
	f->dl_logged = f->dl_unlogged = 0;
	f->dl_full_said = false;
	if (f->changes)
		f->changes->last = (struct feed_stats){0};
	if (!f->env.dry_run) {
		r = feed_open_spool(f);
		if (r == 0 && f->changes)
			r = feed_open_spool(f->changes);
		if (r < 0)
			goto out;
	}

	r = f->kind == FEED_EVENTS ? st_fetch_events(f->env.st, on_page, &pc) : fetch_sales(f, &pc);
	bool complete = r == 0;
	if (pc.segment_open)
		r = end_segment(f, r);
	if (pc.changes_open)
		r = end_segment(f->changes, r);
	complete = complete && r == 0; /* and every segment closed */
	buf_free(&pc.ndjson);
	buf_free(&pc.changes);
	keyset_free(pc.change_keys);
	buf_free(&pc.dl);
	json_decref(pc.dl_rows);
	keyset_free(pc.page_keys);

	/* Whatever the fetch did, rows already spooled are sent. */
	if (!f->env.dry_run && r != -ECANCELED) {
		int d = feed_drain_all(f);
		if (d < 0 && r == 0)
			r = d;
		/* The changed versions go after the rows they change. */
		if (f->changes && d != -ECANCELED) {
			d = feed_drain_all(f->changes);
			f->last.inserted_changes = f->changes->last.inserted;
			f->last.rejected += f->changes->last.rejected;
			f->last.rows_pending |= f->changes->last.rows_pending;
			if (d < 0 && r == 0)
				r = d;
		}
	}
	if (pc.undelivered) {
		f->last.rows_pending = true;
		if (r == 0)
			r = -EIO;
	}
	if (complete && !pc.undelivered && !f->env.dry_run)
		note_complete_poll(f, started);
	if (f->dl_unlogged)
		log_warning("%s: %zu more rows dead-lettered in this poll (see rejected-%s.ndjson)",
		            feed_name(f), f->dl_unlogged, feed_name(f));
out:
	f->last.error = r;
	f->last.duration_ms = util_now_ms() - start;
	if (st)
		*st = f->last;
	return r;
}

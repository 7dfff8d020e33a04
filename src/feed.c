/* feed.c - one feed's cycle: fetch -> coerce -> drop known keys -> spool -> insert -> commit.
 *
 * The key set holds every key that is in BigQuery or safely in the spool. A
 * key joins it only after the row is fsynced in a spool segment, so a row
 * that could not be spooled is fetched again next time rather than lost.
 * Segments are drained oldest first; within this process each segment keeps
 * a bitmap of lines confirmed, so a partly confirmed batch is never sent
 * twice. After a restart the key set is seeded from BigQuery first, then
 * every leftover segment is scanned before anything is sent: lines whose
 * key BigQuery already holds are marked done, the rest join the key set and
 * are sent. */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "feed.h"
#include "keyset.h"
#include "log.h"
#include "spool.h"
#include "util.h"

/* Rows parsed and handed to bq_insert at once. A parsed row costs ~8 KiB of
 * jansson objects, so the chunk bounds the drain's memory: a few streaming
 * requests' worth, or one load job's worth (load jobs are few and large:
 * 1,500 per table per day). */
#define FEED_DRAIN_STREAM_ROWS 2000
#define FEED_DRAIN_LOAD_ROWS   8000
#define FEED_DRAIN_CHUNK_BYTES (4u << 20)
#define FEED_IDENTITY_PREFIX   "\x01sha256:" /* cannot clash with a key: keys have no control chars */
#define FEED_DATE_FIRST_START  "2000-01-01T00:00:00Z"

struct event_ref {
	char *id;
	int64_t starts;
	bool starts_known;
};

struct segstate {
	char *path;
	unsigned char *done; /* per line number (1-based) */
	size_t cap;
};

struct feed {
	enum feed_kind kind;
	const struct schema *schema;
	struct feed_env env;
	struct keyset *seen;     /* in BigQuery or spooled */
	struct keyset *rejected; /* identities of dead-lettered rows */
	struct spool *spool;
	struct segstate *segs;
	size_t nsegs;
	struct event_ref *events; /* events feed: ids and start times, for sales codes */
	size_t nevents, capevents;
	const struct feed *events_src;
	struct feed_stats last;
	uint64_t seed_last_progress;
};

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
	return f->spool ? spool_count(f->spool) : 0;
}

const struct feed_stats *feed_last(const struct feed *f)
{
	return &f->last;
}

static const char *table_of(const struct feed *f)
{
	return f->kind == FEED_SALES ? f->env.cfg->sales.feed.table : f->env.cfg->events.feed.table;
}

/* "\x01sha256:<hex>" of the canonical JSON of a row: how a dead-lettered row
 * is recognised when it comes back, even without a key. A corrected row
 * hashes differently and is processed again. */
static int row_identity(const json_t *row, char out[80])
{
	char *s = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!s)
		return -ENOMEM;
	int ok = EVP_Digest(s, strlen(s), md, &mdlen, EVP_sha256(), NULL);
	free(s);
	if (!ok)
		return -EIO;
	size_t p = (size_t)snprintf(out, 80, "%s", FEED_IDENTITY_PREFIX);
	for (unsigned int i = 0; i < mdlen && p + 2 < 80; i++)
		p += (size_t)snprintf(out + p, 80 - p, "%02x", md[i]);
	return 0;
}

static bool is_rejected(const struct feed *f, const json_t *row)
{
	char id[80];
	if (keyset_count(f->rejected) == 0 || row_identity(row, id) < 0)
		return false;
	return keyset_has(f->rejected, id, strlen(id));
}

static void remember_rejected(struct feed *f, const json_t *row)
{
	char id[80];
	if (row_identity(row, id) == 0)
		(void)keyset_add(f->rejected, id, strlen(id));
}

/* STATE_DIR/<prefix><feed><suffix>, e.g. "rejected-" "sales" ".ndjson". */
static char *state_path(const struct feed *f, const char *prefix, const char *suffix)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s%s%s", f->env.cfg->state_dir, prefix, feed_name(f), suffix) < 0)
		return NULL;
	return p;
}

/* Append one dead letter {"row","reason","time","stage"} and fsync it: the
 * row leaves the pipeline only once its dead letter is durable. */
static int dead_letter(struct feed *f, const json_t *row, const char *reason, const char *stage)
{
	/* The key as the API sent it (string or number): the one thing about a
	 * rejected row that may be logged. */
	char keybuf[64];
	const char *key = NULL;
	const json_t *k = json_is_object(row) ? json_object_get(row, f->schema->key) : NULL;
	if (json_is_string(k))
		key = json_string_value(k);
	else if (json_is_integer(k) && snprintf(keybuf, sizeof(keybuf), "%" JSON_INTEGER_FORMAT,
	                                        json_integer_value(k)) > 0)
		key = keybuf;
	/* The key only: the rest of a sale is personal data. */
	log_warning("%s: row %s%s dead-lettered at %s stage: %s", feed_name(f),
	            key ? "with key " : "without a key", key ? key : "", stage, reason);
	if (f->env.dry_run)
		return 0;

	char when[32];
	util_utc_now(when);
	json_t *o = json_pack("{s:O,s:s,s:s,s:s}", "row", row, "reason", reason, "time", when,
	                      "stage", stage);
	char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	char *path = state_path(f, "rejected-", ".ndjson");
	int r = -ENOMEM;
	if (line && path) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (fd < 0) {
			r = -errno;
		} else {
			size_t len = strlen(line);
			line[len] = '\n';
			r = util_write_all(fd, line, len + 1);
			if (r == 0 && fsync(fd) < 0)
				r = -errno;
			close(fd);
		}
		if (r < 0)
			log_error("%s: cannot write dead letter to %s: %s", feed_name(f), path,
			          strerror(-r));
	}
	free(line);
	free(path);
	return r;
}

static int events_add(struct feed *f, const char *id, const char *starts)
{
	if (f->nevents == f->capevents) {
		size_t cap = f->capevents ? f->capevents * 2 : 64;
		struct event_ref *n = realloc(f->events, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		f->events = n;
		f->capevents = cap;
	}
	struct event_ref *e = &f->events[f->nevents];
	e->id = strdup(id);
	if (!e->id)
		return -ENOMEM;
	e->starts_known = starts && schema_parse_time(starts, &e->starts) == 0;
	f->nevents++;
	return 0;
}

/* ---- life cycle -------------------------------------------------------- */

struct feed *feed_new(enum feed_kind kind, const struct feed_env *env)
{
	struct feed *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->kind = kind;
	f->schema = kind == FEED_SALES ? &schema_sales : &schema_events;
	f->env = *env;
	f->seen = keyset_new(0);
	f->rejected = keyset_new(0);
	if (!f->seen || !f->rejected) {
		feed_free(f);
		return NULL;
	}
	return f;
}

static void segstate_drop(struct feed *f, size_t i)
{
	free(f->segs[i].path);
	free(f->segs[i].done);
	memmove(&f->segs[i], &f->segs[i + 1], (f->nsegs - i - 1) * sizeof(*f->segs));
	f->nsegs--;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	while (f->nsegs)
		segstate_drop(f, f->nsegs - 1);
	free(f->segs);
	for (size_t i = 0; i < f->nevents; i++)
		free(f->events[i].id);
	free(f->events);
	spool_free(f->spool);
	keyset_free(f->seen);
	keyset_free(f->rejected);
	free(f);
}

void feed_set_env(struct feed *f, const struct feed_env *env)
{
	f->env = *env;
}

void feed_set_events_source(struct feed *sales, const struct feed *events)
{
	sales->events_src = events;
}

/* ---- seeding ----------------------------------------------------------- */

static void seed_progress(size_t rows, void *ud)
{
	struct feed *f = ud;
	uint64_t now = util_now_ms();
	if (now - f->seed_last_progress < FEED_SEED_PROGRESS_MS)
		return;
	f->seed_last_progress = now;
	log_info("%s: seeding, %zu keys of table %s loaded so far", feed_name(f), rows,
	         table_of(f));
	if (f->env.loop) {
		loop_notify_status(f->env.loop, "seeding %s: %zu keys loaded", table_of(f), rows);
		loop_notify_extend_timeout(f->env.loop, FEED_SEED_EXTEND_USEC);
		loop_poll_signals(f->env.loop);
	}
}

static int seed_row(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct feed *f = ud;
	if (n < 1 || !v[0] || lens[0] == 0)
		return 0;
	int r = keyset_add(f->seen, v[0], lens[0]);
	if (r == -EINVAL) /* a key we could never have written; nothing to compare with */
		return 0;
	if (r < 0)
		return r;
	if (r == 1 && f->kind == FEED_EVENTS)
		return events_add(f, v[0], n > 1 ? v[1] : NULL);
	return 0;
}

static int load_rejected(struct feed *f)
{
	char *path = state_path(f, "rejected-", ".ndjson");
	if (!path)
		return -ENOMEM;
	FILE *in = fopen(path, "re");
	free(path);
	if (!in)
		return errno == ENOENT ? 0 : -errno;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, in)) > 0) {
		json_t *o = json_loadb(line, (size_t)n, 0, NULL);
		const json_t *row = json_object_get(o, "row");
		if (row)
			remember_rejected(f, row);
		json_decref(o);
	}
	free(line);
	fclose(in);
	return 0;
}

int feed_seed(struct feed *f)
{
	char *sql = NULL;
	const struct config *c = f->env.cfg;
	int r;
	if (f->kind == FEED_SALES)
		r = asprintf(&sql, "SELECT uniqueCode FROM `%s.%s.%s` WHERE uniqueCode IS NOT NULL",
		             c->bigquery.project, c->bigquery.dataset, table_of(f));
	else
		r = asprintf(&sql, "SELECT id, starts FROM `%s.%s.%s` WHERE id IS NOT NULL",
		             c->bigquery.project, c->bigquery.dataset, table_of(f));
	if (r < 0)
		return -ENOMEM;
	uint64_t start = util_now_ms();
	f->seed_last_progress = start;
	log_info("%s: seeding known keys from table %s", feed_name(f), table_of(f));
	r = bq_query(f->env.bq, sql, seed_row, f, seed_progress);
	free(sql);
	if (r < 0) {
		log_error("%s: seeding from table %s failed: %s", feed_name(f), table_of(f),
		          strerror(-r));
		return r;
	}
	r = load_rejected(f);
	if (r < 0)
		log_warning("%s: cannot read earlier dead letters: %s", feed_name(f), strerror(-r));
	log_info("%s: %zu keys known in table %s (seeded in %" PRIu64 " ms)", feed_name(f),
	         keyset_count(f->seen), table_of(f), util_now_ms() - start);
	return 0;
}

/* ---- draining the spool ------------------------------------------------ */

static struct segstate *segstate_get(struct feed *f, const char *path)
{
	for (size_t i = 0; i < f->nsegs; i++)
		if (strcmp(f->segs[i].path, path) == 0)
			return &f->segs[i];
	struct segstate *n = realloc(f->segs, (f->nsegs + 1) * sizeof(*n));
	if (!n)
		return NULL;
	f->segs = n;
	struct segstate *s = &f->segs[f->nsegs];
	*s = (struct segstate){.path = strdup(path)};
	if (!s->path)
		return NULL;
	f->nsegs++;
	return s;
}

static int segstate_mark(struct segstate *s, size_t lineno)
{
	if (lineno >= s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		while (cap <= lineno)
			cap *= 2;
		unsigned char *d = realloc(s->done, cap);
		if (!d)
			return -ENOMEM;
		memset(d + s->cap, 0, cap - s->cap);
		s->done = d;
		s->cap = cap;
	}
	s->done[lineno] = 1;
	return 0;
}

static bool segstate_done(const struct segstate *s, size_t lineno)
{
	return lineno < s->cap && s->done[lineno];
}

struct drain {
	struct feed *f;
	struct segstate *seg;
	json_t **rows;
	const char **keys;
	size_t *linenos;
	size_t n, cap, bytes;
	size_t pending; /* lines visited and still unconfirmed */
	bool scan_only; /* start-up scan: decide and count, send nothing */
};

static int drain_flush(struct drain *d)
{
	struct feed *f = d->f;
	if (d->n == 0)
		return 0;
	struct bq_row_status *st = calloc(d->n, sizeof(*st));
	if (!st)
		return -ENOMEM;
	int r = bq_insert(f->env.bq, table_of(f), d->rows, d->keys, d->n, st);
	for (size_t i = 0; i < d->n; i++) {
		switch (st[i].state) {
		case BQ_ROW_DONE:
			f->last.inserted++;
			(void)segstate_mark(d->seg, d->linenos[i]);
			break;
		case BQ_ROW_INVALID:
			if (dead_letter(f, d->rows[i], st[i].reason, "bigquery") == 0) {
				f->last.rejected++;
				remember_rejected(f, d->rows[i]);
				(void)segstate_mark(d->seg, d->linenos[i]);
			} else {
				d->pending++;
			}
			break;
		case BQ_ROW_PENDING:
			d->pending++;
			break;
		}
		json_decref(d->rows[i]);
	}
	free(st);
	d->n = 0;
	d->bytes = 0;
	return r;
}

static int drain_line(const char *line, size_t len, size_t lineno, void *ud)
{
	struct drain *d = ud;
	struct feed *f = d->f;
	if (segstate_done(d->seg, lineno))
		return 0;
	json_error_t jerr;
	json_t *row = json_loadb(line, len, 0, &jerr);
	const char *key = row ? schema_row_key(f->schema, row) : NULL;
	if (!key) {
		/* Only a damaged disk could produce this: keep the bytes for a human. */
		json_t *raw = json_stringn(line, len);
		int r = dead_letter(f, raw, "unreadable spool line", "spool");
		json_decref(raw);
		json_decref(row);
		if (r == 0)
			(void)segstate_mark(d->seg, lineno);
		else
			d->pending++; /* the segment stays until its dead letter is written */
		return 0;
	}
	if (d->scan_only) {
		/* Leftover from an earlier run: BigQuery's keys were seeded, so
		 * a key already known has landed (or appeared in an earlier
		 * segment) and must not be sent again; any other row is now
		 * pending in the key set and goes with the next drain. */
		int r = keyset_add(f->seen, key, strlen(key));
		json_decref(row);
		if (r == 0 || r == -EINVAL)
			return segstate_mark(d->seg, lineno);
		if (r < 0)
			return r;
		d->pending++;
		return 0;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		json_t **rows = realloc(d->rows, cap * sizeof(*rows));
		if (rows)
			d->rows = rows;
		const char **keys = rows ? realloc(d->keys, cap * sizeof(*keys)) : NULL;
		if (keys)
			d->keys = keys;
		size_t *ln = keys ? realloc(d->linenos, cap * sizeof(*ln)) : NULL;
		if (!ln) {
			json_decref(row);
			return -ENOMEM;
		}
		d->linenos = ln;
		d->cap = cap;
	}
	d->rows[d->n] = row;
	d->keys[d->n] = key;
	d->linenos[d->n] = lineno;
	d->n++;
	d->bytes += len;
	size_t chunk = f->env.cfg->bigquery.insert_method == CONFIG_INSERT_LOAD
	                       ? FEED_DRAIN_LOAD_ROWS
	                       : FEED_DRAIN_STREAM_ROWS;
	if (d->n >= chunk || d->bytes >= FEED_DRAIN_CHUNK_BYTES) {
		int r = drain_flush(d);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Scan one leftover segment: mark lines already in BigQuery, add the rest to
 * the key set. Sends nothing. */
static int scan_segment(struct feed *f, size_t i)
{
	struct segstate *s = segstate_get(f, spool_path(f->spool, i));
	if (!s)
		return -ENOMEM;
	struct drain d = {.f = f, .seg = s, .scan_only = true};
	int r = spool_foreach(f->spool, i, drain_line, &d);
	if (d.pending)
		log_info("%s: %zu spooled rows from an earlier run still to send (%s)",
		         feed_name(f), d.pending, spool_path(f->spool, i));
	return r;
}

/* Send the unconfirmed lines of segment i; retire it when none is left. */
static int drain_segment(struct feed *f, size_t i)
{
	struct segstate *s = segstate_get(f, spool_path(f->spool, i));
	if (!s)
		return -ENOMEM;
	struct drain d = {.f = f, .seg = s};
	int r = spool_foreach(f->spool, i, drain_line, &d);
	if (r == 0)
		r = drain_flush(&d);
	else
		(void)drain_flush(&d); /* confirmations already received still count */
	free(d.rows);
	free(d.keys);
	free(d.linenos);
	if (r < 0)
		return r;
	if (d.pending)
		return -EAGAIN;
	for (size_t k = 0; k < f->nsegs; k++)
		if (&f->segs[k] == s) {
			segstate_drop(f, k);
			break;
		}
	return spool_retire(f->spool, i);
}

static int drain_all(struct feed *f)
{
	while (spool_count(f->spool) > 0) {
		int r = drain_segment(f, 0);
		if (r < 0) {
			f->last.rows_pending = true;
			return r;
		}
	}
	f->last.rows_pending = false;
	return 0;
}

/* Open the spool once and scan what an earlier run left in it. Every
 * leftover segment is scanned before anything is sent, so a key pending in
 * a later segment is known before the next fetch. */
static int open_spool(struct feed *f)
{
	if (f->spool)
		return 0;
	int r = spool_open(f->env.cfg->state_dir, feed_name(f), &f->spool);
	if (r < 0) {
		log_error("%s: cannot open the spool in %s: %s", feed_name(f),
		          f->env.cfg->state_dir, strerror(-r));
		return r;
	}
	for (size_t i = 0; i < spool_count(f->spool); i++) {
		r = scan_segment(f, i);
		if (r < 0) {
			log_error("%s: cannot read spool segment %s: %s", feed_name(f),
			          spool_path(f->spool, i), strerror(-r));
			spool_free(f->spool);
			f->spool = NULL;
			while (f->nsegs)
				segstate_drop(f, f->nsegs - 1);
			return r;
		}
	}
	return 0;
}

int feed_replay(struct feed *f)
{
	if (f->env.dry_run)
		return 0;
	int r = open_spool(f);
	if (r < 0)
		return r;
	if (spool_count(f->spool) == 0)
		return 0;
	r = drain_all(f);
	if (r < 0 && r != -ECANCELED)
		log_warning("%s: spooled rows could not all be sent yet (%s); they stay spooled",
		            feed_name(f), strerror(-r));
	return r;
}

/* ---- fetching ---------------------------------------------------------- */

struct page_ctx {
	struct feed *f;
	struct buf ndjson;
	struct keyset *page_keys; /* keys accepted from this page, not yet durable */
	bool segment_open;
	bool undelivered; /* a rejected row whose dead letter could not be written */
};

static int accept_page(struct page_ctx *pc)
{
	struct feed *f = pc->f;
	if (pc->ndjson.len == 0)
		return 0;
	if (!pc->segment_open) {
		int r = spool_begin(f->spool);
		if (r < 0)
			return r;
		pc->segment_open = true;
	}
	int r = spool_append(f->spool, pc->ndjson.data, pc->ndjson.len);
	if (r < 0)
		return r;
	return 0;
}

static int add_page_key(const char *key, size_t len, void *ud)
{
	struct feed *f = ud;
	return keyset_add(f->seen, key, len) < 0 ? -ENOMEM : 0;
}

static int on_page(json_t *rows, void *ud)
{
	struct page_ctx *pc = ud;
	struct feed *f = pc->f;
	size_t i;
	json_t *api;
	char why[200];

	if (!json_is_array(rows))
		return -EBADMSG;
	buf_reset(&pc->ndjson);
	keyset_free(pc->page_keys);
	pc->page_keys = keyset_new(json_array_size(rows));
	if (!pc->page_keys)
		return -ENOMEM;

	json_array_foreach(rows, i, api)
	{
		json_t *bq = NULL;
		f->last.fetched++;
		if (is_rejected(f, api))
			continue;
		int c = schema_coerce(f->schema, api, &bq, why, sizeof(why));
		if (c == -ENOMEM)
			return c;
		if (c < 0) {
			if (dead_letter(f, api, why, "coerce") == 0) {
				f->last.rejected++;
				remember_rejected(f, api);
			} else {
				/* Neither sent nor dead-lettered: it comes again
				 * with the next fetch, but this poll did not
				 * handle every row. */
				pc->undelivered = true;
			}
			continue;
		}
		const char *key = schema_row_key(f->schema, bq);
		size_t klen = strlen(key);
		if (keyset_has(f->seen, key, klen) || keyset_has(pc->page_keys, key, klen) ||
		    is_rejected(f, bq)) {
			json_decref(bq);
			continue;
		}
		char *line = json_dumps(bq, JSON_COMPACT);
		if (!line || keyset_add(pc->page_keys, key, klen) < 0 ||
		    buf_append(&pc->ndjson, line, strlen(line)) < 0 ||
		    buf_append(&pc->ndjson, "\n", 1) < 0) {
			free(line);
			json_decref(bq);
			return -ENOMEM;
		}
		free(line);
		f->last.fresh++;
		if (f->kind == FEED_EVENTS) {
			const json_t *starts = json_object_get(bq, "starts");
			if (events_add(f, key, json_string_value(starts)) < 0) {
				json_decref(bq);
				return -ENOMEM;
			}
		}
		json_decref(bq);
	}

	if (f->env.dry_run) {
		if (pc->ndjson.len &&
		    fwrite(pc->ndjson.data, 1, pc->ndjson.len, f->env.dry_out) != pc->ndjson.len)
			return -EIO;
	} else {
		int r = accept_page(pc);
		if (r < 0) {
			/* Not durable, so not accepted: these keys stay unknown and
			 * the rows are fetched again once the disk has room. */
			log_error("%s: cannot spool %zu new rows (%s); fetching stops until the "
			          "spool can be written (free space in %s)",
			          feed_name(f), keyset_count(pc->page_keys), strerror(-r),
			          f->env.cfg->state_dir);
			f->last.fresh -= keyset_count(pc->page_keys);
			return r;
		}
	}
	return keyset_foreach(pc->page_keys, add_page_key, f);
}

const char **feed_event_codes(const struct feed *events, const struct config *cfg, size_t *n)
{
	const char **codes;
	*n = 0;
	if (cfg->sales.n_event_codes > 0) {
		codes = calloc(cfg->sales.n_event_codes + 1, sizeof(*codes));
		if (!codes)
			return NULL;
		for (size_t i = 0; i < cfg->sales.n_event_codes; i++)
			codes[(*n)++] = cfg->sales.event_codes[i];
		return codes;
	}
	size_t total = events ? events->nevents : 0;
	codes = calloc(total + 1, sizeof(*codes));
	if (!codes)
		return NULL;
	/* An event whose rows could not be spooled is recorded again when it
	 * is fetched again: ask for each code once. */
	struct keyset *once = keyset_new(total);
	if (!once) {
		free(codes);
		return NULL;
	}
	int64_t cutoff = util_wall_s() - (int64_t)cfg->sales.event_lookback_days * 86400;
	for (size_t i = 0; i < total; i++) {
		const struct event_ref *e = &events->events[i];
		/* An unknown or unparseable start keeps the event: never drop silently. */
		if ((!e->starts_known || e->starts >= cutoff) &&
		    keyset_add(once, e->id, strlen(e->id)) == 1)
			codes[(*n)++] = e->id;
	}
	keyset_free(once);
	return codes;
}

static int read_checkpoint(struct feed *f, char *out, size_t len)
{
	char *path = state_path(f, "checkpoint-", "");
	char *data = NULL;
	int r = path ? util_read_file(path, 128, &data, NULL) : -ENOMEM;
	free(path);
	if (r == 0) {
		data[strcspn(data, "\r\n")] = '\0';
		int64_t t;
		if (schema_parse_time(data, &t) == 0)
			snprintf(out, len, "%s", data);
		else
			r = -EINVAL;
		free(data);
	}
	if (r < 0)
		snprintf(out, len, "%s", FEED_DATE_FIRST_START);
	return 0;
}

static int write_checkpoint(struct feed *f, int64_t t)
{
	char buf[40];
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ\n", &tm);
	char *path = state_path(f, "checkpoint-", "");
	int r = path ? util_write_file_atomic(path, buf, n, 0640) : -ENOMEM;
	free(path);
	return r;
}

static int fetch(struct feed *f, struct page_ctx *pc)
{
	if (f->kind == FEED_EVENTS)
		return st_fetch_events(f->env.st, on_page, pc);

	size_t n = 0;
	const char **codes = feed_event_codes(f->events_src, f->env.cfg, &n);
	if (!codes)
		return -ENOMEM;
	if (n == 0) {
		log_notice(
		        "sales: no event codes to ask for (no known event started within %d days)",
		        f->env.cfg->sales.event_lookback_days);
		free(codes);
		return 0;
	}
	char start[40], end[40];
	int64_t now = util_wall_s();
	bool window = f->env.cfg->sales.date_filter;
	if (window) {
		struct tm tm;
		time_t tt = (time_t)now;
		read_checkpoint(f, start, sizeof(start));
		gmtime_r(&tt, &tm);
		strftime(end, sizeof(end), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	int r = st_fetch_sales(f->env.st, codes, n, (size_t)f->env.cfg->sales.codes_per_request,
	                       window ? start : NULL, window ? end : NULL, on_page, pc);
	free(codes);
	/* The window moves only once its rows are durable in the spool. */
	if (r == 0 && window && !f->env.dry_run) {
		int w = write_checkpoint(f, now - FEED_DATE_OVERLAP_S);
		if (w < 0)
			log_warning("sales: cannot write the date-filter checkpoint: %s",
			            strerror(-w));
	}
	return r;
}

int feed_poll(struct feed *f, struct feed_stats *st)
{
	uint64_t start = util_now_ms();
	int r;
	struct page_ctx pc = {.f = f};

	f->last = (struct feed_stats){0};
	if (!f->env.dry_run) {
		r = open_spool(f);
		if (r < 0)
			goto out;
	}

	r = fetch(f, &pc);
	if (pc.segment_open) {
		int e = spool_end(f->spool);
		if (e < 0 && r == 0)
			r = e;
		/* Rows spooled in this process: every line starts unconfirmed. */
		size_t last = spool_count(f->spool);
		if (last > 0 && !segstate_get(f, spool_path(f->spool, last - 1)))
			r = r ? r : -ENOMEM;
	}
	buf_free(&pc.ndjson);
	keyset_free(pc.page_keys);

	/* Whatever the fetch did, rows already spooled are sent. */
	if (!f->env.dry_run && r != -ECANCELED) {
		int d = drain_all(f);
		if (d < 0 && r == 0)
			r = d;
	}
	if (pc.undelivered) {
		f->last.rows_pending = true;
		if (r == 0)
			r = -EIO;
	}
out:
	f->last.error = r;
	f->last.duration_ms = util_now_ms() - start;
	if (st)
		*st = f->last;
	return r;
}

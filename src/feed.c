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
	return f->spool ? spool_count(f->spool) : 0;
}

const struct feed_stats *feed_last(const struct feed *f)
{
	return &f->last;
}

const char *feed_table(const struct feed *f)
{
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
	char *s = json_dumps(row, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
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

struct feed *feed_new(enum feed_kind kind, const struct feed_env *env)
{
	struct feed *f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->kind = kind;
	f->schema = kind == FEED_SALES ? &schema_sales : &schema_events;
	f->env = *env;
	f->seen = keyset_new(0);
	f->released = keyset_new(0);
	f->rejected = keyset_new(0);
	f->rejected_keys = keyset_new(0);
	if (!f->seen || !f->released || !f->rejected || !f->rejected_keys) {
		feed_free(f);
		return NULL;
	}
	return f;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	feed_segs_clear(f);
	spool_free(f->spool);
	keyset_free(f->seen);
	keyset_free(f->released);
	keyset_free(f->rejected);
	keyset_free(f->rejected_keys);
	free(f);
}

void feed_set_env(struct feed *f, const struct feed_env *env)
{
	f->env = *env;
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
	int r = keyset_add(f->seen, v[0], lens[0]);
	if (r == -EINVAL) /* a key we could never have written; nothing to compare with */
		return 0;
	if (r < 0)
		return r;
	if (f->kind == FEED_EVENTS && f->env.cal &&
	    calendar_note(f->env.cal, v[0], n > 1 ? v[1] : NULL) == -ENOMEM)
		return -ENOMEM;
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
			feed_remember_rejected(f, row);
		/* A rejected event still exists at the source: its sales are wanted. */
		char buf[32];
		const char *id = f->kind == FEED_EVENTS ? api_key_text(f, row, buf) : NULL;
		if (id && f->env.cal)
			(void)calendar_note(f->env.cal, id,
			                    json_string_value(json_object_get(row, "starts")));
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
		             c->bigquery.project, c->bigquery.dataset, feed_table(f));
	else
		r = asprintf(&sql, "SELECT id, starts FROM `%s.%s.%s` WHERE id IS NOT NULL",
		             c->bigquery.project, c->bigquery.dataset, feed_table(f));
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
	log_info("%s: %zu keys known in table %s (seeded in %" PRIu64 " ms)", feed_name(f),
	         keyset_count(f->seen), feed_table(f), util_now_ms() - start);
	return 0;
}

int feed_replay(struct feed *f)
{
	if (f->env.dry_run)
		return 0;
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
	struct keyset *page_keys; /* keys accepted from this page, not yet durable */
	bool segment_open;
	size_t undelivered; /* rejected rows whose dead letter could not be written */
	bool stopped;       /* on_page failed: a local failure (disk, memory) ends the poll */
	struct buf dl;      /* this page's dead letters, written at once */
	json_t *dl_rows;    /* ... and their rows, remembered once written */
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
	return spool_append(f->spool, pc->ndjson.data, pc->ndjson.len);
}

static int add_page_key(const char *key, size_t len, void *ud)
{
	struct feed *f = ud;
	if (keyset_add(f->seen, key, len) < 0)
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
	if (r < 0 || feed_key_known(f, key, klen) || keyset_has(pc->page_keys, key, klen) ||
	    feed_is_rejected(f, bq)) {
		json_decref(bq);
		return r;
	}
	char *line = json_dumps(bq, JSON_COMPACT);
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
	return feed_key_known(ud, key, len);
}

/* The same for a page's keys at once: the key set's reads overlap. */
static void rows_known(const struct st_span *keys, size_t n, bool *out, void *ud)
{
	struct feed *f = ud;
	struct keyset_key k[FEED_LOOKUP_GROUP];
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
	keyset_free(pc->page_keys);
	pc->page_keys = keyset_new(json_array_size(page->rows) + page->nunread);
	if (!pc->page_keys)
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
		if (pc->ndjson.len &&
		    fwrite(pc->ndjson.data, 1, pc->ndjson.len, f->env.dry_out) != pc->ndjson.len)
			r = -EIO;
	} else if (r == 0 && (r = accept_page(pc)) < 0) {
		/* Not durable, so not accepted: these keys stay unknown and the
		 * rows are fetched again once the disk has room. */
		log_error("%s: cannot spool %zu new rows (%s); fetching stops until the spool "
		          "can be written (free space in %s)",
		          feed_name(f), keyset_count(pc->page_keys), strerror(-r),
		          f->env.cfg->state_dir);
		f->last.fresh -= keyset_count(pc->page_keys);
	}
	if (r == 0)
		r = keyset_foreach(pc->page_keys, add_page_key, f);
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

int feed_poll(struct feed *f, struct feed_stats *st)
{
	uint64_t start = util_now_ms();
	int r;
	struct page_ctx pc = {.f = f};

	f->last = (struct feed_stats){0};
	f->dl_logged = f->dl_unlogged = 0;
	f->dl_full_said = false;
	if (!f->env.dry_run) {
		r = feed_open_spool(f);
		if (r < 0)
			goto out;
	}

	r = f->kind == FEED_EVENTS ? st_fetch_events(f->env.st, on_page, &pc) : fetch_sales(f, &pc);
	if (pc.segment_open) {
		int e = spool_end(f->spool);
		if (e < 0 && r == 0)
			r = e;
		size_t last = spool_count(f->spool);
		if (last > 0 && feed_track_segment(f, spool_path(f->spool, last - 1)) < 0)
			r = r ? r : -ENOMEM;
	}
	buf_free(&pc.ndjson);
	buf_free(&pc.dl);
	json_decref(pc.dl_rows);
	keyset_free(pc.page_keys);

	/* Whatever the fetch did, rows already spooled are sent. */
	if (!f->env.dry_run && r != -ECANCELED) {
		int d = feed_drain_all(f);
		if (d < 0 && r == 0)
			r = d;
	}
	if (pc.undelivered) {
		f->last.rows_pending = true;
		if (r == 0)
			r = -EIO;
	}
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

/* audit.c - seetickets-bq --audit: compare the source with BigQuery.
 *
 * Per feed, in this order: the start of the service's last complete poll
 * (T, from STATE_DIR/last-poll-FEED), the source as a poll reads it (at A),
 * the service's spool, its dead letters, then BigQuery. A row the service
 * moves from its spool to BigQuery or to the dead letters while the audit
 * runs is therefore seen in one of the places the audit looks later, and a
 * row it spooled before T's poll ended is in one of them.
 *
 * A source row in none of them is *missing* only when a poll must have
 * served it: its sale is dated more than AUDIT_DATE_MARGIN before T, or a
 * complete poll started after A (--wait waits for one). Otherwise it may
 * simply have come after the last poll: *not yet polled*, which is no
 * failure. A changed version (track_changes) has no date, so only a poll
 * after A can make it *stale*. The audit writes nothing and takes no lock:
 * it may run beside the service. */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "jscan.h"
#include "keyset.h"
#include "log.h"
#include "spool.h"
#include "util.h"

enum audit_class {
	C_MISSING,
	C_DUPLICATED,
	C_STALE,
	C_PENDING,
	C_REJECTED,
	C_NOT_YET_POLLED,
	C_OUTSIDE,
	C_COUNT,
};

static const struct {
	const char *json, *human;
	bool failure;
} class_names[C_COUNT] = {
        [C_MISSING] = {"missing", "missing", true},
        [C_DUPLICATED] = {"duplicated", "duplicated", true},
        [C_STALE] = {"stale", "stale", true},
        [C_PENDING] = {"pending", "pending (spooled)", false},
        [C_REJECTED] = {"rejected", "rejected (dead letters)", false},
        [C_NOT_YET_POLLED] = {"not_yet_polled", "not yet polled", false},
        [C_OUTSIDE] = {"outside_source_window", "outside the source window", false},
};

/* A class: how many, and the AUDIT_EXAMPLES smallest keys (deterministic). */
struct finding {
	size_t count;
	char *ex[AUDIT_EXAMPLES];
	size_t nex;
};

struct side {
	struct audit *a;
	enum feed_kind kind;
	const char *name; /* "sales", "events" */
	const char *table;
	const char *key; /* key column */
	bool tracked, audited;
	struct feed_sink sink;
	/* the source */
	struct keyset *src_fp;      /* key -> fingerprint of its coerced row */
	struct keyset *src_date;    /* sales: key -> sale date (Unix s), absent/0 when unknown */
	size_t src_unloadable;      /* source rows that cannot be coerced */
	int64_t last_poll, read_at; /* T and A above; 0 = no poll recorded */
	/* the service and BigQuery */
	struct keyset *spooled, *spooled_versions; /* keys; "key\x1ffingerprint" */
	struct keyset *rejected, *rejected_versions;
	struct keyset *bq_count; /* key -> rows with it in the base table */
	struct keyset *current;  /* tracked: key -> fingerprint in TABLE_current */
	struct finding cls[C_COUNT];
	int error;
};

struct audit {
	const struct config *cfg;
	struct bq *bq;
	struct loop *loop;
	struct calendar *cal;
	struct audit_options o;
	struct side side[2]; /* events, sales */
};

/* ---- findings ------------------------------------------------------------- */

static void finding_clear(struct finding *f)
{
	for (size_t i = 0; i < f->nex; i++)
		free(f->ex[i]);
	*f = (struct finding){0};
}

static int finding_add(struct finding *f, const char *key, size_t len)
{
	f->count++;
	char *k = strndup(key, len);
	if (!k)
		return -ENOMEM;
	size_t at = f->nex;
	while (at > 0 && strcmp(k, f->ex[at - 1]) < 0)
		at--;
	if (at == AUDIT_EXAMPLES) {
		free(k);
		return 0;
	}
	if (f->nex == AUDIT_EXAMPLES)
		free(f->ex[--f->nex]);
	memmove(&f->ex[at + 1], &f->ex[at], (f->nex - at) * sizeof(*f->ex));
	f->ex[at] = k;
	f->nex++;
	return 0;
}

/* ---- the source ----------------------------------------------------------- */

static int source_row(const char *key, size_t klen, const char *line, size_t len, void *ud)
{
	struct side *s = ud;
	int r = keyset_put(s->src_fp, key, klen, schema_fingerprint(line, len));
	if (r < 0)
		return r == -ENOMEM ? r : 0; /* a key no table can hold is no source row */
	const char *d;
	size_t dlen;
	char buf[64];
	int64_t when;
	if (s->kind == FEED_SALES && jscan_plain_member(line, len, "date", &d, &dlen) &&
	    dlen < sizeof(buf)) {
		memcpy(buf, d, dlen);
		buf[dlen] = '\0';
		if (schema_parse_time(buf, &when) == 0 && when > 0 &&
		    keyset_put(s->src_date, key, klen, (uint64_t)when) == -ENOMEM)
			return -ENOMEM;
	}
	return 0;
}

static int64_t read_last_poll(const struct audit *a, const struct side *s)
{
	char *path = NULL, *text = NULL;
	size_t len;
	int64_t t = 0;
	if (asprintf(&path, "%s/" FEED_LAST_POLL_PREFIX "%s", a->cfg->state_dir, s->name) < 0)
		return 0;
	if (util_read_file(path, 64, &text, &len) == 0)
		t = strtoll(text, NULL, 10);
	free(text);
	free(path);
	return t > 0 ? t : 0;
}

/* ---- the service's state (read only) ------------------------------------- */

struct reading {
	struct side *s;
	struct keyset *keys;     /* row keys */
	struct keyset *versions; /* "key\x1ffingerprint" */
};

/* "key\x1f<fingerprint>": how a version is named in the version sets. 0 when
 * it cannot be (no fingerprint, or too long for a key set). */
static size_t version_name(const char *key, size_t klen, uint64_t fp,
                           char out[KEYSET_MAX_KEY_LEN + 1])
{
	if (!fp || klen + 17 > KEYSET_MAX_KEY_LEN)
		return 0;
	memcpy(out, key, klen);
	out[klen] = '\x1f';
	snprintf(out + klen + 1, 17, "%016" PRIx64, fp);
	return klen + 17;
}

static int note_version(struct reading *rd, const char *key, size_t klen, const char *fp,
                        size_t fplen)
{
	char v[KEYSET_MAX_KEY_LEN + 1];
	size_t n =
	        rd->versions ? version_name(key, klen, schema_fingerprint_parse(fp, fplen), v) : 0;
	return n && keyset_add(rd->versions, v, n) == -ENOMEM ? -ENOMEM : 0;
}

/* A row as the service wrote it (spool line, or a dead letter's "row"). */
static int note_row(struct reading *rd, const json_t *row)
{
	const json_t *k = json_object_get(row, rd->s->key);
	const json_t *fp = json_object_get(row, SCHEMA_FINGERPRINT);
	char buf[32];
	const char *key = json_string_value(k);
	size_t klen = key ? json_string_length(k) : 0;
	if (json_is_integer(k)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(k));
		key = buf;
		klen = strlen(buf);
	}
	if (!key || klen == 0)
		return 0;
	if (rd->keys && keyset_add(rd->keys, key, klen) == -ENOMEM)
		return -ENOMEM;
	/* A spooled or rejected event is asked for by the service's sales polls
	 * (its calendar learns of them at start): so by the audit's. */
	if (rd->s->kind == FEED_EVENTS && rd->s->a->cal &&
	    calendar_note(rd->s->a->cal, key, json_string_value(json_object_get(row, "starts"))) ==
	            -ENOMEM)
		return -ENOMEM;
	return note_version(rd, key, klen, json_string_value(fp),
	                    json_is_string(fp) ? json_string_length(fp) : 0);
}

static int spool_line(const char *line, size_t len, size_t lineno, void *ud)
{
	struct reading *rd = ud;
	const char *key, *fp;
	size_t klen, fplen;
	(void)lineno;
	if (rd->s->kind != FEED_EVENTS && jscan_valid_object(line, len) &&
	    jscan_plain_member(line, len, rd->s->key, &key, &klen)) {
		if (rd->keys && keyset_add(rd->keys, key, klen) == -ENOMEM)
			return -ENOMEM;
		if (jscan_plain_member(line, len, SCHEMA_FINGERPRINT, &fp, &fplen))
			return note_version(rd, key, klen, fp, fplen);
		return 0;
	}
	json_t *row = json_loadb(line, len, 0, NULL);
	int r = row ? note_row(rd, row) : 0;
	json_decref(row);
	return r;
}

static int read_spool(struct audit *a, const char *feed, struct reading *rd)
{
	struct spool *sp = NULL;
	int r = spool_open_readonly(a->cfg->state_dir, feed, &sp);
	for (size_t i = 0; r == 0 && i < spool_count(sp); i++) {
		int e = spool_foreach(sp, i, spool_line, rd);
		/* Retired meanwhile: its rows are in BigQuery or the dead letters,
		 * which are read after this. */
		if (e == -ENOMEM)
			r = e;
	}
	spool_free(sp);
	if (r < 0)
		log_error("audit: cannot read the spool of %s in %s: %s", feed, a->cfg->state_dir,
		          strerror(-r));
	return r;
}

static int dead_letter_row(const json_t *row, void *ud)
{
	return note_row(ud, row);
}

static int read_dead_letters(struct audit *a, const char *feed, struct reading *rd)
{
	int r = feed_dead_letters_foreach(a->cfg->state_dir, feed, dead_letter_row, rd);
	if (r < 0 && r != -ENOMEM)
		log_error("audit: cannot read %s/rejected-%s.ndjson: %s", a->cfg->state_dir, feed,
		          strerror(-r));
	return r;
}

/* ---- BigQuery ---------------------------------------------------------------- */

static int count_row(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct side *s = ud;
	if (n < 2 || !v[0] || lens[0] == 0 || !v[n - 1])
		return 0;
	uint64_t c = strtoull(v[n - 1], NULL, 10);
	if (keyset_put(s->bq_count, v[0], lens[0], c) == -ENOMEM)
		return -ENOMEM;
	/* Events: the start, for the calendar of the sales audit, as seeding does. */
	if (s->kind == FEED_EVENTS && n == 3 && s->a->cal &&
	    calendar_note(s->a->cal, v[0], v[1]) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

static int current_row(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct side *s = ud;
	if (n < 2 || !v[0] || lens[0] == 0)
		return 0;
	return keyset_put(s->current, v[0], lens[0],
	                  schema_fingerprint_parse(v[1], v[1] ? lens[1] : 0)) == -ENOMEM
	               ? -ENOMEM
	               : 0;
}

static int duplicated_version(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct side *s = ud;
	char what[KEYSET_MAX_KEY_LEN + 40];
	if (n < 3 || !v[0] || !v[1])
		return 0;
	/* A changed version stored twice: shown as its key and when it was seen. */
	int w = snprintf(what, sizeof(what), "%.*s@%s", (int)lens[0], v[0], v[1]);
	return finding_add(&s->cls[C_DUPLICATED], what, w > 0 ? (size_t)w : 0);
}

static int query(struct audit *a, struct side *s, bq_row_fn fn, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int query(struct audit *a, struct side *s, bq_row_fn fn, const char *fmt, ...)
{
	va_list ap;
	char *sql = NULL;
	va_start(ap, fmt);
	int r = vasprintf(&sql, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	r = bq_query(a->bq, sql, fn, s, NULL);
	free(sql);
	return r;
}

/* ---- one feed --------------------------------------------------------------- */

static void side_clear_state(struct side *s)
{
	keyset_free(s->spooled);
	keyset_free(s->spooled_versions);
	keyset_free(s->rejected);
	keyset_free(s->rejected_versions);
	keyset_free(s->bq_count);
	keyset_free(s->current);
	s->spooled = s->spooled_versions = s->rejected = s->rejected_versions = NULL;
	s->bq_count = s->current = NULL;
	for (size_t c = 0; c < C_COUNT; c++)
		finding_clear(&s->cls[c]);
}

/* The service's spool and dead letters, then BigQuery: in this order (top). */
static int read_state(struct audit *a, struct side *s)
{
	const struct config *c = a->cfg;
	char changes[64];
	side_clear_state(s);
	s->spooled = keyset_new(0);
	s->spooled_versions = keyset_new(0);
	s->rejected = keyset_new(0);
	s->rejected_versions = keyset_new(0);
	s->bq_count = keyset_new_valued(0);
	s->current = keyset_new_valued(0);
	if (!s->spooled || !s->spooled_versions || !s->rejected || !s->rejected_versions ||
	    !s->bq_count || !s->current)
		return -ENOMEM;
	snprintf(changes, sizeof(changes), "%s_changes", s->name);
	struct reading base = {s, s->spooled, s->tracked ? s->spooled_versions : NULL};
	struct reading vers = {s, NULL, s->spooled_versions};
	int r = read_spool(a, s->name, &base);
	if (r == 0 && s->tracked)
		r = read_spool(a, changes, &vers);
	base = (struct reading){s, s->rejected, s->tracked ? s->rejected_versions : NULL};
	vers = (struct reading){s, NULL, s->rejected_versions};
	if (r == 0)
		r = read_dead_letters(a, s->name, &base);
	if (r == 0 && s->tracked)
		r = read_dead_letters(a, changes, &vers);
	if (r < 0)
		return r;
	const char *p = c->bigquery.project, *d = c->bigquery.dataset, *t = s->table, *k = s->key;
	if (s->kind == FEED_EVENTS)
		r = query(a, s, count_row,
		          "SELECT id, MAX(starts), COUNT(*) FROM `%s.%s.%s` WHERE id IS NOT NULL "
		          "GROUP BY id",
		          p, d, t);
	else
		r = query(a, s, count_row,
		          "SELECT %s, COUNT(*) FROM `%s.%s.%s` WHERE %s IS NOT NULL GROUP BY %s", k,
		          p, d, t, k, k);
	/* A side read only for the calendar (--feed sales) needs its counts alone. */
	if (r == 0 && s->tracked && s->audited)
		r = query(a, s, current_row,
		          "SELECT %s, " SCHEMA_FINGERPRINT " FROM `%s.%s.%s" CONFIG_CURRENT_SUFFIX
		          "` WHERE %s IS NOT NULL",
		          k, p, d, t, k);
	if (r == 0 && s->tracked && s->audited)
		r = query(a, s, duplicated_version,
		          "SELECT %s, UNIX_MICROS(" SCHEMA_OBSERVED_AT "), COUNT(*) FROM "
		          "`%s.%s.%s" CONFIG_CHANGES_SUFFIX
		          "` WHERE %s IS NOT NULL GROUP BY %s, " SCHEMA_OBSERVED_AT
		          " HAVING COUNT(*) > 1",
		          k, p, d, t, k, k);
	if (r < 0 && r != -ECANCELED)
		log_error("audit: %s: cannot read the tables of BigQuery: %s", s->name,
		          strerror(-r));
	return r;
}

struct classify {
	struct side *s;
	bool after; /* a complete poll started after the source was read */
};

static bool has_version(const struct keyset *vs, const char *key, size_t klen, uint64_t fp)
{
	char v[KEYSET_MAX_KEY_LEN + 1];
	size_t n = version_name(key, klen, fp, v);
	return n && keyset_has(vs, v, n);
}

static int classify_source(const char *key, size_t klen, void *ud)
{
	struct classify *c = ud;
	struct side *s = c->s;
	uint64_t fp = 0, count = 0, when = 0, cur = 0;
	(void)keyset_get(s->src_fp, key, klen, &fp);
	bool in_bq = keyset_get(s->bq_count, key, klen, &count) && count > 0;
	bool in_view = s->tracked && keyset_get(s->current, key, klen, &cur);
	enum audit_class cls;
	if (!in_bq && !in_view) {
		bool served = c->after || (keyset_get(s->src_date, key, klen, &when) &&
		                           (int64_t)when + AUDIT_DATE_MARGIN < s->last_poll);
		/* A rejected row's line stays in its segment until the segment's
		 * other rows are done: the dead letter says more. */
		if (keyset_has(s->rejected, key, klen))
			cls = C_REJECTED;
		else if (keyset_has(s->spooled, key, klen))
			cls = C_PENDING;
		else
			cls = served ? C_MISSING : C_NOT_YET_POLLED;
	} else if (s->tracked && cur != fp) {
		if (has_version(s->rejected_versions, key, klen, fp))
			cls = C_REJECTED;
		else if (has_version(s->spooled_versions, key, klen, fp))
			cls = C_PENDING;
		else
			cls = c->after ? C_STALE : C_NOT_YET_POLLED;
	} else {
		return 0;
	}
	return finding_add(&s->cls[cls], key, klen);
}

static int classify_table(const char *key, size_t klen, void *ud)
{
	struct classify *c = ud;
	struct side *s = c->s;
	uint64_t count = 0;
	(void)keyset_get(s->bq_count, key, klen, &count);
	if (count > 1 && finding_add(&s->cls[C_DUPLICATED], key, klen) < 0)
		return -ENOMEM;
	if (!keyset_has(s->src_fp, key, klen))
		return finding_add(&s->cls[C_OUTSIDE], key, klen);
	return 0;
}

static int classify(struct audit *a, struct side *s)
{
	(void)a;
	struct classify c = {s, s->last_poll > s->read_at};
	/* The changes table's duplicates were found by its query. */
	int r = keyset_foreach(s->src_fp, classify_source, &c);
	if (r == 0)
		r = keyset_foreach(s->bq_count, classify_table, &c);
	return r;
}

static bool has_failures(const struct side *s)
{
	for (size_t c = 0; c < C_COUNT; c++)
		if (class_names[c].failure && s->cls[c].count)
			return true;
	return false;
}

/* --wait: until the service has completed a poll that started after the
 * source was read, so that every finding is confirmed or cleared. */
static int wait_for_poll(struct audit *a, struct side *s)
{
	const struct config_feed *cf =
	        s->kind == FEED_SALES ? &a->cfg->sales.feed : &a->cfg->events.feed;
	int64_t deadline = util_wall_s() + 2 * (int64_t)cf->interval + AUDIT_WAIT_EXTRA_S;
	log_info("audit: %s: %zu rows not yet polled; waiting for the service's next complete "
	         "poll (up to %" PRId64 " s)",
	         s->name, s->cls[C_NOT_YET_POLLED].count, deadline - util_wall_s());
	for (;;) {
		s->last_poll = read_last_poll(a, s);
		if (s->last_poll > s->read_at)
			return 0;
		if (util_wall_s() >= deadline) {
			log_error("audit: %s: no complete poll within %d s of reading the source: "
			          "is the service running? (systemctl status seetickets-bq)",
			          s->name, 2 * cf->interval + AUDIT_WAIT_EXTRA_S);
			return -ETIMEDOUT;
		}
		if (a->loop && loop_poll_signals(a->loop))
			return -ECANCELED;
		sleep(1);
	}
}

static int audit_side(struct audit *a, struct side *s, struct feed *f)
{
	struct feed_stats st;
	s->last_poll = read_last_poll(a, s);
	/* A poll starting in the same second as the read cannot be told apart
	 * from one before it: the read counts from the next second. */
	s->read_at = util_wall_s();
	int r = feed_poll(f, &st);
	if (r < 0) {
		if (r != -ECANCELED)
			log_error("audit: %s: the source could not be read completely: %s", s->name,
			          strerror(-r));
		return r;
	}
	s->src_unloadable = st.rejected;
	r = read_state(a, s);
	if (r == 0)
		r = classify(a, s);
	if (r == 0 && a->o.wait && s->audited && s->cls[C_NOT_YET_POLLED].count &&
	    !(s->last_poll > s->read_at)) {
		r = wait_for_poll(a, s);
		if (r == 0)
			r = read_state(a, s);
		if (r == 0)
			r = classify(a, s);
	}
	return r;
}

/* ---- output ---------------------------------------------------------------------- */

static void iso_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *side_json(const struct side *s)
{
	char when[32];
	json_t *o = json_pack("{s:s, s:b, s:I, s:I, s:I}", "table", s->table, "track_changes",
	                      s->tracked, "source_rows", (json_int_t)keyset_count(s->src_fp),
	                      "source_unloadable", (json_int_t)s->src_unloadable, "bigquery_keys",
	                      (json_int_t)keyset_count(s->bq_count));
	if (!o)
		return NULL;
	iso_time(s->read_at, when);
	json_object_set_new(o, "source_read_at", json_string(when));
	if (s->last_poll) {
		iso_time(s->last_poll, when);
		json_object_set_new(o, "last_complete_poll", json_string(when));
	} else {
		json_object_set_new(o, "last_complete_poll", json_null());
	}
	for (size_t c = 0; c < C_COUNT; c++) {
		if (c == C_STALE && !s->tracked)
			continue;
		json_t *ex = json_array();
		for (size_t i = 0; ex && i < s->cls[c].nex; i++)
			json_array_append_new(ex, json_string(s->cls[c].ex[i]));
		json_object_set_new(o, class_names[c].json,
		                    json_pack("{s:I, s:o*}", "count", (json_int_t)s->cls[c].count,
		                              "examples", ex));
	}
	json_object_set_new(o, "ok", json_boolean(!has_failures(s)));
	return o;
}

static void side_print(const struct side *s, FILE *out)
{
	char when[32], shown[LOG_VALUE_MAX];
	fprintf(out, "%s (table %s%s): %zu rows at the source, %zu keys in BigQuery\n", s->name,
	        s->table, s->tracked ? ", changes tracked" : "", keyset_count(s->src_fp),
	        keyset_count(s->bq_count));
	if (s->src_unloadable)
		fprintf(out,
		        "  %zu more source rows cannot be loaded (dead letters of the service)\n",
		        s->src_unloadable);
	iso_time(s->read_at, when);
	fprintf(out, "  source read at %s; ", when);
	if (s->last_poll) {
		iso_time(s->last_poll, when);
		fprintf(out, "the service's last complete poll started at %s\n", when);
	} else {
		fprintf(out, "no complete poll of the service is recorded\n");
	}
	for (size_t c = 0; c < C_COUNT; c++) {
		const struct finding *f = &s->cls[c];
		if (c == C_STALE && !s->tracked)
			continue;
		fprintf(out, "  %-26s %zu", class_names[c].human, f->count);
		for (size_t i = 0; i < f->nex; i++)
			fprintf(out, "%s%s", i ? ", " : "  e.g. ",
			        log_value(f->ex[i], strlen(f->ex[i]), shown));
		if (f->count > f->nex && f->nex)
			fputs(", ...", out);
		fputc('\n', out);
	}
}

/* ---- entry points ------------------------------------------------------------------ */

struct audit *audit_new(const struct config *cfg, struct bq *bq, struct loop *loop,
                        struct calendar *cal, const struct audit_options *o)
{
	struct audit *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	*a = (struct audit){.cfg = cfg, .bq = bq, .loop = loop, .cal = cal, .o = *o};
	for (int i = 0; i < 2; i++) {
		struct side *s = &a->side[i];
		s->a = a;
		s->kind = i == 0 ? FEED_EVENTS : FEED_SALES;
		s->name = i == 0 ? "events" : "sales";
		s->key = i == 0 ? "id" : "uniqueCode";
		const struct config_feed *cf = i == 0 ? &cfg->events.feed : &cfg->sales.feed;
		s->table = cf->table;
		s->tracked = cf->track_changes;
		s->audited = cf->enabled && (!o->feed || strcmp(o->feed, s->name) == 0);
		s->sink = (struct feed_sink){.row = source_row, .ud = s};
		s->src_fp = keyset_new_valued(0);
		s->src_date = keyset_new_valued(0);
		if (!s->src_fp || !s->src_date) {
			audit_free(a);
			return NULL;
		}
	}
	return a;
}

void audit_free(struct audit *a)
{
	if (!a)
		return;
	for (int i = 0; i < 2; i++) {
		side_clear_state(&a->side[i]);
		keyset_free(a->side[i].src_fp);
		keyset_free(a->side[i].src_date);
	}
	free(a);
}

const struct feed_sink *audit_sink(struct audit *a, enum feed_kind kind)
{
	return &a->side[kind == FEED_EVENTS ? 0 : 1].sink;
}

int audit_run(struct audit *a, struct feed *events, struct feed *sales, FILE *out)
{
	struct feed *feeds[2] = {events, sales};
	int r = 0;
	/* Events first: the sales audit asks for the codes a poll would. */
	for (int i = 0; i < 2 && r == 0; i++)
		if (feeds[i])
			r = audit_side(a, &a->side[i], feeds[i]);
	if (r < 0)
		return r;
	bool ok = true;
	json_t *doc = a->o.json ? json_object() : NULL, *fj = a->o.json ? json_object() : NULL;
	if (a->o.json && (!doc || !fj)) {
		json_decref(doc);
		json_decref(fj);
		return -ENOMEM;
	}
	for (int i = 0; i < 2; i++) {
		const struct side *s = &a->side[i];
		if (!feeds[i] || !s->audited)
			continue;
		ok = ok && !has_failures(s);
		if (fj)
			json_object_set_new(fj, s->name, side_json(s));
		else
			side_print(s, out);
	}
	if (doc) {
		json_object_set_new(doc, "ok", json_boolean(ok));
		json_object_set_new(doc, "feeds", fj);
		char *text = json_dumps(doc, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		if (text)
			fprintf(out, "%s\n", text);
		free(text);
		json_decref(doc);
	} else {
		fprintf(out, "audit: %s\n",
		        ok ? "OK: nothing missing, duplicated or stale"
		           : "FAILED: rows are missing, duplicated or stale (see above)");
	}
	fflush(out);
	return ok ? 0 : 1;
}

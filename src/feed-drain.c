/* feed-drain.c - the spool to BigQuery: scan at start, drain every poll, commit.
 *
 * Within this process each segment keeps a flag per line (confirmed or not),
 * so a partly confirmed batch is never sent twice. After a restart the key
 * set is seeded from BigQuery first, then every leftover segment is scanned
 * before anything is sent: lines whose key BigQuery already holds, or whose
 * row is already in the dead letters, are marked done; the rest join the key
 * set and are sent.
 *
 * Every segment is drained every poll, oldest first, so one line that cannot
 * finish (its dead letter cannot be written, BigQuery keeps refusing it)
 * holds back only itself; a segment that cannot be read is set aside. Only a
 * failed request (BigQuery unreachable, permissions) stops the drain, since
 * every further segment would fail the same way after the same retries.
 *
 * Load jobs: a segment's jobs are fixed by its load plan (spool.h), so that a
 * job still running when the daemon stopped is found again by its id (409)
 * rather than duplicated by a differently cut job. Streaming: insertIds
 * de-duplicate resends for about a minute only, so lines whose outcome has
 * been unknown for longer are first looked up in the table. */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "feed-internal.h"
#include "jscan.h"
#include "log.h"
#include "util.h"

/* Rows handed to bq_insert at once, as their spool lines' text (never parsed
 * again: jscan_valid_object() vouches for a line and the key is read off
 * it; only a line it cannot vouch for is read by jansson). The chunk bounds
 * the drain's memory: a few streaming requests' worth, or one load job's
 * worth (load jobs are few and large: 1,500 per table per day). In load mode
 * a chunk's lines are part of the segment's plan: these numbers must not
 * change between versions lightly. */
#define FEED_DRAIN_STREAM_ROWS 2000
#define FEED_DRAIN_LOAD_ROWS   8000
#define FEED_DRAIN_CHUNK_BYTES (4u << 20)

/* ---- per-segment state ---------------------------------------------------- */

void feed_segs_clear(struct feed *f)
{
	for (size_t i = 0; i < f->nsegs; i++) {
		free(f->segs[i].path);
		free(f->segs[i].line);
	}
	free(f->segs);
	f->segs = NULL;
	f->nsegs = 0;
}

static void segstate_drop(struct feed *f, const struct segstate *s)
{
	for (size_t i = 0; i < f->nsegs; i++) {
		if (&f->segs[i] != s)
			continue;
		free(f->segs[i].path);
		free(f->segs[i].line);
		memmove(&f->segs[i], &f->segs[i + 1], (f->nsegs - i - 1) * sizeof(*f->segs));
		f->nsegs--;
		return;
	}
}

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

int feed_track_segment(struct feed *f, const char *path)
{
	return segstate_get(f, path) ? 0 : -ENOMEM;
}

static int seg_set(struct segstate *s, size_t lineno, unsigned char flag)
{
	if (lineno >= s->cap) {
		size_t cap = s->cap ? s->cap : 1024;
		while (cap <= lineno)
			cap *= 2;
		unsigned char *d = realloc(s->line, cap);
		if (!d)
			return -ENOMEM;
		memset(d + s->cap, 0, cap - s->cap);
		s->line = d;
		s->cap = cap;
	}
	s->line[lineno] |= flag;
	return 0;
}

static bool seg_has(const struct segstate *s, size_t lineno, unsigned char flag)
{
	return lineno < s->cap && (s->line[lineno] & flag);
}

/* Decide once how the segment is sent: by load jobs when it has a plan or
 * the configuration says load (then the plan is written first), else
 * streaming. */
static int seg_plan(struct feed *f, size_t i, struct segstate *s)
{
	size_t *ex = NULL, n = 0;
	if (s->planned)
		return 0;
	int r = spool_plan_read(f->spool, i, &ex, &n);
	if (r < 0)
		return r;
	if (r == 1) {
		for (size_t k = 0; k < n && r >= 0; k++)
			r = seg_set(s, ex[k], SEG_EXCLUDED);
		free(ex);
		if (r < 0)
			return r;
		s->load = true;
	} else if (f->env.cfg->bigquery.insert_method == CONFIG_INSERT_LOAD) {
		for (size_t l = 0; l < s->cap; l++)
			if (s->line[l] & SEG_DONE)
				n++;
		ex = calloc(n + 1, sizeof(*ex));
		if (!ex)
			return -ENOMEM;
		n = 0;
		for (size_t l = 0; l < s->cap; l++)
			if (s->line[l] & SEG_DONE) {
				s->line[l] |= SEG_EXCLUDED;
				ex[n++] = l;
			}
		r = spool_plan_write(f->spool, i, ex, n);
		free(ex);
		if (r < 0) {
			log_error("%s: cannot write the load plan of %s: %s", feed_name(f),
			          spool_path(f->spool, i), strerror(-r));
			return r;
		}
		s->load = true;
	}
	s->planned = true;
	return 0;
}

/* ---- one pass over a segment ---------------------------------------------- */

struct drain {
	struct feed *f;
	struct segstate *seg;
	struct bq_text *rows; /* each a block: the line, NUL, its key, NUL */
	const char **keys;    /* into the blocks */
	size_t *linenos;
	bool *was_done; /* load: a confirmed line sent again as part of its planned job */
	size_t n, cap;
	size_t span_rows, span_bytes; /* lines of the chunk being cut, sent or not */
	size_t pending;               /* lines visited and still unconfirmed */
	int failed;                   /* what the line callback failed with */
	bool stuck;                   /* BigQuery answered, but kept rows pending */
	bool scan_only;               /* start-up scan: decide and count, send nothing */
};

static void drain_reset(struct drain *d)
{
	for (size_t i = 0; i < d->n; i++)
		free((char *)d->rows[i].json);
	d->n = 0;
}

struct found {
	struct keyset *keys;
};

static int found_row(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	struct found *fd = ud;
	if (n >= 1 && v[0] && keyset_add(fd->keys, v[0], lens[0]) == -ENOMEM)
		return -ENOMEM;
	return 0;
}

static int verify_versions(struct drain *d, struct keyset *ids)
{
	const char **keys = calloc(d->n, sizeof(*keys));
	size_t k = 0;
	int r = keys ? 0 : -ENOMEM;
	for (size_t i = 0; r == 0 && i < d->n; i++) {
		const char *key;
		size_t klen;
		if (d->was_done[i])
			continue;
		if (!jscan_plain_member(d->rows[i].json, d->rows[i].len, d->f->schema->key, &key,
		                        &klen)) {
			json_t *row = json_loadb(d->rows[i].json, d->rows[i].len, 0, NULL);
			key = row ? schema_row_key(d->f->schema, row) : NULL;
			keys[k] = key ? strdup(key) : NULL;
			json_decref(row);
		} else {
			keys[k] = strndup(key, klen);
		}
		if (keys[k])
			k++;
		else if (key)
			r = -ENOMEM;
	}
	if (r == 0)
		r = feed_versions_landed(d->f, keys, k, ids, NULL);
	for (size_t i = 0; keys && i < k; i++)
		free((char *)keys[i]);
	free(keys);
	return r;
}

/* Streaming lines whose last send had an unknown outcome so long ago that
 * insertId may no longer de-duplicate: ask the table which it holds. */
static int verify_unknown(struct drain *d)
{
	struct feed *f = d->f;
	const struct config *c = f->env.cfg;
	const char **keys = calloc(d->n, sizeof(*keys));
	struct found fd = {.keys = keyset_new(d->n)};
	char *sql = NULL;
	json_t *params = NULL;
	size_t k = 0, held = 0;
	int r = -ENOMEM;
	for (size_t i = 0; keys && i < d->n; i++)
		if (!d->was_done[i])
			keys[k++] = d->keys[i];
	if (f->base && keys && fd.keys) {
		/* Changed versions: ids are looked up by their rows' keys. */
		r = verify_versions(d, fd.keys);
	} else if (keys && fd.keys && (params = bq_param_strings("keys", keys, k)) &&
	           asprintf(&sql, "SELECT %s FROM `%s.%s.%s` WHERE %s IN UNNEST(@keys)",
	                    f->schema->key, c->bigquery.project, c->bigquery.dataset, feed_table(f),
	                    f->schema->key) >= 0)
		r = bq_query_params(f->env.bq, sql, params, found_row, &fd, NULL);
	else
		sql = NULL;
	for (size_t i = 0; r == 0 && i < d->n; i++) {
		if (d->was_done[i] || !keyset_has(fd.keys, d->keys[i], strlen(d->keys[i])))
			continue;
		d->was_done[i] = true;
		f->last.inserted++;
		held++;
		r = seg_set(d->seg, d->linenos[i], SEG_DONE);
	}
	if (r == 0) {
		log_info("%s: %zu of %zu rows sent over %llu s ago with no answer are in table %s "
		         "already; the others are sent again",
		         feed_name(f), held, k,
		         (unsigned long long)((util_now_ms() - d->seg->unknown_since_ms) / 1000),
		         feed_table(f));
		d->seg->unknown_since_ms = 0;
	}
	json_decref(params);
	keyset_free(fd.keys);
	free(sql);
	free(keys);
	return r;
}

static void commit_invalid(struct drain *d, size_t i, const char *reason)
{
	struct feed *f = d->f;
	/* The dead letter holds the row itself: the one time a sent line is read. */
	json_t *row = json_loadb(d->rows[i].json, d->rows[i].len, 0, NULL);
	if (row && feed_dead_letter(f, row, reason, "bigquery") == 0) {
		f->last.rejected++;
		feed_remember_rejected(f, row);
		/* A corrected version of the row is welcome. */
		if (feed_key_release(f, d->keys[i]) < 0 ||
		    seg_set(d->seg, d->linenos[i], SEG_DONE) < 0)
			d->pending++;
	} else {
		d->pending++;
	}
	json_decref(row);
}

static int drain_flush(struct drain *d)
{
	struct feed *f = d->f;
	struct segstate *s = d->seg;
	size_t unsent = 0;
	int r = 0;
	for (size_t i = 0; i < d->n; i++)
		unsent += !d->was_done[i];
	if (unsent > 0 && !s->load && s->unknown_since_ms &&
	    util_now_ms() - s->unknown_since_ms >= f->env.trust_ms / 2) {
		r = verify_unknown(d);
		unsent = 0;
		for (size_t i = 0; i < d->n; i++)
			unsent += !d->was_done[i];
	}
	if (r < 0 || unsent == 0) {
		if (r < 0)
			d->pending += unsent;
		drain_reset(d);
		return r;
	}
	/* Every send of a row must start within the trusted insertId window of
	 * its first: a send call spans at most half of it (bq stream span), so
	 * rows unknown for half of it are looked up before any further call. */
	/* Streaming sends only what is unconfirmed; a load job sends its whole
	 * planned chunk, so that its id is the one it had the first time. */
	struct bq_text *rows = d->rows;
	const char **keys = d->keys;
	size_t *map = NULL, m = d->n;
	if (!s->load && unsent < d->n) {
		rows = calloc(unsent, sizeof(*rows));
		keys = calloc(unsent, sizeof(*keys));
		map = calloc(unsent, sizeof(*map));
		if (!rows || !keys || !map) {
			r = -ENOMEM;
			goto out;
		}
		m = 0;
		for (size_t i = 0; i < d->n; i++)
			if (!d->was_done[i]) {
				rows[m] = d->rows[i];
				keys[m] = d->keys[i];
				map[m++] = i;
			}
	}
	struct bq_row_status *st = calloc(m, sizeof(*st));
	if (!st) {
		r = -ENOMEM;
		goto out;
	}
	uint64_t t0 = util_now_ms();
	r = bq_insert_as(f->env.bq, s->load ? CONFIG_INSERT_LOAD : CONFIG_INSERT_STREAMING,
	                 feed_table(f), rows, keys, m, st);
	for (size_t j = 0; j < m; j++) {
		size_t i = map ? map[j] : j;
		if (d->was_done[i])
			continue;
		switch (st[j].state) {
		case BQ_ROW_DONE:
			f->last.inserted++;
			if (seg_set(s, d->linenos[i], SEG_DONE) < 0)
				d->pending++;
			break;
		case BQ_ROW_INVALID:
			commit_invalid(d, i, st[j].reason);
			break;
		case BQ_ROW_PENDING:
			d->pending++;
			/* It may have been stored with its answer lost. */
			if (!s->load && !s->unknown_since_ms)
				s->unknown_since_ms = t0;
			break;
		}
	}
	free(st);
out:
	if (rows != d->rows)
		free(rows);
	if (keys != d->keys)
		free(keys);
	free(map);
	drain_reset(d);
	if (r == -ETIMEDOUT) { /* row-level: the rest of the spool may still go */
		d->stuck = true;
		r = 0;
	}
	return r;
}

/* A changed version's id from its line's members (the key is its row key). */
static bool line_change_id(const char *key, size_t klen, const char *fp, size_t fplen,
                           const char *at, size_t atlen, char id[KEYSET_MAX_KEY_LEN + 1])
{
	int64_t us;
	uint64_t v = schema_fingerprint_parse(fp, fplen);
	return v && feed_observed_parse(at, atlen, &us) == 0 &&
	       feed_change_id(key, klen, v, us, id) == 0;
}

static bool json_change_id(const json_t *row, const char *key, char id[KEYSET_MAX_KEY_LEN + 1])
{
	const json_t *fp = json_object_get(row, SCHEMA_FINGERPRINT);
	const json_t *at = json_object_get(row, SCHEMA_OBSERVED_AT);
	return json_is_string(fp) && json_is_string(at) &&
	       line_change_id(key, strlen(key), json_string_value(fp), json_string_length(fp),
	                      json_string_value(at), json_string_length(at), id);
}

/* One line and its key into the chunk, copied into one block. */
static int chunk_push(struct drain *d, const char *line, size_t len, const char *key, size_t klen,
                      size_t lineno, bool done)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 256;
		struct bq_text *rows = realloc(d->rows, cap * sizeof(*rows));
		if (rows)
			d->rows = rows;
		const char **keys = rows ? realloc(d->keys, cap * sizeof(*keys)) : NULL;
		if (keys)
			d->keys = keys;
		size_t *ln = keys ? realloc(d->linenos, cap * sizeof(*ln)) : NULL;
		if (ln)
			d->linenos = ln;
		bool *wd = ln ? realloc(d->was_done, cap * sizeof(*wd)) : NULL;
		if (!wd)
			return -ENOMEM;
		d->was_done = wd;
		d->cap = cap;
	}
	char *blk = malloc(len + klen + 2);
	if (!blk)
		return -ENOMEM;
	memcpy(blk, line, len);
	blk[len] = '\0';
	memcpy(blk + len + 1, key, klen);
	blk[len + 1 + klen] = '\0';
	d->rows[d->n] = (struct bq_text){blk, len};
	d->keys[d->n] = blk + len + 1;
	d->linenos[d->n] = lineno;
	d->was_done[d->n] = done;
	d->n++;
	return 0;
}

/* Start-up, tracked: a version spooled and not landed is the key's latest
 * unless a newer one landed (the seeding query saw that one). Lines are in
 * the order they were seen, so a later one wins. */
static int take_spooled_version(struct feed *f, const json_t *row, const char *key, int64_t us)
{
	struct feed *base = f->base ? f->base : f;
	uint64_t newest = 0;
	if (!feed_tracked(base))
		return 0;
	const json_t *fp = json_object_get(row, SCHEMA_FINGERPRINT);
	uint64_t v = schema_fingerprint_parse(json_string_value(fp), json_string_length(fp));
	if (f->base && us > base->observed_us)
		base->observed_us = us; /* new versions are seen after every spooled one */
	if (f->base && f->latest && keyset_get(f->latest, key, strlen(key), &newest) &&
	    (int64_t)newest >= us)
		return 0;
	return keyset_put(base->seen, key, strlen(key), v) == -ENOMEM ? -ENOMEM : 0;
}

/* Start-up: BigQuery's keys were seeded, so a key already known has landed
 * (or appeared in an earlier segment) and a row already dead-lettered has
 * been handled; neither is sent again. Any other row is now pending in the
 * key set and goes with the next drain. Spooled events are in the calendar. */
static int scan_line(struct drain *d, json_t *row, const char *key, size_t lineno)
{
	struct feed *f = d->f;
	char id[KEYSET_MAX_KEY_LEN + 1];
	const char *rowkey = key;
	int64_t us = 0;
	int r = 0;
	if (f->base) {
		/* A changed version is known by its id; one without a readable id
		 * cannot have been written by us: it goes as it is, under its key. */
		const json_t *at = json_object_get(row, SCHEMA_OBSERVED_AT);
		if (json_change_id(row, key, id) &&
		    feed_observed_parse(json_string_value(at), json_string_length(at), &us) == 0)
			key = id;
	}
	if (f->kind == FEED_EVENTS && f->env.cal)
		r = calendar_note(f->env.cal, rowkey,
		                  json_string_value(json_object_get(row, "starts")));
	if (r == 0 && feed_is_rejected(f, row)) {
		r = seg_set(d->seg, lineno, SEG_DONE);
	} else if (r == 0) {
		r = keyset_add(f->seen, key, strlen(key));
		if (r == 0 || r == -EINVAL)
			r = seg_set(d->seg, lineno, SEG_DONE);
		else if (r == 1) {
			d->pending++;
			r = take_spooled_version(f, row, rowkey, us);
		}
	}
	json_decref(row);
	return r;
}

static int drain_line_inner(struct drain *d, const char *line, size_t len, size_t lineno)
{
	struct feed *f = d->f;
	struct segstate *s = d->seg;
	bool done = seg_has(s, lineno, SEG_DONE);
	if (done && (d->scan_only || !s->load))
		return 0;
	const char *key, *fp, *at;
	size_t klen, fplen, atlen;
	char id[KEYSET_MAX_KEY_LEN + 1];
	/* The common case: a line we wrote, sent as it is. */
	if (!d->scan_only && jscan_valid_object(line, len) &&
	    jscan_plain_member(line, len, f->schema->key, &key, &klen)) {
		if (!f->base)
			return chunk_push(d, line, len, key, klen, lineno, done);
		if (jscan_plain_member(line, len, SCHEMA_FINGERPRINT, &fp, &fplen) &&
		    jscan_plain_member(line, len, SCHEMA_OBSERVED_AT, &at, &atlen) &&
		    line_change_id(key, klen, fp, fplen, at, atlen, id))
			return chunk_push(d, line, len, id, strlen(id), lineno, done);
	}
	json_t *row = json_loadb(line, len, 0, NULL);
	key = row ? schema_row_key(f->schema, row) : NULL;
	if (!key) {
		json_decref(row);
		if (d->scan_only || done) {
			d->pending += !done;
			return 0;
		}
		/* Only a damaged disk could produce this: keep the bytes for a human. */
		json_t *raw = json_stringn(line, len);
		int r = raw ? feed_dead_letter(f, raw, "unreadable spool line", "spool") : -ENOMEM;
		json_decref(raw);
		if (r == 0)
			return seg_set(s, lineno, SEG_DONE);
		d->pending++; /* the segment stays until its dead letter is written */
		return r == -ENOMEM ? r : 0;
	}
	if (d->scan_only)
		return scan_line(d, row, key, lineno);
	/* jansson read it: its text is valid JSON, and goes as it is too. */
	if (f->base && json_change_id(row, key, id))
		key = id;
	int r = chunk_push(d, line, len, key, strlen(key), lineno, done);
	json_decref(row);
	return r;
}

static int drain_line(const char *line, size_t len, size_t lineno, void *ud)
{
	struct drain *d = ud;
	if (!d->scan_only && seg_has(d->seg, lineno, SEG_EXCLUDED))
		return 0;
	int r = drain_line_inner(d, line, len, lineno);
	/* Chunks are cut by the lines of the plan, sent or not, so that a
	 * load job covers the same lines every time. */
	d->span_rows++;
	d->span_bytes += len;
	size_t chunk = d->seg->load ? FEED_DRAIN_LOAD_ROWS : FEED_DRAIN_STREAM_ROWS;
	if (r == 0 && !d->scan_only &&
	    (d->span_rows >= chunk || d->span_bytes >= FEED_DRAIN_CHUNK_BYTES)) {
		d->span_rows = d->span_bytes = 0;
		r = drain_flush(d);
	}
	if (r)
		d->failed = r;
	return r;
}

/* One pass over segment i. 0 when every line is done (the segment is then
 * retired); -EAGAIN when lines remain but BigQuery answered (the drain goes
 * on to newer segments); *unreadable when the file itself cannot be read;
 * any other negative errno when a request failed. */
static int drain_segment(struct feed *f, size_t i, bool scan_only, bool *unreadable)
{
	struct segstate *s = segstate_get(f, spool_path(f->spool, i));
	*unreadable = false;
	if (!s)
		return -ENOMEM;
	struct drain d = {.f = f, .seg = s, .scan_only = scan_only};
	int r = scan_only ? 0 : seg_plan(f, i, s);
	if (r == -EBADMSG) {
		*unreadable = true;
		return r;
	}
	/* The plan could not be written (a full disk): a local failure that stops
	 * this drain, not a reason to set the segment aside. Next poll tries again. */
	if (r < 0)
		return r;
	if (r == 0)
		r = spool_foreach(f->spool, i, drain_line, &d);
	if (r != 0 && d.failed == 0 && r != -ENOMEM) {
		*unreadable = true;
	} else if (!scan_only) {
		if (r == 0)
			r = drain_flush(&d);
		else
			(void)drain_flush(&d); /* confirmations already received still count */
	}
	drain_reset(&d);
	free(d.rows);
	free(d.keys);
	free(d.linenos);
	free(d.was_done);
	if (r < 0 || *unreadable)
		return r;
	if (scan_only) {
		if (d.pending)
			log_info("%s: %zu spooled rows from an earlier run still to send (%s)",
			         feed_name(f), d.pending, spool_path(f->spool, i));
		return 0;
	}
	if (d.pending || d.stuck)
		return -EAGAIN;
	segstate_drop(f, s);
	return spool_retire(f->spool, i);
}

static void set_aside(struct feed *f, size_t i, const char *path, int why)
{
	int r = spool_set_aside(f->spool, i);
	if (r == 0)
		log_error("%s: spool segment %s cannot be read (%s); it was renamed to "
		          "%s.unreadable and its rows are not sent: fix it (owner, mode) and "
		          "rename it back, then restart",
		          feed_name(f), path, strerror(-why), path);
	else
		log_error("%s: spool segment %s cannot be read (%s), nor set aside (%s)",
		          feed_name(f), path, strerror(-why), strerror(-r));
}

/* Scan (start-up) or drain every segment. */
static int each_segment(struct feed *f, bool scan_only)
{
	int first = 0;
	for (size_t i = 0; i < spool_count(f->spool);) {
		bool unreadable;
		char *path = strdup(spool_path(f->spool, i));
		int r = path ? drain_segment(f, i, scan_only, &unreadable) : -ENOMEM;
		if (path && unreadable) {
			struct segstate *s = segstate_get(f, path);
			if (s)
				segstate_drop(f, s);
			size_t before = spool_count(f->spool);
			set_aside(f, i, path, r);
			free(path);
			if (spool_count(f->spool) == before)
				i++; /* could not be moved: leave it and go on */
			continue;
		}
		free(path);
		if (r == 0 && !scan_only)
			continue; /* retired: the next one moved into place i */
		if (r == 0 || r == -EAGAIN) {
			first = first ? first : r;
			i++;
			continue;
		}
		return r; /* a request failed: the others would fail the same way */
	}
	return first;
}

int feed_open_spool(struct feed *f)
{
	if (f->spool && f->scanned)
		return 0;
	int r = f->spool ? 0 : spool_open(f->env.cfg->state_dir, feed_name(f), &f->spool);
	if (r < 0) {
		log_error("%s: cannot open the spool in %s: %s", feed_name(f),
		          f->env.cfg->state_dir, strerror(-r));
		return r;
	}
	r = each_segment(f, true);
	if (r < 0) {
		spool_free(f->spool);
		f->spool = NULL;
		feed_segs_clear(f);
		return r;
	}
	f->scanned = true;
	keyset_free(f->latest); /* only the scan needed it */
	f->latest = NULL;
	return r;
}

int feed_drain_all(struct feed *f)
{
	int r = each_segment(f, false);
	f->last.rows_pending = spool_count(f->spool) > 0;
	return r;
}

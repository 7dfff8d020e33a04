/* stpage.c - a See Tickets reply body read into rows; see stpage.h. */
#include "autoconfig.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"
#include "log.h"
#include "stpage.h"
#include "util.h"

#define STPAGE_INT64_DIGITS 19

void st_page_clear(struct st_page *page)
{
	json_decref(page->rows);
	free(page->unread);
	free(page->held);
	for (size_t i = 0; i < page->nbad; i++)
		free(page->bad[i].text);
	free(page->bad);
	free(page->first);
	*page = (struct st_page){0};
}

char *st_utf8_escape(const char *s, size_t len)
{
	struct buf b = {0};
	const unsigned char *p = (const unsigned char *)s;
	int r = buf_reserve(&b, len + 1);
	for (size_t i = 0; i < len && r == 0;) {
		size_t k = jscan_utf8_seq(p + i, len - i);
		if (k) {
			r = buf_append(&b, p + i, k);
			i += k;
		} else {
			r = buf_printf(&b, "\\x%02X", p[i]);
			i++;
		}
	}
	if (r < 0) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* ---- the structural scan (jscan.h) ----------------------------------- */

/* The integer or real literal at p..e does not fit jansson: an integer
 * beyond int64, or a real that overflows a double. */
static bool number_too_big(const char *p, const char *e)
{
	const char *d = p + (*p == '-');
	bool integer = true;
	for (const char *q = d; q < e; q++)
		if (*q == '.' || *q == 'e' || *q == 'E')
			integer = false;
	if (integer) {
		size_t n = (size_t)(e - d);
		if (n != STPAGE_INT64_DIGITS)
			return n > STPAGE_INT64_DIGITS;
		return memcmp(d, *p == '-' ? "9223372036854775808" : "9223372036854775807", n) > 0;
	}
	char *copy = strndup(p, (size_t)(e - p));
	bool big = copy && isinf(strtod(copy, NULL));
	free(copy);
	return big;
}

/* The element with every number too big for jansson quoted as a string. */
static int quote_big_numbers(const char *s, size_t len, struct buf *out)
{
	struct jscan sc = {s, s + len};
	const char *copied = s;
	int r = 0;
	buf_reset(out);
	while (sc.p < sc.end && r == 0) {
		char c = *sc.p;
		if (c == '"') {
			if (!jscan_skip_string(&sc))
				break;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			const char *start = sc.p;
			while (sc.p < sc.end && !jscan_is_delim(*sc.p))
				sc.p++;
			if (number_too_big(start, sc.p)) {
				r = buf_append(out, copied, (size_t)(start - copied));
				if (r == 0)
					r = buf_append(out, "\"", 1);
				if (r == 0)
					r = buf_append(out, start, (size_t)(sc.p - start));
				if (r == 0)
					r = buf_append(out, "\"", 1);
				copied = sc.p;
			}
		} else {
			sc.p++;
		}
	}
	if (r == 0)
		r = buf_append(out, copied, (size_t)(sc.end - copied));
	return r;
}

static const char *error_class(const json_error_t *e)
{
	switch (json_error_code(e)) {
	case json_error_invalid_utf8:
		return "invalid UTF-8";
	case json_error_null_character:
		return "a NUL character";
	case json_error_numeric_overflow:
		return "a number out of range";
	case json_error_invalid_syntax:
		return "invalid JSON syntax or escape";
	default:
		return "invalid JSON";
	}
}

static char *identity_of(const json_t *row, const char *key)
{
	const json_t *k = json_is_object(row) ? json_object_get(row, key) : NULL;
	return k ? json_dumps(k, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static int fill_bad(struct st_bad_row *b, const char *s, size_t len, const json_error_t *e)
{
	b->index = 0;
	b->text = st_utf8_escape(s, len);
	if (!b->text)
		return -ENOMEM;
	snprintf(b->why, sizeof(b->why), "row is not valid JSON: %s at byte %d of the row",
	         error_class(e), e->position);
	return 0;
}

static int add_bad(struct st_page *pg, const struct st_bad_row *bad)
{
	struct st_bad_row *n = realloc(pg->bad, (pg->nbad + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	pg->bad = n;
	pg->bad[pg->nbad] = *bad;
	pg->bad[pg->nbad].index = pg->count;
	pg->nbad++;
	return 0;
}

/* An upper bound of the values in a reply: separators and containers
 * outside strings. One pass, no allocation. */
static size_t count_values(const char *s, size_t len)
{
	size_t n = 1;
	bool in_string = false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == ',' || c == ':' || c == '[' || c == '{') {
			n++;
		}
	}
	return n;
}

/* A row whose key the caller holds: counted, never read. */
static int skip_known(struct st_page *pg, const char *k, size_t kl)
{
	/* The identity the repeated-page guard compares: what json_dumps()
	 * makes of a plain string. */
	if (pg->count == 0 && asprintf(&pg->first, "\"%.*s\"", (int)kl, k) < 0) {
		pg->first = NULL;
		return -ENOMEM;
	}
	pg->count++;
	pg->nknown++;
	return 0;
}

int st_read_row(const char *s, size_t len, json_t **row, struct st_bad_row *bad)
{
	json_error_t e;
	struct buf tmp = {0};
	*row = json_loadb(s, len, JSON_DECODE_ANY, &e);
	if (!*row && quote_big_numbers(s, len, &tmp) == 0 && tmp.len != len)
		*row = json_loadb(tmp.data, tmp.len, JSON_DECODE_ANY, NULL);
	buf_free(&tmp);
	if (*row)
		return 0;
	return fill_bad(bad, s, len, &e) < 0 ? -ENOMEM : 1;
}

/* The repeated-page guard's identity of the page's first element: the
 * compact JSON of its key, or its text when it is not JSON. */
static int first_of(struct st_page *pg, const json_t *row, const char *s, size_t len,
                    const char *key)
{
	pg->first = row ? identity_of(row, key) : st_utf8_escape(s, len);
	return row || pg->first ? 0 : -ENOMEM;
}

/* One element on its own: a row, a repaired row, or a bad row. `values`
 * (NULL when the whole reply was counted already) adds up the values handed
 * to jansson: -EFBIG past ST_MAX_PAGE_VALUES. */
static int read_element(struct st_page *pg, const char *s, size_t len, const char *key,
                        size_t *values)
{
	if (values && (*values += count_values(s, len)) > ST_MAX_PAGE_VALUES)
		return -EFBIG;
	json_t *row;
	struct st_bad_row bad;
	int r = st_read_row(s, len, &row, &bad);
	if (r < 0)
		return r;
	if (pg->count == 0 && first_of(pg, row, s, len, key) < 0)
		r = -ENOMEM;
	else if (row)
		r = json_array_append_new(pg->rows, row) < 0 ? -ENOMEM : 0;
	else if ((r = add_bad(pg, &bad)) < 0)
		free(bad.text);
	if (r < 0 && row)
		json_decref(row);
	pg->count++;
	return r;
}

/* The identity of the page's first element (the repeated-page guard's) when
 * it is left unread: what skip_known() or read_element() would have set. */
static int first_unread(struct st_page *pg, const struct st_span *e, const struct st_span *k,
                        bool known, const char *key)
{
	if (known)
		return asprintf(&pg->first, "\"%.*s\"", (int)k->len, k->text) < 0 ? -ENOMEM : 0;
	json_t *row;
	struct st_bad_row bad;
	int r = st_read_row(e->text, e->len, &row, &bad);
	if (r < 0)
		return r;
	if (r == 1)
		free(bad.text);
	r = first_of(pg, row, e->text, e->len, key);
	json_decref(row);
	return r;
}

struct scan {
	struct st_page *pg;
	const char *key;
	const struct st_known *known;
	size_t values, cap;
	struct st_span *keys; /* leave_unread: each element's key (NULL text: none plain) */
	int r;                /* a failure other than the structure's: -ENOMEM, -EFBIG */
	bool not_list;        /* "data" is neither an array nor null */
};

/* leave_unread: one more element and its key, looked up later. */
static int note_element(struct scan *sc, const char *s, size_t len, const char *k, size_t kl)
{
	struct st_page *pg = sc->pg;
	if (pg->nunread == sc->cap) {
		size_t n = sc->cap ? sc->cap * 2 : 128;
		struct st_span *u = realloc(pg->unread, n * sizeof(*u));
		if (!u)
			return -ENOMEM;
		pg->unread = u;
		struct st_span *ks = realloc(sc->keys, n * sizeof(*ks));
		if (!ks)
			return -ENOMEM;
		sc->keys = ks;
		sc->cap = n;
	}
	sc->keys[pg->nunread] = (struct st_span){k, kl};
	pg->unread[pg->nunread++] = (struct st_span){s, len};
	pg->count++;
	return 0;
}

/* leave_unread, the page scanned: look its keys up, all at once, and keep
 * unread only the elements whose key is not known. */
static int sort_unread(struct scan *sc)
{
	struct st_page *pg = sc->pg;
	const struct st_known *kn = sc->known;
	size_t n = pg->nunread, j = 0;
	bool *known = calloc(n ? n : 1, sizeof(*known));
	if (!known)
		return -ENOMEM;
	if (kn->known_many)
		kn->known_many(sc->keys, n, known, kn->userdata);
	else
		for (size_t i = 0; i < n; i++)
			known[i] = sc->keys[i].text &&
			           kn->known(sc->keys[i].text, sc->keys[i].len, kn->userdata);
	int r = n ? first_unread(pg, &pg->unread[0], &sc->keys[0], known[0], sc->key) : 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (known[i])
			pg->nknown++;
		else
			pg->unread[j++] = pg->unread[i];
	}
	pg->nunread = j;
	free(known);
	return r;
}

/* Start the page again: a later "data" member replaces an earlier one. */
static int page_restart(struct scan *sc)
{
	struct st_page *pg = sc->pg;
	st_page_clear(pg);
	sc->values = sc->cap = 0;
	sc->not_list = false;
	return (pg->rows = json_array()) ? 0 : -ENOMEM;
}

/* The value of "data", at s->p: its elements, each found and read (or left
 * unread) in the same pass that finds where it ends. */
static bool scan_data(struct jscan *s, void *ud)
{
	struct scan *sc = ud;
	struct st_page *pg = sc->pg;
	const struct st_known *known = sc->known;
	if ((sc->r = page_restart(sc)) < 0)
		return false;
	if (*s->p != '[') {
		sc->not_list = !(s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0);
		return jscan_skip_value(s);
	}
	s->p++;
	jscan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return true;
	}
	while (s->p < s->end) {
		const char *es = s->p, *k;
		size_t kl;
		bool found;
		int r;
		/* With a filter, one pass finds the element's end and its key. */
		bool scanned = known && jscan_object_member(s, sc->key, &k, &kl, &found);
		if (scanned && known->leave_unread) {
			r = note_element(sc, es, (size_t)(s->p - es), found ? k : NULL,
			                 found ? kl : 0);
		} else if (scanned && found && known->known(k, kl, known->userdata)) {
			r = skip_known(pg, k, kl);
		} else {
			s->p = es;
			if (!jscan_skip_value(s))
				return false;
			if (known && known->leave_unread)
				r = note_element(sc, es, (size_t)(s->p - es), NULL, 0);
			else
				r = read_element(pg, es, (size_t)(s->p - es), sc->key,
				                 known ? &sc->values : NULL);
		}
		if (r < 0) {
			sc->r = r;
			return false;
		}
		int m = jscan_after_element(s);
		if (m < 0)
			return false;
		if (m == 0)
			return !(known && known->leave_unread && (sc->r = sort_unread(sc)) < 0);
	}
	return false;
}

static int scan_page(const char *body, size_t len, const char *key, const struct st_known *known,
                     struct st_page *pg)
{
	struct scan sc = {.pg = pg, .key = key, .known = known};
	bool ok = jscan_visit_member(body, len, "data", scan_data, &sc);
	free(sc.keys);
	if (sc.r < 0)
		return sc.r;
	if (!ok || sc.not_list)
		return -EBADMSG;
	if (!pg->rows && !(pg->rows = json_array())) /* no "data": an empty page */
		return -ENOMEM;
	return 0;
}

static int too_many_values(const char *what, size_t values)
{
	log_warning("%s: a reply of about %zu JSON values, more than the %d read at once; "
	            "refused (ask for smaller pages with seetickets.page_size)",
	            what, values, ST_MAX_PAGE_VALUES);
	return -EBADMSG;
}

int st_parse_page(const char *body, size_t len, const char *what, const char *key,
                  const struct st_known *known, struct st_page *pg)
{
	json_error_t jerr;
	*pg = (struct st_page){0};
	/* A NUL byte: jansson has its own view of those (it takes some as the end
	 * of a token); let it read such a reply whole rather than second-guess it. */
	if (known && body && memchr(body, '\0', len))
		known = NULL;
	/* jansson's memory is bounded by the values it reads: the whole reply's,
	 * counted here, or with a filter only those of the rows it reads,
	 * counted by the scan (the same bound; known rows are never counted). */
	size_t values = body && !known ? count_values(body, len) : 0;
	if (values > ST_MAX_PAGE_VALUES)
		return too_many_values(what, values);
	/* With a filter, the scan first: it skips known rows unread. */
	json_t *root = known ? NULL : json_loadb(body ? body : "", len, 0, &jerr);
	bool parsed = root != NULL; /* jansson read it (then the structure is wrong) */
	int r = 0;
	if (known) {
		r = body ? scan_page(body, len, key, known, pg) : -EBADMSG;
		if (r == -EFBIG) {
			st_page_clear(pg);
			return too_many_values(what, ST_MAX_PAGE_VALUES + 1);
		}
		if (r == 0 && pg->nbad)
			log_info("%s: %zu of %zu rows of a page are not valid JSON; the others go "
			         "on",
			         what, pg->nbad, pg->count);
		else if (r == -EBADMSG) { /* jansson's view of it, for the warning below */
			json_t *whole = json_loadb(body ? body : "", len, 0, &jerr);
			parsed = whole != NULL;
			json_decref(whole);
		}
	} else if (root && json_is_object(root)) {
		json_t *data = json_object_get(root, "data");
		if (!data || json_is_null(data)) {
			pg->rows = json_array();
		} else if (json_is_array(data)) {
			pg->rows = json_incref(data);
			pg->count = json_array_size(data);
			if (pg->count > 0)
				pg->first = identity_of(json_array_get(data, 0), key);
		} else {
			r = -EBADMSG;
		}
		json_decref(root);
		if (r == 0 && !pg->rows)
			r = -ENOMEM;
	} else if (root) {
		json_decref(root);
		r = -EBADMSG;
	} else {
		/* jansson refused the whole: look for the one row that costs it. */
		r = body ? scan_page(body, len, key, NULL, pg) : -EBADMSG;
		if (r == 0 && pg->nbad)
			log_info("%s: %zu of %zu rows of a page are not valid JSON; the others go "
			         "on",
			         what, pg->nbad, pg->count);
	}
	if (r == -EBADMSG)
		/* The position only: jansson's text quotes the input, which may be
		 * personal data. */
		log_warning("%s: malformed reply (%s at byte %d)", what,
		            parsed ? "not a JSON object with a \"data\" array" : error_class(&jerr),
		            parsed ? 0 : jerr.position);
	if (r < 0)
		st_page_clear(pg);
	return r;
}

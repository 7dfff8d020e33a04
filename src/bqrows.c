/* bqrows.c - query result rows without a tree; see bqrows.h. */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bqrows.h"
#include "jscan.h"

void bqrows_clear(struct bqrows *r)
{
	free(r->values);
	free(r->lens);
	free(r->offs);
	buf_free(&r->copy);
	*r = (struct bqrows){0};
}

static int reserve(struct bqrows *r, size_t n)
{
	if (n <= r->cap)
		return 0;
	size_t cap = r->cap * 2 > n ? r->cap * 2 : n;
	const char **v = realloc(r->values, cap * sizeof(*v));
	if (v)
		r->values = v;
	size_t *l = realloc(r->lens, cap * sizeof(*l));
	if (l)
		r->lens = l;
	long *o = realloc(r->offs, cap * sizeof(*o));
	if (o)
		r->offs = o;
	if (!v || !l || !o)
		return -ENOMEM;
	r->cap = cap;
	return 0;
}

static int append2(struct buf *b, const void *a, size_t alen, const void *c, size_t clen)
{
	return buf_append(b, a, alen) < 0 || buf_append(b, c, clen) < 0 ? -ENOMEM : 0;
}

int bqrows_split(const char *body, size_t len, json_t **rest, const char **rows, size_t *rows_len)
{
	const char *vs, *ve;
	*rest = NULL;
	*rows = NULL;
	*rows_len = 0;
	if (!body || !jscan_find_member(body, len, "rows", &vs, &ve))
		return -EPROTO;

	/* The rest: the body with the rows' value cut out. */
	struct buf b = {0};
	size_t head = vs ? (size_t)(vs - body) : len;
	int r = buf_append(&b, body, head);
	if (r == 0 && vs)
		r = append2(&b, "null", 4, ve, (size_t)(body + len - ve));
	if (r < 0) {
		buf_free(&b);
		return -ENOMEM;
	}
	*rest = json_loadb(b.data, b.len, 0, NULL);
	buf_free(&b);
	if (!json_is_object(*rest)) {
		json_decref(*rest);
		*rest = NULL;
		return -EPROTO;
	}
	*rows = vs;
	*rows_len = vs ? (size_t)(ve - vs) : 0;
	return 0;
}

/* The value at s->p ("v" of a cell) appended to r->copy, NUL-terminated:
 * its offset there, or -1 for null. -EPROTO for anything but a string. */
static long cell_value(struct bqrows *r, struct jscan *s, size_t *vlen, int *err)
{
	const char *v;
	size_t n;
	struct jscan t = *s;
	long at = (long)r->copy.len;
	*err = 0;
	if (*s->p == '"' && jscan_plain_string(&t, &v, &n) && jscan_utf8_valid(v, n)) {
		s->p = t.p;
	} else if (*s->p == 'n' && s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0 &&
	           (s->end - s->p == 4 || jscan_is_delim(s->p[4]))) {
		s->p += 4;
		return -1;
	} else {
		/* Escapes, or not a string at all: jansson decides. */
		const char *start = s->p;
		if (!jscan_skip_value(s)) {
			*err = -EPROTO;
			return -1;
		}
		json_t *j = json_loadb(start, (size_t)(s->p - start), JSON_DECODE_ANY, NULL);
		if (json_is_null(j)) {
			json_decref(j);
			return -1;
		}
		if (!json_is_string(j)) { /* RECORD or REPEATED: not what seeding asks for */
			json_decref(j);
			*err = -EPROTO;
			return -1;
		}
		*err = buf_append(&r->copy, json_string_value(j), json_string_length(j) + 1);
		*vlen = json_string_length(j);
		json_decref(j);
		return at;
	}
	*err = append2(&r->copy, v, n, "", 1);
	*vlen = n;
	return at;
}

/* One cell {"v": ...}: the last "v" wins, as in jansson; no "v" is null. */
static int read_cell(struct bqrows *r, struct jscan *s, long *off, size_t *vlen)
{
	const char *name;
	size_t nlen;
	int m, err = 0;
	*off = -1;
	*vlen = 0;
	jscan_ws(s);
	if (s->p >= s->end || *s->p++ != '{')
		return -EPROTO;
	for (bool first = true; (m = jscan_member(s, first, &name, &nlen)) > 0; first = false) {
		if (nlen == 1 && name[0] == 'v') {
			*off = cell_value(r, s, vlen, &err);
			if (err)
				return err;
		} else if (!jscan_skip_value(s)) {
			return -EPROTO;
		}
	}
	return m == 0 ? 0 : -EPROTO;
}

/* The cells of "f": their values in r->values/lens; *n how many. Offsets into
 * r->copy first (it may move while it grows), pointers at the end. */
static int read_cells(struct bqrows *r, struct jscan *s, size_t *n)
{
	int e = 0;
	*n = 0;
	buf_reset(&r->copy);
	jscan_ws(s);
	if (s->p >= s->end || *s->p++ != '[')
		return -EPROTO;
	jscan_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if (reserve(r, *n + 1) < 0)
			return -ENOMEM;
		if ((e = read_cell(r, s, &r->offs[*n], &r->lens[*n])) < 0)
			return e;
		(*n)++;
		jscan_ws(s);
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			break;
		}
		if (s->p >= s->end || *s->p++ != ',')
			return -EPROTO;
	}
	for (size_t i = 0; i < *n; i++)
		r->values[i] = r->offs[i] < 0 ? NULL : r->copy.data + r->offs[i];
	return 0;
}

/* One row {"f": [...]}: the last "f" wins; a row without one is malformed. */
static int read_row(struct bqrows *r, struct jscan *s, size_t *n)
{
	const char *name;
	size_t nlen;
	int m;
	bool have = false;
	jscan_ws(s);
	if (s->p >= s->end || *s->p++ != '{')
		return -EPROTO;
	for (bool first = true; (m = jscan_member(s, first, &name, &nlen)) > 0; first = false) {
		if (nlen == 1 && name[0] == 'f') {
			int e = read_cells(r, s, n);
			if (e < 0)
				return e;
			have = true;
		} else if (!jscan_skip_value(s)) {
			return -EPROTO;
		}
	}
	return m == 0 && have ? 0 : -EPROTO;
}

/* One row from a tree: its cells' values in r->values/lens (pointing into the tree). */
static int tree_row(struct bqrows *r, const json_t *row, size_t *n)
{
	const json_t *f = json_object_get(row, "f");
	if (!json_is_array(f))
		return -EPROTO;
	size_t nc = json_array_size(f);
	if (reserve(r, nc) < 0)
		return -ENOMEM;
	for (size_t c = 0; c < nc; c++) {
		const json_t *cell = json_array_get(f, c);
		const json_t *v = json_object_get(cell, "v");
		if (!json_is_object(cell))
			return -EPROTO;
		if (json_is_string(v)) {
			r->values[c] = json_string_value(v);
			r->lens[c] = json_string_length(v);
		} else if (!v || json_is_null(v)) {
			r->values[c] = NULL;
			r->lens[c] = 0;
		} else {
			return -EPROTO;
		}
	}
	*n = nc;
	return 0;
}

int bqrows_each(struct bqrows *r, const char *rows, size_t len, bq_row_fn fn, void *userdata,
                size_t *delivered)
{
	if (!rows || (len == 4 && memcmp(rows, "null", 4) == 0))
		return 0;
	struct jscan s = {rows, rows + len};
	jscan_ws(&s);
	if (s.p >= s.end || *s.p++ != '[')
		return -EPROTO;
	jscan_ws(&s);
	if (s.p < s.end && *s.p == ']')
		return 0;
	for (;;) {
		size_t n = 0;
		const char *start = s.p;
		int e = read_row(r, &s, &n);
		if (e == -EPROTO) {
			/* A member name with escapes, or something the scan does not take:
			 * jansson reads this row (it decodes names as BigQuery meant them). */
			json_t *row;
			s.p = start;
			jscan_ws(&s);
			start = s.p;
			if (!jscan_skip_value(&s) ||
			    !(row = json_loadb(start, (size_t)(s.p - start), JSON_DECODE_ANY,
			                       NULL)))
				return -EPROTO;
			e = tree_row(r, row, &n);
			if (e == 0)
				e = fn(r->values, r->lens, n, userdata);
			json_decref(row);
			if (e)
				return e;
		} else if (e < 0 || (e = fn(r->values, r->lens, n, userdata)) != 0) {
			return e;
		}
		(*delivered)++;
		jscan_ws(&s);
		if (s.p < s.end && *s.p == ']')
			return 0;
		if (s.p >= s.end || *s.p++ != ',')
			return -EPROTO;
	}
}

int bqrows_each_tree(struct bqrows *r, const json_t *reply, bq_row_fn fn, void *userdata,
                     size_t *delivered)
{
	const json_t *rows = json_object_get(reply, "rows");
	const json_t *row;
	size_t i, n;

	if (!rows || json_is_null(rows))
		return 0;
	if (!json_is_array(rows))
		return -EPROTO;
	json_array_foreach(rows, i, row)
	{
		int e = tree_row(r, row, &n);
		if (e == 0)
			e = fn(r->values, r->lens, n, userdata);
		if (e)
			return e;
		(*delivered)++;
	}
	return 0;
}

/* schema-text.c - schema_coerce() straight from an API row's JSON text to the BigQuery row's.
 *
 * A new sale used to cost a jansson tree of the API row (~40 values, a malloc each), a second
 * tree of the coerced row and a dump of it: about 20 µs, most of the CPU of a poll full of new
 * rows. Here the row's text is walked once to find each column's value, and the output is
 * written directly, by the rules of schema.c (the helpers are shared through
 * schema-internal.h) and in jansson's JSON_COMPACT form, byte for byte.
 *
 * It only vouches for what it can be sure of; everything else returns 0 and the caller takes
 * the jansson path, which has the last word (and writes the reasons of refusals):
 *  - the row must pass jscan_valid_object() (no exponent, no integer of more than 18 digits,
 *    no \u0000 or lone surrogate anywhere), so jansson would read it, and read numbers as
 *    strtod() does; string escapes are decoded here as jansson decodes them;
 *  - member names must be plain (escapes would need decoding to compare);
 *  - the key must be a plain string (it is borrowed from the text) schema.c would accept;
 *  - any value schema.c would refuse: the slow path says why;
 *  - at debug level, since schema.c then notes unknown field names.
 * tests/fuzz/fuzz_schema.c holds both paths against each other on every input. */
#include "autoconfig.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "jscan.h"
#include "log.h"
#include "schema-internal.h"
#include "schema.h"
#include "util.h"

#define TEXT_MAX_COLUMNS 64  /* schemas are fixed at build time; checked below */
#define TEXT_NUM_MAX     400 /* a number or numeric string longer than this goes the slow way */

struct span {
	const char *p; /* NULL: the member is absent */
	const char *e;
};

/* The value at s->p (valid, as the whole row passed the validator): its span, s->p past it. */
static bool value_span(struct jscan *s, struct span *v)
{
	v->p = s->p;
	if (!jscan_skip_value(s))
		return false;
	v->e = s->p;
	return true;
}

/* Walk an object's members (s->p past its '{') and record the value span of each column read
 * from it: top-level columns when `within` is NULL, else the columns of parent `within`. At
 * the top level, `par` gets the span of member `pname` (the parent object). Later members of
 * the same name win, as in jansson. */
static inline bool name_is(const char *want, const char *name, size_t nlen)
{
	return want[0] == name[0] && strncmp(want, name, nlen) == 0 && want[nlen] == '\0';
}

static bool walk_object(struct jscan *s, const struct schema *sc, const char *within,
                        struct span *cols, const char *pname, struct span *par)
{
	const char *name;
	size_t nlen;
	int m;
	for (bool first = true; (m = jscan_member(s, first, &name, &nlen)) == 1; first = false) {
		struct span v;
		if (!value_span(s, &v))
			return false;
		if (nlen == 0)
			continue; /* no column has an empty name */
		for (size_t i = 0; i < sc->ncolumns; i++) {
			const struct schema_column *c = &sc->columns[i];
			if (name_is(c->source, name, nlen) &&
			    (within ? c->parent && strcmp(c->parent, within) == 0 : !c->parent))
				cols[i] = v;
		}
		if (pname && name_is(pname, name, nlen))
			*par = v;
	}
	return m == 0;
}

/* What jansson's dump writes for a real: "%.17g", ".0" added when it would read back as an
 * integer, the exponent without '+' or leading zeros. */
static size_t format_json_real(double d, char b[48])
{
	int n = snprintf(b, 48, "%.17g", d);
	if (n < 0 || n >= 48 - 3)
		return 0;
	if (!strchr(b, '.') && !strchr(b, 'e')) {
		memcpy(b + n, ".0", 3);
		n += 2;
	}
	char *e = strchr(b, 'e');
	if (e) {
		char *start = e + 1, *end = e + 2;
		if (*start == '-')
			start++;
		while (*end == '0')
			end++;
		if (end != start) {
			memmove(start, end, (size_t)(b + n - end) + 1);
			n -= (int)(end - start);
		}
	}
	return (size_t)n;
}

/* printf's "%.17g" was a sixth of this path's time, and money columns repeat the same few
 * prices: the last text of each double is kept in a small direct-mapped cache (the daemon
 * has one thread; schema.c keeps process state too). Exact: keyed by all 64 bits. */
#define REAL_CACHE 256
static struct {
	uint64_t bits;
	unsigned char len; /* 0: empty */
	char text[47];
} real_cache[REAL_CACHE];

static int dump_real(struct buf *out, double d)
{
	uint64_t bits;
	memcpy(&bits, &d, sizeof(bits));
	size_t slot = (size_t)((bits * UINT64_C(0x9e3779b97f4a7c15)) >> 56) % REAL_CACHE;
	if (real_cache[slot].len && real_cache[slot].bits == bits)
		return buf_append(out, real_cache[slot].text, real_cache[slot].len);
	char b[48];
	size_t n = format_json_real(d, b);
	if (n == 0)
		return -ENOMEM;
	if (n < sizeof(real_cache[slot].text)) {
		real_cache[slot].bits = bits;
		real_cache[slot].len = (unsigned char)n;
		memcpy(real_cache[slot].text, b, n);
	}
	return buf_append(out, b, n);
}

/* "%lld" without the cost of printf, which was a sixth of this path's time. */
static int put_lld(struct buf *out, long long v)
{
	char b[24], *p = b + sizeof(b);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	return buf_append(out, p, (size_t)(b + sizeof(b) - p));
}

static int dump_integer(struct buf *out, long long v)
{
	/* BigQuery's rule for 64-bit integers a double cannot hold: a string of digits. */
	bool quote = v > SCHEMA_EXACT_INT_MAX || v < -SCHEMA_EXACT_INT_MAX;
	if ((quote && buf_append(out, "\"", 1) < 0) || put_lld(out, v) < 0 ||
	    (quote && buf_append(out, "\"", 1) < 0))
		return -ENOMEM;
	return 0;
}

/* A number token, validated: an integer of at most 18 digits, or a real without exponent. */
static bool number_value(const struct span *v, bool *is_int, long long *i, double *d)
{
	size_t n = (size_t)(v->e - v->p);
	char tmp[TEXT_NUM_MAX + 1];
	if (n > TEXT_NUM_MAX)
		return false;
	memcpy(tmp, v->p, n);
	tmp[n] = '\0';
	char *end;
	*is_int = !memchr(tmp, '.', n);
	if (*is_int) {
		errno = 0;
		*i = strtoll(tmp, &end, 10);
		return errno == 0 && end == tmp + n;
	}
	*d = strtod(tmp, &end);
	/* jansson refuses a real that overflows; the slow path decides what that row is. */
	return end == tmp + n && isfinite(*d);
}

static int put_utf8(struct buf *b, long cp)
{
	unsigned char u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	return buf_append(b, u, n);
}

/* A string value's bytes, as jansson decodes them: borrowed from the text when it has no
 * escape, else decoded into tmp. The validator has checked every escape (\u0000 and lone
 * surrogates included); false on anything else, or on ENOMEM (the slow path then meets it). */
static bool string_value(const struct span *v, struct buf *tmp, const char **s, size_t *len)
{
	struct jscan js = {v->p, v->e};
	if (jscan_plain_string(&js, s, len) && js.p == v->e)
		return true;
	buf_reset(tmp);
	const char *p = v->p + 1, *end = v->e - 1;
	while (p < end) {
		const char *q = memchr(p, '\\', (size_t)(end - p));
		if (!q)
			q = end;
		if (buf_append(tmp, p, (size_t)(q - p)) < 0)
			return false;
		if (q == end)
			break;
		if (end - q < 2)
			return false;
		char c = q[1], ch;
		p = q + 2;
		switch (c) {
		case '"':
		case '\\':
		case '/':
			ch = c;
			break;
		case 'b':
			ch = '\b';
			break;
		case 'f':
			ch = '\f';
			break;
		case 'n':
			ch = '\n';
			break;
		case 'r':
			ch = '\r';
			break;
		case 't':
			ch = '\t';
			break;
		case 'u': {
			size_t k;
			long cp = jscan_u_escape(q, end, &k);
			if (cp < 0)
				return false;
			p = q + k;
			if (put_utf8(tmp, cp) < 0)
				return false;
			continue;
		}
		default:
			return false;
		}
		if (buf_append(tmp, &ch, 1) < 0)
			return false;
	}
	*s = tmp->data ? tmp->data : "";
	*len = tmp->len;
	return true;
}

/* A string as jansson's dump writes it: '"' and '\\' escaped, control characters as \b, \f,
 * \n, \r, \t or \u00XX, everything else (UTF-8, '/', DEL) as it is. */
static int dump_string(struct buf *out, const char *s, size_t len)
{
	if (buf_reserve(out, len + 2) < 0 || buf_append(out, "\"", 1) < 0)
		return -ENOMEM;
	const char *run = s, *end = s + len;
	for (const char *p = s; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (buf_append(out, run, (size_t)(p - run)) < 0)
			return -ENOMEM;
		run = p + 1;
		const char *esc = c == '"'    ? "\\\""
		                  : c == '\\' ? "\\\\"
		                  : c == '\b' ? "\\b"
		                  : c == '\f' ? "\\f"
		                  : c == '\n' ? "\\n"
		                  : c == '\r' ? "\\r"
		                  : c == '\t' ? "\\t"
		                              : NULL;
		int r = esc ? buf_puts(out, esc) : buf_printf(out, "\\u%04X", c);
		if (r < 0)
			return -ENOMEM;
	}
	if (buf_append(out, run, (size_t)(end - run)) < 0 || buf_append(out, "\"", 1) < 0)
		return -ENOMEM;
	return 0;
}

/* One column's value, appended. 1 done, 0 the slow path must decide, -ENOMEM. */
static int column_text(const struct schema_column *c, const struct span *v, struct buf *out,
                       struct buf *tmp)
{
	const char *s, *b, *e;
	size_t len;
	bool is_int = false;
	long long i = 0;
	double d = 0;
	char num[40], nbuf[TEXT_NUM_MAX + 1];
	int r;

	if (!v->p || (v->e - v->p == 4 && memcmp(v->p, "null", 4) == 0))
		return buf_append(out, "null", 4) < 0 ? -ENOMEM : 1;
	char k = *v->p;
	bool is_true = k == 't', is_false = k == 'f';
	bool is_string = k == '"', is_number = k == '-' || (k >= '0' && k <= '9');
	if (!is_true && !is_false && !is_string && !is_number)
		return 0; /* an object or array: refused, the slow path says so */
	if (is_string && !string_value(v, tmp, &s, &len))
		return 0;
	if (is_number && !number_value(v, &is_int, &i, &d))
		return 0;

	switch (c->type) {
	case SCHEMA_STRING:
		if (is_string) {
			r = dump_string(out, s, len);
		} else if (is_number && is_int) {
			r = buf_append(out, "\"", 1) < 0 || put_lld(out, i) < 0 ||
			                    buf_append(out, "\"", 1) < 0
			            ? -ENOMEM
			            : 0;
		} else if (is_number) {
			schema_format_real(d, num);
			r = buf_printf(out, "\"%s\"", num);
		} else {
			r = buf_puts(out, is_true ? "\"true\"" : "\"false\"");
		}
		break;
	case SCHEMA_INTEGER:
		if (is_true || is_false)
			return 0;
		if (is_number && is_int) {
			r = dump_integer(out, i);
		} else if (is_number) {
			if (!schema_is_integral(d) || d > 0x1p53 || d < -0x1p53)
				return 0;
			r = put_lld(out, (long long)d);
		} else {
			b = s;
			e = s + len;
			schema_trim(&b, &e);
			if (b == e)
				r = buf_append(out, "null", 4);
			else if (schema_parse_integer(b, e, &i) < 0)
				return 0;
			else
				r = dump_integer(out, i);
		}
		break;
	case SCHEMA_FLOAT:
		if (is_true || is_false)
			return 0;
		if (is_number && is_int)
			d = (double)i;
		if (is_string) {
			b = s;
			e = s + len;
			schema_trim(&b, &e);
			if (b == e) {
				r = buf_append(out, "null", 4);
				break;
			}
			if ((size_t)(e - b) > TEXT_NUM_MAX)
				return 0;
			memcpy(nbuf, b, (size_t)(e - b));
			nbuf[e - b] = '\0';
			char *end;
			d = strtod(nbuf, &end);
			if (end != nbuf + (e - b))
				return 0;
		}
		if (!isfinite(d))
			return 0;
		r = dump_real(out, d);
		break;
	case SCHEMA_BOOLEAN:
		if (is_true || is_false) {
			r = buf_puts(out, is_true ? "true" : "false");
		} else if (is_number && is_int && (i == 0 || i == 1)) {
			r = buf_puts(out, i ? "true" : "false");
		} else if (is_string) {
			b = s;
			e = s + len;
			schema_trim(&b, &e);
			if (b == e)
				r = buf_append(out, "null", 4);
			else if (e - b == 4 && strncasecmp(b, "true", 4) == 0)
				r = buf_puts(out, "true");
			else if (e - b == 5 && strncasecmp(b, "false", 5) == 0)
				r = buf_puts(out, "false");
			else
				return 0;
		} else {
			return 0;
		}
		break;
	default:
		return 0;
	}
	return r < 0 ? -ENOMEM : 1;
}

/* The key: a plain string schema.c would accept as it is. */
static bool key_ok(const struct span *v, const char **key, size_t *klen)
{
	struct jscan js = {v->p, v->e};
	if (!v->p || *v->p != '"' || !jscan_plain_string(&js, key, klen) || js.p != v->e)
		return false;
	if (*klen == 0 || *klen > SCHEMA_MAX_KEY_LEN)
		return false;
	for (size_t i = 0; i < *klen; i++)
		if ((unsigned char)(*key)[i] == 0x7f) /* plain strings hold nothing below 0x20 */
			return false;
	return true;
}

int schema_coerce_text(const struct schema *s, const char *text, size_t len, struct buf *out,
                       const char **key, size_t *klen)
{
	struct span cols[TEXT_MAX_COLUMNS] = {{0}}, par = {0}, pcols[TEXT_MAX_COLUMNS] = {{0}};
	const char *parent = NULL;
	size_t mark = out->len, keyi = SIZE_MAX;

	if (s->ncolumns > TEXT_MAX_COLUMNS || log_get_level() >= LOG_DEBUG)
		return 0;
	for (size_t i = 0; i < s->ncolumns; i++) {
		const char *p = s->columns[i].parent;
		if (p && parent && strcmp(p, parent) != 0)
			return 0; /* one parent object is all this path knows */
		if (p)
			parent = p;
		if (strcmp(s->columns[i].name, s->key) == 0 && !p)
			keyi = i;
	}
	if (keyi == SIZE_MAX || !jscan_valid_object(text, len))
		return 0;

	struct jscan js = {text, text + len};
	jscan_ws(&js);
	js.p++; /* the validator saw the '{' */
	if (!walk_object(&js, s, NULL, cols, parent, &par))
		return 0;
	if (!key_ok(&cols[keyi], key, klen))
		return 0;
	if (par.p && !(par.e - par.p == 4 && memcmp(par.p, "null", 4) == 0)) {
		if (*par.p != '{')
			return 0;
		struct jscan ps = {par.p + 1, par.e};
		if (!walk_object(&ps, s, parent, pcols, NULL, NULL))
			return 0;
	}

	struct buf tmp = {0}; /* strings with escapes, decoded */
	/* Room for the usual row at once: names, and values about as long as their text. */
	int r = buf_reserve(out, len + 24 * s->ncolumns) < 0 ? -ENOMEM : 1;
	for (size_t i = 0; i < s->ncolumns && r == 1; i++) {
		const struct schema_column *c = &s->columns[i];
		if (buf_append(out, i ? ",\"" : "{\"", 2) < 0 ||
		    buf_append(out, c->name, strlen(c->name)) < 0 || buf_append(out, "\":", 2) < 0)
			r = -ENOMEM;
		else
			r = column_text(c, c->parent ? &pcols[i] : &cols[i], out, &tmp);
	}
	if (r == 1 && buf_append(out, "}", 1) < 0)
		r = -ENOMEM;
	buf_free(&tmp);
	if (r != 1)
		out->len = mark;
	return r;
}

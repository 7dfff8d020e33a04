/* jscan.c - a structural JSON scanner; see jscan.h. */
#include "autoconfig.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "jscan.h"

void jscan_ws(struct jscan *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* A quote ends a string unless an odd run of backslashes precedes it;
 * memchr() finds the candidates, which is most of a row's bytes. */
bool jscan_skip_string(struct jscan *s)
{
	const char *from = s->p + 1; /* past the opening quote */
	for (;;) {
		const char *q = memchr(from, '"', (size_t)(s->end - from));
		if (!q)
			return false;
		size_t bs = 0;
		while (q - bs > from && q[-1 - (ptrdiff_t)bs] == '\\')
			bs++;
		if (bs % 2 == 0) {
			s->p = q + 1;
			return true;
		}
		from = q + 1;
	}
}

int jscan_after_element(struct jscan *s)
{
	jscan_ws(s);
	if (s->p >= s->end)
		return -1;
	if (*s->p == ']') {
		s->p++;
		return 0;
	}
	if (*s->p++ != ',')
		return -1;
	jscan_ws(s);
	return 1;
}

bool jscan_is_delim(char c)
{
	return c == ',' || c == ']' || c == '}' || c == ':' || c == ' ' || c == '\t' || c == '\n' ||
	       c == '\r' || c == '"' || c == '[' || c == '{';
}

bool jscan_skip_value(struct jscan *s)
{
	char stack[JSCAN_MAX_DEPTH];
	size_t depth = 0;
	do {
		jscan_ws(s);
		if (s->p >= s->end)
			return false;
		char c = *s->p;
		if (c == '"') {
			if (!jscan_skip_string(s))
				return false;
		} else if (c == '{' || c == '[') {
			if (depth == sizeof(stack))
				return false;
			stack[depth++] = c == '{' ? '}' : ']';
			s->p++;
		} else if (c == '}' || c == ']') {
			if (depth == 0 || stack[depth - 1] != c)
				return false;
			depth--;
			s->p++;
		} else if (c == ',' || c == ':') {
			if (depth == 0)
				return false;
			s->p++;
		} else {
			const char *start = s->p;
			while (s->p < s->end && !jscan_is_delim(*s->p))
				s->p++;
			if (s->p == start)
				return false;
		}
	} while (depth > 0);
	return true;
}

bool jscan_plain_string(struct jscan *s, const char **start, size_t *len)
{
	const char *p = s->p + 1;
	while (p < s->end) {
		unsigned char c = (unsigned char)*p;
		if (c == '"') {
			*start = s->p + 1;
			*len = (size_t)(p - *start);
			s->p = p + 1;
			return true;
		}
		if (c == '\\' || c < 0x20)
			return false;
		p++;
	}
	return false;
}

int jscan_member(struct jscan *s, bool first, const char **name, size_t *nlen)
{
	jscan_ws(s);
	if (s->p >= s->end)
		return -1;
	if (*s->p == '}') {
		s->p++;
		return 0;
	}
	if (!first && *s->p++ != ',')
		return -1;
	jscan_ws(s);
	if (s->p >= s->end || *s->p != '"' || !jscan_plain_string(s, name, nlen))
		return -1;
	jscan_ws(s);
	if (s->p >= s->end || *s->p++ != ':')
		return -1;
	jscan_ws(s);
	return s->p < s->end ? 1 : -1;
}

size_t jscan_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	if (c < 0x80)
		return c ? 1 : 0;
	size_t need;
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		need = 1;
	else if (c >= 0xE0 && c <= 0xEF) {
		need = 2;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 3;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (n < need + 1 || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i <= need; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return need + 1;
}

bool jscan_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0, k; i < len; i += k)
		if (!(k = jscan_utf8_seq(p + i, len - i)))
			return false;
	return true;
}

bool jscan_object_member(struct jscan *s, const char *name, const char **value, size_t *vlen,
                         bool *found)
{
	size_t want = strlen(name);
	const char *n;
	size_t nlen;
	int m;
	*found = false;
	jscan_ws(s);
	if (s->p >= s->end || *s->p != '{')
		return false;
	s->p++;
	for (bool first = true; (m = jscan_member(s, first, &n, &nlen)) > 0; first = false) {
		if (nlen == want && memcmp(n, name, want) == 0) {
			struct jscan v = *s;
			*found = *s->p == '"' && jscan_plain_string(&v, value, vlen) &&
			         jscan_utf8_valid(*value, *vlen);
			if (*found) {
				s->p = v.p;
				continue;
			}
		}
		if (!jscan_skip_value(s))
			return false;
	}
	return m == 0;
}

bool jscan_plain_member(const char *obj, size_t len, const char *name, const char **value,
                        size_t *vlen)
{
	struct jscan s = {obj, obj + len};
	bool found;
	return jscan_object_member(&s, name, value, vlen, &found) && found;
}

/* ---- the conservative validator ---- */

/* jansson reads an integer with strtoll (more than 18 digits may overflow:
 * refused there) and a real with strtod, which without an exponent cannot
 * overflow below 309 integer digits. A real's fraction may be long: jansson
 * writes 17 significant digits ("5.8300000000000001"). */
#define JSCAN_MAX_INT_DIGITS  18
#define JSCAN_MAX_REAL_DIGITS 300

/* Value of 4 hex digits at p, or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
	long v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int c = p[i];
		int d = c >= '0' && c <= '9'   ? c - '0'
		        : c >= 'a' && c <= 'f' ? c - 'a' + 10
		        : c >= 'A' && c <= 'F' ? c - 'A' + 10
		                               : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

long jscan_u_escape(const char *text, const char *stop, size_t *len)
{
	const unsigned char *p = (const unsigned char *)text, *end = (const unsigned char *)stop;
	if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
		return -1;
	long cp = hex4(p + 2, end);
	if (cp <= 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
		return -1;
	*len = 6;
	if (cp < 0xD800 || cp > 0xDBFF)
		return cp;
	if (end - p < 12 || p[6] != '\\' || p[7] != 'u')
		return -1;
	long lo = hex4(p + 8, end);
	if (lo < 0xDC00 || lo > 0xDFFF)
		return -1;
	*len = 12;
	return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
}

/* Whether any of the 8 bytes in x is a quote, a backslash, below 0x20 or above 0x7f: the
 * bytes valid_string() must look at one by one. Exact (the classic has-zero-byte and
 * has-less-than tests, for values up to 0x80), so a clean word is 8 plain bytes. */
static inline bool word_has_special(uint64_t x)
{
	const uint64_t ones = UINT64_C(0x0101010101010101), high = UINT64_C(0x8080808080808080);
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
	uint64_t zero_q = (q - ones) & ~q, zero_b = (b - ones) & ~b;
	uint64_t below = (x - ones * 0x20) & ~x;
	return ((zero_q | zero_b | below) & high) || (x & high);
}

static bool valid_string(struct jscan *s)
{
	const unsigned char *p = (const unsigned char *)s->p + 1;
	const unsigned char *end = (const unsigned char *)s->end;
	while (p < end) {
		/* Most text is plain ASCII: eight bytes a step. */
		while (end - p >= 8) {
			uint64_t x;
			memcpy(&x, p, 8);
			if (word_has_special(x))
				break;
			p += 8;
		}
		if (p >= end)
			break;
		unsigned char c = *p;
		if (c == '"') {
			s->p = (const char *)p + 1;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (p + 1 < end && p[1] == 'u') {
				size_t k;
				if (jscan_u_escape((const char *)p, (const char *)end, &k) < 0)
					return false;
				p += k;
				continue;
			}
			if (p + 1 >= end || !strchr("\"\\/bfnrt", p[1]) || p[1] == '\0')
				return false; /* anything else: jansson decides */
			p += 2;
			continue;
		}
		if (c < 0x80) {
			p++;
			continue;
		}
		size_t k = jscan_utf8_seq(p, (size_t)(end - p));
		if (!k)
			return false;
		p += k;
	}
	return false;
}

static bool valid_number(struct jscan *s)
{
	const char *p = s->p;
	size_t digits = 0;
	bool real = false;
	if (p < s->end && *p == '-')
		p++;
	if (p >= s->end || *p < '0' || *p > '9')
		return false;
	if (*p == '0')
		p++, digits++;
	else
		while (p < s->end && *p >= '0' && *p <= '9')
			p++, digits++;
	if (p < s->end && *p == '.') {
		p++;
		real = true;
		if (p >= s->end || *p < '0' || *p > '9')
			return false;
		while (p < s->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < s->end && (*p == 'e' || *p == 'E'))
		return false; /* exponents: jansson decides */
	if (digits > (real ? JSCAN_MAX_REAL_DIGITS : JSCAN_MAX_INT_DIGITS) ||
	    (p < s->end && !jscan_is_delim(*p)))
		return false;
	s->p = p;
	return true;
}

static bool valid_literal(struct jscan *s, const char *word, size_t n)
{
	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0 ||
	    (s->p + n < s->end && !jscan_is_delim(s->p[n])))
		return false;
	s->p += n;
	return true;
}

static bool valid_value(struct jscan *s, int depth)
{
	jscan_ws(s);
	if (s->p >= s->end)
		return false;
	switch (*s->p) {
	case '"':
		return valid_string(s);
	case 't':
		return valid_literal(s, "true", 4);
	case 'f':
		return valid_literal(s, "false", 5);
	case 'n':
		return valid_literal(s, "null", 4);
	case '[':
		if (depth >= JSCAN_VALIDATE_DEPTH)
			return false;
		s->p++;
		jscan_ws(s);
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return true;
		}
		for (;;) {
			if (!valid_value(s, depth + 1))
				return false;
			int m = jscan_after_element(s);
			if (m <= 0)
				return m == 0;
		}
	case '{':
		if (depth >= JSCAN_VALIDATE_DEPTH)
			return false;
		s->p++;
		jscan_ws(s);
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return true;
		}
		for (;;) {
			jscan_ws(s);
			if (s->p >= s->end || *s->p != '"' || !valid_string(s))
				return false;
			jscan_ws(s);
			if (s->p >= s->end || *s->p++ != ':' || !valid_value(s, depth + 1))
				return false;
			jscan_ws(s);
			if (s->p >= s->end)
				return false;
			if (*s->p == '}') {
				s->p++;
				return true;
			}
			if (*s->p++ != ',')
				return false;
		}
	default:
		return valid_number(s);
	}
}

bool jscan_valid_object(const char *text, size_t len)
{
	struct jscan s = {text, text + len};
	jscan_ws(&s);
	if (s.p >= s.end || *s.p != '{' || !valid_value(&s, 0))
		return false;
	jscan_ws(&s);
	return s.p == s.end;
}

/* The quoted member name at start..end is `name`, escapes decoded as jansson
 * would (a plain name is compared as it is). */
static bool name_is(const char *start, const char *end, const char *name)
{
	size_t n = strlen(name), len = (size_t)(end - start);
	if (len == n + 2 && memcmp(start + 1, name, n) == 0)
		return true;
	if (!memchr(start, '\\', len))
		return false;
	json_t *k = json_loadb(start, len, JSON_DECODE_ANY, NULL);
	bool yes = json_is_string(k) && strcmp(json_string_value(k), name) == 0;
	json_decref(k);
	return yes;
}

bool jscan_visit_member(const char *body, size_t len, const char *name,
                        bool (*visit)(struct jscan *s, void *ud), void *ud)
{
	struct jscan s = {body, body + len};
	jscan_ws(&s);
	if (s.p >= s.end || *s.p++ != '{')
		return false;
	jscan_ws(&s);
	if (s.p < s.end && *s.p == '}') {
		s.p++;
	} else {
		for (;;) {
			jscan_ws(&s);
			const char *ns = s.p;
			if (s.p >= s.end || *s.p != '"' || !jscan_skip_string(&s))
				return false;
			bool wanted = name_is(ns, s.p, name);
			jscan_ws(&s);
			if (s.p >= s.end || *s.p++ != ':')
				return false;
			jscan_ws(&s);
			if (s.p >= s.end || !(wanted ? visit(&s, ud) : jscan_skip_value(&s)))
				return false;
			jscan_ws(&s);
			if (s.p >= s.end)
				return false;
			if (*s.p == '}') {
				s.p++;
				break;
			}
			if (*s.p++ != ',')
				return false;
		}
	}
	jscan_ws(&s);
	return s.p == s.end;
}

struct span_of {
	const char **vs, **ve;
};

static bool note_span(struct jscan *s, void *ud)
{
	struct span_of *o = ud;
	const char *v = s->p;
	if (!jscan_skip_value(s))
		return false;
	*o->vs = v; /* the last one wins, as in jansson */
	*o->ve = s->p;
	return true;
}

bool jscan_find_member(const char *body, size_t len, const char *name, const char **vs,
                       const char **ve)
{
	struct span_of o = {vs, ve};
	*vs = *ve = NULL;
	return jscan_visit_member(body, len, name, note_span, &o);
}

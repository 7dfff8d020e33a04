/* schema.c - the two table schemas and how an API row becomes a BigQuery row.
 *
 * Coercion rules (the contract; tests/unit/test_schema.c pins every one):
 *
 *  - The API row must be a JSON object, or the row is refused.
 *  - A missing field and a JSON null both become null. The BigQuery row always carries every
 *    column of the schema, in schema order, and nothing else.
 *  - STRING: a JSON string is kept byte for byte (non-ASCII, escapes, embedded NUL). An integer
 *    becomes its decimal text ("2974300"). A real becomes the shortest decimal that reads back
 *    as the same double; an integral real within +-2^53 is printed without a fraction
 *    ("2974300.0" -> "2974300", -0.0 -> "0"). true/false become "true"/"false". An object or
 *    array is refused ("<column>: expected a scalar").
 *  - INTEGER: a JSON integer; an integral real within +-2^53; a string holding an integer,
 *    surrounding whitespace allowed, optional sign ("+3", "-2"), a fraction of zeros allowed
 *    ("2.0", "2."). A value beyond +-2^53 is sent as a JSON string of its decimal digits, as
 *    BigQuery asks for 64-bit integers that a double cannot hold. Out of the int64 range, a
 *    fraction, a non-integral or too large real, a boolean or any other text is refused.
 *  - FLOAT: a JSON integer or real; a string that strtod() parses completely once surrounding
 *    whitespace is trimmed (so "1e3" and "0x1p4" are numbers). NaN, infinities (also by
 *    overflow) and booleans are refused.
 *  - BOOLEAN: true/false; the strings "true"/"false" in any case, whitespace trimmed; the
 *    integers 1 and 0. Anything else (reals, "yes", "1") is refused.
 *  - An empty or all-whitespace string in an INTEGER, FLOAT or BOOLEAN column becomes null:
 *    the API has no other way to say "no value" in a text field, and refusing the whole row
 *    for it would dead-letter real sales.
 *  - A column with a parent (location) is read from that nested object. The parent missing or
 *    null makes all its columns null; a parent that is not an object is refused
 *    ("location: expected an object").
 *  - Fields that are no column (top level, or inside a parent, such as location.iso2) are
 *    ignored. Each distinct name is noted once per process at debug level: the name, never
 *    the value.
 *  - The key column is checked first: missing or null ("missing key uniqueCode"), empty,
 *    longer than SCHEMA_MAX_KEY_LEN bytes, or holding a control character (below 0x20, or
 *    0x7f) refuses the row.
 *  - A refusal names the column and the problem, never the value: values may be personal data
 *    (post codes), and the reason goes to the dead-letter file and to the log.
 *
 * Numbers are parsed and printed with the C library in the "C" locale; the daemon never calls
 * setlocale(). The module keeps one piece of process state, the set of unknown field names
 * already noted, and is not thread-safe because the daemon has a single thread.
 */
#include "autoconfig.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "keyset-internal.h"
#include "log.h"
#include "schema-internal.h"
#include "schema.h"
#include "util.h"

#define SCHEMA_MAX_NOTED_FIELDS 64 /* bounds the memory a hostile server can make us spend */
#define SCHEMA_NOTED_NAME_LEN   64

#define LOC "location"

static const struct schema_column sales_columns[] = {
        {"affiliate", SCHEMA_STRING, NULL, "affiliate"},
        {"currency", SCHEMA_STRING, NULL, "currency"},
        {"date", SCHEMA_STRING, NULL, "date"},
        {"deliveryMethod", SCHEMA_STRING, NULL, "deliveryMethod"},
        {"deviceModel", SCHEMA_STRING, NULL, "deviceModel"},
        {"deviceType", SCHEMA_STRING, NULL, "deviceType"},
        {"eventDate", SCHEMA_STRING, NULL, "eventDate"},
        {"eventId", SCHEMA_STRING, NULL, "eventId"},
        {"eventName", SCHEMA_STRING, NULL, "eventName"},
        {"faceValue", SCHEMA_FLOAT, NULL, "faceValue"},
        {"grossCost", SCHEMA_FLOAT, NULL, "grossCost"},
        {"grossFace", SCHEMA_FLOAT, NULL, "grossFace"},
        {"grossSales", SCHEMA_FLOAT, NULL, "grossSales"},
        {"isInternetOrder", SCHEMA_BOOLEAN, NULL, "isInternetOrder"},
        {"isPending", SCHEMA_BOOLEAN, NULL, "isPending"},
        {"country", SCHEMA_STRING, LOC, "country"},
        {"countryIso", SCHEMA_STRING, LOC, "countryIso"},
        {"postCode", SCHEMA_STRING, LOC, "postCode"},
        {"region1", SCHEMA_STRING, LOC, "region1"},
        {"region2", SCHEMA_STRING, LOC, "region2"},
        {"region3", SCHEMA_STRING, LOC, "region3"},
        {"region4", SCHEMA_STRING, LOC, "region4"},
        {"offerCode", SCHEMA_STRING, NULL, "offerCode"},
        {"partnerSite", SCHEMA_STRING, NULL, "partnerSite"},
        {"paymentMethod", SCHEMA_STRING, NULL, "paymentMethod"},
        {"priceId", SCHEMA_STRING, NULL, "priceId"},
        {"priceName", SCHEMA_STRING, NULL, "priceName"},
        {"salesChannel", SCHEMA_STRING, NULL, "salesChannel"},
        {"sold", SCHEMA_INTEGER, NULL, "sold"},
        {"source", SCHEMA_STRING, NULL, "source"},
        {"taxTotal", SCHEMA_FLOAT, NULL, "taxTotal"},
        {"ticketPrice", SCHEMA_FLOAT, NULL, "ticketPrice"},
        {"uniqueCode", SCHEMA_STRING, NULL, "uniqueCode"},
};

static const struct schema_column events_columns[] = {
        {"doorsOpen", SCHEMA_STRING, NULL, "doorsOpen"},
        {"id", SCHEMA_STRING, NULL, "id"},
        {"name", SCHEMA_STRING, NULL, "name"},
        {"promoterName", SCHEMA_STRING, NULL, "promoterName"},
        {"starts", SCHEMA_STRING, NULL, "starts"},
        {"timeslotEnabled", SCHEMA_BOOLEAN, NULL, "timeslotEnabled"},
        {"tourId", SCHEMA_STRING, NULL, "tourId"},
        {"tourName", SCHEMA_STRING, NULL, "tourName"},
        {"venueName", SCHEMA_STRING, NULL, "venueName"},
};

const struct schema schema_sales = {
        .feed = "sales",
        .key = "uniqueCode",
        .columns = sales_columns,
        .ncolumns = UTIL_ARRAY_SIZE(sales_columns),
};

const struct schema schema_events = {
        .feed = "events",
        .key = "id",
        .columns = events_columns,
        .ncolumns = UTIL_ARRAY_SIZE(events_columns),
};

static const struct schema_extra tracked_extra[] = {
        {SCHEMA_FINGERPRINT, "STRING"},
        {SCHEMA_OBSERVED_AT, "TIMESTAMP"},
};

const struct schema schema_sales_tracked = {
        .feed = "sales",
        .key = "uniqueCode",
        .columns = sales_columns,
        .ncolumns = UTIL_ARRAY_SIZE(sales_columns),
        .extra = tracked_extra,
        .nextra = 1,
};

const struct schema schema_events_tracked = {
        .feed = "events",
        .key = "id",
        .columns = events_columns,
        .ncolumns = UTIL_ARRAY_SIZE(events_columns),
        .extra = tracked_extra,
        .nextra = 1,
};

const struct schema schema_sales_changes = {
        .feed = "sales_changes",
        .key = "uniqueCode",
        .columns = sales_columns,
        .ncolumns = UTIL_ARRAY_SIZE(sales_columns),
        .extra = tracked_extra,
        .nextra = 2,
};

const struct schema schema_events_changes = {
        .feed = "events_changes",
        .key = "id",
        .columns = events_columns,
        .ncolumns = UTIL_ARRAY_SIZE(events_columns),
        .extra = tracked_extra,
        .nextra = 2,
};

uint64_t schema_fingerprint(const char *text, size_t len)
{
	/* The key is public: a fingerprint tells versions apart, it is no secret
	 * (whoever could forge a collision controls the row's content anyway). */
	static const uint8_t key[16] = "stbq-fingerprint";
	uint64_t h = keyset_siphash24(key, text, len);
	return h ? h : 1;
}

uint64_t schema_fingerprint_parse(const char *hex, size_t len)
{
	uint64_t v = 0;
	if (!hex || len != 16)
		return 0;
	for (size_t i = 0; i < 16; i++) {
		char c = hex[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	return v;
}

/* The original schema files declared these as TIMESTAMP; existing tables may still be so. */
static const char *const timestamp_ok_columns[] = {"date", "eventDate", "starts"};

static int fail(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *why, size_t len, const char *fmt, ...)
{
	if (why && len > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

bool schema_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

void schema_trim(const char **b, const char **e)
{
	while (*b < *e && schema_is_space(**b))
		(*b)++;
	while (*e > *b && schema_is_space((*e)[-1]))
		(*e)--;
}

/* --- unknown fields ---------------------------------------------------------------------- */

static char noted_names[SCHEMA_MAX_NOTED_FIELDS][SCHEMA_NOTED_NAME_LEN + 1];
static size_t noted_count;
static bool noted_full;

static void note_unknown(const char *feed, const char *parent, const char *name)
{
	char full[SCHEMA_NOTED_NAME_LEN + 1];

	snprintf(full, sizeof(full), "%s%s%s", parent ? parent : "", parent ? "." : "", name);
	/* A hostile name must not forge journal lines or break UTF-8 where it was cut. */
	for (char *p = full; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	for (size_t i = 0; i < noted_count; i++)
		if (strcmp(noted_names[i], full) == 0)
			return;
	if (noted_count == SCHEMA_MAX_NOTED_FIELDS) {
		if (!noted_full)
			log_debug("%s: more unknown API fields than %d; no longer noting them",
			          feed, SCHEMA_MAX_NOTED_FIELDS);
		noted_full = true;
		return;
	}
	memcpy(noted_names[noted_count++], full, sizeof(full));
	log_debug("%s: API field %s is not a table column; ignored", feed, full);
}

static bool is_parent(const struct schema *s, const char *name)
{
	for (size_t i = 0; i < s->ncolumns; i++)
		if (s->columns[i].parent && strcmp(s->columns[i].parent, name) == 0)
			return true;
	return false;
}

static bool is_source(const struct schema *s, const char *parent, const char *name)
{
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct schema_column *c = &s->columns[i];
		bool same_parent =
		        parent ? c->parent && strcmp(c->parent, parent) == 0 : !c->parent;
		if (same_parent && strcmp(c->source, name) == 0)
			return true;
	}
	return false;
}

static void note_unknown_fields(const struct schema *s, const json_t *api_row)
{
	const char *k;
	json_t *v;

	if (log_get_level() < LOG_DEBUG)
		return;
	/* jansson's iterators take a non-const object but do not modify it. */
	json_object_foreach((json_t *)api_row, k, v)
	{
		if (is_source(s, NULL, k))
			continue;
		if (!is_parent(s, k)) {
			note_unknown(s->feed, NULL, k);
			continue;
		}
		if (!json_is_object(v))
			continue;
		const char *nk;
		json_t *nv;
		json_object_foreach(v, nk, nv)
		{
			if (!is_source(s, k, nk))
				note_unknown(s->feed, k, nk);
		}
	}
}

/* --- value coercion ---------------------------------------------------------------------- */

bool schema_is_integral(double d)
{
	if (!isfinite(d))
		return false;
	if (d >= 0x1p63 || d <= -0x1p63)
		return true; /* doubles this large have no bits left for a fraction */
	return d == (double)(long long)d;
}

void schema_format_real(double d, char out[40])
{
	if (schema_is_integral(d) && d <= 0x1p53 && d >= -0x1p53) {
		snprintf(out, 40, "%lld", (long long)d); /* also turns -0.0 into "0" */
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, 40, "%.*g", prec, d);
		if (strtod(out, NULL) == d)
			return;
	}
}

/* A JSON integer for |v| <= 2^53, else a JSON string of its digits (BigQuery's rule). */
static json_t *integer_value(long long v)
{
	if (v > SCHEMA_EXACT_INT_MAX || v < -SCHEMA_EXACT_INT_MAX) {
		char buf[32];
		snprintf(buf, sizeof(buf), "%lld", v);
		return json_string(buf);
	}
	return json_integer(v);
}

int schema_parse_integer(const char *b, const char *e, long long *out)
{
	bool neg = false, overflow = false;
	long long v = 0;

	if (b < e && (*b == '+' || *b == '-'))
		neg = *b++ == '-';
	if (b == e || *b < '0' || *b > '9')
		return -EINVAL;
	for (; b < e && *b >= '0' && *b <= '9'; b++) {
		/* Accumulate negatively so that INT64_MIN itself fits. Past an overflow keep
		 * scanning: "99999999999999999999x" is not out of range but not an integer. */
		if (!overflow &&
		    (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, *b - '0', &v)))
			overflow = true;
	}
	if (b < e && *b == '.')
		for (b++; b < e && *b == '0'; b++)
			;
	if (b != e)
		return -EINVAL;
	if (overflow || (!neg && __builtin_mul_overflow(v, -1, &v)))
		return -ERANGE;
	*out = v;
	return 0;
}

static int coerce_string(const struct schema_column *c, const json_t *v, json_t **out, char *why,
                         size_t len)
{
	char buf[40];

	switch (json_typeof(v)) {
	case JSON_STRING:
		*out = json_stringn_nocheck(json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		*out = json_string(buf);
		break;
	case JSON_REAL:
		schema_format_real(json_real_value(v), buf);
		*out = json_string(buf);
		break;
	case JSON_TRUE:
		*out = json_string("true");
		break;
	case JSON_FALSE:
		*out = json_string("false");
		break;
	default:
		return fail(why, len, "%s: expected a scalar", c->name);
	}
	return *out ? 0 : -ENOMEM;
}

static int coerce_integer(const struct schema_column *c, const json_t *v, json_t **out, char *why,
                          size_t len)
{
	long long i;
	double d;
	const char *b, *e;
	int r;

	switch (json_typeof(v)) {
	case JSON_INTEGER:
		*out = integer_value(json_integer_value(v));
		break;
	case JSON_REAL:
		d = json_real_value(v);
		if (!schema_is_integral(d))
			return fail(why, len, "%s: not an integer", c->name);
		if (d > 0x1p53 || d < -0x1p53)
			return fail(why, len, "%s: real number too large to be an exact integer",
			            c->name);
		*out = json_integer((json_int_t)d);
		break;
	case JSON_STRING:
		b = json_string_value(v);
		e = b + json_string_length(v);
		schema_trim(&b, &e);
		if (b == e) {
			*out = json_null();
			break;
		}
		r = schema_parse_integer(b, e, &i);
		if (r == -ERANGE)
			return fail(why, len, "%s: integer out of range", c->name);
		if (r < 0)
			return fail(why, len, "%s: not an integer", c->name);
		*out = integer_value(i);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		return fail(why, len, "%s: not an integer", c->name);
	default:
		return fail(why, len, "%s: expected a scalar", c->name);
	}
	return *out ? 0 : -ENOMEM;
}

static int coerce_float(const struct schema_column *c, const json_t *v, json_t **out, char *why,
                        size_t len)
{
	double d;
	const char *b, *e;
	char *end;

	switch (json_typeof(v)) {
	case JSON_INTEGER:
		d = (double)json_integer_value(v);
		break;
	case JSON_REAL:
		d = json_real_value(v);
		break;
	case JSON_STRING:
		b = json_string_value(v);
		e = b + json_string_length(v);
		schema_trim(&b, &e);
		if (b == e) {
			*out = json_null();
			return 0;
		}
		/* strtod stops at the trailing whitespace or at an embedded NUL; either way a
		 * number that does not reach e is not the whole text. */
		d = strtod(b, &end);
		if (end != e)
			return fail(why, len, "%s: not a number", c->name);
		break;
	case JSON_TRUE:
	case JSON_FALSE:
		return fail(why, len, "%s: not a number", c->name);
	default:
		return fail(why, len, "%s: expected a scalar", c->name);
	}
	if (!isfinite(d))
		return fail(why, len, "%s: not a finite number", c->name);
	*out = json_real(d);
	return *out ? 0 : -ENOMEM;
}

static int coerce_boolean(const struct schema_column *c, const json_t *v, json_t **out, char *why,
                          size_t len)
{
	const char *b, *e;

	switch (json_typeof(v)) {
	case JSON_TRUE:
		*out = json_true();
		return 0;
	case JSON_FALSE:
		*out = json_false();
		return 0;
	case JSON_INTEGER:
		if (json_integer_value(v) == 1 || json_integer_value(v) == 0) {
			*out = json_boolean(json_integer_value(v) == 1);
			return 0;
		}
		break;
	case JSON_STRING:
		b = json_string_value(v);
		e = b + json_string_length(v);
		schema_trim(&b, &e);
		if (b == e) {
			*out = json_null();
			return 0;
		}
		if (e - b == 4 && strncasecmp(b, "true", 4) == 0) {
			*out = json_true();
			return 0;
		}
		if (e - b == 5 && strncasecmp(b, "false", 5) == 0) {
			*out = json_false();
			return 0;
		}
		break;
	case JSON_REAL:
		break;
	default:
		return fail(why, len, "%s: expected a scalar", c->name);
	}
	return fail(why, len, "%s: not a boolean", c->name);
}

/* The API value of one column, borrowed; NULL when absent. -EINVAL if its parent is no object. */
static int column_source(const struct schema_column *c, const json_t *api_row, const json_t **v,
                         char *why, size_t len)
{
	const json_t *holder = api_row;

	*v = NULL;
	if (c->parent) {
		holder = json_object_get(api_row, c->parent);
		if (!holder || json_is_null(holder))
			return 0;
		if (!json_is_object(holder))
			return fail(why, len, "%s: expected an object", c->parent);
	}
	*v = json_object_get(holder, c->source);
	return 0;
}

/* One column's BigQuery value as a new reference in *out (json_null() when absent). */
static int coerce_column(const struct schema_column *c, const json_t *api_row, json_t **out,
                         char *why, size_t len)
{
	const json_t *v;
	int r;

	*out = NULL;
	r = column_source(c, api_row, &v, why, len);
	if (r < 0)
		return r;
	if (!v || json_is_null(v)) {
		*out = json_null();
		return 0;
	}
	switch (c->type) {
	case SCHEMA_STRING:
		return coerce_string(c, v, out, why, len);
	case SCHEMA_INTEGER:
		return coerce_integer(c, v, out, why, len);
	case SCHEMA_FLOAT:
		return coerce_float(c, v, out, why, len);
	case SCHEMA_BOOLEAN:
		return coerce_boolean(c, v, out, why, len);
	}
	return fail(why, len, "%s: unknown column type", c->name);
}

static int check_key(const struct schema *s, const json_t *key, char *why, size_t len)
{
	const char *k = json_string_value(key);
	size_t n = json_string_length(key);

	if (!k)
		return fail(why, len, "missing key %s", s->key);
	if (n == 0)
		return fail(why, len, "empty key %s", s->key);
	if (n > SCHEMA_MAX_KEY_LEN)
		return fail(why, len, "key %s too long (over %d bytes)", s->key,
		            SCHEMA_MAX_KEY_LEN);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] == 0x7f)
			return fail(why, len, "key %s contains a control character", s->key);
	return 0;
}

int schema_coerce(const struct schema *s, const json_t *api_row, json_t **out, char *why,
                  size_t len)
{
	const struct schema_column *keycol = NULL;
	json_t *row = NULL, *key = NULL;
	int r;

	*out = NULL;
	if (why && len > 0)
		why[0] = '\0';
	if (!json_is_object(api_row))
		return fail(why, len, "%s row is not a JSON object", s->feed);
	note_unknown_fields(s, api_row);

	for (size_t i = 0; i < s->ncolumns && !keycol; i++)
		if (strcmp(s->columns[i].name, s->key) == 0)
			keycol = &s->columns[i];
	if (!keycol)
		return fail(why, len, "%s schema has no key column %s", s->feed, s->key);

	/* The key first: a row without a usable key is refused for that, whatever else is wrong. */
	r = coerce_column(keycol, api_row, &key, why, len);
	if (r == 0)
		r = check_key(s, key, why, len);
	if (r < 0)
		goto out;

	row = json_object();
	if (!row) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct schema_column *c = &s->columns[i];
		json_t *v;

		if (c == keycol) {
			v = key;
			key = NULL;
		} else {
			r = coerce_column(c, api_row, &v, why, len);
			if (r < 0)
				goto out;
		}
		if (json_object_set_new(row, c->name, v) < 0) { /* steals v, even on failure */
			r = -ENOMEM;
			goto out;
		}
	}
	*out = row;
	row = NULL;
	r = 0;
out:
	json_decref(key);
	json_decref(row);
	return r;
}

const char *schema_row_key(const struct schema *s, const json_t *bq_row)
{
	return json_string_value(json_object_get(bq_row, s->key));
}

static const char *type_name(enum schema_type t)
{
	switch (t) {
	case SCHEMA_STRING:
		return "STRING";
	case SCHEMA_INTEGER:
		return "INTEGER";
	case SCHEMA_FLOAT:
		return "FLOAT";
	case SCHEMA_BOOLEAN:
		return "BOOLEAN";
	}
	return "STRING";
}

json_t *schema_table_fields(const struct schema *s)
{
	json_t *fields = json_array();

	if (!fields)
		return NULL;
	for (size_t i = 0; i < s->ncolumns; i++) {
		json_t *f = json_pack("{s:s, s:s, s:s}", "name", s->columns[i].name, "type",
		                      type_name(s->columns[i].type), "mode", "NULLABLE");
		if (json_array_append_new(fields, f) < 0) { /* steals f; NULL f fails */
			json_decref(fields);
			return NULL;
		}
	}
	for (size_t i = 0; i < s->nextra; i++) {
		json_t *f = json_pack("{s:s, s:s, s:s}", "name", s->extra[i].name, "type",
		                      s->extra[i].type, "mode", "NULLABLE");
		if (json_array_append_new(fields, f) < 0) {
			json_decref(fields);
			return NULL;
		}
	}
	return json_pack("{s:o}", "fields", fields); /* "o" steals fields, also on failure */
}

static bool type_compatible(const struct schema_column *c, const char *t)
{
	static const char *const names[][2] = {
	        [SCHEMA_STRING] = {"STRING", NULL},
	        [SCHEMA_INTEGER] = {"INTEGER", "INT64"},
	        [SCHEMA_FLOAT] = {"FLOAT", "FLOAT64"},
	        [SCHEMA_BOOLEAN] = {"BOOLEAN", "BOOL"},
	};

	for (size_t i = 0; i < 2; i++)
		if (names[c->type][i] && strcmp(t, names[c->type][i]) == 0)
			return true;
	if (strcmp(t, "TIMESTAMP") == 0)
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(timestamp_ok_columns); i++)
			if (strcmp(c->name, timestamp_ok_columns[i]) == 0)
				return true;
	return false;
}

static bool is_type_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

int schema_check_table(const struct schema *s, const json_t *table_schema, char *why, size_t len)
{
	const json_t *fields = json_object_get(table_schema, "fields");

	if (why && len > 0)
		why[0] = '\0';
	if (!json_is_array(fields))
		return fail(why, len, "table %s: schema has no field list", s->feed);
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct schema_column *c = &s->columns[i];
		const json_t *found = schema_table_column(table_schema, c->name);
		if (!found)
			return fail(why, len, "table %s lacks column %s", s->feed, c->name);

		const char *type = json_string_value(json_object_get(found, "type"));
		const char *mode = json_string_value(json_object_get(found, "mode"));
		if (!type || !type_compatible(c, type)) {
			char shown[24] = "no type";
			if (type) {
				/* Shown to the operator; cut and tamed since it came over the wire. */
				snprintf(shown, sizeof(shown), "%s", type);
				for (char *p = shown; *p; p++)
					if (!is_type_char(*p))
						*p = '?';
			}
			return fail(why, len, "table %s column %s has %s, expected %s", s->feed,
			            c->name, shown, type_name(c->type));
		}
		if (mode && strcmp(mode, "REPEATED") == 0)
			return fail(why, len, "table %s column %s is REPEATED, expected NULLABLE",
			            s->feed, c->name);
	}
	for (size_t i = 0; i < s->nextra; i++) {
		const json_t *found = schema_table_column(table_schema, s->extra[i].name);
		const char *type = json_string_value(json_object_get(found, "type"));
		const char *mode = json_string_value(json_object_get(found, "mode"));
		if (!found)
			return fail(why, len, "table %s lacks column %s", s->feed,
			            s->extra[i].name);
		if (!type || strcmp(type, s->extra[i].type) != 0 ||
		    (mode && strcmp(mode, "REPEATED") == 0))
			return fail(why, len, "table %s column %s is not a NULLABLE %s", s->feed,
			            s->extra[i].name, s->extra[i].type);
	}
	return 0;
}

const json_t *schema_table_column(const json_t *table_schema, const char *name)
{
	const json_t *fields = json_object_get(table_schema, "fields");
	/* BigQuery column names are case-insensitive. */
	for (size_t j = 0; j < json_array_size(fields); j++) {
		const json_t *f = json_array_get(fields, j);
		const char *n = json_string_value(json_object_get(f, "name"));
		if (n && strcasecmp(n, name) == 0)
			return f;
	}
	return NULL;
}

/* --- time -------------------------------------------------------------------------------- */

/* Exactly n ASCII digits. Stops at the first non-digit, so never reads past a NUL. */
static bool take_digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		char ch = (*p)[i];
		if (ch < '0' || ch > '9')
			return false;
		v = v * 10 + (ch - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool take_char(const char **p, char c)
{
	if (**p != c)
		return false;
	(*p)++;
	return true;
}

static bool is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int schema_parse_time(const char *s, int64_t *out)
{
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
	const char *p = s;

	if (!p)
		return -EINVAL;
	if (!take_digits(&p, 4, &y) || !take_char(&p, '-') || !take_digits(&p, 2, &mo) ||
	    !take_char(&p, '-') || !take_digits(&p, 2, &d))
		return -EINVAL;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!take_digits(&p, 2, &h) || !take_char(&p, ':') || !take_digits(&p, 2, &mi))
			return -EINVAL;
		if (take_char(&p, ':')) {
			if (!take_digits(&p, 2, &sec))
				return -EINVAL;
			if (take_char(&p, '.') || take_char(&p, ',')) {
				if (*p < '0' || *p > '9')
					return -EINVAL;
				while (*p >= '0' && *p <= '9') /* below a second: dropped */
					p++;
			}
		}
		/* 60 admits a leap second; it counts as the next minute's first. */
		if (h > 23 || mi > 59 || sec > 60)
			return -EINVAL;
		if (take_char(&p, 'Z') || take_char(&p, 'z')) {
			/* UTC */
		} else if (*p == '+' || *p == '-') {
			sign = *p++ == '-' ? -1 : 1;
			if (!take_digits(&p, 2, &oh))
				return -EINVAL;
			/* "+01:00", "+0100" or "+01". */
			bool colon = take_char(&p, ':');
			if ((colon || *p) && !take_digits(&p, 2, &om))
				return -EINVAL;
			if (oh > 23 || om > 59)
				return -EINVAL;
		}
	}
	if (*p)
		return -EINVAL;
	*out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	return 0;
}

/* schema.h - the two BigQuery table schemas and the coercion of an API row into a BigQuery row.
 * The coercion rules are the contract; they are spelled out at the top of schema.c. */
#ifndef STBQ_SCHEMA_H
#define STBQ_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SCHEMA_MAX_KEY_LEN 1024 /* bytes; a longer key is refused, never truncated */

enum schema_type { SCHEMA_STRING, SCHEMA_INTEGER, SCHEMA_FLOAT, SCHEMA_BOOLEAN };

struct schema_column {
	const char *name; /* BigQuery column name */
	enum schema_type type;
	const char *parent; /* NULL, or the API row's nested object holding it ("location") */
	const char *source; /* field name in the API row (or in the parent object) */
};

/* A column the daemon fills itself, never from an API row: it exists in the
 * table (created, checked) but coercion never sees it. */
struct schema_extra {
	const char *name;
	const char *type; /* BigQuery's name of the type */
};

#define SCHEMA_FINGERPRINT "_fingerprint" /* 16 hex digits: schema_fingerprint() of the row */
#define SCHEMA_OBSERVED_AT "_observed_at" /* when a changed version was seen */

struct schema {
	const char *feed; /* "sales" / "events" ("sales_changes", ... for changed rows) */
	const char *key;  /* key column: "uniqueCode" / "id" */
	const struct schema_column *columns;
	size_t ncolumns;
	const struct schema_extra *extra; /* after the columns, in tables only */
	size_t nextra;
};

extern const struct schema schema_sales;
extern const struct schema schema_events;
/* With track_changes: the base table has _fingerprint too, and TABLE_changes
 * holds the changed versions with _fingerprint and _observed_at. Coercion
 * with these is coercion with the plain schemas. */
extern const struct schema schema_sales_tracked;
extern const struct schema schema_events_tracked;
extern const struct schema schema_sales_changes;
extern const struct schema schema_events_changes;

/* The fingerprint of a coerced row's compact text: SipHash-2-4 under a fixed,
 * published key, so that every process and every version of the daemon
 * computes the same one (it is stored in BigQuery). Never 0, which stands for
 * "no fingerprint known". */
uint64_t schema_fingerprint(const char *text, size_t len);
/* "0123456789abcdef" (as stored in _fingerprint) -> fingerprint; 0 when it is
 * not 16 lowercase hex digits. */
uint64_t schema_fingerprint_parse(const char *hex, size_t len);

/* Coerce one API row into a BigQuery row: a JSON object with exactly the schema's column names,
 * absent values null. Borrows api_row. Returns 0 and a new reference in *out; -EINVAL with a
 * reason in why (naming the column, never a field value: values may be personal data); -ENOMEM.
 * why may be NULL. */
int schema_coerce(const struct schema *s, const json_t *api_row, json_t **out, char *why,
                  size_t len);
/* schema_coerce() from the API row's JSON text to the BigQuery row's JSON_COMPACT text,
 * byte for byte what json_dumps() of schema_coerce()'s row gives, without building either
 * tree. 1: the row is appended to `out` (no newline) and *key, *klen give the key's bytes
 * (borrowed from `text`); 0: nothing appended, the caller reads the row with jansson and
 * calls schema_coerce() (the text may be malformed, refused, or just beyond what this path
 * vouches for: schema-text.c says what); -ENOMEM. */
struct buf;
int schema_coerce_text(const struct schema *s, const char *text, size_t len, struct buf *out,
                       const char **key, size_t *klen);
/* The key string of a coerced row (borrowed from it), NULL if absent. */
const char *schema_row_key(const struct schema *s, const json_t *bq_row);
/* {"fields":[{"name","type","mode":"NULLABLE"}...]} for tables.insert; new reference, NULL on
 * out of memory. */
json_t *schema_table_fields(const struct schema *s);
/* Check a table's schema (the "schema" object of a tables.get reply, borrowed) has every column
 * with a compatible type. 0, or -EINVAL with the first missing or mismatched column named in why. */
int schema_check_table(const struct schema *s, const json_t *table_schema, char *why, size_t len);
/* The field of a table's schema (borrowed) named `name`, case-insensitively, or NULL. */
const json_t *schema_table_column(const json_t *table_schema, const char *name);
/* Parse an ISO-8601 date-time ("2026-12-01T19:30:00Z", "+01:00" offsets, no zone = UTC,
 * fractional seconds, "2026-12-01 19:30:00", a bare date "2026-12-01") into Unix seconds.
 * 0 or -EINVAL. */
int schema_parse_time(const char *s, int64_t *out);

#endif

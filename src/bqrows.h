/* bqrows.h - the rows of a BigQuery query result page, read without a tree.
 *
 * Seeding reads every key of a table: a page of 25 000 rows as a jansson tree
 * costs ~20 MB and four mallocs a row, only to copy out one or two strings
 * per row. Here the reply is split: what the caller reads of it
 * (jobComplete, pageToken, totalRows, errors, jobReference) is parsed by
 * jansson without its "rows", and the rows are scanned in place (jscan.h),
 * each value handed over as it is when it is a plain string, or decoded by
 * jansson when it has escapes. bqrows_each_tree() is the same from a tree:
 * the reference the fuzz target holds the scan against. */
#ifndef STBQ_BQROWS_H
#define STBQ_BQROWS_H

#include <jansson.h>
#include <stddef.h>

#include "util.h"

/* One row of query results: values[i] is the i-th cell as a string, NULL for
 * SQL NULL; lens[i] its length. Return nonzero to stop early (returned). */
typedef int (*bq_row_fn)(const char *const *values, const size_t *lens, size_t n, void *userdata);

/* Scratch space reused from row to row: {0} to start, bqrows_clear() after. */
struct bqrows {
	const char **values;
	size_t *lens;
	long *offs; /* where each value starts in `copy`, -1 for null */
	size_t cap;
	struct buf copy; /* one row's values, NUL-terminated */
};

void bqrows_clear(struct bqrows *r);

/* Split a reply body: *rest is the reply parsed by jansson with "rows": null
 * in place of its rows, *rows and *rows_len the span of the rows' value (NULL, 0
 * when absent). 0; -EPROTO when the body is not one well-formed JSON object;
 * -ENOMEM. */
int bqrows_split(const char *body, size_t len, json_t **rest, const char **rows, size_t *rows_len);

/* Hand each row of the "rows" value at rows..rows+len to fn: `null` holds
 * none. 0, what fn returned, -EPROTO (not an array of {"f":[{"v":...}]} with
 * string or null values), or -ENOMEM. *delivered counts the rows fn took. */
int bqrows_each(struct bqrows *r, const char *rows, size_t len, bq_row_fn fn, void *userdata,
                size_t *delivered);

/* The same from a whole reply as a jansson tree. */
int bqrows_each_tree(struct bqrows *r, const json_t *reply, bq_row_fn fn, void *userdata,
                     size_t *delivered);

#endif

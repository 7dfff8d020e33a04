/* bigquery-internal.h - the pure parts of the BigQuery client, exposed for the unit tests and
 * the test driver. Not for other modules: they use bigquery.h. */
#ifndef STBQ_BIGQUERY_INTERNAL_H
#define STBQ_BIGQUERY_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "bigquery.h"
#include "util.h"

#define BQ_LOAD_MAX_BYTES    (4u << 20) /* NDJSON per load job, below the 5 MiB multipart guidance */
#define BQ_LOAD_MAX_NEW_JOBS 32 /* new load jobs one bq_insert may start (daily table quota) */
#define BQ_LOAD_JOB_ATTEMPTS 3  /* fresh failures (backendError...) of one chunk per call */
#define BQ_LOAD_MAX_ATTEMPT_IDS                                                                    \
	100                  /* "_rN" suffixes tried, counting old failed jobs found by 409 */
#define BQ_JOB_404_RETRIES 5 /* jobs.get 404 right after a 409 (python-bigquery#2134) */
#define BQ_JOB_404_WAIT_MS 1000
#define BQ_RESEND_BASE_MS  1000 /* first pause before resending rows with transient errors */
/* insertId de-duplication is best effort for about a minute. Every send of a
 * streaming batch within one bq_insert starts inside this span of its first
 * send, and a send takes at most BQ_STREAM_TIMEOUT_S; past that, the caller
 * asks BigQuery what it holds before sending the rows again. */
#define BQ_STREAM_SPAN_MS   25000
#define BQ_STREAM_TIMEOUT_S 30
#define BQ_JOB_ID_TABLE_MAX 200 /* characters of the table name inside a job id */
#define BQ_JOB_ID_MAX       (5 + BQ_JOB_ID_TABLE_MAX + 9 + 1 + 40 + 12 + 1)
#define BQ_UUID_LEN         36
#define BQ_BOUNDARY_MAX     64
#define BQ_REASON_LEN       160 /* == sizeof(struct bq_row_status.reason) */

/* insertAll envelope around the comma-separated row entries. */
#define BQ_INSERT_PREFIX "{\"skipInvalidRows\":false,\"ignoreUnknownValues\":false,\"rows\":["
#define BQ_INSERT_SUFFIX "]}"

/* How many of the rows idx[0..n) (lens[idx[j]] bytes each; idx NULL means 0..n-1) go into the
 * next request: at most max_rows, and overhead + the rows + (count - 1) * sep bytes at most
 * max_bytes. Always at least 1 when n > 0: a row too large on its own goes alone. */
size_t bq_batch_plan(const size_t *lens, const size_t *idx, size_t n, size_t max_rows,
                     size_t max_bytes, size_t overhead, size_t sep);

enum bq_verdict {
	BQ_VERDICT_OK = 0,  /* not listed: stored */
	BQ_VERDICT_STOPPED, /* fine, not written because another row failed: resend at once */
	BQ_VERDICT_RETRY,   /* timeout, backendError, internalError or unknown: resend later */
	BQ_VERDICT_INVALID, /* the row itself is bad: never resend */
};

struct bq_row_verdict {
	enum bq_verdict verdict;
	char reason[BQ_REASON_LEN]; /* for INVALID: "location: message", values removed */
};

/* Read an insertAll reply's insertErrors for a request of n rows into out[0..n) (which it
 * clears first). Entries may come in any order and a row may carry several errors: invalid
 * beats a transient reason, which beats stopped. Returns the number of rows with errors, or
 * -EPROTO when the shape is wrong (an index out of range, not an array...). */
int bq_parse_insert_errors(const json_t *reply, struct bq_row_verdict *out, size_t n);

/* A dead-letter reason from an error's location and message that cannot carry row values:
 * known prefixes dropped, the message cut at its first ':' or ';', quoted parts replaced by
 * "...", control characters removed; the location is taken from "Field: x" when empty.
 * "eventDate: Invalid timestamp string \"...\"". Always NUL-terminated. */
void bq_row_reason(const char *location, const char *message, char *out, size_t len);

/* True for a reply that means "this request is too big": HTTP 413 (whatever the body), or a
 * 400 whose message says the payload size or the row count exceeds the limit. *rows tells
 * which: true for "too many rows". */
bool bq_is_too_large(long status, const char *message, bool *rows);

/* The load job id for NDJSON content: "stbq_" TABLE "_" first 40 hex digits of SHA-256(data),
 * plus "_r" ATTEMPT when attempt > 0. Characters of the table outside [A-Za-z0-9_-] become
 * '_' (and then 8 hex digits of the name's own hash are added, so that two tables never share
 * ids). 0, or -EINVAL when out is too small. */
int bq_load_job_id(const char *table, const void *data, size_t len, unsigned attempt, char *out,
                   size_t outlen);

/* The insertId for a row key: the key itself when it fits BigQuery's 128 characters, else
 * "sha256:" and the key's SHA-256 in hex (still one id per key, so resends still match).
 * Returns out. */
#define BQ_INSERT_ID_MAX 128
const char *bq_insert_id(const char *key, char out[BQ_INSERT_ID_MAX + 1]);

/* A fresh random multipart boundary (letters and digits), NUL-terminated. */
void bq_multipart_boundary(char out[BQ_BOUNDARY_MAX]);
/* The multipart/related body of google-apis.md 2.4: the JSON metadata part, then the media
 * part, then the closing delimiter. -EEXIST when the boundary occurs in either part (pick
 * another), -ENOMEM. Appends to out. */
int bq_multipart_build(const char *boundary, const char *meta, size_t meta_len, const void *data,
                       size_t data_len, struct buf *out);

/* A random (version 4) UUID in lower-case 8-4-4-4-12 form. */
void bq_uuid4(char out[BQ_UUID_LEN + 1]);

/* Tests shorten the load-job polling period, the wait cap for a job and the first pause before
 * resending rows (milliseconds; <= 0 keeps the default). */
void bq_set_timing(struct bq *b, long poll_ms, long max_wait_ms, long resend_base_ms);

#endif

/* bigquery.h - the BigQuery v2 REST client: datasets, tables, seeding queries,
 * streaming inserts and load jobs. Every call goes through gapi_call() (token,
 * one refresh on 401) and http_send() (retries per the shared classifier). */
#ifndef STBQ_BIGQUERY_H
#define STBQ_BIGQUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "bqrows.h"
#include "config.h"
#include "gauth.h"
#include "http.h"
#include "schema.h"

#define BQ_MAX_ROWS_PER_INSERT  50000    /* API hard limit; config batch_rows <= this */
#define BQ_MAX_BYTES_PER_INSERT 10000000 /* 10 MB request limit                    */
#define BQ_SEED_PAGE_ROWS                                                                          \
	25000                       /* maxResults for seeding pages: a parsed page
                                            costs ~0.8 KiB a row, so this bounds the
                                            peak at ~20 MiB; 1M keys take 40 pages */
#define BQ_QUERY_TIMEOUT_MS  10000  /* jobs.query / getQueryResults wait hint */
#define BQ_ROW_RESEND_ROUNDS 5      /* resends of stopped/timeout rows per call */
#define BQ_JOB_POLL_MS       2000   /* jobs.get polling period                */
#define BQ_JOB_MAX_WAIT_MS   600000 /* give up waiting for one load job       */

struct bq;

struct bq_options {
	const char *endpoint; /* "https://bigquery.googleapis.com" (no trailing slash) */
	const char *project;
	const char *dataset;
	const char *
	        location; /* from config; replaced by the dataset's real location after bq_check_dataset */
	enum config_insert_method method;
	size_t batch_rows;
	size_t batch_bytes;
	/* Every send of one streaming batch starts within this many ms of its
	 * first, so that insertId still de-duplicates; 0: BQ_STREAM_SPAN_MS.
	 * Keep it well under the caller's trust in the de-duplication window. */
	long stream_span_ms;
	struct gauth *auth;               /* borrowed */
	struct http_client *http;         /* borrowed */
	const struct http_policy *policy; /* borrowed */
};

struct bq *bq_new(const struct bq_options *o); /* NULL on ENOMEM */
void bq_free(struct bq *b);                    /* accepts NULL */

/* datasets.get: the dataset exists and its location is recorded for jobs.
 * Logs an actionable error (missing dataset / permission) and returns
 * negative errno on failure. */
int bq_check_dataset(struct bq *b);

/* tables.get; if missing and `create`, tables.insert with the schema (409 =
 * exists, fine); with `create`, columns of s->extra the table lacks are added
 * (tables.patch); then schema_check_table(). Negative errno with a logged,
 * actionable error (which table, which column, which permission). */
int bq_ensure_table(struct bq *b, const char *table, const struct schema *s, bool create);
/* bq_ensure_table(), but a table it creates gets the columns of `like` (a
 * table's "schema", borrowed; NULL: the schema's) plus s's extra ones, and
 * with schema_out the table's schema (a new reference) on success. */
int bq_ensure_table_like(struct bq *b, const char *table, const struct schema *s,
                         const json_t *like, bool create, json_t **schema_out);
/* The same for a view: created with `sql` (standard SQL) when missing and
 * `create`; an existing view with another definition gets this one (with
 * create) or is an error (without). */
int bq_ensure_view(struct bq *b, const char *view, const char *sql, const char *feed, bool create);

/* jobs.query (standard SQL, location, requestId) then getQueryResults pages
 * by pageToken (polling while jobComplete is false), calling fn for each row
 * as pages arrive; never holds more than one page. `progress` (may be NULL)
 * is called once before the first row with 0 and the job's totalRows, then
 * after each page with the rows delivered so far (total is SIZE_MAX when the
 * job did not say). */
int bq_query(struct bq *b, const char *sql, bq_row_fn fn, void *userdata,
             void (*progress)(size_t rows_so_far, size_t total, void *userdata));
/* bq_query with named parameters: `params` (borrowed) is the request's
 * queryParameters array, e.g. from bq_param_strings(). */
int bq_query_params(struct bq *b, const char *sql, const json_t *params, bq_row_fn fn,
                    void *userdata,
                    void (*progress)(size_t rows_so_far, size_t total, void *userdata));
/* A queryParameters array of one ARRAY<STRING> parameter `name`. NULL on ENOMEM. */
json_t *bq_param_strings(const char *name, const char *const *values, size_t n);

/* A row as BigQuery gets it: the text of one JSON object, as spooled. It goes
 * into the insertAll body and the load job's NDJSON as it is: the spool line
 * already is the coerced row's compact JSON, so it is never parsed again on
 * its way out. The caller vouches that it is valid JSON (jansson read it, or
 * jscan_valid_object() said so). */
struct bq_text {
	const char *json;
	size_t len;
};

enum bq_row_state {
	BQ_ROW_PENDING = 0, /* not confirmed (yet): keep it spooled */
	BQ_ROW_DONE,        /* BigQuery confirmed it */
	BQ_ROW_INVALID,     /* BigQuery rejected the row itself: dead-letter it */
};

struct bq_row_status {
	enum bq_row_state state;
	char reason[160]; /* for INVALID: "location: message" from insertErrors / errorResult */
};

/* Insert rows (their JSON text, borrowed) into `table`, using keys[i] as
 * insertId (streaming) or folding the batch content into the job id (load).
 * Splits by batch_rows / batch_bytes; on "payload too large" (400 or 413)
 * splits in half and resends; a single row too large is INVALID. Streaming:
 * per-row insertErrors: invalid -> INVALID, stopped/timeout/backendError ->
 * resent unchanged (up to BQ_ROW_RESEND_ROUNDS). Load: 409 duplicate ->
 * jobs.get; a failed job with reason invalid is bisected to find the bad rows.
 * status[i] is set for every row. Returns 0 when no row is left PENDING,
 * otherwise the negative errno of the failure that stopped it (-EAGAIN
 * transient, -EACCES permission, -ENOENT table missing, -ECANCELED). */
int bq_insert(struct bq *b, const char *table, const struct bq_text *rows, const char *const *keys,
              size_t n, struct bq_row_status *status);
/* bq_insert by the given method rather than the configured one: rows already
 * sent by load jobs keep being sent by load jobs (see spool.h). Rows left
 * PENDING only because BigQuery kept answering stopped/timeout/backendError
 * for them after every resend give -ETIMEDOUT: BigQuery itself answered, so
 * other batches may still go. */
int bq_insert_as(struct bq *b, enum config_insert_method method, const char *table,
                 const struct bq_text *rows, const char *const *keys, size_t n,
                 struct bq_row_status *status);

/* Counters since start, for metrics and logs. */
struct bq_stats {
	unsigned long requests, retries, rows_sent, rows_invalid, splits;
};
void bq_get_stats(const struct bq *b, struct bq_stats *out);

#endif

/* bigquery.c - the BigQuery v2 REST client.
 *
 * Every request goes through gapi_call() (bearer token, one refresh on 401) and so through
 * http_send() (backoff on 429/5xx/transport errors and on 403 rateLimitExceeded). What is left
 * here is what only BigQuery's own semantics can decide:
 *
 * - insertAll answers 200 with per-row insertErrors: invalid rows are dead letters, stopped
 *   and transient rows go again with the same insertId, so a lost acknowledgement costs
 *   nothing (BigQuery drops the repeat by insertId);
 * - a request that is too big is split in halves, a single row that is too big is invalid;
 * - load jobs get a job id derived from their content, so a resubmission after a lost reply
 *   meets 409 duplicate and follows the job that already exists instead of loading twice;
 *   a failed job cannot be re-run under its id, so re-runs get an "_rN" suffix; a job that
 *   failed on bad data is split until the bad rows stand alone;
 * - query results are read one page at a time and never held whole.
 *
 * Row contents are personal data: no log line carries a value, only counts, table names, job
 * ids, reasons, and messages cut before the value they might quote. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "bigquery-internal.h"
#include "gapi.h"
#include "log.h"
#include "url.h"
#include "util.h"

#define BQ_DEFAULT_BATCH_ROWS  500
#define BQ_DEFAULT_BATCH_BYTES 9000000
#define BQ_QUERY_FAST_POLL_MS  1000 /* a poll answered sooner than this did not wait ...  */
#define BQ_QUERY_PAUSE_MS      250  /* ... so pause this long before the next one        */
#define BQ_BOUNDARY_TRIES      8

struct bq {
	char *endpoint;
	char *project, *dataset, *location;
	char *project_esc, *dataset_esc;
	enum config_insert_method method;
	size_t batch_rows, batch_bytes;
	/* Limits learnt from "too large" answers, so later requests are not refused again. */
	size_t cap_rows, cap_bytes;
	long job_poll_ms, job_max_wait_ms;
	long resend_base_ms;
	long stream_span_ms; /* every send of a batch starts within this of its first */
	struct gauth *auth;
	struct http_client *http;
	const struct http_policy *policy;
	struct bq_stats stats;
};

/* ---- pure helpers ------------------------------------------------------------------------ */

size_t bq_batch_plan(const size_t *lens, const size_t *idx, size_t n, size_t max_rows,
                     size_t max_bytes, size_t overhead, size_t sep)
{
	size_t total = overhead, k = 0;

	if (n == 0)
		return 0;
	while (k < n && k < max_rows) {
		size_t l = lens[idx ? idx[k] : k] + (k ? sep : 0);
		if (k > 0 && (total > max_bytes || l > max_bytes - total))
			break;
		total += l;
		k++;
	}
	return k ? k : 1;
}

static void hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 0x0f];
	}
	out[2 * n] = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -EIO;
	hex_encode(md, 32, out);
	return 0;
}

static void random_bytes(unsigned char *p, size_t n)
{
	if (RAND_bytes(p, (int)n) == 1)
		return;
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)util_random_u32();
}

void bq_uuid4(char out[BQ_UUID_LEN + 1])
{
	unsigned char b[16];
	char hex[33];
	random_bytes(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	hex_encode(b, sizeof(b), hex);
	snprintf(out, BQ_UUID_LEN + 1, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
	         hex + 16, hex + 20);
}

void bq_multipart_boundary(char out[BQ_BOUNDARY_MAX])
{
	unsigned char b[16];
	char hex[33];
	random_bytes(b, sizeof(b));
	hex_encode(b, sizeof(b), hex);
	snprintf(out, BQ_BOUNDARY_MAX, "stbq%s", hex);
}

int bq_multipart_build(const char *boundary, const char *meta, size_t meta_len, const void *data,
                       size_t data_len, struct buf *out)
{
	size_t bl = strlen(boundary);
	if (bl == 0 || memmem(meta, meta_len, boundary, bl) || memmem(data, data_len, boundary, bl))
		return -EEXIST;
	if (buf_printf(out, "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n",
	               boundary) < 0 ||
	    buf_append(out, meta, meta_len) < 0 ||
	    buf_printf(out, "\r\n--%s\r\nContent-Type: application/octet-stream\r\n\r\n",
	               boundary) < 0 ||
	    buf_append(out, data, data_len) < 0 || buf_printf(out, "\r\n--%s--", boundary) < 0)
		return -ENOMEM;
	return 0;
}

static bool job_id_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

int bq_load_job_id(const char *table, const void *data, size_t len, unsigned attempt, char *out,
                   size_t outlen)
{
	char hash[65], tname[BQ_JOB_ID_TABLE_MAX + 10];
	size_t n = 0;
	bool changed = false;

	if (!table || !out || outlen == 0 || sha256_hex(data, len, hash) < 0)
		return -EINVAL;
	for (const char *p = table; *p; p++) {
		if (n == BQ_JOB_ID_TABLE_MAX) {
			changed = true;
			break;
		}
		tname[n++] = job_id_char(*p) ? *p : '_';
		changed |= !job_id_char(*p);
	}
	tname[n] = '\0';
	if (changed) {
		/* "sales$1" and "sales%1" must not share ids: the name's own hash keeps them apart. */
		char th[65];
		if (sha256_hex(table, strlen(table), th) < 0)
			return -EINVAL;
		snprintf(tname + n, sizeof(tname) - n, "_%.8s", th);
	}
	int w = attempt ? snprintf(out, outlen, "stbq_%s_%.40s_r%u", tname, hash, attempt)
	                : snprintf(out, outlen, "stbq_%s_%.40s", tname, hash);
	if (w < 0 || (size_t)w >= outlen) {
		out[0] = '\0';
		return -EINVAL;
	}
	return 0;
}

const char *bq_insert_id(const char *key, char out[BQ_INSERT_ID_MAX + 1])
{
	char hex[65];
	/* BigQuery counts characters; bytes are never fewer, so this errs on the safe side. */
	if (strlen(key) <= BQ_INSERT_ID_MAX || sha256_hex(key, strlen(key), hex) < 0)
		snprintf(out, BQ_INSERT_ID_MAX + 1, "%s", key);
	else
		snprintf(out, BQ_INSERT_ID_MAX + 1, "sha256:%s", hex);
	return out;
}

bool bq_is_too_large(long status, const char *message, bool *rows)
{
	bool dummy;
	if (!rows)
		rows = &dummy;
	*rows = false;
	if (status == 413)
		return true;
	if (status != 400 || !message)
		return false;
	if (strcasestr(message, "too many rows")) {
		*rows = true;
		return true;
	}
	return strcasestr(message, "payload size") || strcasestr(message, "request too large") ||
	       strcasestr(message, "entity too large");
}

static bool ident_char(char c)
{
	return job_id_char(c) || c == '.' || c == '[' || c == ']';
}

/* Copy at most len-1 identifier characters of s: locations and field names only. */
static void copy_ident(const char *s, char *out, size_t len)
{
	size_t n = 0;
	while (s && *s && ident_char(*s) && n + 1 < len)
		out[n++] = *s++;
	out[n] = '\0';
}

void bq_row_reason(const char *location, const char *message, char *out, size_t len)
{
	static const char *const prefixes[] = {
	        "Error while reading data, error message: ",
	        "JSON parsing error in row starting at position ",
	};
	char loc[64] = "", phrase[BQ_REASON_LEN];
	const char *m = message ? message : "";
	size_t o = 0;
	bool from_field = false;

	if (!out || len == 0)
		return;
	for (bool again = true; again;) {
		again = false;
		while (*m == ' ')
			m++;
		for (size_t i = 0; i < UTIL_ARRAY_SIZE(prefixes); i++) {
			size_t pl = strlen(prefixes[i]);
			if (strncmp(m, prefixes[i], pl) == 0) {
				m += pl;
				while (isdigit((unsigned char)*m))
					m++;
				if (*m == ':')
					m++;
				again = true;
			}
		}
	}
	copy_ident(location, loc, sizeof(loc));
	if (!loc[0] && message) {
		const char *f = strstr(message, "Field: ");
		if (f) {
			copy_ident(f + 7, loc, sizeof(loc));
			from_field = loc[0] != '\0';
		}
	}

	/* The phrase before the first ':' or ';' names the problem; what follows is often the
	 * offending value. Quoted runs inside the phrase are values too. */
	for (const char *p = m; *p && *p != ':' && *p != ';' && o + 8 < sizeof(phrase); p++) {
		bool quote =
		        *p == '"' || (*p == '\'' && (p == m || !isalnum((unsigned char)p[-1])));
		if (quote) {
			const char *end = strchr(p + 1, *p);
			memcpy(phrase + o, "\"...\"", 5);
			o += 5;
			if (!end)
				break;
			p = end;
			continue;
		}
		phrase[o++] = iscntrl((unsigned char)*p) ? ' ' : *p;
	}
	phrase[o] = '\0';
	if (from_field && o >= 6 && strcmp(phrase + o - 6, " Field") == 0)
		phrase[o -= 6] = '\0';
	while (o > 0 && (phrase[o - 1] == ' ' || phrase[o - 1] == '.'))
		phrase[--o] = '\0';
	const char *text = o ? phrase : "invalid";
	if (loc[0])
		snprintf(out, len, "%s: %s", loc, text);
	else
		snprintf(out, len, "%s", text);
}

static int verdict_rank(enum bq_verdict v)
{
	switch (v) {
	case BQ_VERDICT_INVALID:
		return 3;
	case BQ_VERDICT_RETRY:
		return 2;
	case BQ_VERDICT_STOPPED:
		return 1;
	default:
		return 0;
	}
}

int bq_parse_insert_errors(const json_t *reply, struct bq_row_verdict *out, size_t n)
{
	const json_t *list = json_object_get(reply, "insertErrors");
	size_t i, count = 0;
	const json_t *entry;

	for (size_t j = 0; j < n; j++)
		out[j] = (struct bq_row_verdict){.verdict = BQ_VERDICT_OK};
	if (!json_is_object(reply))
		return -EPROTO;
	if (!list || json_is_null(list))
		return 0;
	if (!json_is_array(list))
		return -EPROTO;
	json_array_foreach(list, i, entry)
	{
		const json_t *jidx = json_object_get(entry, "index");
		const json_t *errs = json_object_get(entry, "errors");
		long long index = -1;
		if (json_is_integer(jidx)) {
			index = json_integer_value(jidx);
		} else if (json_is_string(jidx)) {
			/* uint32 in the discovery document; accept it quoted as well. */
			char *end;
			const char *s = json_string_value(jidx);
			index = isdigit((unsigned char)s[0]) ? strtoll(s, &end, 10) : -1;
			if (index >= 0 && *end)
				index = -1;
		}
		if (index < 0 || (unsigned long long)index >= n)
			return -EPROTO;
		struct bq_row_verdict *v = &out[index];
		if (v->verdict == BQ_VERDICT_OK)
			count++;
		size_t nerr = json_is_array(errs) ? json_array_size(errs) : 0;
		if (nerr == 0 && verdict_rank(v->verdict) < verdict_rank(BQ_VERDICT_RETRY))
			v->verdict = BQ_VERDICT_RETRY; /* listed without a reason: unknown */
		for (size_t e = 0; e < nerr; e++) {
			const json_t *err = json_array_get(errs, e);
			const char *reason = json_string_value(json_object_get(err, "reason"));
			enum bq_verdict nv = BQ_VERDICT_RETRY;
			if (reason && strcmp(reason, "invalid") == 0)
				nv = BQ_VERDICT_INVALID;
			else if (reason && strcmp(reason, "stopped") == 0)
				nv = BQ_VERDICT_STOPPED;
			if (nv == BQ_VERDICT_INVALID && v->verdict != BQ_VERDICT_INVALID)
				bq_row_reason(json_string_value(json_object_get(err, "location")),
				              json_string_value(json_object_get(err, "message")),
				              v->reason, sizeof(v->reason));
			if (verdict_rank(nv) > verdict_rank(v->verdict))
				v->verdict = nv;
		}
	}
	return (int)count;
}

/* ---- object ------------------------------------------------------------------------------ */

struct bq *bq_new(const struct bq_options *o)
{
	if (!o || !o->endpoint || !o->project || !o->dataset || !o->auth || !o->http) {
		errno = EINVAL;
		return NULL;
	}
	struct bq *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->endpoint = strdup(o->endpoint);
	b->project = strdup(o->project);
	b->dataset = strdup(o->dataset);
	b->location = o->location && o->location[0] ? strdup(o->location) : NULL;
	b->project_esc = url_escape(o->project);
	b->dataset_esc = url_escape(o->dataset);
	if (!b->endpoint || !b->project || !b->dataset || !b->project_esc || !b->dataset_esc ||
	    (o->location && o->location[0] && !b->location)) {
		bq_free(b);
		return NULL;
	}
	size_t el = strlen(b->endpoint);
	while (el > 0 && b->endpoint[el - 1] == '/')
		b->endpoint[--el] = '\0';
	b->method = o->method;
	b->batch_rows = o->batch_rows;
	b->batch_bytes = o->batch_bytes;
	b->cap_rows = SIZE_MAX;
	b->cap_bytes = SIZE_MAX;
	b->job_poll_ms = BQ_JOB_POLL_MS;
	b->job_max_wait_ms = BQ_JOB_MAX_WAIT_MS;
	b->resend_base_ms = BQ_RESEND_BASE_MS;
	b->stream_span_ms = o->stream_span_ms > 0 ? o->stream_span_ms : BQ_STREAM_SPAN_MS;
	b->auth = o->auth;
	b->http = o->http;
	b->policy = o->policy;
	return b;
}

void bq_free(struct bq *b)
{
	if (!b)
		return;
	free(b->endpoint);
	free(b->project);
	free(b->dataset);
	free(b->location);
	free(b->project_esc);
	free(b->dataset_esc);
	free(b);
}

void bq_get_stats(const struct bq *b, struct bq_stats *out)
{
	if (out)
		*out = b ? b->stats : (struct bq_stats){0};
}

void bq_set_timing(struct bq *b, long poll_ms, long max_wait_ms, long resend_base_ms)
{
	if (poll_ms > 0)
		b->job_poll_ms = poll_ms;
	if (max_wait_ms > 0)
		b->job_max_wait_ms = max_wait_ms;
	if (resend_base_ms > 0)
		b->resend_base_ms = resend_base_ms;
}

/* ---- requests ---------------------------------------------------------------------------- */

/* "{endpoint}/bigquery/v2/projects/{project}" followed by the formatted rest. */
static char *api_url(const struct bq *b, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
static char *api_url(const struct bq *b, const char *fmt, ...)
{
	char *rest = NULL, *url = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&rest, fmt, ap);
	va_end(ap);
	if (r < 0)
		return NULL;
	if (asprintf(&url, "%s/bigquery/v2/projects/%s%s", b->endpoint, b->project_esc, rest) < 0)
		url = NULL;
	free(rest);
	return url;
}

static int call_within(struct bq *b, const char *method, const char *url, const char *ctype,
                       const char *body, size_t len, struct http_response *resp,
                       const struct http_policy *policy, long timeout_s)
{
	struct http_request req = {
	        .method = method,
	        .url = url,
	        .body = body,
	        .body_len = len,
	        .content_type = body ? ctype : NULL,
	        .timeout_s = timeout_s,
	};
	if (!url)
		return -ENOMEM;
	http_response_reset(resp);
	b->stats.requests++;
	return gapi_call(b->auth, b->http, &req, resp, policy);
}

static int call(struct bq *b, const char *method, const char *url, const char *ctype,
                const char *body, size_t len, struct http_response *resp)
{
	return call_within(b, method, url, ctype, body, len, resp, b->policy, 0);
}

static json_t *reply_json(const struct http_response *resp)
{
	if (!resp->body.data || resp->body.len == 0)
		return NULL;
	json_t *j = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* "HTTP 403 (accessDenied): message" for a log line; the message is scrubbed and cut. */
static void describe(const struct http_response *resp, char *out, size_t len)
{
	char reason[64] = "", msg[GAPI_MAX_MESSAGE + 8];
	const char *r = gapi_error_reason(resp, reason, sizeof(reason));
	gapi_error_message(resp, msg, sizeof(msg));
	if (resp->status)
		snprintf(out, len, "HTTP %ld%s%s%s: %s", resp->status, r ? " (" : "", r ? r : "",
		         r ? ")" : "", msg);
	else
		snprintf(out, len, "%s", msg[0] ? msg : "no response");
}

static bool reason_is(const struct http_response *resp, const char *want)
{
	char reason[64];
	const char *r = gapi_error_reason(resp, reason, sizeof(reason));
	return r && strcmp(r, want) == 0;
}

/* gapi_call failed before sending: the token source said why, and logged it. */
static bool no_request_made(const struct http_response *resp)
{
	return resp->status == 0 && resp->error == 0;
}

enum bq_op { OP_INSERT_ALL, OP_LOAD, OP_QUERY };

/* One log line an operator can act on for a request that failed for good, and the code
 * bq_insert/bq_query hand back. */
static int request_failed(struct bq *b, enum bq_op op, const char *table, int r,
                          const struct http_response *resp)
{
	static const char *const what[] = {"streaming insert", "load job", "query"};
	char text[GAPI_MAX_MESSAGE + 128];

	if (r == -ECANCELED || no_request_made(resp))
		return r;
	describe(resp, text, sizeof(text));
	const char *w = what[op];
	const char *t = table ? table : "";
	if (resp->error && r != -EAGAIN) {
		/* A transport failure that is not worth retrying (TLS, URL policy, size cap):
		 * no permission or table advice applies. */
		log_error("BigQuery %s%s%s failed: %s", w, table ? " into " : "", t, text);
		return r;
	}
	switch (r) {
	case -EKEYREJECTED:
		log_error("BigQuery %s (table %s:%s.%s): the new access token was refused as well "
		          "(%s); check the service account and its key",
		          w, b->project, b->dataset, t, text);
		return -EACCES;
	case -EACCES:
		if (op == OP_INSERT_ALL)
			log_error(
			        "BigQuery %s into %s:%s.%s refused: %s; the service account needs "
			        "bigquery.tables.updateData on the table "
			        "(roles/bigquery.dataEditor on the dataset)",
			        w, b->project, b->dataset, t, text);
		else if (op == OP_LOAD)
			log_error(
			        "BigQuery %s into %s:%s.%s refused: %s; the service account needs "
			        "bigquery.jobs.create (roles/bigquery.jobUser on project %s) and "
			        "bigquery.tables.updateData (roles/bigquery.dataEditor on the "
			        "dataset)",
			        w, b->project, b->dataset, t, text, b->project);
		else
			log_error(
			        "BigQuery %s refused: %s; the service account needs "
			        "bigquery.jobs.create (roles/bigquery.jobUser on project %s) and "
			        "bigquery.tables.getData (roles/bigquery.dataViewer on dataset %s)",
			        w, text, b->project, b->dataset);
		return -EACCES;
	case -ENOENT:
		if (op == OP_QUERY)
			log_error("BigQuery %s: not found: %s", w, text);
		else
			log_error(
			        "BigQuery %s: table %s:%s.%s not found (%s); the rows stay spooled "
			        "until it exists",
			        w, b->project, b->dataset, t, text);
		return -ENOENT;
	case -EAGAIN:
		log_warning("BigQuery %s%s%s: still failing after retries (%s)%s", w,
		            table ? " into " : "", t, text,
		            op == OP_QUERY ? "" : "; the rows stay spooled");
		return -EAGAIN;
	default:
		log_error("BigQuery %s%s%s failed: %s", w, table ? " into " : "", t, text);
		return r;
	}
}

/* ---- datasets and tables ----------------------------------------------------------------- */

int bq_check_dataset(struct bq *b)
{
	struct http_response resp = {0};
	char text[GAPI_MAX_MESSAGE + 128];
	char *url = api_url(b, "/datasets/%s?prettyPrint=false", b->dataset_esc);
	int r = call(b, "GET", url, NULL, NULL, 0, &resp);
	free(url);

	if (r == 0) {
		json_t *ds = reply_json(&resp);
		const char *loc = json_string_value(json_object_get(ds, "location"));
		if (!loc || !loc[0]) {
			log_warning("dataset %s:%s: the reply names no location; using %s",
			            b->project, b->dataset,
			            b->location ? b->location : "BigQuery's default");
		} else if (!b->location || strcasecmp(loc, b->location) != 0) {
			char *copy = strdup(loc);
			if (!copy) {
				r = -ENOMEM;
			} else {
				if (b->location)
					log_notice("dataset %s:%s is in location %s, not %s as "
					           "configured; using %s for its jobs",
					           b->project, b->dataset, loc, b->location, loc);
				free(b->location);
				b->location = copy;
			}
		}
		json_decref(ds);
	} else if (r != -ECANCELED && !no_request_made(&resp)) {
		describe(&resp, text, sizeof(text));
		if (r == -ENOENT)
			log_error(
			        "dataset %s:%s not found (create it, or fix bigquery.dataset): %s",
			        b->project, b->dataset, text);
		else if (resp.status == 403 || r == -EKEYREJECTED)
			log_error("no access to dataset %s:%s (%s): the service account needs "
			          "bigquery.datasets.get, e.g. roles/bigquery.dataEditor on the "
			          "dataset",
			          b->project, b->dataset, text);
		else
			log_error("cannot read dataset %s:%s: %s", b->project, b->dataset, text);
		if (r == -EKEYREJECTED)
			r = -EACCES;
	}
	http_response_free(&resp);
	return r;
}

static const char *ddl_type(enum schema_type t)
{
	switch (t) {
	case SCHEMA_INTEGER:
		return "INT64";
	case SCHEMA_FLOAT:
		return "FLOAT64";
	case SCHEMA_BOOLEAN:
		return "BOOL";
	default:
		return "STRING";
	}
}

/* Check a tables.get / tables.insert reply against the schema, naming what to do. */
static int check_table(struct bq *b, const char *table, const struct schema *s, const json_t *reply)
{
	char why[256];
	const json_t *ts = json_object_get(reply, "schema");
	if (schema_check_table(s, ts, why, sizeof(why)) == 0)
		return 0;
	const json_t *fields = json_object_get(ts, "fields");
	for (size_t i = 0; i < s->ncolumns; i++) {
		const struct schema_column *c = &s->columns[i];
		bool found = false;
		for (size_t j = 0; j < json_array_size(fields) && !found; j++) {
			const char *name = json_string_value(
			        json_object_get(json_array_get(fields, j), "name"));
			found = name && strcasecmp(name, c->name) == 0;
		}
		if (!found) {
			log_error("table %s:%s.%s lacks column %s (%s): add it with ALTER TABLE "
			          "`%s.%s.%s` ADD COLUMN %s %s",
			          b->project, b->dataset, table, c->name, why, b->project,
			          b->dataset, table, c->name, ddl_type(c->type));
			return -EINVAL;
		}
	}
	log_error("table %s:%s.%s does not match the %s schema (%s): recreate it with the "
	          "expected column types, or set %s.table to another table",
	          b->project, b->dataset, table, s->feed, why, s->feed);
	return -EINVAL;
}

static char *table_url(struct bq *b, const char *table)
{
	char *tesc = url_escape(table);
	char *url =
	        tesc ? api_url(b, "/datasets/%s/tables/%s?prettyPrint=false", b->dataset_esc, tesc)
	             : NULL;
	free(tesc);
	return url;
}

static int get_table(struct bq *b, const char *url, struct http_response *resp, json_t **out)
{
	int r = call(b, "GET", url, NULL, NULL, 0, resp);
	*out = NULL;
	if (r == 0 && !(*out = reply_json(resp)))
		r = -EPROTO;
	return r;
}

/* tables.get of `table`; when it is missing and create_body is given,
 * tables.insert of that body (409: made meanwhile, read it). 0 and the
 * resource in *out, or negative errno with an actionable error logged. */
static int ensure_resource(struct bq *b, const char *table, const char *feed,
                           const json_t *create_body, json_t **out)
{
	struct http_response resp = {0};
	char text[GAPI_MAX_MESSAGE + 128];
	json_t *reply = NULL;
	char *url = table_url(b, table);
	char *iurl = api_url(b, "/datasets/%s/tables?prettyPrint=false", b->dataset_esc);
	int r = url && iurl ? get_table(b, url, &resp, &reply) : -ENOMEM;

	*out = NULL;
	if (r == -ENOENT && !create_body) {
		describe(&resp, text, sizeof(text));
		log_error("table %s:%s.%s does not exist (%s): create it, or set "
		          "bigquery.create_tables = true",
		          b->project, b->dataset, table, text);
		goto out;
	}
	if (r == -ENOENT) {
		char *text_body = json_dumps(create_body, JSON_COMPACT);
		r = text_body ? call(b, "POST", iurl, "application/json", text_body,
		                     strlen(text_body), &resp)
		              : -ENOMEM;
		free(text_body);
		if (r == 0) {
			reply = reply_json(&resp);
			log_notice("created %s %s:%s.%s for the %s feed",
			           json_object_get(create_body, "view") ? "view" : "table",
			           b->project, b->dataset, table, feed);
			if (!reply)
				r = -EPROTO;
		} else if (r == -EEXIST) {
			/* Someone else created it meanwhile (or our first try arrived and its
			 * answer did not): read what is there now. */
			log_info("table %s:%s.%s was created meanwhile; reading it", b->project,
			         b->dataset, table);
			r = get_table(b, url, &resp, &reply);
		} else if (r == -EACCES && resp.status == 403) {
			describe(&resp, text, sizeof(text));
			log_error("cannot create table %s:%s.%s (%s): the service account needs "
			          "bigquery.tables.create (roles/bigquery.dataEditor on the "
			          "dataset), "
			          "or create the table yourself",
			          b->project, b->dataset, table, text);
			goto out;
		}
	}
	if (r == -EPROTO) {
		log_error("table %s:%s.%s: unreadable reply from BigQuery", b->project, b->dataset,
		          table);
	} else if (r < 0 && r != -ECANCELED && !no_request_made(&resp)) {
		describe(&resp, text, sizeof(text));
		if (resp.status == 403 || r == -EKEYREJECTED)
			log_error("no access to table %s:%s.%s (%s): the service account needs "
			          "bigquery.tables.get (roles/bigquery.dataEditor on the dataset)",
			          b->project, b->dataset, table, text);
		else
			log_error("table %s:%s.%s: %s", b->project, b->dataset, table, text);
		if (r == -EKEYREJECTED)
			r = -EACCES;
	}
out:
	if (r == 0)
		*out = reply;
	else
		json_decref(reply);
	http_response_free(&resp);
	free(url);
	free(iurl);
	return r;
}

/* tables.patch of `table` with `body`; 0 and the new resource in *out. */
static int patch_table(struct bq *b, const char *table, const json_t *body, const char *what,
                       json_t **out)
{
	struct http_response resp = {0};
	char text[GAPI_MAX_MESSAGE + 128];
	char *url = table_url(b, table);
	char *text_body = json_dumps(body, JSON_COMPACT);
	int r = url && text_body ? call(b, "PATCH", url, "application/json", text_body,
	                                strlen(text_body), &resp)
	                         : -ENOMEM;
	*out = NULL;
	if (r == 0 && !(*out = reply_json(&resp)))
		r = -EPROTO;
	if (r == 0) {
		log_notice("table %s:%s.%s: %s", b->project, b->dataset, table, what);
	} else if (r != -ECANCELED && !no_request_made(&resp)) {
		describe(&resp, text, sizeof(text));
		log_error("table %s:%s.%s could not be changed (%s) to %s%s", b->project,
		          b->dataset, table, text, what,
		          resp.status == 403 ? ": the service account needs bigquery.tables.update "
		                               "(roles/bigquery.dataEditor on the dataset)"
		                             : "");
		if (r == -EKEYREJECTED)
			r = -EACCES;
	}
	http_response_free(&resp);
	free(url);
	free(text_body);
	return r;
}

/* Columns the daemon adds itself (_fingerprint) may be missing from a table
 * made before track_changes: add them, an additive change BigQuery allows. */
static int add_extra_columns(struct bq *b, const char *table, const struct schema *s,
                             json_t **reply)
{
	const json_t *ts = json_object_get(*reply, "schema");
	json_t *fields = json_deep_copy(json_object_get(ts, "fields"));
	size_t added = 0;
	char what[160] = "added column";
	if (!json_is_array(fields)) {
		json_decref(fields);
		return 0; /* check_table() says what is wrong */
	}
	for (size_t i = 0; i < s->nextra; i++) {
		if (schema_table_column(ts, s->extra[i].name))
			continue;
		if (json_array_append_new(
		            fields, json_pack("{s:s, s:s, s:s}", "name", s->extra[i].name, "type",
		                              s->extra[i].type, "mode", "NULLABLE")) < 0) {
			json_decref(fields);
			return -ENOMEM;
		}
		size_t n = strlen(what);
		snprintf(what + n, sizeof(what) - n, "%s %s", added ? "," : "", s->extra[i].name);
		added++;
	}
	if (!added) {
		json_decref(fields);
		return 0;
	}
	json_t *body = json_pack("{s:{s:o}}", "schema", "fields", fields), *patched = NULL;
	int r = body ? patch_table(b, table, body, what, &patched) : -ENOMEM;
	json_decref(body);
	if (r == 0) {
		json_decref(*reply);
		*reply = patched;
	}
	return r;
}

/* The fields a new table gets: `like`'s (a table it must match, e.g. for a
 * UNION ALL in a view) with the schema's extra columns it lacks, or the
 * schema's own. */
static json_t *new_table_fields(const struct schema *s, const json_t *like)
{
	if (!like)
		return schema_table_fields(s);
	json_t *fields = json_deep_copy(json_object_get(like, "fields"));
	json_t *wrap = json_object();
	for (size_t i = 0; fields && i < s->nextra; i++)
		if (!schema_table_column(like, s->extra[i].name) &&
		    json_array_append_new(
		            fields, json_pack("{s:s, s:s, s:s}", "name", s->extra[i].name, "type",
		                              s->extra[i].type, "mode", "NULLABLE")) < 0)
			break;
	if (!fields || !wrap || json_object_set_new(wrap, "fields", fields) < 0) {
		json_decref(wrap);
		return NULL;
	}
	return wrap;
}

int bq_ensure_table_like(struct bq *b, const char *table, const struct schema *s,
                         const json_t *like, bool create, json_t **schema_out)
{
	json_t *reply = NULL, *body = NULL;
	if (schema_out)
		*schema_out = NULL;
	if (create) {
		json_t *fields = new_table_fields(s, like);
		body = fields ? json_pack("{s:{s:s, s:s, s:s}, s:o}", "tableReference", "projectId",
		                          b->project, "datasetId", b->dataset, "tableId", table,
		                          "schema", fields)
		              : NULL;
		if (!body)
			return -ENOMEM;
	}
	int r = ensure_resource(b, table, s->feed, body, &reply);
	if (r == 0 && create && s->nextra)
		r = add_extra_columns(b, table, s, &reply);
	if (r == 0)
		r = check_table(b, table, s, reply);
	if (r == 0 && schema_out)
		*schema_out = json_incref(json_object_get(reply, "schema"));
	json_decref(reply);
	json_decref(body);
	return r;
}

int bq_ensure_table(struct bq *b, const char *table, const struct schema *s, bool create)
{
	return bq_ensure_table_like(b, table, s, NULL, create, NULL);
}

int bq_ensure_view(struct bq *b, const char *view, const char *sql, const char *feed, bool create)
{
	json_t *reply = NULL, *patched = NULL;
	json_t *def = json_pack("{s:s, s:b}", "query", sql, "useLegacySql", 0);
	json_t *body =
	        def ? json_pack("{s:{s:s, s:s, s:s}, s:O}", "tableReference", "projectId",
	                        b->project, "datasetId", b->dataset, "tableId", view, "view", def)
	            : NULL;
	int r = body ? ensure_resource(b, view, feed, create ? body : NULL, &reply) : -ENOMEM;
	if (r == 0) {
		const char *type = json_string_value(json_object_get(reply, "type"));
		const json_t *v = json_object_get(reply, "view");
		const char *q = json_string_value(json_object_get(v, "query"));
		if (!type || strcmp(type, "VIEW") != 0) {
			log_error("%s:%s.%s is a %s, not a view: rename it, or set %s.table to "
			          "another table",
			          b->project, b->dataset, view,
			          type && strlen(type) < 20 ? type : "table", feed);
			r = -EINVAL;
		} else if (q && strcmp(q, sql) == 0 &&
		           json_is_false(json_object_get(v, "useLegacySql"))) {
			r = 0;
		} else if (create) {
			/* Seeding reads the view: it must say what this daemon means. */
			json_t *pb = json_pack("{s:O}", "view", def);
			r = pb ? patch_table(b, view, pb,
			                     "view definition replaced by the daemon's", &patched)
			       : -ENOMEM;
			json_decref(pb);
		} else {
			log_error(
			        "view %s:%s.%s does not have the daemon's definition: drop it and "
			        "set bigquery.create_tables = true, or recreate it as the README "
			        "shows",
			        b->project, b->dataset, view);
			r = -EINVAL;
		}
	}
	json_decref(patched);
	json_decref(reply);
	json_decref(body);
	json_decref(def);
	return r;
}

/* ---- queries ----------------------------------------------------------------------------- */

struct qrun {
	struct bq *b;
	bq_row_fn fn;
	void *userdata;
	struct bqrows scratch;
	size_t rows;
	bool announced; /* progress() was told the total */
	char *job_id, *job_esc, *loc_esc;
};

/* A result page: what jansson read of it, and its rows still as text in
 * the body (bqrows.h): a page of keys never becomes a tree. */
struct qpage {
	json_t *reply;    /* the reply without its rows; NULL when unreadable */
	struct buf body;  /* the body the rows are in */
	const char *rows; /* the rows' value in body, NULL when absent */
	size_t rows_len;
};

static void qpage_free(struct qpage *pg)
{
	json_decref(pg->reply);
	buf_free(&pg->body);
	*pg = (struct qpage){0};
}

/* Takes the response's body. 0, or -EPROTO when it is not a JSON object. */
static int qpage_read(struct http_response *resp, struct qpage *pg)
{
	qpage_free(pg);
	pg->body = resp->body;
	resp->body = (struct buf){0};
	int r = bqrows_split(pg->body.data, pg->body.len, &pg->reply, &pg->rows, &pg->rows_len);
	return r == -EPROTO ? -EPROTO : r;
}

static int deliver_rows(struct qrun *q, const struct qpage *pg)
{
	return bqrows_each(&q->scratch, pg->rows, pg->rows_len, q->fn, q->userdata, &q->rows);
}

static char *job_url(struct qrun *q, const char *tail)
{
	if (q->loc_esc)
		return api_url(q->b, "/queries/%s?location=%s&%s", q->job_esc, q->loc_esc, tail);
	return api_url(q->b, "/queries/%s?%s", q->job_esc, tail);
}

/* `errors` in a query reply may be mere warnings: the job's status says whether it failed. */
static int query_job_errors(struct qrun *q, const json_t *reply)
{
	struct bq *b = q->b;
	const json_t *errs = json_object_get(reply, "errors");
	struct http_response resp = {0};
	char msg[GAPI_MAX_MESSAGE + 1];

	if (!json_is_array(errs) || json_array_size(errs) == 0)
		return 0;
	char *url = q->loc_esc ? api_url(b, "/jobs/%s?location=%s&prettyPrint=false", q->job_esc,
	                                 q->loc_esc)
	                       : api_url(b, "/jobs/%s?prettyPrint=false", q->job_esc);
	int r = call(b, "GET", url, NULL, NULL, 0, &resp);
	free(url);
	if (r < 0) {
		r = request_failed(b, OP_QUERY, NULL, r, &resp);
		http_response_free(&resp);
		return r;
	}
	json_t *job = reply_json(&resp);
	http_response_free(&resp);
	const json_t *er = json_object_get(json_object_get(job, "status"), "errorResult");
	const json_t *first = er ? er : json_array_get(errs, 0);
	const char *reason = json_string_value(json_object_get(first, "reason"));
	const char *m = json_string_value(json_object_get(first, "message"));
	log_scrub_copy(m, msg, sizeof(msg)); /* scrubbed, then cut */
	if (er || !job)
		log_error("BigQuery query job %s failed: %s (%s)", q->job_id, msg,
		          reason ? reason : "no reason");
	else
		log_notice("BigQuery query job %s reported %zu warnings, the first: %s (%s)",
		           q->job_id, json_array_size(errs), msg, reason ? reason : "no reason");
	json_decref(job);
	return er || !job ? -EIO : 0;
}

/* GET a getQueryResults URL until the job is complete (or the wait cap passes). */
static int query_get(struct qrun *q, const char *url, uint64_t start, struct qpage *out)
{
	struct bq *b = q->b;
	struct http_response resp = {0};
	int r;

	for (;;) {
		uint64_t t0 = util_now_ms();
		r = call(b, "GET", url, NULL, NULL, 0, &resp);
		if (r < 0) {
			r = request_failed(b, OP_QUERY, NULL, r, &resp);
			break;
		}
		r = qpage_read(&resp, out);
		http_response_free(&resp);
		if (r < 0) {
			log_error("BigQuery query job %s: unreadable reply", q->job_id);
			r = r == -ENOMEM ? r : -EPROTO;
			break;
		}
		if (json_is_true(json_object_get(out->reply, "jobComplete")))
			break;
		qpage_free(out);
		if (util_now_ms() - start > (uint64_t)b->job_max_wait_ms) {
			log_warning("BigQuery query job %s not complete after %ld ms", q->job_id,
			            b->job_max_wait_ms);
			r = -EAGAIN;
			break;
		}
		/* timeoutMs makes BigQuery wait for us; a server that answers at once gets
		 * a pause instead of a busy loop. */
		if (util_now_ms() - t0 < BQ_QUERY_FAST_POLL_MS &&
		    http_sleep_ms(b->http, BQ_QUERY_PAUSE_MS) < 0) {
			r = -ECANCELED;
			break;
		}
	}
	http_response_free(&resp);
	if (r < 0)
		qpage_free(out);
	return r;
}

/* Deliver one complete page; hands back its pageToken (new string or NULL) and totalRows. */
static int query_page(struct qrun *q, struct qpage *pg, char **token, long long *total,
                      void (*progress)(size_t, size_t, void *))
{
	const char *t = json_string_value(json_object_get(pg->reply, "pageToken"));
	const char *tr = json_string_value(json_object_get(pg->reply, "totalRows"));
	if (tr && *tr)
		*total = (long long)strtoull(tr, NULL, 10);
	/* Before the first row: how many will come, so the caller can make room. */
	if (progress && q->rows == 0 && !q->announced && *total >= 0) {
		q->announced = true;
		progress(0, (size_t)*total, q->userdata);
	}
	int r = deliver_rows(q, pg);
	*token = NULL;
	if (r == 0 && t && *t && !(*token = strdup(t)))
		r = -ENOMEM;
	qpage_free(pg);
	if (r == -EPROTO)
		log_error("BigQuery query job %s: unexpected row shape in a result page",
		          q->job_id);
	if (r == 0 && progress)
		progress(q->rows, *total >= 0 ? (size_t)*total : SIZE_MAX, q->userdata);
	return r;
}

json_t *bq_param_strings(const char *name, const char *const *values, size_t n)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		if (json_array_append_new(arr, json_pack("{s:s}", "value", values[i])) < 0) {
			json_decref(arr);
			arr = NULL;
		}
	if (!arr)
		return NULL;
	return json_pack("[{s:s, s:{s:s, s:{s:s}}, s:{s:o}}]", "name", name, "parameterType",
	                 "type", "ARRAY", "arrayType", "type", "STRING", "parameterValue",
	                 "arrayValues", arr);
}

int bq_query(struct bq *b, const char *sql, bq_row_fn fn, void *userdata,
             void (*progress)(size_t rows_so_far, size_t total, void *userdata))
{
	return bq_query_params(b, sql, NULL, fn, userdata, progress);
}

int bq_query_params(struct bq *b, const char *sql, const json_t *params, bq_row_fn fn,
                    void *userdata,
                    void (*progress)(size_t rows_so_far, size_t total, void *userdata))
{
	struct qrun q = {.b = b, .fn = fn, .userdata = userdata};
	struct http_response resp = {0};
	char rid[BQ_UUID_LEN + 1], tail[128];
	char *text = NULL, *url = NULL, *token = NULL;
	struct qpage page = {0};
	long long total = -1;
	uint64_t start = util_now_ms();
	int r = -ENOMEM;

	/* The request id makes http_send's resends of this POST one job, not several. */
	bq_uuid4(rid);
	json_t *body =
	        json_pack("{s:s, s:b, s:i, s:i, s:s, s:{s:b}}", "query", sql, "useLegacySql", 0,
	                  "timeoutMs", BQ_QUERY_TIMEOUT_MS, "maxResults", BQ_SEED_PAGE_ROWS,
	                  "requestId", rid, "formatOptions", "useInt64Timestamp", 1);
	if (body && b->location)
		json_object_set_new(body, "location", json_string(b->location));
	if (body && params &&
	    (json_object_set_new(body, "parameterMode", json_string("NAMED")) < 0 ||
	     json_object_set(body, "queryParameters", (json_t *)params) < 0)) {
		json_decref(body);
		body = NULL;
	}
	if (!body || !(text = json_dumps(body, JSON_COMPACT)) ||
	    !(url = api_url(b, "/queries?prettyPrint=false")))
		goto out;
	r = call(b, "POST", url, "application/json", text, strlen(text), &resp);
	if (r < 0) {
		r = request_failed(b, OP_QUERY, NULL, r, &resp);
		goto out;
	}
	if (qpage_read(&resp, &page) == -ENOMEM) {
		r = -ENOMEM;
		goto out;
	}
	http_response_free(&resp);
	const json_t *reply = page.reply;
	const json_t *jref = json_object_get(reply, "jobReference");
	const char *jid = json_string_value(json_object_get(jref, "jobId"));
	const char *jloc = json_string_value(json_object_get(jref, "location"));
	if (!jloc || !*jloc)
		jloc = b->location;
	if (!reply || !jid || !*jid) {
		log_error("BigQuery query: unreadable reply (no job reference)");
		r = -EPROTO;
		goto out;
	}
	r = -ENOMEM;
	if (!(q.job_id = strdup(jid)) || !(q.job_esc = url_escape(jid)) ||
	    (jloc && !(q.loc_esc = url_escape(jloc))))
		goto out;
	log_debug("BigQuery query job %s started", q.job_id);

	bool first_has_rows = json_is_true(json_object_get(reply, "jobComplete"));
	if (!first_has_rows) {
		qpage_free(&page);
		snprintf(tail, sizeof(tail), "maxResults=0&timeoutMs=%d&prettyPrint=false",
		         BQ_QUERY_TIMEOUT_MS);
		free(url);
		url = job_url(&q, tail);
		if (!url) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = query_get(&q, url, start, &page)) < 0)
			goto out;
	}
	if ((r = query_job_errors(&q, page.reply)) < 0)
		goto out;
	if (first_has_rows) {
		r = query_page(&q, &page, &token, &total, progress);
		if (r)
			goto out;
	} else {
		/* The completion poll asked for no rows; start the pages from the top. */
		qpage_free(&page);
	}
	for (bool first = !first_has_rows; first || token; first = false) {
		char *esc = token ? url_escape(token) : NULL;
		free(url);
		url = NULL;
		snprintf(tail, sizeof(tail),
		         "maxResults=%d&timeoutMs=%d&formatOptions.useInt64Timestamp=true"
		         "&prettyPrint=false",
		         BQ_SEED_PAGE_ROWS, BQ_QUERY_TIMEOUT_MS);
		char *t2 = NULL;
		if ((!token || esc) &&
		    asprintf(&t2, "%s%s%s", tail, esc ? "&pageToken=" : "", esc ? esc : "") >= 0) {
			url = job_url(&q, t2);
			free(t2);
		}
		free(esc);
		if (!url) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = query_get(&q, url, start, &page)) < 0)
			goto out;
		char *next = NULL;
		r = query_page(&q, &page, &next, &total, progress);
		if (r) {
			free(next);
			goto out;
		}
		if (next && token && strcmp(next, token) == 0) {
			log_error("BigQuery query job %s: the same page token came back twice",
			          q.job_id);
			free(next);
			r = -EPROTO;
			goto out;
		}
		free(token);
		token = next;
	}
	if (total >= 0 && (size_t)total != q.rows) {
		log_error("BigQuery query job %s: %zu rows read, but the job has %lld", q.job_id,
		          q.rows, total);
		r = -EPROTO;
		goto out;
	}
	log_debug("BigQuery query job %s: %zu rows", q.job_id, q.rows);
	r = 0;
out:
	json_decref(body);
	qpage_free(&page);
	http_response_free(&resp);
	free(text);
	free(url);
	free(token);
	bqrows_clear(&q.scratch);
	free(q.job_id);
	free(q.job_esc);
	free(q.loc_esc);
	return r;
}

/* ---- streaming inserts ------------------------------------------------------------------- */

static void set_invalid(struct bq *b, struct bq_row_status *st, const char *reason)
{
	st->state = BQ_ROW_INVALID;
	snprintf(st->reason, sizeof(st->reason), "%s", reason);
	b->stats.rows_invalid++;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

static size_t insert_max_rows(const struct bq *b)
{
	size_t n = b->batch_rows ? b->batch_rows : BQ_DEFAULT_BATCH_ROWS;
	return min_size(min_size(n, BQ_MAX_ROWS_PER_INSERT), b->cap_rows);
}

static size_t insert_max_bytes(const struct bq *b)
{
	size_t n = b->batch_bytes ? b->batch_bytes : BQ_DEFAULT_BATCH_BYTES;
	return min_size(min_size(n, BQ_MAX_BYTES_PER_INSERT), b->cap_bytes);
}

/* Rows BigQuery could not store for a passing reason wait a little, doubling, before going
 * again; the whole round of resends stays within a poll. */
static long resend_wait_ms(const struct bq *b, int round)
{
	long base = b->resend_base_ms;
	long wait = base << (round < 3 ? round : 3);
	return wait + (long)(util_random_u32() % (uint32_t)(base / 2 + 1));
}

struct ins {
	struct bq *b;
	const char *table;
	char *url;
	char **ent; /* per row: {"insertId":key,"json":row}, encoded once, resent as is */
	size_t *elen;
	struct bq_row_status *st;
	size_t *next; /* rows for the next round */
	size_t nnext;
	bool backoff; /* a transient row error was seen this round */
	uint64_t t0;  /* the call's first send */
	struct bq_row_verdict *v;
	struct buf body;
};

static int stream_batch(struct ins *x, size_t *idx, size_t k)
{
	struct bq *b = x->b;
	struct http_response resp = {0};
	int r = 0;

	while (k > 0) {
		buf_reset(&x->body);
		r = buf_puts(&x->body, BQ_INSERT_PREFIX);
		for (size_t j = 0; j < k && r == 0; j++) {
			if (j)
				r = buf_append(&x->body, ",", 1);
			if (r == 0)
				r = buf_append(&x->body, x->ent[idx[j]], x->elen[idx[j]]);
		}
		if (r < 0 || (r = buf_puts(&x->body, BQ_INSERT_SUFFIX)) < 0)
			break;
		b->stats.rows_sent += k;
		/* Retries of this POST stay within the span since the call's first send. */
		uint64_t spent = util_now_ms() - x->t0;
		struct http_policy within = *b->policy;
		long left = b->stream_span_ms - (long)spent;
		if (left < 1)
			left = 1;
		if (within.budget_ms == 0 || within.budget_ms > left)
			within.budget_ms = left;
		r = call_within(b, "POST", x->url, "application/json", x->body.data, x->body.len,
		                &resp, &within, BQ_STREAM_TIMEOUT_S);
		if (r == 0) {
			json_t *reply = reply_json(&resp);
			int ne = reply ? bq_parse_insert_errors(reply, x->v, k) : -EPROTO;
			json_decref(reply);
			if (ne < 0) {
				log_error(
				        "BigQuery streaming insert into %s: unreadable reply; %zu "
				        "rows stay spooled",
				        x->table, k);
				r = -EPROTO;
				break;
			}
			size_t keep = 0, ninvalid = 0;
			for (size_t j = 0; j < k; j++) {
				size_t i = idx[j];
				switch (x->v[j].verdict) {
				case BQ_VERDICT_OK:
					x->st[i].state = BQ_ROW_DONE;
					break;
				case BQ_VERDICT_INVALID:
					set_invalid(b, &x->st[i], x->v[j].reason);
					ninvalid++;
					break;
				case BQ_VERDICT_RETRY:
					x->backoff = true;
					idx[keep++] = i;
					break;
				case BQ_VERDICT_STOPPED:
					idx[keep++] = i;
					break;
				}
			}
			if (ninvalid) {
				const char *first = "";
				for (size_t j = 0; j < k && !first[0]; j++)
					if (x->v[j].verdict == BQ_VERDICT_INVALID)
						first = x->v[j].reason;
				log_warning(
				        "table %s: BigQuery rejected %zu of %zu rows as invalid "
				        "(first: %s)%s",
				        x->table, ninvalid, k, first,
				        keep ? "; resending the others" : "");
			}
			if (ninvalid && keep) {
				/* skipInvalidRows is false: the others were stopped because of
				 * the invalid ones, and now that those are gone they can go. */
				b->stats.retries++;
				k = keep;
				continue;
			}
			memcpy(x->next + x->nnext, idx, keep * sizeof(*idx));
			x->nnext += keep;
			break;
		}
		char msg[GAPI_MAX_MESSAGE + 1];
		bool by_rows = false;
		gapi_error_message(&resp, msg, sizeof(msg));
		if (r != -ECANCELED && resp.error == 0 &&
		    bq_is_too_large(resp.status, msg, &by_rows)) {
			if (k == 1) {
				set_invalid(b, &x->st[idx[0]],
				            "row too large for a streaming insert");
				log_warning("table %s: one row is too large for a streaming insert "
				            "(%zu bytes); it goes to the dead letters",
				            x->table, x->elen[idx[0]]);
				r = 0;
				break;
			}
			if (by_rows)
				b->cap_rows = min_size(b->cap_rows, k / 2);
			else
				b->cap_bytes = min_size(b->cap_bytes, x->body.len / 2);
			b->stats.splits++;
			log_info("table %s: BigQuery refused a request of %zu rows, %zu bytes as "
			         "too "
			         "large (HTTP %ld); splitting it",
			         x->table, k, x->body.len, resp.status);
			http_response_free(&resp);
			size_t h = k / 2;
			r = stream_batch(x, idx, h);
			if (r == 0)
				r = stream_batch(x, idx + h, k - h);
			return r;
		}
		r = request_failed(b, OP_INSERT_ALL, x->table, r, &resp);
		break;
	}
	http_response_free(&resp);
	return r;
}

static int insert_streaming(struct bq *b, const char *table, const struct bq_text *rows,
                            const char *const *keys, size_t n, struct bq_row_status *st)
{
	struct ins x = {.b = b, .table = table, .st = st, .t0 = util_now_ms()};
	size_t *cur = NULL, ncur = 0;
	const size_t overhead = strlen(BQ_INSERT_PREFIX) + strlen(BQ_INSERT_SUFFIX);
	char *tesc = url_escape(table);
	int r = -ENOMEM;

	x.url = tesc ? api_url(b, "/datasets/%s/tables/%s/insertAll?prettyPrint=false",
	                       b->dataset_esc, tesc)
	             : NULL;
	x.ent = calloc(n, sizeof(*x.ent));
	x.elen = calloc(n, sizeof(*x.elen));
	x.next = calloc(n, sizeof(*x.next));
	x.v = calloc(n, sizeof(*x.v));
	cur = calloc(n, sizeof(*cur));
	if (!x.url || !x.ent || !x.elen || !x.next || !x.v || !cur)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].len == 0 || rows[i].json[0] != '{') {
			set_invalid(b, &st[i], "row is not a JSON object");
			continue;
		}
		/* {"insertId":ID,"json":ROW}: the row's text as it is, never parsed again. */
		char iid[BQ_INSERT_ID_MAX + 1];
		json_t *id = keys && keys[i] ? json_string(bq_insert_id(keys[i], iid)) : NULL;
		if (keys && keys[i] && !id) {
			set_invalid(b, &st[i], "insertId: key is not valid UTF-8");
			continue;
		}
		char *idtext = id ? json_dumps(id, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
		json_decref(id);
		if (id && !idtext)
			goto out;
		int w = asprintf(&x.ent[i], "{%s%s%s\"json\":%.*s}", idtext ? "\"insertId\":" : "",
		                 idtext ? idtext : "", idtext ? "," : "", (int)rows[i].len,
		                 rows[i].json);
		free(idtext);
		if (w < 0) {
			x.ent[i] = NULL;
			goto out;
		}
		x.elen[i] = (size_t)w;
		if (overhead + x.elen[i] > BQ_MAX_BYTES_PER_INSERT) {
			/* Sure to be refused: spare BigQuery (and us) 10 MB. */
			set_invalid(b, &st[i], "row too large for a streaming insert");
			log_warning("table %s: one row is too large for a streaming insert (%zu "
			            "bytes); it goes to the dead letters",
			            table, x.elen[i]);
			continue;
		}
		cur[ncur++] = i;
	}

	r = 0;
	for (int round = 0;; round++) {
		x.nnext = 0;
		x.backoff = false;
		for (size_t off = 0; off < ncur && r == 0;) {
			size_t k = bq_batch_plan(x.elen, cur + off, ncur - off, insert_max_rows(b),
			                         insert_max_bytes(b), overhead, 1);
			r = stream_batch(&x, cur + off, k);
			off += k;
		}
		if (r < 0 || x.nnext == 0)
			break;
		/* Row resends, like the POST's own retries, start within the span of
		 * the call's first send: a row stored by an earlier answer that was
		 * lost would otherwise be stored again past insertId's window. */
		long wait = x.backoff ? resend_wait_ms(b, round) : 0;
		if (round >= BQ_ROW_RESEND_ROUNDS ||
		    util_now_ms() - x.t0 + (uint64_t)wait >= (uint64_t)b->stream_span_ms) {
			log_warning(
			        "table %s: %zu rows still not stored after %d resends; they stay "
			        "spooled",
			        table, x.nnext, BQ_ROW_RESEND_ROUNDS);
			r = -ETIMEDOUT;
			break;
		}
		b->stats.retries++;
		log_info("table %s: resending %zu rows BigQuery did not store (resend %d of %d)",
		         table, x.nnext, round + 1, BQ_ROW_RESEND_ROUNDS);
		if (wait && http_sleep_ms(b->http, wait) < 0) {
			r = -ECANCELED;
			break;
		}
		size_t *t = cur;
		cur = x.next;
		x.next = t;
		ncur = x.nnext;
	}
out:
	if (x.ent)
		for (size_t i = 0; i < n; i++)
			free(x.ent[i]);
	free(x.ent);
	free(x.elen);
	free(x.next);
	free(x.v);
	free(cur);
	free(x.url);
	free(tesc);
	buf_free(&x.body);
	return r;
}

/* ---- load jobs --------------------------------------------------------------------------- */

struct ldx {
	struct bq *b;
	const char *table;
	char *upload_url;
	const char **line; /* per row: its compact JSON, borrowed from the caller's rows */
	size_t *llen;      /* its length in the NDJSON: the JSON and a newline */
	struct bq_row_status *st;
	unsigned new_jobs;
};

enum job_submit_result {
	JOB_NEW,      /* we created it */
	JOB_EXISTING, /* 409: an earlier submission of the same content */
	JOB_RERUN,    /* refused with a job*Error reason: run it again under a new id */
};

static bool job_reason_retryable(const char *r)
{
	static const char *const list[] = {
	        "backendError",    "internalError",    "rateLimitExceeded",
	        "jobBackendError", "jobInternalError", "jobRateLimitExceeded",
	};
	for (size_t i = 0; r && i < UTIL_ARRAY_SIZE(list); i++)
		if (strcmp(r, list[i]) == 0)
			return true;
	return false;
}

static bool job_done(const json_t *job)
{
	const char *s = json_string_value(json_object_get(json_object_get(job, "status"), "state"));
	return s && strcmp(s, "DONE") == 0;
}

/* jobs.get; a 404 is retried a few times when the job is known to exist (right after a 409
 * or a successful insert, python-bigquery#2134). */
static int job_get(struct ldx *x, const char *id, json_t **job)
{
	struct bq *b = x->b;
	struct http_response resp = {0};
	char *esc = url_escape(id), *lesc = b->location ? url_escape(b->location) : NULL;
	char *url = NULL;
	int r = -ENOMEM;

	*job = NULL;
	if (esc && (!b->location || lesc))
		url = lesc ? api_url(b, "/jobs/%s?location=%s&prettyPrint=false", esc, lesc)
		           : api_url(b, "/jobs/%s?prettyPrint=false", esc);
	for (int tries = 0; url; tries++) {
		r = call(b, "GET", url, NULL, NULL, 0, &resp);
		if (r != -ENOENT || tries >= BQ_JOB_404_RETRIES)
			break;
		b->stats.retries++;
		log_info("table %s: load job %s not visible yet (HTTP 404), asking again", x->table,
		         id);
		if (http_sleep_ms(b->http, BQ_JOB_404_WAIT_MS) < 0) {
			r = -ECANCELED;
			break;
		}
	}
	if (r == 0 && !(*job = reply_json(&resp))) {
		log_error("table %s: load job %s: unreadable reply", x->table, id);
		r = -EPROTO;
	} else if (r < 0 && url) {
		r = request_failed(b, OP_LOAD, x->table, r, &resp);
	}
	http_response_free(&resp);
	free(url);
	free(esc);
	free(lesc);
	return r;
}

static int job_submit(struct ldx *x, const char *id, const struct buf *data, size_t rows,
                      json_t **job, enum job_submit_result *how)
{
	struct bq *b = x->b;
	struct http_response resp = {0};
	struct buf body = {0};
	char boundary[BQ_BOUNDARY_MAX], *ctype = NULL, *meta = NULL;
	int r = -ENOMEM;

	*job = NULL;
	json_t *m =
	        json_pack("{s:{s:s, s:s}, s:{s:{s:{s:s, s:s, s:s}, s:s, s:s, s:s, s:b, s:i}}}",
	                  "jobReference", "projectId", b->project, "jobId", id, "configuration",
	                  "load", "destinationTable", "projectId", b->project, "datasetId",
	                  b->dataset, "tableId", x->table, "sourceFormat", "NEWLINE_DELIMITED_JSON",
	                  "writeDisposition", "WRITE_APPEND", "createDisposition", "CREATE_NEVER",
	                  "ignoreUnknownValues", 0, "maxBadRecords", 0);
	if (m && b->location)
		json_object_set_new(json_object_get(m, "jobReference"), "location",
		                    json_string(b->location));
	if (!m || !(meta = json_dumps(m, JSON_COMPACT)))
		goto out;
	r = -EEXIST;
	for (int i = 0; i < BQ_BOUNDARY_TRIES && r == -EEXIST; i++) {
		bq_multipart_boundary(boundary);
		buf_reset(&body);
		r = bq_multipart_build(boundary, meta, strlen(meta), data->data, data->len, &body);
	}
	if (r < 0 || asprintf(&ctype, "multipart/related; boundary=%s", boundary) < 0) {
		ctype = NULL;
		r = r < 0 ? r : -ENOMEM;
		goto out;
	}
	b->stats.rows_sent += rows;
	r = call(b, "POST", x->upload_url, ctype, body.data, body.len, &resp);
	if (r == 0) {
		*how = JOB_NEW;
		x->new_jobs++;
		if (!(*job = reply_json(&resp))) {
			log_error("table %s: load job %s: unreadable reply", x->table, id);
			r = -EPROTO;
		} else {
			log_info("table %s: load job %s started (%zu rows, %zu bytes)", x->table,
			         id, rows, data->len);
		}
	} else if (r == -EEXIST) {
		/* An earlier submission arrived (its answer may not have): follow that job
		 * instead of loading the rows a second time. */
		*how = JOB_EXISTING;
		log_info("table %s: load job %s exists already; following it", x->table, id);
		r = job_get(x, id, job);
	} else if (r == -EINVAL &&
	           (reason_is(&resp, "jobBackendError") || reason_is(&resp, "jobInternalError") ||
	            reason_is(&resp, "jobRateLimitExceeded"))) {
		char text[GAPI_MAX_MESSAGE + 128];
		describe(&resp, text, sizeof(text));
		log_info("table %s: load job %s refused (%s)", x->table, id, text);
		*how = JOB_RERUN;
		r = 0;
	} else {
		r = request_failed(b, OP_LOAD, x->table, r, &resp);
	}
out:
	json_decref(m);
	free(meta);
	free(ctype);
	buf_free(&body);
	http_response_free(&resp);
	return r;
}

static int job_wait(struct ldx *x, const char *id, json_t **job)
{
	struct bq *b = x->b;
	uint64_t start = util_now_ms();

	while (!job_done(*job)) {
		if (util_now_ms() - start >= (uint64_t)b->job_max_wait_ms) {
			log_warning("table %s: load job %s not done after %ld ms; its rows stay "
			            "spooled and the job is followed again next time",
			            x->table, id, b->job_max_wait_ms);
			return -EAGAIN;
		}
		if (http_sleep_ms(b->http, b->job_poll_ms) < 0)
			return -ECANCELED;
		json_decref(*job);
		int r = job_get(x, id, job);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The reason for a row that failed on its own: the row-level entry of errors[] (the one that
 * names a position) if there is one, else errorResult. */
static void job_row_reason(const json_t *status, char *out, size_t len)
{
	const json_t *errs = json_object_get(status, "errors"), *e, *pick = NULL;
	size_t i;
	json_array_foreach(errs, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "message"));
		if (m && strstr(m, "position ")) {
			pick = e;
			break;
		}
	}
	if (!pick)
		pick = json_object_get(status, "errorResult");
	bq_row_reason(json_string_value(json_object_get(pick, "location")),
	              json_string_value(json_object_get(pick, "message")), out, len);
}

static int load_chunk(struct ldx *x, size_t *idx, size_t k);

/* The job failed on bad data: find the bad rows. BigQuery names them by byte position in
 * errors[] (perhaps only the first few); when it does, those rows go alone and the rest
 * together, otherwise the chunk is cut in halves. Each part is new content, so a new job id.
 * Rows all named at once are invalid without further jobs: load jobs per table are few. */
static int load_split(struct ldx *x, size_t *idx, size_t k, const size_t *off, const json_t *status)
{
	struct bq *b = x->b;
	const json_t *errs = json_object_get(status, "errors"), *e;
	size_t i, nsus = 0;
	int r = 0;

	if (k == 1) {
		char reason[BQ_REASON_LEN];
		job_row_reason(status, reason, sizeof(reason));
		set_invalid(b, &x->st[idx[0]], reason);
		log_warning("table %s: BigQuery rejected a row of a load job as invalid (%s); it "
		            "goes to the dead letters",
		            x->table, reason);
		return 0;
	}
	const json_t **sus = calloc(k, sizeof(*sus)); /* the error naming row j, if any */
	size_t *order = calloc(k, sizeof(*order));
	if (!sus || !order) {
		r = -ENOMEM;
		goto out;
	}
	json_array_foreach(errs, i, e)
	{
		const char *m = json_string_value(json_object_get(e, "message"));
		const char *p = m ? strstr(m, "position ") : NULL;
		if (!p || !isdigit((unsigned char)p[9]))
			continue;
		unsigned long long pos = strtoull(p + 9, NULL, 10);
		size_t lo = 0, hi = k;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (off[mid] < pos)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < k && off[lo] == pos && !sus[lo]) {
			sus[lo] = e;
			nsus++;
		}
	}
	if (nsus == k) {
		/* BigQuery named every row: each is bad on its own, no job can tell more. */
		char reason[BQ_REASON_LEN];
		for (size_t j = 0; j < k; j++) {
			bq_row_reason(json_string_value(json_object_get(sus[j], "location")),
			              json_string_value(json_object_get(sus[j], "message")), reason,
			              sizeof(reason));
			set_invalid(b, &x->st[idx[j]], reason);
		}
		log_warning("table %s: BigQuery rejected all %zu rows of a load job as invalid "
		            "(first: %s); they go to the dead letters",
		            x->table, k, x->st[idx[0]].reason);
		goto out;
	}
	b->stats.splits++;
	if (nsus > 0) {
		size_t o = 0;
		for (size_t j = 0; j < k; j++)
			if (sus[j])
				order[o++] = idx[j];
		for (size_t j = 0; j < k; j++)
			if (!sus[j])
				order[o++] = idx[j];
		memcpy(idx, order, k * sizeof(*idx));
		log_info("table %s: load job failed on %zu named rows of %zu; loading them apart",
		         x->table, nsus, k);
		for (size_t j = 0; j < nsus && r == 0; j++)
			r = load_chunk(x, idx + j, 1);
		if (r == 0)
			r = load_chunk(x, idx + nsus, k - nsus);
	} else {
		size_t h = k / 2;
		log_info("table %s: load job of %zu rows failed on bad data; splitting it in two",
		         x->table, k);
		r = load_chunk(x, idx, h);
		if (r == 0)
			r = load_chunk(x, idx + h, k - h);
	}
out:
	free(sus);
	free(order);
	return r;
}

/* One job's worth of rows to a final state: DONE, INVALID (after splitting) or an error. */
static int load_chunk(struct ldx *x, size_t *idx, size_t k)
{
	struct bq *b = x->b;
	struct buf data = {0};
	size_t *off = calloc(k, sizeof(*off));
	json_t *job = NULL;
	unsigned fresh = 0;
	int r = off ? 0 : -ENOMEM;

	for (size_t j = 0; j < k && r == 0; j++) {
		off[j] = data.len;
		r = buf_append(&data, x->line[idx[j]], x->llen[idx[j]] - 1);
		if (r == 0)
			r = buf_append(&data, "\n", 1);
	}
	for (unsigned attempt = 0; r == 0; attempt++) {
		char id[BQ_JOB_ID_MAX];
		enum job_submit_result how = JOB_NEW;
		if (attempt >= BQ_LOAD_MAX_ATTEMPT_IDS) {
			log_error("table %s: %u load jobs for the same rows have failed; the rows "
			          "stay spooled",
			          x->table, attempt);
			r = -EAGAIN;
			break;
		}
		if (x->new_jobs >= BQ_LOAD_MAX_NEW_JOBS) {
			/* Load jobs per table per day are few; whatever is left waits. */
			log_warning(
			        "table %s: %u load jobs started in this round, the limit; %zu rows "
			        "wait for the next one",
			        x->table, x->new_jobs, k);
			r = -EAGAIN;
			break;
		}
		if ((r = bq_load_job_id(x->table, data.data, data.len, attempt, id, sizeof(id))) <
		    0)
			break;
		json_decref(job);
		job = NULL;
		r = job_submit(x, id, &data, k, &job, &how);
		if (r < 0)
			break;
		bool seen_done = how == JOB_EXISTING && job_done(job);
		const char *reason = "jobBackendError";
		const json_t *status = NULL, *er = NULL;
		if (how != JOB_RERUN) {
			if ((r = job_wait(x, id, &job)) < 0)
				break;
			status = json_object_get(job, "status");
			er = json_object_get(status, "errorResult");
			if (!er) {
				for (size_t j = 0; j < k; j++)
					x->st[idx[j]].state = BQ_ROW_DONE;
				log_info("table %s: load job %s stored %zu rows", x->table, id, k);
				break;
			}
			const char *rs = json_string_value(json_object_get(er, "reason"));
			reason = rs ? rs : "";
		}
		if (strcmp(reason, "invalid") == 0) {
			r = load_split(x, idx, k, off, status);
			break;
		}
		char msg[BQ_REASON_LEN] = "refused when submitted";
		if (er)
			bq_row_reason(NULL, json_string_value(json_object_get(er, "message")), msg,
			              sizeof(msg));
		if (job_reason_retryable(reason)) {
			if (seen_done) {
				/* A failure from an earlier round, found through 409: that id is
				 * spent, take the next without waiting. */
				log_info(
				        "table %s: load job %s had failed earlier (%s); trying the "
				        "next id",
				        x->table, id, reason);
				continue;
			}
			if (++fresh >= BQ_LOAD_JOB_ATTEMPTS) {
				log_warning(
				        "table %s: load job %s failed (%s: %s), %u attempts; the "
				        "rows stay spooled",
				        x->table, id, reason, msg, fresh);
				r = -EAGAIN;
				break;
			}
			b->stats.retries++;
			log_info("table %s: load job %s failed (%s: %s); running it again under a "
			         "new "
			         "job id",
			         x->table, id, reason, msg);
			if (http_sleep_ms(b->http, http_backoff_ms((int)fresh - 1, -1)) < 0)
				r = -ECANCELED;
			continue;
		}
		if (strcmp(reason, "notFound") == 0) {
			log_error(
			        "table %s:%s.%s: load job %s failed: not found (%s); the rows stay "
			        "spooled until the table exists",
			        b->project, b->dataset, x->table, id, msg);
			r = -ENOENT;
		} else if (strcmp(reason, "accessDenied") == 0) {
			log_error(
			        "table %s:%s.%s: load job %s was denied (%s): the service account "
			        "needs bigquery.tables.updateData (roles/bigquery.dataEditor on "
			        "the "
			        "dataset)",
			        b->project, b->dataset, x->table, id, msg);
			r = -EACCES;
		} else if (strcmp(reason, "quotaExceeded") == 0) {
			log_warning("table %s: load job %s hit a quota (%s); the rows stay spooled",
			            x->table, id, msg);
			r = -EAGAIN;
		} else {
			log_error("table %s: load job %s failed (%s: %s); the rows stay spooled",
			          x->table, id, reason, msg);
			r = -EIO;
		}
		break;
	}
	json_decref(job);
	buf_free(&data);
	free(off);
	return r;
}

static int insert_load(struct bq *b, const char *table, const struct bq_text *rows, size_t n,
                       struct bq_row_status *st)
{
	struct ldx x = {.b = b, .table = table, .st = st};
	size_t *cur = NULL, ncur = 0;
	int r = -ENOMEM;

	x.upload_url = NULL;
	if (asprintf(
	            &x.upload_url,
	            "%s/upload/bigquery/v2/projects/%s/jobs?uploadType=multipart&prettyPrint=false",
	            b->endpoint, b->project_esc) < 0)
		x.upload_url = NULL;
	x.line = calloc(n, sizeof(*x.line));
	x.llen = calloc(n, sizeof(*x.llen));
	cur = calloc(n, sizeof(*cur));
	if (!x.upload_url || !x.line || !x.llen || !cur)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if (rows[i].len == 0 || rows[i].json[0] != '{') {
			set_invalid(b, &st[i], "row is not a JSON object");
			continue;
		}
		/* The NDJSON line is the row's text as it is (no copy: one job's body is
		 * the only one, and a load chunk is thousands of rows). */
		x.line[i] = rows[i].json;
		x.llen[i] = rows[i].len + 1;
		cur[ncur++] = i;
	}
	r = 0;
	for (size_t off = 0; off < ncur && r == 0;) {
		size_t k = bq_batch_plan(x.llen, cur + off, ncur - off, SIZE_MAX, BQ_LOAD_MAX_BYTES,
		                         0, 0);
		r = load_chunk(&x, cur + off, k);
		off += k;
	}
out:
	free(x.line);
	free(x.llen);
	free(cur);
	free(x.upload_url);
	return r;
}

int bq_insert(struct bq *b, const char *table, const struct bq_text *rows, const char *const *keys,
              size_t n, struct bq_row_status *status)
{
	return bq_insert_as(b, b->method, table, rows, keys, n, status);
}

int bq_insert_as(struct bq *b, enum config_insert_method method, const char *table,
                 const struct bq_text *rows, const char *const *keys, size_t n,
                 struct bq_row_status *status)
{
	for (size_t i = 0; i < n; i++)
		status[i] = (struct bq_row_status){.state = BQ_ROW_PENDING};
	if (n == 0)
		return 0;
	int r = method == CONFIG_INSERT_LOAD ? insert_load(b, table, rows, n, status)
	                                     : insert_streaming(b, table, rows, keys, n, status);
	/* An unreadable answer confirmed nothing: the rows go again next time, harmlessly. */
	return r == -EPROTO ? -EAGAIN : r;
}

/* fuzz_google.c - libFuzzer target for the parsers of Google's replies: token endpoint and
 * metadata server bodies (gauth.c), error envelopes (gapi.c), and BigQuery's insertErrors, error
 * messages and the ids built from row keys (bigquery.c), and query result pages (bqrows.c: the
 * scan that reads rows without a tree is held against jansson's tree). Anything a server or a
 * proxy sends must be read or refused, never crash, leak or read out of bounds. See README.md
 * for the builds. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bigquery-internal.h"
#include "bqrows.h"
#include "gapi.h"
#include "gauth.h"
#include "http.h"
#include "log.h"
#include "secbuf.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INVARIANT(cond)                                                                            \
	do {                                                                                       \
		if (!(cond))                                                                       \
			abort();                                                                   \
	} while (0)

#define FUZZ_MAX_DEPTH     16   /* jansson itself caps nesting; this only bounds our walk */
#define FUZZ_MAX_ROWS      1000 /* rows of the largest insertAll request read back */
#define FUZZ_MAX_EXPIRES_S (10L * 365 * 86400)

/* Text for a log line or a dead letter: terminated inside its buffer, no control characters. */
static void check_text(const char *s, size_t len)
{
	INVARIANT(memchr(s, '\0', len));
	for (const char *p = s; *p; p++)
		INVARIANT(!iscntrl((unsigned char)*p));
}

/* ---- gauth ---- */

static void token_reply(const uint8_t *data, size_t size)
{
	struct secbuf *tok = (struct secbuf *)1;
	long life = -1;
	char err[128];

	memset(err, 'x', sizeof(err));
	int r = gauth_parse_token_reply((const char *)data, size, &tok, &life, err, sizeof(err));
	if (r < 0) {
		INVARIANT((r == -EINVAL || r == -ENOMEM) && !tok);
		INVARIANT(memchr(err, '\0', sizeof(err)) && err[0]);
		return;
	}
	INVARIANT(r == 0 && tok && life >= 1 && life <= FUZZ_MAX_EXPIRES_S);
	/* A token goes into a header line: visible ASCII only, and exactly the reply's. */
	size_t n = secbuf_len(tok);
	const unsigned char *t = secbuf_expose(tok);
	INVARIANT(n > 0 && n <= 8192);
	for (size_t i = 0; i < n; i++)
		INVARIANT(t[i] >= 0x21 && t[i] <= 0x7e);
	json_t *root = json_loadb((const char *)data, size, 0, NULL);
	json_t *at = json_object_get(root, "access_token");
	INVARIANT(json_is_string(at) && json_string_length(at) == n &&
	          memcmp(json_string_value(at), t, n) == 0);
	json_decref(root);
	secbuf_free(tok);
}

/* ---- gapi ---- */

static void error_reason(const struct http_response *resp)
{
	char small[16], big[64], one[1];
	const char *a = gapi_error_reason(resp, small, sizeof(small));
	const char *b = gapi_error_reason(resp, big, sizeof(big));
	const char *c = gapi_error_reason(resp, one, sizeof(one));

	/* Found or not does not depend on the buffer; a shorter one holds a prefix. */
	INVARIANT(!a == !b && !b == !c);
	if (!b)
		return;
	INVARIANT(a == small && b == big && c == one && one[0] == '\0');
	INVARIANT(memchr(small, '\0', sizeof(small)) && memchr(big, '\0', sizeof(big)));
	INVARIANT(big[0] && strncmp(small, big, sizeof(small) - 1) == 0);
	/* As http_send uses it. */
	enum http_verdict v = http_classify(resp->status, resp->error, big);
	INVARIANT(v == HTTP_VERDICT_RETRY || v == HTTP_VERDICT_FATAL || v == HTTP_VERDICT_AUTH ||
	          v == HTTP_VERDICT_OK || v == HTTP_VERDICT_CANCELLED);
}

static void error_message(const struct http_response *resp)
{
	static const size_t lens[] = {1, 4, 64, GAPI_MAX_MESSAGE + 1, 1024};
	char buf[1024];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(lens); i++) {
		memset(buf, 'x', sizeof(buf));
		gapi_error_message(resp, buf, lens[i]);
		check_text(buf, lens[i]);
		INVARIANT(strlen(buf) <= GAPI_MAX_MESSAGE);
		/* What the streaming insert does with it. */
		bool rows = true;
		bool big = bq_is_too_large(resp->status, buf, &rows);
		INVARIANT(resp->status == 413 ? big && !rows : resp->status == 400 || !big);
		INVARIANT(big || !rows);
	}
}

static void error_bodies(const uint8_t *data, size_t size)
{
	struct http_response resp = {0};

	http_response_reset(&resp);
	if (buf_append(&resp.body, data, size) < 0)
		return;
	/* An API error with the usual envelope. */
	resp.status = 400;
	error_reason(&resp);
	error_message(&resp);
	/* No usable body: the status line of the header block is the message. */
	resp.status = 503;
	resp.headers = malloc(size + 1);
	if (resp.headers) {
		memcpy(resp.headers, data, size);
		resp.headers[size] = '\0';
		error_message(&resp);
	}
	/* No response at all: the transport error is. */
	resp.status = 0;
	size_t n = size < sizeof(resp.errmsg) - 1 ? size : sizeof(resp.errmsg) - 1;
	memcpy(resp.errmsg, data, n);
	resp.errmsg[n] = '\0';
	error_message(&resp);
	resp.status = 413;
	error_message(&resp);
	http_response_free(&resp);
}

/* ---- bigquery ---- */

/* No value may survive in a dead-letter reason: every '"' starts a literal "...". The last one
 * may be cut short when the reason filled the buffer. */
static void check_reason(const char *out, size_t len)
{
	check_text(out, len);
	size_t n = strlen(out);
	for (const char *p = out; *p; p++) {
		if (*p != '"')
			continue;
		if (strncmp(p, "\"...\"", 5) == 0) {
			p += 4;
			continue;
		}
		INVARIANT(n == len - 1 && strncmp(p, "\"...\"", strlen(p)) == 0);
		break;
	}
}

static void row_reason(const char *location, const char *message)
{
	static const size_t lens[] = {1, 16, BQ_REASON_LEN};
	char out[BQ_REASON_LEN];

	for (size_t i = 0; i < UTIL_ARRAY_SIZE(lens); i++) {
		memset(out, 'x', sizeof(out));
		bq_row_reason(location, message, out, lens[i]);
		check_reason(out, lens[i]);
		INVARIANT(lens[i] == 1 || out[0]);
	}
}

/* Every object with a location or a message (insertErrors entries, a job's status.errors and
 * errorResult) gives a reason. */
static void walk_errors(const json_t *v, int depth)
{
	size_t i;
	const char *k;
	json_t *e;

	if (depth > FUZZ_MAX_DEPTH)
		return;
	if (json_is_object(v)) {
		const char *loc = json_string_value(json_object_get(v, "location"));
		const char *msg = json_string_value(json_object_get(v, "message"));
		if (loc || msg)
			row_reason(loc, msg);
		json_object_foreach((json_t *)v, k, e) walk_errors(e, depth + 1);
	} else if (json_is_array(v)) {
		json_array_foreach((json_t *)v, i, e) walk_errors(e, depth + 1);
	}
}

static void insert_errors(const json_t *reply, size_t n)
{
	struct bq_row_verdict *v = malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return;
	memset(v, 0xa5, (n ? n : 1) * sizeof(*v));
	int r = bq_parse_insert_errors(reply, v, n);
	if (!json_is_object(reply))
		INVARIANT(r == -EPROTO);
	INVARIANT(r == -EPROTO || (r >= 0 && (size_t)r <= n));
	size_t failed = 0;
	for (size_t j = 0; j < n; j++) {
		INVARIANT(v[j].verdict == BQ_VERDICT_OK || v[j].verdict == BQ_VERDICT_STOPPED ||
		          v[j].verdict == BQ_VERDICT_RETRY || v[j].verdict == BQ_VERDICT_INVALID);
		check_reason(v[j].reason, sizeof(v[j].reason));
		/* A dead letter always says why; no other row carries a reason. */
		INVARIANT((v[j].verdict == BQ_VERDICT_INVALID) == (v[j].reason[0] != '\0'));
		failed += v[j].verdict != BQ_VERDICT_OK;
	}
	INVARIANT(r < 0 || (size_t)r == failed);
	free(v);
}

static void key_ids(const char *text, const uint8_t *data, size_t size)
{
	char iid[BQ_INSERT_ID_MAX + 1], job[BQ_JOB_ID_MAX];
	size_t kl = strlen(text);

	memset(iid, 'x', sizeof(iid));
	INVARIANT(bq_insert_id(text, iid) == iid);
	if (kl <= BQ_INSERT_ID_MAX)
		INVARIANT(strcmp(iid, text) == 0);
	else
		INVARIANT(strlen(iid) == 7 + 64 && strncmp(iid, "sha256:", 7) == 0);

	for (unsigned attempt = 0; attempt < 2; attempt++) {
		unsigned a = attempt ? UINT32_MAX : 0;
		memset(job, 'x', sizeof(job));
		INVARIANT(bq_load_job_id(text, data, size, a, job, sizeof(job)) == 0);
		INVARIANT(strncmp(job, "stbq_", 5) == 0 && strlen(job) < sizeof(job));
		for (const char *p = job; *p; p++)
			INVARIANT(isalnum((unsigned char)*p) || *p == '_' || *p == '-');
	}
	/* A buffer too small is refused, and left empty. */
	INVARIANT(bq_load_job_id(text, data, size, 0, job, 8) == -EINVAL && job[0] == '\0');
}

static void bigquery_replies(const uint8_t *data, size_t size, const char *text)
{
	json_t *doc = json_loadb((const char *)data, size, JSON_DECODE_ANY, NULL);
	if (doc) {
		insert_errors(doc, 0);
		insert_errors(doc, 1);
		insert_errors(doc, 7);
		insert_errors(doc, FUZZ_MAX_ROWS);
		walk_errors(doc, 0);
		json_decref(doc);
	}
	/* The bytes as a bare message, and as a location. */
	row_reason(NULL, text);
	row_reason(text, NULL);
	row_reason(text, text);
	static const long statuses[] = {400, 413, 500};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(statuses); i++) {
		bool rows = true;
		bool big = bq_is_too_large(statuses[i], text, &rows);
		INVARIANT(statuses[i] == 413 ? big && !rows : statuses[i] == 400 || !big);
		INVARIANT(big || !rows);
	}
	key_ids(text, data, size);
}

/* Rows as one JSON array of arrays (null for NULL), to compare two readings. */
static int collect(const char *const *v, const size_t *lens, size_t n, void *ud)
{
	json_t *row = json_array();
	INVARIANT(row);
	for (size_t i = 0; i < n; i++) {
		INVARIANT(!v[i] || v[i][lens[i]] == '\0');
		json_array_append_new(row, v[i] ? json_stringn(v[i], lens[i]) : json_null());
	}
	return json_array_append_new(ud, row) == 0 ? 0 : -ENOMEM;
}

/* The bytes as a query result page: the scan gives the tree's rows, and the rest of the
 * reply as the tree has it, whenever jansson can read the page. */
static void query_rows(const uint8_t *data, size_t size)
{
	struct bqrows scratch = {0};
	json_t *tree_rows = json_array(), *scan_rows = json_array(), *rest = NULL;
	const char *rows;
	size_t rows_len, nt = 0, ns = 0;
	INVARIANT(tree_rows && scan_rows);

	json_t *tree = json_loadb((const char *)data, size, 0, NULL);
	int rt = json_is_object(tree) ? bqrows_each_tree(&scratch, tree, collect, tree_rows, &nt)
	                              : -EPROTO;
	int rs = bqrows_split((const char *)data, size, &rest, &rows, &rows_len);
	INVARIANT(rs == 0 || rs == -EPROTO);
	INVARIANT((rs == 0) == (rest != NULL));
	if (rs == 0)
		rs = bqrows_each(&scratch, rows, rows_len, collect, scan_rows, &ns);
	INVARIANT(rs == 0 || rs == -EPROTO);
	INVARIANT(ns == json_array_size(scan_rows));
	if (rt == 0) {
		INVARIANT(rs == 0 && ns == nt && json_equal(tree_rows, scan_rows));
		if (json_object_get(tree, "rows"))
			INVARIANT(json_object_set_new(tree, "rows", json_null()) == 0);
		INVARIANT(json_equal(tree, rest));
	}
	json_decref(tree);
	json_decref(rest);
	json_decref(tree_rows);
	json_decref(scan_rows);
	bqrows_clear(&scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;

	if (!ready) {
		log_set_sink(log_sink_discard, NULL);
		log_set_level(LOG_DEBUG);
		ready = 1;
	}
	token_reply(data, size);
	error_bodies(data, size);
	query_rows(data, size);

	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	bigquery_replies(data, size, text);
	free(text);
	return 0;
}

/* test_bigquery.c - the pure parts of the BigQuery client: batch planning, insertErrors,
 * dead-letter reasons, "too large" answers, load job ids, the multipart body, UUIDs. */
#include "autoconfig.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "bigquery-internal.h"
#include "tap.h"

/* ---- batch planning ---- */

static void test_plan_stops_at_max_rows(void)
{
	size_t lens[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	CHECK_INT(bq_batch_plan(lens, NULL, 10, 4, 1000, 0, 0), 4);
	CHECK_INT(bq_batch_plan(lens, NULL, 3, 4, 1000, 0, 0), 3);
	CHECK_INT(bq_batch_plan(lens, NULL, 10, 10, 1000, 0, 0), 10);
	CHECK_INT(bq_batch_plan(lens, NULL, 0, 4, 1000, 0, 0), 0);
}

static void test_plan_byte_boundary_is_exact(void)
{
	/* overhead 10, rows of 20 with a 1-byte separator: 10+20 = 30, 10+20+1+20 = 51,
	 * 10+20+1+20+1+20 = 72. */
	size_t lens[5] = {20, 20, 20, 20, 20};
	CHECK_INT(bq_batch_plan(lens, NULL, 5, 100, 72, 10, 1), 3);
	CHECK_INT(bq_batch_plan(lens, NULL, 5, 100, 71, 10, 1), 2);
	CHECK_INT(bq_batch_plan(lens, NULL, 5, 100, 51, 10, 1), 2);
	CHECK_INT(bq_batch_plan(lens, NULL, 5, 100, 50, 10, 1), 1);
	/* Without separator or overhead the rows fill the limit exactly. */
	CHECK_INT(bq_batch_plan(lens, NULL, 5, 100, 60, 0, 0), 3);
	CHECK_INT(bq_batch_plan(lens, NULL, 5, 100, 59, 0, 0), 2);
}

static void test_plan_huge_row_goes_alone(void)
{
	size_t lens[4] = {5000, 10, 10, 10};
	CHECK_INT(bq_batch_plan(lens, NULL, 4, 100, 1000, 50, 1), 1);
	/* A huge row after small ones ends the batch before it, then goes alone. */
	size_t lens2[4] = {10, 10, 5000, 10};
	CHECK_INT(bq_batch_plan(lens2, NULL, 4, 100, 1000, 50, 1), 2);
	size_t idx[2] = {2, 3};
	CHECK_INT(bq_batch_plan(lens2, idx, 2, 100, 1000, 50, 1), 1);
	/* Even max_bytes below the overhead sends one row rather than none. */
	CHECK_INT(bq_batch_plan(lens, idx + 1, 1, 100, 1, 50, 1), 1);
}

static void test_plan_follows_the_index_list(void)
{
	size_t lens[6] = {100, 1, 100, 1, 100, 1};
	size_t odd[3] = {1, 3, 5}, even[3] = {0, 2, 4};
	CHECK_INT(bq_batch_plan(lens, odd, 3, 100, 5, 0, 1), 3);
	CHECK_INT(bq_batch_plan(lens, even, 3, 100, 201, 0, 1), 2);
	CHECK_INT(bq_batch_plan(lens, even, 3, 100, 199, 0, 1), 1);
}

/* ---- insertErrors ---- */

static json_t *parse(const char *s)
{
	json_error_t e;
	json_t *j = json_loads(s, 0, &e);
	if (!j)
		printf("# bad test JSON: %s\n", e.text);
	return j;
}

static void test_insert_errors_out_of_order_and_several_per_row(void)
{
	json_t *r = parse(
	        "{\"insertErrors\":["
	        "{\"index\":4,\"errors\":[{\"reason\":\"stopped\",\"location\":\"\",\"message\":"
	        "\"\"}]},"
	        "{\"index\":1,\"errors\":[{\"reason\":\"stopped\"},{\"reason\":\"invalid\","
	        "\"location\":\"eventDate\",\"message\":\"Invalid timestamp string "
	        "\\\"2026-13-01\\\"\"},"
	        "{\"reason\":\"invalid\",\"location\":\"sold\",\"message\":\"second\"}]},"
	        "{\"index\":0,\"errors\":[{\"reason\":\"stopped\"}]},"
	        "{\"index\":3,\"errors\":[{\"reason\":\"timeout\"},{\"reason\":\"stopped\"}]}]}");
	struct bq_row_verdict v[6];
	CHECK_INT(bq_parse_insert_errors(r, v, 6), 4);
	CHECK_INT(v[0].verdict, BQ_VERDICT_STOPPED);
	CHECK_INT(v[1].verdict, BQ_VERDICT_INVALID);
	CHECK_STR(v[1].reason, "eventDate: Invalid timestamp string \"...\"");
	CHECK(strstr(v[1].reason, "2026-13-01") == NULL);
	CHECK_INT(v[2].verdict, BQ_VERDICT_OK);
	CHECK_INT(v[3].verdict, BQ_VERDICT_RETRY);
	CHECK_INT(v[4].verdict, BQ_VERDICT_STOPPED);
	CHECK_INT(v[5].verdict, BQ_VERDICT_OK);
	json_decref(r);
}

static void test_insert_errors_same_row_listed_twice(void)
{
	/* The first listing says stopped, a later one invalid: invalid wins, and the row is
	 * counted once. */
	json_t *r = parse("{\"insertErrors\":[{\"index\":2,\"errors\":[{\"reason\":\"stopped\"}]},"
	                  "{\"index\":2,\"errors\":[{\"reason\":\"invalid\",\"location\":\"x\","
	                  "\"message\":\"bad\"}]}]}");
	struct bq_row_verdict v[3];
	CHECK_INT(bq_parse_insert_errors(r, v, 3), 1);
	CHECK_INT(v[2].verdict, BQ_VERDICT_INVALID);
	CHECK_STR(v[2].reason, "x: bad");
	json_decref(r);
}

static void test_insert_errors_unknown_reasons_are_retryable(void)
{
	json_t *r =
	        parse("{\"insertErrors\":[{\"index\":0,\"errors\":[{\"reason\":\"somethingNew\"}]},"
	              "{\"index\":1,\"errors\":[]},{\"index\":2},"
	              "{\"index\":3,\"errors\":[{\"reason\":\"backendError\"}]},"
	              "{\"index\":4,\"errors\":[{\"reason\":\"internalError\"}]},"
	              "{\"index\":\"5\",\"errors\":[{\"message\":\"no reason\"}]}]}");
	struct bq_row_verdict v[6];
	CHECK_INT(bq_parse_insert_errors(r, v, 6), 6);
	for (int i = 0; i < 6; i++)
		CHECK_INT(v[i].verdict, BQ_VERDICT_RETRY);
	json_decref(r);
}

static void test_insert_errors_absent_or_empty_means_all_stored(void)
{
	struct bq_row_verdict v[2] = {{.verdict = BQ_VERDICT_INVALID},
	                              {.verdict = BQ_VERDICT_RETRY}};
	json_t *r = parse("{\"kind\":\"bigquery#tableDataInsertAllResponse\"}");
	CHECK_INT(bq_parse_insert_errors(r, v, 2), 0);
	CHECK_INT(v[0].verdict, BQ_VERDICT_OK);
	CHECK_INT(v[1].verdict, BQ_VERDICT_OK);
	json_decref(r);
	r = parse("{\"insertErrors\":[]}");
	CHECK_INT(bq_parse_insert_errors(r, v, 2), 0);
	json_decref(r);
}

static void test_insert_errors_bad_shapes_are_refused(void)
{
	static const char *const bad[] = {
	        "{\"insertErrors\":[{\"index\":2,\"errors\":[]}]}",  /* out of range */
	        "{\"insertErrors\":[{\"index\":-1,\"errors\":[]}]}", /* negative */
	        "{\"insertErrors\":[{\"errors\":[]}]}",              /* no index */
	        "{\"insertErrors\":[{\"index\":\"1x\"}]}",           /* not a number */
	        "{\"insertErrors\":{\"index\":0}}",                  /* not an array */
	        "[]",                                                /* not an object */
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		json_t *r = parse(bad[i]);
		struct bq_row_verdict v[2];
		int rc = bq_parse_insert_errors(r, v, 2);
		if (rc != -EPROTO)
			printf("# case %zu: %d\n", i, rc);
		CHECK_INT(rc, -EPROTO);
		json_decref(r);
	}
}

/* ---- reasons ---- */

static void test_reason_never_carries_values(void)
{
	char out[BQ_REASON_LEN];
	bq_row_reason("sold", "Cannot convert value to integer (bad value): SW1A 1AA", out,
	              sizeof(out));
	CHECK_STR(out, "sold: Cannot convert value to integer (bad value)");
	bq_row_reason("postCode", "Invalid string 'SW1A 1AA' found", out, sizeof(out));
	CHECK_STR(out, "postCode: Invalid string \"...\" found");
	bq_row_reason("eventDate", "Couldn't convert value to timestamp: x", out, sizeof(out));
	CHECK_STR(out, "eventDate: Couldn't convert value to timestamp");
	bq_row_reason("", "", out, sizeof(out));
	CHECK_STR(out, "invalid");
	bq_row_reason(NULL, NULL, out, sizeof(out));
	CHECK_STR(out, "invalid");
	bq_row_reason("a\"b; DROP", "x", out, sizeof(out));
	CHECK_STR(out, "a: x");
}

static void test_reason_of_load_errors(void)
{
	char out[BQ_REASON_LEN];
	bq_row_reason(
	        NULL,
	        "Error while reading data, error message: JSON parsing error in row starting "
	        "at position 120: Could not convert value 'string_value: \"abc\"' to integer. "
	        "Field: sold; Value: abc",
	        out, sizeof(out));
	CHECK_STR(out, "sold: Could not convert value \"...\" to integer");
	bq_row_reason("",
	              "JSON parsing error in row starting at position 0: Cannot convert value "
	              "to integer (bad value): abc Field: sold",
	              out, sizeof(out));
	CHECK_STR(out, "sold: Cannot convert value to integer (bad value)");
	/* Truncated, still terminated. */
	char small[12];
	bq_row_reason("location", "a long message", small, sizeof(small));
	CHECK_INT(strlen(small), sizeof(small) - 1);
}

static void test_too_large_answers(void)
{
	bool rows = true;
	CHECK(bq_is_too_large(413, NULL, &rows));
	CHECK(!rows);
	CHECK(bq_is_too_large(413, "<html><body>Request Entity Too Large</body></html>", &rows));
	CHECK(bq_is_too_large(400, "Request payload size exceeds the limit: 10485760 bytes.",
	                      &rows));
	CHECK(!rows);
	CHECK(bq_is_too_large(400, "too many rows present in the request, limit: 50000", &rows));
	CHECK(rows);
	CHECK(!bq_is_too_large(400, "No rows present in the request.", &rows));
	CHECK(!bq_is_too_large(403, "Request payload size exceeds the limit", &rows));
	CHECK(!bq_is_too_large(400, NULL, NULL));
}

/* ---- load job ids ---- */

static bool valid_job_id(const char *id)
{
	if (strlen(id) == 0 || strlen(id) > 1024)
		return false;
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
			return false;
	return true;
}

static void test_job_id_is_deterministic_and_content_sensitive(void)
{
	char a[BQ_JOB_ID_MAX], b[BQ_JOB_ID_MAX], c[BQ_JOB_ID_MAX], d[BQ_JOB_ID_MAX];
	const char *data = "{\"uniqueCode\":\"A1\"}\n";
	CHECK_INT(bq_load_job_id("sales", data, strlen(data), 0, a, sizeof(a)), 0);
	CHECK_INT(bq_load_job_id("sales", data, strlen(data), 0, b, sizeof(b)), 0);
	CHECK_STR(a, b);
	/* SHA-256 of the content, first 40 hex digits. */
	CHECK_STR(a, "stbq_sales_"
	             "45f92b2031535c7afa63db84b5b16e67801dbb2c");
	CHECK_INT(
	        bq_load_job_id("sales", "{\"uniqueCode\":\"A2\"}\n", strlen(data), 0, c, sizeof(c)),
	        0);
	CHECK(strcmp(a, c) != 0);
	CHECK_INT(bq_load_job_id("events", data, strlen(data), 0, d, sizeof(d)), 0);
	CHECK(strcmp(a + strlen("stbq_sales_"), d + strlen("stbq_events_")) == 0);
	CHECK_INT(bq_load_job_id("sales", data, strlen(data), 3, c, sizeof(c)), 0);
	CHECK_INT(strncmp(a, c, strlen(a)), 0);
	CHECK_STR(c + strlen(a), "_r3");
	CHECK(valid_job_id(a) && valid_job_id(c) && valid_job_id(d));
}

static void test_job_id_charset_and_length(void)
{
	char a[BQ_JOB_ID_MAX], b[BQ_JOB_ID_MAX], big[1100];
	CHECK_INT(bq_load_job_id("sales$20260101", "x", 1, 0, a, sizeof(a)), 0);
	CHECK_INT(bq_load_job_id("sales%20260101", "x", 1, 0, b, sizeof(b)), 0);
	CHECK(valid_job_id(a));
	CHECK(valid_job_id(b));
	CHECK(strcmp(a, b) != 0);
	CHECK_INT(strncmp(a, "stbq_sales_20260101_", 20), 0);
	memset(big, 'T', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK_INT(bq_load_job_id(big, "x", 1, 99, a, sizeof(a)), 0);
	CHECK(valid_job_id(a));
	CHECK(strlen(a) < BQ_JOB_ID_MAX);
	CHECK_INT(bq_load_job_id("sales", "x", 1, 0, a, 20), -EINVAL);
}

static void test_insert_id_fits_bigquery(void)
{
	char out[BQ_INSERT_ID_MAX + 1], out2[BQ_INSERT_ID_MAX + 1], key[300];
	CHECK_STR(bq_insert_id("A1B2C3", out), "A1B2C3");
	memset(key, 'k', 128);
	key[128] = '\0';
	CHECK_STR(bq_insert_id(key, out), key);
	memset(key, 'k', 299);
	key[299] = '\0';
	bq_insert_id(key, out);
	CHECK_INT(strlen(out), 7 + 64);
	CHECK_INT(strncmp(out, "sha256:", 7), 0);
	key[0] = 'j';
	CHECK(strcmp(bq_insert_id(key, out2), out) != 0);
	key[0] = 'k';
	CHECK_STR(bq_insert_id(key, out2), out);
}

/* ---- multipart ---- */

static void test_multipart_layout(void)
{
	struct buf out = {0};
	const char *meta = "{\"a\":1}", *data = "{\"k\":\"A1\"}\n{\"k\":\"A2\"}\n";
	CHECK_INT(bq_multipart_build("b7c1e0d2a9", meta, strlen(meta), data, strlen(data), &out),
	          0);
	CHECK_STR(out.data, "--b7c1e0d2a9\r\n"
	                    "Content-Type: application/json; charset=UTF-8\r\n\r\n"
	                    "{\"a\":1}\r\n"
	                    "--b7c1e0d2a9\r\n"
	                    "Content-Type: application/octet-stream\r\n\r\n"
	                    "{\"k\":\"A1\"}\n{\"k\":\"A2\"}\n\r\n"
	                    "--b7c1e0d2a9--");
	buf_free(&out);
}

static void test_multipart_boundary_must_not_occur(void)
{
	struct buf out = {0};
	const char *meta = "{\"a\":\"xyzzy\"}", *data = "{\"k\":\"plugh\"}\n";
	CHECK_INT(bq_multipart_build("xyzzy", meta, strlen(meta), data, strlen(data), &out),
	          -EEXIST);
	CHECK_INT(bq_multipart_build("plugh", meta, strlen(meta), data, strlen(data), &out),
	          -EEXIST);
	CHECK_INT(bq_multipart_build("", meta, strlen(meta), data, strlen(data), &out), -EEXIST);
	CHECK_INT(out.len, 0);
	char b1[BQ_BOUNDARY_MAX], b2[BQ_BOUNDARY_MAX];
	bq_multipart_boundary(b1);
	bq_multipart_boundary(b2);
	CHECK(strcmp(b1, b2) != 0);
	CHECK(strlen(b1) >= 20 && strlen(b1) <= 70);
	for (const char *p = b1; *p; p++)
		CHECK(isalnum((unsigned char)*p));
	buf_free(&out);
}

/* ---- UUID ---- */

static void test_uuid4_format(void)
{
	char a[BQ_UUID_LEN + 1], b[BQ_UUID_LEN + 1];
	for (int n = 0; n < 50; n++) {
		bq_uuid4(a);
		CHECK_INT(strlen(a), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				CHECK(a[i] == '-');
			else
				CHECK(isxdigit((unsigned char)a[i]) &&
				      !isupper((unsigned char)a[i]));
		}
		CHECK(a[14] == '4');
		CHECK(strchr("89ab", a[19]) != NULL);
	}
	bq_uuid4(b);
	CHECK(strcmp(a, b) != 0);
}

static void test_free_accepts_null(void)
{
	struct bq_stats st = {.requests = 7};
	bq_free(NULL);
	bq_get_stats(NULL, &st);
	CHECK_INT(st.requests, 0);
	CHECK(bq_new(NULL) == NULL);
}

int main(void)
{
	RUN(test_plan_stops_at_max_rows);
	RUN(test_plan_byte_boundary_is_exact);
	RUN(test_plan_huge_row_goes_alone);
	RUN(test_plan_follows_the_index_list);
	RUN(test_insert_errors_out_of_order_and_several_per_row);
	RUN(test_insert_errors_same_row_listed_twice);
	RUN(test_insert_errors_unknown_reasons_are_retryable);
	RUN(test_insert_errors_absent_or_empty_means_all_stored);
	RUN(test_insert_errors_bad_shapes_are_refused);
	RUN(test_reason_never_carries_values);
	RUN(test_reason_of_load_errors);
	RUN(test_too_large_answers);
	RUN(test_job_id_is_deterministic_and_content_sensitive);
	RUN(test_job_id_charset_and_length);
	RUN(test_insert_id_fits_bigquery);
	RUN(test_multipart_layout);
	RUN(test_multipart_boundary_must_not_occur);
	RUN(test_uuid4_format);
	RUN(test_free_accepts_null);
	return tap_done();
}

/* Unit tests for http.c: the classifier, backoff, Retry-After, header lookup, safe excerpts,
 * and the parts of a request that must not touch the network (policy refusal, cancellation). */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <time.h>

#include "http.h"
#include "log.h"
#include "secbuf.h"
#include "tap.h"
#include "util.h"

static void test_classifier_follows_the_failure_table(void)
{
	static const struct {
		long status;
		int error;
		const char *reason;
		enum http_verdict want;
	} rows[] = {
	        /* 2xx */
	        {200, 0, NULL, HTTP_VERDICT_OK},
	        {201, 0, NULL, HTTP_VERDICT_OK},
	        {204, 0, NULL, HTTP_VERDICT_OK},
	        {299, 0, "backendError", HTTP_VERDICT_OK},
	        /* 401 refreshes credentials, whatever the reason */
	        {401, 0, NULL, HTTP_VERDICT_AUTH},
	        {401, 0, "authError", HTTP_VERDICT_AUTH},
	        /* 403 is decided on the reason */
	        {403, 0, "rateLimitExceeded", HTTP_VERDICT_RETRY},
	        {403, 0, "quotaExceeded", HTTP_VERDICT_RETRY},
	        {403, 0, "userRateLimitExceeded", HTTP_VERDICT_RETRY},
	        {403, 0, "accessDenied", HTTP_VERDICT_FATAL},
	        {403, 0, "billingNotEnabled", HTTP_VERDICT_FATAL},
	        {403, 0, "responseTooLarge", HTTP_VERDICT_FATAL},
	        {403, 0, "backendError", HTTP_VERDICT_FATAL},
	        {403, 0, NULL, HTTP_VERDICT_FATAL},
	        {403, 0, "", HTTP_VERDICT_FATAL},
	        /* transient statuses */
	        {408, 0, NULL, HTTP_VERDICT_RETRY},
	        {429, 0, NULL, HTTP_VERDICT_RETRY},
	        {500, 0, NULL, HTTP_VERDICT_RETRY},
	        {500, 0, "internalError", HTTP_VERDICT_RETRY},
	        {502, 0, NULL, HTTP_VERDICT_RETRY},
	        {503, 0, "backendError", HTTP_VERDICT_RETRY},
	        {504, 0, NULL, HTTP_VERDICT_RETRY},
	        {501, 0, NULL, HTTP_VERDICT_RETRY},
	        {599, 0, NULL, HTTP_VERDICT_RETRY},
	        /* 409 is permanent; callers read -EEXIST */
	        {409, 0, NULL, HTTP_VERDICT_FATAL},
	        {409, 0, "duplicate", HTTP_VERDICT_FATAL},
	        {409, 0, "backendError", HTTP_VERDICT_FATAL},
	        /* other 4xx: permanent unless the reason says transient */
	        {400, 0, NULL, HTTP_VERDICT_FATAL},
	        {400, 0, "invalid", HTTP_VERDICT_FATAL},
	        {400, 0, "invalidQuery", HTTP_VERDICT_FATAL},
	        {400, 0, "backendError", HTTP_VERDICT_RETRY},
	        {400, 0, "internalError", HTTP_VERDICT_RETRY},
	        {400, 0, "rateLimitExceeded", HTTP_VERDICT_RETRY},
	        {404, 0, NULL, HTTP_VERDICT_FATAL},
	        {404, 0, "notFound", HTTP_VERDICT_FATAL},
	        {413, 0, NULL, HTTP_VERDICT_FATAL},
	        {499, 0, NULL, HTTP_VERDICT_FATAL},
	        /* an unfollowed redirect is not success */
	        {301, 0, NULL, HTTP_VERDICT_FATAL},
	        {302, 0, NULL, HTTP_VERDICT_FATAL},
	        /* transport errors win over any status */
	        {0, -ETIMEDOUT, NULL, HTTP_VERDICT_RETRY},
	        {0, -ECONNREFUSED, NULL, HTTP_VERDICT_RETRY},
	        {0, -ECONNRESET, NULL, HTTP_VERDICT_RETRY},
	        {0, -EHOSTUNREACH, NULL, HTTP_VERDICT_RETRY},
	        {200, -EPROTO, NULL, HTTP_VERDICT_RETRY},
	        {0, -ECANCELED, NULL, HTTP_VERDICT_CANCELLED},
	        {200, -ECANCELED, NULL, HTTP_VERDICT_CANCELLED},
	        {200, -EFBIG, NULL, HTTP_VERDICT_FATAL},
	        {0, -EACCES, NULL, HTTP_VERDICT_FATAL},
	        {0, -EPERM, NULL, HTTP_VERDICT_FATAL},
	        {0, -ENOMEM, NULL, HTTP_VERDICT_FATAL},
	        {503, -EFBIG, NULL, HTTP_VERDICT_FATAL},
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(rows); i++) {
		enum http_verdict v = http_classify(rows[i].status, rows[i].error, rows[i].reason);
		if (v != rows[i].want) {
			printf("# row %zu: status %ld error %d reason %s -> %d, want %d\n", i,
			       rows[i].status, rows[i].error, rows[i].reason ? rows[i].reason : "-",
			       (int)v, (int)rows[i].want);
			tap_case_failed = 1;
		}
	}
}

static void test_backoff_doubles_from_one_second_up_to_the_cap(void)
{
	for (int attempt = 0; attempt < 12; attempt++) {
		long base = HTTP_BACKOFF_BASE_MS;
		for (int i = 0; i < attempt && base < HTTP_BACKOFF_CAP_MS; i++)
			base *= 2;
		if (base > HTTP_BACKOFF_CAP_MS)
			base = HTTP_BACKOFF_CAP_MS;
		for (int k = 0; k < 200; k++) {
			long w = http_backoff_ms(attempt, -1);
			if (w < base || w >= base + HTTP_BACKOFF_JITTER_MS) {
				printf("# attempt %d: wait %ld outside [%ld, %ld)\n", attempt, w,
				       base, base + HTTP_BACKOFF_JITTER_MS);
				tap_case_failed = 1;
				break;
			}
		}
	}
	/* The documented schedule, spelled out. */
	CHECK(http_backoff_ms(0, -1) >= 1000 && http_backoff_ms(0, -1) < 2000);
	CHECK(http_backoff_ms(1, -1) >= 2000 && http_backoff_ms(1, -1) < 3000);
	CHECK(http_backoff_ms(5, -1) >= 32000 && http_backoff_ms(5, -1) < 33000);
	CHECK(http_backoff_ms(6, -1) >= 59000 && http_backoff_ms(6, -1) < 60000);
}

static void test_backoff_never_reaches_a_minute_or_overflows(void)
{
	static const int attempts[] = {6, 7, 31, 32, 63, 64, 1000, INT_MAX};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(attempts); i++) {
		long w = http_backoff_ms(attempts[i], -1);
		CHECK(w >= HTTP_BACKOFF_CAP_MS);
		CHECK(w < 60000);
	}
	CHECK(http_backoff_ms(-5, -1) >= HTTP_BACKOFF_BASE_MS);
	CHECK(http_backoff_ms(-5, -1) < HTTP_BACKOFF_BASE_MS + HTTP_BACKOFF_JITTER_MS);
}

static void test_backoff_jitter_spreads_over_the_whole_second(void)
{
	long lo = LONG_MAX, hi = 0;
	for (int k = 0; k < 4000; k++) {
		long j = http_backoff_ms(0, -1) - HTTP_BACKOFF_BASE_MS;
		lo = j < lo ? j : lo;
		hi = j > hi ? j : hi;
	}
	CHECK(lo >= 0);
	CHECK(lo < 50);
	CHECK(hi > HTTP_BACKOFF_JITTER_MS - 50);
	CHECK(hi < HTTP_BACKOFF_JITTER_MS);
}

static void test_retry_after_wins_and_is_clamped(void)
{
	CHECK_INT(http_backoff_ms(0, 0), 0);
	CHECK_INT(http_backoff_ms(5, 1500), 1500);
	CHECK_INT(http_backoff_ms(1000, 3000), 3000);
	CHECK_INT(http_backoff_ms(0, HTTP_RETRY_AFTER_MAX_MS), HTTP_RETRY_AFTER_MAX_MS);
	CHECK_INT(http_backoff_ms(0, HTTP_RETRY_AFTER_MAX_MS + 1), HTTP_RETRY_AFTER_MAX_MS);
	CHECK_INT(http_backoff_ms(0, LONG_MAX), HTTP_RETRY_AFTER_MAX_MS);
}

static void test_retry_after_delta_seconds(void)
{
	long ms = -7;
	CHECK_INT(http_parse_retry_after("120", 0, &ms), 0);
	CHECK_INT(ms, 120000);
	CHECK_INT(http_parse_retry_after("0", 0, &ms), 0);
	CHECK_INT(ms, 0);
	CHECK_INT(http_parse_retry_after(" 7 ", 0, &ms), 0);
	CHECK_INT(ms, 7000);
	/* Huge values saturate instead of wrapping; the backoff clamps them. */
	CHECK_INT(http_parse_retry_after("99999999999999999999999", 0, &ms), 0);
	CHECK(ms > 0);
	CHECK_INT(http_backoff_ms(0, ms), HTTP_RETRY_AFTER_MAX_MS);
}

static void test_retry_after_garbage_is_refused(void)
{
	static const char *const bad[] = {
	        "",
	        "   ",
	        "-1",
	        "-0",
	        "+5",
	        "1.5",
	        "5s",
	        "soon",
	        "0x10",
	        "Sun, 06 Nov 1994 08:49:37",     /* no zone */
	        "Sun, 06 Nov 1994 08:49:37 UTC", /* only GMT is allowed */
	        "Sun, 6 Nov 1994 08:49:37 GMT",  /* two-digit day */
	        "Sun, 06 Foo 1994 08:49:37 GMT",
	        "Sun, 32 Nov 1994 08:49:37 GMT",
	        "Sun, 06 Nov 1994 24:49:37 GMT",
	        "Sun, 06 Nov 1994 08:49:37 GMT extra",
	        "Sunday, 06-Nov-1994 08:49:37 GMT",
	        "Sun Nov  6 08:49:37",
	        "Sun Nov 6 08:49:37 1994",
	        "Xyz, 06 Nov 1994 08:49:37 GMT",
	};
	for (size_t i = 0; i < UTIL_ARRAY_SIZE(bad); i++) {
		long ms = 12345;
		int r = http_parse_retry_after(bad[i], 0, &ms);
		if (r != -EINVAL || ms != 12345) {
			printf("# \"%s\" -> %d, ms %ld\n", bad[i], r, ms);
			tap_case_failed = 1;
		}
	}
	long ms;
	CHECK_INT(http_parse_retry_after(NULL, 0, &ms), -EINVAL);
}

static void test_retry_after_http_dates_in_all_three_forms(void)
{
	/* 1994-11-06T08:49:37Z */
	const time_t t = 784111777;
	long ms = -1;
	CHECK_INT(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", t - 30, &ms), 0);
	CHECK_INT(ms, 30000);
	ms = -1;
	CHECK_INT(http_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", t - 30, &ms), 0);
	CHECK_INT(ms, 30000);
	ms = -1;
	CHECK_INT(http_parse_retry_after("Sun Nov  6 08:49:37 1994", t - 30, &ms), 0);
	CHECK_INT(ms, 30000);
	ms = -1;
	CHECK_INT(http_parse_retry_after("Wed, 25 Nov 2026 12:00:05 GMT", 1795608000, &ms), 0);
	CHECK_INT(ms, 5000);
	/* asctime with a two-digit day */
	CHECK_INT(http_parse_retry_after("Wed Nov 25 12:00:05 2026", 1795608000, &ms), 0);
	CHECK_INT(ms, 5000);
}

static void test_retry_after_rfc850_years_pick_the_right_century(void)
{
	/* now = 2026-11-25T12:00:00Z: "26" is 2026, "74" is 2074,
	 * "80" and "77" (more than 50 years ahead) are 1980 and 1977. */
	const time_t now = 1795608000;
	long ms = -1;
	CHECK_INT(http_parse_retry_after("Wednesday, 25-Nov-26 12:01:00 GMT", now, &ms), 0);
	CHECK_INT(ms, 60000);
	ms = -1;
	CHECK_INT(http_parse_retry_after("Tuesday, 25-Nov-80 12:01:00 GMT", now, &ms), 0);
	CHECK_INT(ms, 0);
	ms = -1;
	CHECK_INT(http_parse_retry_after("Sunday, 25-Nov-74 12:00:00 GMT", now, &ms), 0);
	CHECK_INT(ms, (3310372800L - 1795608000L) * 1000); /* 2074-11-25T12:00:00Z */
	ms = -1;
	CHECK_INT(http_parse_retry_after("Friday, 25-Nov-77 12:00:00 GMT", now, &ms), 0);
	CHECK_INT(ms, 0); /* 1977 */
}

static void test_retry_after_date_in_the_past_gives_zero(void)
{
	long ms = -1;
	CHECK_INT(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 1795608000, &ms), 0);
	CHECK_INT(ms, 0);
	ms = -1;
	CHECK_INT(http_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777, &ms), 0);
	CHECK_INT(ms, 0);
}

static void set_headers(struct http_response *r, const char *h)
{
	free(r->headers);
	r->headers = strdup(h);
}

static void test_header_lookup_reads_the_final_block(void)
{
	struct http_response r = {0};
	char buf[64];
	http_response_reset(&r);
	CHECK(http_response_header(&r, "Retry-After", buf, sizeof(buf)) == NULL);
	set_headers(&r, "HTTP/1.1 429 Too Many Requests\r\n"
	                "Content-Type: application/json\r\n"
	                "X-Retry-After: 99\r\n"
	                "retry-after:   5  \r\n"
	                "Retry-After: 6\r\n"
	                "Empty:\r\n"
	                "\r\n");
	CHECK_STR(http_response_header(&r, "Retry-After", buf, sizeof(buf)), "5");
	CHECK_STR(http_response_header(&r, "RETRY-AFTER", buf, sizeof(buf)), "5");
	CHECK_STR(http_response_header(&r, "content-type", buf, sizeof(buf)), "application/json");
	CHECK_STR(http_response_header(&r, "Empty", buf, sizeof(buf)), "");
	CHECK(http_response_header(&r, "Retry", buf, sizeof(buf)) == NULL);
	CHECK(http_response_header(&r, "After", buf, sizeof(buf)) == NULL);
	CHECK(http_response_header(&r, "Location", buf, sizeof(buf)) == NULL);
	/* Truncated to the buffer, always terminated. */
	char small[5];
	CHECK_STR(http_response_header(&r, "Content-Type", small, sizeof(small)), "appl");
	CHECK(http_response_header(&r, "Content-Type", small, 0) == NULL);
	http_response_free(&r);
	CHECK(r.headers == NULL);
	CHECK(r.body.data == NULL);
	CHECK_INT(r.retry_after_ms, -1);
}

static void set_body(struct http_response *r, const char *s)
{
	buf_reset(&r->body);
	buf_append(&r->body, s, strlen(s));
}

static void test_body_excerpt_hides_tokens_and_control_characters(void)
{
	struct http_response r = {0};
	char out[HTTP_MAX_ERROR_BODY_LOG + 1];
	http_response_reset(&r);
	http_body_excerpt(&r, out, sizeof(out));
	CHECK_STR(out, "");

	set_body(&r, "{\"error\":\"bad header Authorization: Bearer xyz\"}\n");
	http_body_excerpt(&r, out, sizeof(out));
	CHECK(strstr(out, "xyz") == NULL);
	CHECK(strstr(out, "bad header") != NULL);
	CHECK(strchr(out, '\n') == NULL);

	set_body(&r, "token eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl rejected");
	http_body_excerpt(&r, out, sizeof(out));
	CHECK(strstr(out, "eyJhbGciOiJ") == NULL);
	CHECK(strstr(out, "c2lnbmF0dXJl") == NULL);
	CHECK(strstr(out, "rejected") != NULL);

	set_body(&r, "line1\r\nline2\t\x1b[31mred\x7f\xc3\xa9");
	http_body_excerpt(&r, out, sizeof(out));
	for (const char *p = out; *p; p++)
		CHECK(*p >= 0x20 && *p < 0x7f);
	CHECK(strstr(out, "line1") != NULL);
	CHECK(strstr(out, "line2") != NULL);

	/* A live secret echoed back is blanked even if it looks like nothing special. */
	struct secbuf *key = secbuf_new("plain-api-key-42", 16);
	set_body(&r, "{\"error\":\"key plain-api-key-42 unknown\"}");
	http_body_excerpt(&r, out, sizeof(out));
	CHECK(strstr(out, "plain-api-key") == NULL);
	CHECK(strstr(out, "unknown") != NULL);
	secbuf_free(key);
	http_response_free(&r);
}

static void test_body_excerpt_is_truncated_after_scrubbing(void)
{
	struct http_response r = {0};
	char out[HTTP_MAX_ERROR_BODY_LOG + 50];
	http_response_reset(&r);
	struct buf b = {0};
	for (int i = 0; i < 100; i++)
		buf_puts(&b, "abcdefghij");
	set_body(&r, b.data);
	http_body_excerpt(&r, out, sizeof(out));
	CHECK_INT(strlen(out), HTTP_MAX_ERROR_BODY_LOG);
	http_body_excerpt(&r, out, 10);
	CHECK_STR(out, "abcdefghi");

	/* A JWT that straddles the cut must not leave its head behind. */
	buf_reset(&b);
	for (int i = 0; i < 19; i++)
		buf_puts(&b, "xxxxxxxxx ");
	buf_puts(&b, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlc2lnbmF0dXJl");
	set_body(&r, b.data);
	http_body_excerpt(&r, out, sizeof(out));
	CHECK(strstr(out, "eyJ") == NULL);
	CHECK(strstr(out, "xxxxxxxxx") != NULL);
	buf_free(&b);
	http_response_free(&r);
}

static int cancel_calls;
static int cancel_after;

static int cancel_cb(void *ud)
{
	(void)ud;
	return ++cancel_calls > cancel_after;
}

static void test_sleep_waits_and_stops_early_when_cancelled(void)
{
	struct http_options o = {.cancelled = cancel_cb};
	struct http_client *c = http_client_new(&o);
	CHECK(c != NULL);

	cancel_calls = 0;
	cancel_after = 1000000;
	uint64_t t0 = util_now_ms();
	CHECK_INT(http_sleep_ms(c, 250), 0);
	uint64_t took = util_now_ms() - t0;
	CHECK(took >= 250 && took < 450);
	/* Sliced: checked at least once per 100 ms. */
	CHECK(cancel_calls >= 3);

	cancel_calls = 0;
	cancel_after = 2;
	t0 = util_now_ms();
	CHECK_INT(http_sleep_ms(c, 10000), -ECANCELED);
	took = util_now_ms() - t0;
	CHECK(took < 400);

	CHECK_INT(http_sleep_ms(NULL, 20), 0);
	http_client_free(c);
	http_client_free(NULL);
}

static void test_refused_url_fails_without_touching_the_network(void)
{
	struct http_client *c = http_client_new(NULL);
	struct http_response resp = {0};
	struct http_request req = {.method = "GET", .url = "http://192.0.2.1/x?y=1"};
	uint64_t t0 = util_now_ms();
	CHECK_INT(http_perform(c, &req, &resp), -EPERM);
	CHECK_INT(resp.error, -EPERM);
	CHECK_INT(resp.status, 0);
	CHECK(resp.errmsg[0] != '\0');
	CHECK(resp.body.data != NULL);
	CHECK_INT(resp.retry_after_ms, -1);

	/* Permanent: http_send does not retry it or wait. */
	struct http_policy p = {.max_attempts = 5, .budget_ms = 0};
	req.url = "ftp://127.0.0.1/file";
	CHECK_INT(http_send(c, &req, &resp, &p, NULL), -EPERM);
	req.url = "not a url";
	CHECK_INT(http_send(c, &req, &resp, &p, NULL), -EPERM);
	CHECK(util_now_ms() - t0 < 200);
	http_response_free(&resp);
	http_client_free(c);
}

static void test_cancelled_before_start_sends_nothing(void)
{
	struct http_options o = {.cancelled = cancel_cb};
	struct http_client *c = http_client_new(&o);
	struct http_response resp = {0};
	/* Nothing listens on port 1: a connection attempt would show as -ECONNREFUSED. */
	struct http_request req = {
	        .method = "POST", .url = "http://127.0.0.1:1/", .body = "{}", .body_len = 2};
	struct http_policy p = {.max_attempts = 3};
	cancel_calls = 0;
	cancel_after = 0;
	CHECK_INT(http_send(c, &req, &resp, &p, NULL), -ECANCELED);
	CHECK_INT(resp.error, -ECANCELED);
	http_response_free(&resp);
	http_client_free(c);
}

static void quiet(int prio, const char *m, const struct log_field *f, size_t n, void *ud)
{
	(void)prio, (void)m, (void)f, (void)n, (void)ud;
}

int main(void)
{
	log_set_sink(quiet, NULL);
	http_global_init();
	RUN(test_classifier_follows_the_failure_table);
	RUN(test_backoff_doubles_from_one_second_up_to_the_cap);
	RUN(test_backoff_never_reaches_a_minute_or_overflows);
	RUN(test_backoff_jitter_spreads_over_the_whole_second);
	RUN(test_retry_after_wins_and_is_clamped);
	RUN(test_retry_after_delta_seconds);
	RUN(test_retry_after_garbage_is_refused);
	RUN(test_retry_after_http_dates_in_all_three_forms);
	RUN(test_retry_after_rfc850_years_pick_the_right_century);
	RUN(test_retry_after_date_in_the_past_gives_zero);
	RUN(test_header_lookup_reads_the_final_block);
	RUN(test_body_excerpt_hides_tokens_and_control_characters);
	RUN(test_body_excerpt_is_truncated_after_scrubbing);
	RUN(test_sleep_waits_and_stops_early_when_cancelled);
	RUN(test_refused_url_fails_without_touching_the_network);
	RUN(test_cancelled_before_start_sends_nothing);
	http_global_cleanup();
	return tap_done();
}

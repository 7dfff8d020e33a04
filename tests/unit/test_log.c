/* Unit tests for log.c: levels, structured fields, and that secrets never get out. */
#include "autoconfig.h"

#include <string.h>

#include "log.h"
#include "secbuf.h"
#include "tap.h"

static char last_msg[1024];
static char last_fields[1024];
static int last_prio = -1;
static int records;

static void capture(int prio, const char *message, const struct log_field *fields, size_t n,
                    void *ud)
{
	(void)ud;
	records++;
	last_prio = prio;
	snprintf(last_msg, sizeof(last_msg), "%s", message);
	last_fields[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(last_fields);
		snprintf(last_fields + l, sizeof(last_fields) - l, "%s=%s;", fields[i].name,
		         fields[i].value);
	}
}

static void test_levels_filter_records_above_the_threshold(void)
{
	records = 0;
	log_set_level(LOG_INFO);
	log_debug("hidden %d", 1);
	CHECK_INT(records, 0);
	log_info("shown %d", 2);
	CHECK_INT(records, 1);
	CHECK_INT(last_prio, LOG_INFO);
	CHECK_STR(last_msg, "shown 2");
	log_set_level(LOG_ERR);
	log_warning("hidden");
	CHECK_INT(records, 1);
	log_set_level(LOG_INFO);
}

static void test_level_names_parse_both_ways(void)
{
	CHECK_INT(log_level_parse("debug"), LOG_DEBUG);
	CHECK_INT(log_level_parse("info"), LOG_INFO);
	CHECK_INT(log_level_parse("notice"), LOG_NOTICE);
	CHECK_INT(log_level_parse("warning"), LOG_WARNING);
	CHECK_INT(log_level_parse("error"), LOG_ERR);
	CHECK(log_level_parse("verbose") < 0);
	CHECK(log_level_parse("") < 0);
	CHECK(log_level_parse(NULL) < 0);
	CHECK_STR(log_level_name(LOG_WARNING), "warning");
}

static void test_structured_fields_reach_the_sink(void)
{
	struct log_field f[] = {{"FEED", "sales"}, {"ROWS_NEW", "12"}};
	log_write(LOG_INFO, f, 2, "poll done");
	CHECK_STR(last_fields, "FEED=sales;ROWS_NEW=12;");
}

static void test_live_secret_is_blanked_in_message_and_fields(void)
{
	struct secbuf *k = secbuf_new("sk_live_0123456789", 18);
	log_info("key is %s!", (const char *)secbuf_expose(k));
	CHECK(strstr(last_msg, "sk_live") == NULL);
	CHECK_STR(last_msg, "key is ******************!");
	struct log_field f[] = {{"X", (const char *)secbuf_expose(k)}};
	log_write(LOG_INFO, f, 1, "field");
	CHECK(strstr(last_fields, "0123456789") == NULL);
	secbuf_free(k);
	/* Once freed it is no longer a secret the logger knows about. */
	log_info("sk_live_0123456789");
	CHECK_STR(last_msg, "sk_live_0123456789");
}

static void test_token_shapes_are_scrubbed_even_if_unregistered(void)
{
	log_info("Authorization: Bearer abc.def-ghi and more");
	CHECK(strstr(last_msg, "abc.def-ghi") == NULL);
	CHECK(strstr(last_msg, "and more") != NULL);
	log_info("token ya29.a0AfH6SMBexampletoken ok");
	CHECK(strstr(last_msg, "a0AfH6SMB") == NULL);
	log_info("jwt eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl end");
	CHECK(strstr(last_msg, "eyJpc3M") == NULL);
	CHECK(strstr(last_msg, " end") != NULL);
	log_info("body assertion=eyJx.eyJ.sig&grant_type=x");
	CHECK(strstr(last_msg, "eyJx") == NULL);
	log_info("refresh_token=1//0gabc&client_secret=shh");
	CHECK(strstr(last_msg, "1//0gabc") == NULL);
	CHECK(strstr(last_msg, "shh") == NULL);
}

static void test_each_line_of_a_text_is_its_own_record(void)
{
	records = 0;
	log_lines(LOG_ERR, "a.conf:3: x: bad\n\na.conf:9: y: worse\n");
	CHECK_INT(records, 2);
	CHECK_STR(last_msg, "a.conf:9: y: worse");
	CHECK_INT(last_prio, LOG_ERR);
	log_lines(LOG_ERR, NULL);
	log_lines(LOG_ERR, "no newline");
	CHECK_INT(records, 3);
	CHECK_STR(last_msg, "no newline");
}

static void test_ordinary_text_is_left_alone(void)
{
	log_info("sales: fetched 10 rows from DF-2974218, eyJ alone is fine");
	CHECK_STR(last_msg, "sales: fetched 10 rows from DF-2974218, eyJ alone is fine");
}

/* A record is one bounded line: control characters cannot start a forged one. */
static void test_records_are_one_printable_line(void)
{
	log_set_level(LOG_INFO);
	log_info("key %s here", "K\nerror: FORGED\x1b[31m");
	CHECK_STR(last_msg, "key K?error: FORGED?[31m here");
	struct log_field f[] = {{"FEED", "a\nb"}};
	log_write(LOG_INFO, f, 1, "x");
	CHECK_STR(last_fields, "FEED=a?b;");
}

static void test_outside_values_are_shown_only_when_short_and_plain(void)
{
	char out[LOG_VALUE_MAX];
	CHECK_STR(log_value("DF-2974219", 10, out), "DF-2974219");
	CHECK_STR(log_value("Caf\xc3\xa9", 5, out), "Caf\xc3\xa9");
	CHECK(strncmp(log_value("a\nb", 3, out), "<3 bytes, sha256 ", 17) == 0);
	char big[300];
	memset(big, 'K', sizeof(big));
	CHECK(strncmp(log_value(big, sizeof(big), out), "<300 bytes, sha256 ", 19) == 0);
	CHECK_INT(strlen(out), 19 + 8 + 1);
	char again[LOG_VALUE_MAX];
	CHECK_STR(log_value(big, sizeof(big), again), out);
}

/* The shapes a review found missing (each failed before). */
static void test_more_token_shapes(void)
{
	log_info("Authorization: Bearer\tabc.def-ghi1 x");
	CHECK(strstr(last_msg, "abc.def-ghi1") == NULL);
	log_info("Authorization: Bearer  twospaces123 x");
	CHECK(strstr(last_msg, "twospaces123") == NULL);
	log_info("{\"h\":\"Bearer ab\\/cd\\/efgh\"}");
	CHECK(strstr(last_msg, "efgh") == NULL);
	log_info("x-api-key: st-key-12345 sent");
	CHECK(strstr(last_msg, "st-key-12345") == NULL);
	CHECK(strstr(last_msg, "sent") != NULL);
	log_info("token 1//0gLongRefreshTokenValue123 there");
	CHECK(strstr(last_msg, "LongRefresh") == NULL);
	log_info("secret GOCSPX-abcdefghijklmnop there");
	CHECK(strstr(last_msg, "abcdefghijklmnop") == NULL);
	/* A JWT whose header does not start eyJ (a space after the brace). */
	log_info("jwt ewogImFsZyI6IlJTMjU2In0.eyJpc3MiOiJ4In0.c2lnbmF0dXJl end");
	CHECK(strstr(last_msg, "ewogImFsZ") == NULL);
	CHECK(strstr(last_msg, " end") != NULL);
	/* Host names and file names are not JWTs. */
	log_info("https://bigquery.googleapis.com/x sales-0000000000000001.ndjson");
	CHECK_STR(last_msg, "https://bigquery.googleapis.com/x sales-0000000000000001.ndjson");
}

static void test_live_secrets_encoded_or_short(void)
{
	struct secbuf *k = secbuf_new("ab/cd+ef\"gh", 11);
	log_info("%s", "json {\"k\":\"ab\\/cd+ef\\\"gh\"} url k=ab%2Fcd%2Bef%22gh lower "
	               "ab%2fcd%2bef%22gh");
	CHECK(strstr(last_msg, "cd") == NULL);
	secbuf_free(k);
	struct secbuf *s = secbuf_new("k3y", 3);
	log_info("key=k3y; alone k3y, inside mk3yz");
	CHECK_STR(last_msg, "key=***; alone ***, inside mk3yz");
	secbuf_free(s);
}

static void test_scrubbed_before_cut(void)
{
	struct secbuf *k = secbuf_new("SECRETVALUE123456", 17);
	char out[16];
	log_scrub_copy("xxxxxxSECRETVALUE123456", out, sizeof(out));
	CHECK(strstr(out, "SECRET") == NULL);
	CHECK(strstr(out, "SEC") == NULL);
	secbuf_free(k);
}

static void test_quoted_values_are_masked(void)
{
	char t[] = "Invalid value \"SW1A 1AA\" for 'postCode', don't; \"ab\" kept";
	log_mask_quoted(t);
	CHECK_STR(t, "Invalid value \"...\" for '...', don't; \"ab\" kept");
}

int main(void)
{
	log_set_sink(capture, NULL);
	RUN(test_levels_filter_records_above_the_threshold);
	RUN(test_level_names_parse_both_ways);
	RUN(test_structured_fields_reach_the_sink);
	RUN(test_live_secret_is_blanked_in_message_and_fields);
	RUN(test_token_shapes_are_scrubbed_even_if_unregistered);
	RUN(test_each_line_of_a_text_is_its_own_record);
	RUN(test_ordinary_text_is_left_alone);
	RUN(test_records_are_one_printable_line);
	RUN(test_more_token_shapes);
	RUN(test_live_secrets_encoded_or_short);
	RUN(test_scrubbed_before_cut);
	RUN(test_quoted_values_are_masked);
	RUN(test_outside_values_are_shown_only_when_short_and_plain);
	return tap_done();
}
